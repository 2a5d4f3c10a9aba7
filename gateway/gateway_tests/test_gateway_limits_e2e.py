"""Rate limits through a real gateway (HTTP on loopback, real credentials from the dev
issuer and the API-key database): per citizen, per API key and per client IP, with the
429 problem, ``Retry-After`` and the ``RateLimit``/``RateLimit-Policy`` fields; and two
gateway *processes* sharing one Redis bucket."""

from __future__ import annotations

import asyncio
import os
import random
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from gateway.auth import AuthSettings
from gateway.auth.devissuer import DevIssuer
from gateway.auth.testing import auth_settings
from gateway.config import GatewaySettings
from gateway.devcreds import ensure_dev_credentials
from gateway.limits import LimitSettings
from gateway.main import create_app
from mkinfra._proc import tail, terminate_group
from mkinfra.testing import free_ports
from servicekit.identity import Role
from servicekit.testing import running_app

from .conftest import TEST_ROUTES, Upstream, closed_url

PROBLEM_JSON = "application/problem+json"
PATH = "/api/v1/service-requests"  # limit class "default"
CATALOGUE_PATH = "/api/v1/services"  # limit class "catalogue"
RATELIMIT_RE = re.compile(r'^"(?P<name>[a-z]+)";r=(?P<r>\d+);t=(?P<t>\d+)$')


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ratelimit(resp: httpx.Response) -> tuple[str, int, int]:
    """The ``RateLimit`` field as (policy name, remaining, seconds)."""
    match = RATELIMIT_RE.match(resp.headers["ratelimit"])
    assert match, resp.headers["ratelimit"]
    return match["name"], int(match["r"]), int(match["t"])


def assert_refused(resp: httpx.Response, *, name: str, quota: int, window: int) -> int:
    """A 429 problem as the docs promise; returns its Retry-After."""
    assert resp.status_code == 429, resp.text
    assert resp.headers["content-type"] == PROBLEM_JSON
    body = resp.json()
    assert body["status"] == 429
    assert body["type"] == "https://mk-digital.example/problems/too-many-requests"
    assert body["title"] == "Too many requests"
    assert f"'{name}'" in body["detail"]
    retry_after = resp.headers["retry-after"]
    assert retry_after.isdigit(), retry_after  # delta-seconds, never a date or a fraction
    assert int(retry_after) >= 1
    assert resp.headers["ratelimit-policy"] == f'"{name}";q={quota};w={window}'
    policy_name, remaining, reset = ratelimit(resp)
    assert (policy_name, remaining) == (name, 0)
    assert reset == int(retry_after)  # the draft: t on a refusal is the Retry-After moment
    assert "x-request-id" in resp.headers
    return int(retry_after)


async def use_up(
    client: httpx.AsyncClient,
    quota: int,
    *,
    name: str = "default",
    path: str = PATH,
    headers: Mapping[str, str] | None = None,
) -> int:
    """``quota`` allowed requests (remaining counting down), then one refused: its
    Retry-After."""
    for n in range(quota):
        resp = await client.get(f"{path}/{n}", headers=headers)
        assert resp.status_code == 200, (n, resp.status_code, resp.text)
        assert resp.headers["ratelimit-policy"] == f'"{name}";q={quota};w=60'
        policy_name, remaining, reset = ratelimit(resp)
        assert (policy_name, remaining) == (name, quota - 1 - n)
        assert 1 <= reset <= 60
        assert "retry-after" not in resp.headers
    return assert_refused(
        await client.get(f"{path}/over", headers=headers), name=name, quota=quota, window=60
    )


# --------------------------------------------------------------------------- in process


