"""The circuit breaker against a real upstream *process*: SIGKILL it and the gateway fails
fast without touching its port; restart it on the same port and traffic recovers through
the half-open probe."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.auth import AuthSettings
from gateway.auth.testing import auth_settings
from gateway.breaker import BreakerState
from gateway.config import GatewaySettings
from gateway.devcreds import ensure_dev_credentials
from gateway.main import Gateway, create_app
from mkinfra._proc import kill_group, tail, terminate_group
from servicekit.testing import free_port, running_app

from .conftest import closed_url, gateway_kwargs

pytestmark = pytest.mark.slow

PROBLEM_JSON = "application/problem+json"
PATH = "/api/v1/services/resilience"
FAST = 0.050  # seconds: an open breaker answers without a network round trip upstream

#: A stand-in citizen-services as its own process: ``/health/ready`` and, anywhere else,
#: JSON naming the process that answered. Self-contained on purpose: importing
#: ``gateway.auth.testing.answer_lifespan`` instead of its lifespan loop would load the
#: gateway's auth stack and add seconds to every (re)start of the upstream.
UPSTREAM_SCRIPT = r"""
import json, os, sys
import uvicorn

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    while (await receive()).get("more_body"):
        pass
    if scope["path"] == "/health/ready":
        payload = {"status": "ok", "checks": {"process": "ok"}}
    else:
        payload = {"pid": os.getpid(), "path": scope["path"]}
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            lifespan="on", access_log=False)
"""


class UpstreamProcess:
    """The script above on a fixed port, startable again after a kill."""

    def __init__(self, port: int, log_dir: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def spawn(self) -> None:
        self.starts += 1
        log_path = self.log_dir / f"upstream-{self.starts}.log"
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", UPSTREAM_SCRIPT, str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def start(self, timeout: float = 20.0) -> int:
        """Start and wait until it answers; its pid."""
        self.spawn()
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"upstream exited with {self.proc.returncode}:\n"
                        f"{tail(self.log_dir / f'upstream-{self.starts}.log')}"
                    )
                try:
                    if (await client.get(self.url + "/health/ready")).status_code == 200:
                        return self.proc.pid
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"upstream on {self.port} did not start in {timeout} s")

    def kill(self) -> None:
        if self.proc is not None:
            kill_group(self.proc)  # SIGKILL: no goodbye, no graceful close

    def stop(self) -> None:
        if self.proc is not None:
            terminate_group(self.proc, 5)


@pytest.fixture
async def upstream_process(tmp_path: Path) -> AsyncIterator[UpstreamProcess]:
    upstream = UpstreamProcess(free_port(), tmp_path)
    try:
        yield upstream
    finally:
        await asyncio.to_thread(upstream.stop)


class PortWatch:
    """Listens on a port and counts the connections made to it (dropping each at once)."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    async def listen(self, port: int) -> None:
        self.server = await asyncio.start_server(
            self._accepted, "127.0.0.1", port, reuse_address=True
        )

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


async def timed_get(client: httpx.AsyncClient, path: str = PATH) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    resp = await client.get(path)
    return resp, time.perf_counter() - started


def assert_upstream_unavailable(resp: httpx.Response) -> None:
    """503 problem naming the upstream, from the proxy: it tried and could not connect."""
    assert resp.status_code == 503, resp.text
    assert resp.headers["content-type"] == PROBLEM_JSON
    body = resp.json()
    assert body["upstream"] == "citizen-services"
    assert body["detail"] == "The citizen-services service did not answer."
    assert "retry-after" not in resp.headers


def assert_breaker_open(resp: httpx.Response, *, retry_after: int = 1) -> None:
    """503 problem naming the upstream, from the breaker, with Retry-After."""
    assert resp.status_code == 503, resp.text
    assert resp.headers["content-type"] == PROBLEM_JSON
    body = resp.json()
    assert body["status"] == 503 and body["title"] == "Upstream unavailable"
    assert body["upstream"] == "citizen-services"
    assert "is failing" in body["detail"]
    assert resp.headers["retry-after"] == str(retry_after)


