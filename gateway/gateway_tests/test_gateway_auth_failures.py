"""Failed authentications are rate limited per client address (finding 7 of the security
issue: they ran before the limiter, so key look-ups and signature checks were unlimited).
Through a real gateway: five refused credentials, then 429 with ``Retry-After``; after
that the address's credentials are refused before any check, valid or not; callers
without credentials and other addresses are unaffected; the bucket is shared through
Redis by every gateway."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth import AuthSettings
from gateway.config import GatewaySettings
from gateway.devcreds import ensure_dev_credentials
from gateway.limits import LimitSettings
from gateway.main import Gateway, create_app
from servicekit.testing import running_app

from .conftest import TEST_ROUTES, Upstream, closed_url

PATH = "/api/v1/service-requests/1"
OFF = {
    f"limit_{name}": "off"
    for name in ("default", "catalogue", "open311", "notify", "admin", "anonymous")
}


def limits(**overrides: Any) -> LimitSettings:
    return LimitSettings(
        **{
            "redis_url": None,
            "rate_limits_enabled": True,
            **OFF,
            "limit_auth_failures": "5/60s",
            **overrides,
        }
    )


async def start(
    stack: AsyncExitStack, tmp: Path, limit_settings: LimitSettings
) -> tuple[Gateway, str, dict[str, str]]:
    auth_db = f"sqlite:///{tmp}/gateway.sqlite3"
    creds = await ensure_dev_credentials(tmp, AuthSettings(database_url=auth_db))
    upstream_url = await stack.enter_async_context(running_app(Upstream("citizen-services")))
    gateway = create_app(
        GatewaySettings(
            citizen_services_url=upstream_url,
            inclusion_url=closed_url(),
            notifications_url=closed_url(),
        ),
        routes=TEST_ROUTES,
        limit_settings=limit_settings,
        auth_settings=AuthSettings(
            database_url=auth_db,
            **{k.removeprefix("GATEWAY_").lower(): v for k, v in creds.env().items()},
        ),
    )
    url = await stack.enter_async_context(running_app(gateway))
    return gateway, url, creds.values


def client_from(url: str, source: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url, timeout=10, transport=httpx.AsyncHTTPTransport(local_address=source)
    )


def assert_429(r: httpx.Response) -> int:
    assert r.status_code == 429, r.text
    retry_after = r.headers["retry-after"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 60
    return int(retry_after)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[Gateway, str, dict[str, str]]]:
    async with AsyncExitStack() as stack:
        yield await start(stack, tmp_path, limits())


async def test_failures_are_limited_per_address_before_any_check(
    gateway: tuple[Gateway, str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, url, creds = gateway
    bad = {"X-API-Key": "mk_abcdefgh_" + "x" * 43}
    good = {"X-API-Key": creds["PARTNER_API_KEY"]}
    async with client_from(url) as client, client_from(url, "127.0.0.2") as other:
        assert (await client.get(PATH, headers=good)).status_code == 200
        for n in range(5):
            r = await client.get(
                PATH, headers=bad if n % 2 else {"Authorization": "Bearer not-a-token"}
            )
            assert r.status_code == 401, (n, r.text)
        spent = await client.get(PATH, headers=bad)
        assert_429(spent)
        assert spent.headers["content-type"] == "application/problem+json"
        assert spent.headers["ratelimit-policy"] == '"auth-failures";q=5;w=60'

        checks = 0
        authenticate = app.authenticator.authenticate

        async def counting(*args: Any, **kwargs: Any) -> Any:
            nonlocal checks
            checks += 1
            return await authenticate(*args, **kwargs)

        monkeypatch.setattr(app.authenticator, "authenticate", counting)
        # Blocked: even a valid key is not looked at; an Open311 api_key neither.
        assert_429(await client.get(PATH, headers=good))
        open311 = await client.get(
            "/open311/v2/services.json", params={"api_key": creds["OPEN311_API_KEY"]}
        )
        assert_429(open311)
        assert open311.json()[0]["code"] == 429  # Open311's own error shape
        assert checks == 0
        # Without credentials nothing is checked, so nothing is refused.
        assert (await client.get(PATH)).status_code == 200
        # Another address has its own bucket.
        assert (await other.get(PATH, headers=bad)).status_code == 401
        assert (await other.get(PATH, headers=good)).status_code == 200


async def test_open311_api_key_failures_count_too(
    gateway: tuple[Gateway, str, dict[str, str]],
) -> None:
    _, url, _ = gateway
    async with client_from(url, "127.0.0.3") as client:
        for _ in range(5):
            r = await client.get("/open311/v2/services.xml", params={"api_key": "mk_nope"})
            assert r.status_code == 403, r.text  # the spec's answer to a bad api_key
        form = await client.post("/open311/v2/requests.json", data={"api_key": "mk_nope"})
        assert_429(form)


async def test_off_when_rate_limits_are_off(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        _, url, _ = await start(stack, tmp_path, limits(rate_limits_enabled=False))
        async with client_from(url, "127.0.0.4") as client:
            for _ in range(8):
                r = await client.get(PATH, headers={"Authorization": "Bearer nope"})
                assert r.status_code == 401


@pytest.mark.redis
async def test_gateways_share_the_failure_bucket_through_redis(
    tmp_path: Path, redis_url: str
) -> None:
    # A policy name per run would be nicer; a fresh address keeps runs apart instead.
    source = f"127.0.{uuid.uuid4().int % 200 + 20}.{uuid.uuid4().int % 200 + 20}"
    async with AsyncExitStack() as stack:
        _, first, _ = await start(stack, tmp_path / "a", limits(redis_url=redis_url))
        _, second, _ = await start(stack, tmp_path / "b", limits(redis_url=redis_url))
        async with client_from(first, source) as a, client_from(second, source) as b:
            for n in range(5):
                r = await (a if n % 2 else b).get(PATH, headers={"X-API-Key": "mk_nope"})
                assert r.status_code == 401, (n, r.text)
            assert_429(await a.get(PATH, headers={"X-API-Key": "mk_nope"}))
            assert_429(await b.get(PATH, headers={"X-API-Key": "mk_nope"}))