@dataclass
class LimitedGateway:
    url: str
    upstream: Upstream
    credentials: dict[str, str]
    issuer: DevIssuer


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[LimitedGateway]:
    """A gateway (default class 5/60s, anonymous 3/60s, in memory) in front of a test
    citizen-services, trusting the dev issuer and the dev API keys."""
    auth_db = f"sqlite:///{tmp_path}/gateway.sqlite3"
    creds = await ensure_dev_credentials(tmp_path, AuthSettings(database_url=auth_db))
    upstream = Upstream("citizen-services")
    async with AsyncExitStack() as stack:
        upstream_url = await stack.enter_async_context(running_app(upstream))
        app = create_app(
            GatewaySettings(
                citizen_services_url=upstream_url,
                inclusion_url=closed_url(),
                notifications_url=closed_url(),
            ),
            routes=TEST_ROUTES,
            auth_settings=auth_settings(auth_db, jwks_file=creds.issuer.jwks_path),
            limit_settings=LimitSettings(
                redis_url=None,
                rate_limits_enabled=True,
                limit_default="5/60s",
                limit_catalogue="2400/60s",
                limit_notify="4/60s",
                limit_anonymous="3/60s",
            ),
        )
        url = await stack.enter_async_context(running_app(app))
        yield LimitedGateway(url, upstream, creds.values, creds.issuer)


def client_from(url: str, source: str = "127.0.0.1") -> httpx.AsyncClient:
    """A client whose connections come from ``source`` (any 127/8 address is loopback)."""
    return httpx.AsyncClient(
        base_url=url, timeout=10, transport=httpx.AsyncHTTPTransport(local_address=source)
    )


async def test_citizens_are_limited_one_bucket_each(limited: LimitedGateway) -> None:
    alice = limited.issuer.mint("citizen-e2e-alice", [Role.CITIZEN])
    bob = limited.issuer.mint("citizen-e2e-bob", [Role.CITIZEN])
    async with client_from(limited.url) as client:
        retry_after = await use_up(client, 5, headers=bearer(alice))
        assert retry_after <= 12  # 5/60s refills a token every 12 s
        # Still refused, however often she asks: a refusal takes no token and is not forwarded.
        for _ in range(3):
            assert (await client.get(f"{PATH}/again", headers=bearer(alice))).status_code == 429
        forwarded = [r for r in limited.upstream.requests if r["path"].startswith(PATH)]
        assert len(forwarded) == 5

        # Another citizen from the same address has a bucket of her own...
        await use_up(client, 5, headers=bearer(bob))
        # ...and a citizen's class buckets are separate: Alice may still read the catalogue.
        resp = await client.get(f"{CATALOGUE_PATH}/x", headers=bearer(alice))
        assert resp.status_code == 200
        assert resp.headers["ratelimit-policy"] == '"catalogue";q=2400;w=60'
        assert ratelimit(resp)[:2] == ("catalogue", 2399)
        # A new token for the same subject is the same caller: still limited.
        again = limited.issuer.mint("citizen-e2e-alice", [Role.CITIZEN])
        assert (await client.get(f"{PATH}/new-token", headers=bearer(again))).status_code == 429


async def test_api_keys_are_limited_one_bucket_each(limited: LimitedGateway) -> None:
    partner = {"X-API-Key": limited.credentials["PARTNER_API_KEY"]}
    open311 = {"Authorization": f"ApiKey {limited.credentials['OPEN311_API_KEY']}"}
    async with client_from(limited.url) as client:
        await use_up(client, 5, headers=partner)
        await use_up(client, 5, headers=open311)
        # The key is the caller however it is presented.
        same_key = {"Authorization": f"ApiKey {limited.credentials['PARTNER_API_KEY']}"}
        assert (await client.get(f"{PATH}/x", headers=same_key)).status_code == 429
        # A signed-in citizen on the same connection is unaffected by the keys' buckets.
        citizen = bearer(limited.credentials["CITIZEN_TOKEN"])
        assert (await client.get(f"{PATH}/x", headers=citizen)).status_code == 200


async def test_anonymous_callers_are_limited_per_client_address(limited: LimitedGateway) -> None:
    # Not from 127.0.0.1: running_app's uvicorn (unlike `python -m gateway`, which the
    # two-process test below runs) trusts X-Forwarded-For from there.
    async with (
        client_from(limited.url, "127.0.0.2") as first,
        client_from(limited.url, "127.0.0.3") as second,
    ):
        # Anonymous: the stricter of the class's 5/60s and the anonymous 3/60s.
        retry_after = await use_up(first, 3)
        assert retry_after <= 20  # 3/60s refills a token every 20 s
        # A client's own X-Forwarded-For does not buy it a new bucket.
        spoofed = await first.get(f"{PATH}/x", headers={"X-Forwarded-For": "203.0.113.9"})
        assert spoofed.status_code == 429
        # Another address has its own bucket.
        await use_up(second, 3)
        # The upstream heard of both addresses, from the sockets, not from the client.
        peers = {dict(r["headers"]).get("x-forwarded-for") for r in limited.upstream.requests}
        assert peers == {"127.0.0.2", "127.0.0.3"}
        # Signing in from the exhausted address makes the caller a subject with a bucket
        # (and a policy) of their own.
        citizen = bearer(limited.credentials["CITIZEN2_TOKEN"])
        resp = await first.get(f"{PATH}/x", headers=citizen)
        assert resp.status_code == 200
        assert resp.headers["ratelimit-policy"] == '"default";q=5;w=60'