async def test_breaker_opens_on_a_killed_upstream_and_closes_when_it_returns(
    upstream_process: UpstreamProcess, tmp_path: Path
) -> None:
    test_started = time.monotonic()
    first_pid = await upstream_process.start()
    settings = GatewaySettings(
        citizen_services_url=upstream_process.url,
        inclusion_url=closed_url(),
        notifications_url=closed_url(),
        breaker_failure_threshold=3,
        breaker_reset_seconds=1,
    )
    app: Gateway = create_app(settings, **gateway_kwargs(tmp_path))
    breaker = app.pools["citizen-services"].replicas[0].breaker
    watch = PortWatch()
    async with running_app(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        # Healthy: answered by the upstream process (and a pooled connection to it is open).
        resp = await client.get(PATH)
        assert resp.status_code == 200 and resp.json()["pid"] == first_pid
        assert breaker.state is BreakerState.CLOSED

        await asyncio.to_thread(upstream_process.kill)

        # The first requests find nobody there: 503 from the proxy, each counting.
        for n in range(3):
            resp, _ = await timed_get(client)
            assert_upstream_unavailable(resp)
            expected = BreakerState.CLOSED if n < 2 else BreakerState.OPEN
            assert breaker.state is expected, (n, breaker.state)
        opened = time.monotonic()

        # Open: something listens on the upstream's port again, yet the gateway answers
        # at once and never connects to it.
        await watch.listen(upstream_process.port)
        try:
            latencies = []
            for _ in range(5):
                resp, elapsed = await timed_get(client)
                assert_breaker_open(resp)
                latencies.append(elapsed)
            assert time.monotonic() - opened < 1.0, "the open period ended before the checks"
            assert max(latencies) < FAST, latencies
            assert breaker.state is BreakerState.OPEN
            assert watch.connections == 0
        finally:
            await watch.close()

        # Half-open with the upstream still away: one probe goes (and fails), the breaker
        # opens again for a full period, and the requests behind the probe fail fast.
        await asyncio.sleep(max(0.0, opened + 1.05 - time.monotonic()))
        assert breaker.state is BreakerState.HALF_OPEN
        probe, _ = await timed_get(client)
        assert_upstream_unavailable(probe)
        assert breaker.state is BreakerState.OPEN
        resp, elapsed = await timed_get(client)
        assert_breaker_open(resp)
        assert elapsed < FAST, elapsed

        # The upstream returns on the same port: within a reset period or so the probe
        # succeeds and traffic flows again.
        second_pid = await upstream_process.start()
        back = time.monotonic()
        statuses = []
        while True:
            resp = await client.get(PATH)
            statuses.append(resp.status_code)
            if resp.status_code == 200:
                break
            assert_breaker_open(resp)
            assert time.monotonic() - back < 5, statuses
            await asyncio.sleep(0.05)
        recovered = time.monotonic() - back
        assert resp.json()["pid"] == second_pid != first_pid
        assert recovered < 1.5, (recovered, statuses)
        assert breaker.state is BreakerState.CLOSED
        for _ in range(5):
            assert (await client.get(PATH)).status_code == 200

        health = (await client.get("/health")).json()["services"]["citizen-services"]
        assert health == {"status": "ok"}
    assert time.monotonic() - test_started < 30


async def test_health_shows_an_open_circuit(
    upstream_process: UpstreamProcess, tmp_path: Path
) -> None:
    """The public /health says the service is unavailable; the admins' health shows why and
    that its circuit is open."""
    await upstream_process.start()
    auth_db = f"sqlite:///{tmp_path}/gateway.sqlite3"
    creds = await ensure_dev_credentials(tmp_path, AuthSettings(database_url=auth_db))
    settings = GatewaySettings(
        citizen_services_url=upstream_process.url,
        inclusion_url=closed_url(),
        notifications_url=closed_url(),
        breaker_failure_threshold=3,
        breaker_reset_seconds=30,
    )
    app = create_app(
        settings,
        **{
            **gateway_kwargs(tmp_path),
            "auth_settings": auth_settings(auth_db, jwks_file=creds.issuer.jwks_path),
        },
    )
    admin = {"Authorization": f"Bearer {creds.values['ADMIN_TOKEN']}"}
    async with running_app(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        assert (await client.get(PATH)).status_code == 200
        await asyncio.to_thread(upstream_process.kill)
        for _ in range(3):
            assert_upstream_unavailable(await client.get(PATH))
        resp, elapsed = await timed_get(client)
        assert_breaker_open(resp, retry_after=30)
        assert elapsed < FAST
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["services"]["citizen-services"] == {"status": "unavailable"}
        detail = await client.get("/api/v1/admin/health", headers=admin)
        assert detail.status_code == 503
        service = detail.json()["services"]["citizen-services"]
        assert service["circuit"] == "open"
        assert service["status"] == "unavailable"
        assert service["error"] == "ClientConnectorError"