async def test_notify_callers_get_the_notify_class_not_the_anonymous_policy(
    limited: LimitedGateway,
) -> None:
    """/v2 callers present Notify's JWT, which only the service reads: to the gateway they
    are anonymous, but the route's class (4/60s here) applies, not the anonymous 3/60s."""
    notify = {"Authorization": "Bearer not.read.here"}
    async with client_from(limited.url, "127.0.0.4") as client:
        for n in range(4):  # notifications is not running: 503, after the limiter
            resp = await client.get(f"/v2/notifications/{n}", headers=notify)
            assert resp.status_code == 503, resp.text  # the fourth too: not 3/60s
        assert_refused(
            await client.get("/v2/notifications/over", headers=notify),
            name="notify",
            quota=4,
            window=60,
        )


# --------------------------------------------------------------------------- two processes


def _gateway_env(port: int, overrides: Mapping[str, str]) -> dict[str, str]:
    """The environment of a ``python -m gateway`` child: ours without any platform
    settings that could leak in (a developer's GATEWAY_* or REDIS_URL), plus ``overrides``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_", "OTEL_"))
        and k not in ("REDIS_URL", "PLATFORM_IDENTITY_SECRET")
    }
    env.update(
        {
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(port),
            "GATEWAY_INCLUSION_URL": closed_url(),
            "GATEWAY_NOTIFICATIONS_URL": closed_url(),
            "GATEWAY_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


def _spawn(port: int, env: Mapping[str, str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway"],
            env=dict(env),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def _wait_ready(
    proc: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float = 25.0
) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"gateway exited with {proc.returncode}:\n{tail(log_path)}")
            try:
                await client.get(url + "/health")  # 200 or 503: either way it answers
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise AssertionError(f"gateway at {url} not ready in {timeout} s:\n{tail(log_path)}")


@asynccontextmanager
async def gateway_processes(
    count: int, tmp: Path, overrides: Mapping[str, str]
) -> AsyncIterator[list[str]]:
    """``count`` ``python -m gateway`` processes with ``overrides`` in their environment;
    yields their URLs; SIGTERM (then SIGKILL) to each process group on the way out."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        urls, logs = [], []
        for n, port in enumerate(free_ports(count)):
            log_path = tmp / f"gateway-{n}.log"
            procs.append(_spawn(port, _gateway_env(port, overrides), log_path, tmp))
            urls.append(f"http://127.0.0.1:{port}")
            logs.append(log_path)
        await asyncio.gather(*(_wait_ready(p, u, lp) for p, u, lp in zip(procs, urls, logs)))
        yield urls
    finally:
        await asyncio.gather(*(asyncio.to_thread(terminate_group, p, 15) for p in procs))


@pytest.mark.redis
@pytest.mark.slow
async def test_two_gateway_processes_share_one_bucket_through_redis(
    tmp_path: Path, redis_url: str
) -> None:
    auth_db = f"sqlite:///{tmp_path}/gateway.sqlite3"
    # Migrates the shared database once, before either process starts.
    creds = await ensure_dev_credentials(tmp_path, AuthSettings(database_url=auth_db))
    subject = f"citizen-e2e-{uuid.uuid4().hex[:12]}"  # a bucket no earlier run has touched
    token = creds.issuer.mint(subject, [Role.CITIZEN])
    burst_subject = f"citizen-e2e-{uuid.uuid4().hex[:12]}"
    burst_token = creds.issuer.mint(burst_subject, [Role.CITIZEN])
    # Loopback addresses no earlier run (sharing this Redis) has used.
    rng = random.Random()
    addresses = [
        f"127.{rng.randrange(1, 255)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        for _ in range(3)
    ]
    upstream = Upstream("citizen-services")
    redis = aioredis.Redis.from_url(redis_url)
    async with (
        running_app(upstream) as upstream_url,
        gateway_processes(
            2,
            tmp_path,
            {
                "GATEWAY_CITIZEN_SERVICES_URL": upstream_url,
                "GATEWAY_DATABASE_URL": auth_db,
                **creds.env(),
                "GATEWAY_LIMIT_CATALOGUE": "6/600s",
                "GATEWAY_LIMIT_ANONYMOUS": "3/600s",
                "REDIS_URL": redis_url,
            },
        ) as urls,
        httpx.AsyncClient(timeout=10) as client,
    ):
        try:
            started = time.monotonic()
            statuses: list[tuple[int, int]] = []
            for n in range(14):  # alternate: even -> first process, odd -> second
                resp = await client.get(f"{urls[n % 2]}{CATALOGUE_PATH}/{n}", headers=bearer(token))
                statuses.append((n % 2, resp.status_code))
                if resp.status_code == 200:
                    assert ratelimit(resp)[:2] == ("catalogue", 5 - n)
                else:
                    assert_refused(resp, name="catalogue", quota=6, window=600)
            elapsed = time.monotonic() - started
            # Windows of 600 s: no token can refill (one every 100 s) on however busy a machine.
            assert elapsed < 80, elapsed
            assert [s for _, s in statuses] == [200] * 6 + [429] * 8, statuses
            assert {p for p, s in statuses if s == 429} == {0, 1}  # refused by both
            forwarded = [r for r in upstream.requests if r["path"].startswith(CATALOGUE_PATH)]
            assert len(forwarded) == 6

            # The bucket is the one Redis hash both processes updated.
            key = f"mk:rl:catalogue:sub:{subject}"
            assert await redis.exists(key) == 1
            assert float(await redis.hget(key, "tokens") or "nan") < 1
            assert 0 < await redis.pttl(key) <= 601_000

            # Concurrent requests at both processes still take exactly the bucket's 6.
            responses = await asyncio.gather(
                *(
                    client.get(
                        f"{urls[n % 2]}{CATALOGUE_PATH}/burst-{n}", headers=bearer(burst_token)
                    )
                    for n in range(24)
                )
            )
            codes = [r.status_code for r in responses]
            assert sorted(codes) == [200] * 6 + [429] * 18, codes

            # Anonymous callers: one shared bucket per client address (3/600s, stricter than
            # the class's), which X-Forwarded-For cannot change, even from 127.0.0.1.
            for address in addresses[:2]:
                async with client_from("", address) as anonymous:
                    codes = [
                        (await anonymous.get(f"{urls[n % 2]}{CATALOGUE_PATH}/anon-{n}")).status_code
                        for n in range(5)
                    ]
                    assert codes == [200] * 3 + [429] * 2, (address, codes)
            # From 127.0.0.1, which uvicorn trusts by default, a spoofed address is still
            # ignored (`python -m gateway` runs with proxy_headers off).
            async with client_from("", "127.0.0.1") as local:
                resp = await local.get(
                    f"{urls[1]}{CATALOGUE_PATH}/spoof", headers={"X-Forwarded-For": addresses[2]}
                )
                if resp.status_code == 200:  # (429: 127.0.0.1's bucket used up by a rerun)
                    seen = dict(upstream.requests[-1]["headers"])
                    assert seen["x-forwarded-for"] == "127.0.0.1"
                else:
                    assert_refused(resp, name="catalogue", quota=3, window=600)
                assert await redis.exists(f"mk:rl:catalogue:ip:{addresses[2]}") == 0
            async with client_from("", addresses[1]) as anonymous:
                resp = await anonymous.get(
                    f"{urls[0]}{CATALOGUE_PATH}/spoof", headers={"X-Forwarded-For": "127.0.0.1"}
                )
                assert_refused(resp, name="catalogue", quota=3, window=600)
        finally:
            await redis.delete(
                f"mk:rl:catalogue:sub:{subject}",
                f"mk:rl:catalogue:sub:{burst_subject}",
                *(f"mk:rl:catalogue:ip:{a}" for a in addresses),
            )
            await redis.aclose()
