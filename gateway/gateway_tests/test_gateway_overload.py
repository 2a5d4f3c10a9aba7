"""The gateway under load and against slow clients, with real processes and sockets: a
burst of 200 concurrent requests to one service answers without a 5xx; a service that is
truly overloaded is answered 503 with ``Retry-After`` from the gateway's bounded queue; and
uploads that are started and never finished are answered 408 without counting against the
service. In each case the service's circuit breaker stays closed."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from gateway.breaker import BreakerState
from gateway.config import GatewaySettings
from gateway.main import Gateway, create_app
from mkinfra._proc import tail, terminate_group
from servicekit.testing import free_port, running_app

from .conftest import TEST_ROUTES, closed_url, gateway_kwargs

pytestmark = pytest.mark.slow

PATH = "/api/v1/services/burst"

#: A stand-in citizen-services as its own process (uvicorn, as the services are run):
#: reads the body, then answers JSON after ``?delay=<seconds>`` (default 0) plus ``?cpu=<ms>``
#: of work on its loop (a real service's per-request cost); ``/health/ready``;
#: ``/connections``: how many different connections (client ports) requests came on;
#: ``?mib=<n>``: answers n MiB instead of JSON.
UPSTREAM_SCRIPT = r"""
import asyncio, json, os, sys, time
from gateway.auth.testing import answer_lifespan
from urllib.parse import parse_qs
import uvicorn

PORTS = set()

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    query = parse_qs(scope["query_string"].decode())
    busy_until = time.perf_counter() + float(query.get("cpu", ["0"])[0]) / 1000
    while time.perf_counter() < busy_until:
        pass
    delay = float(query.get("delay", ["0"])[0])
    if delay:
        await asyncio.sleep(delay)
    if "mib" in query:
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/octet-stream")]})
        for _ in range(int(query["mib"][0])):
            await send({"type": "http.response.body", "body": b"x" * 1048576,
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["path"] == "/health/ready":
        payload = {"status": "ok", "checks": {"process": "ok"}}
    elif scope["path"] == "/connections":
        payload = {"connections": len(PORTS)}
    else:
        PORTS.add(scope["client"][1])
        payload = {"pid": os.getpid(), "path": scope["path"], "size": size}
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            lifespan="on", access_log=False, timeout_keep_alive=75, proxy_headers=False)
"""


def _spawn(
    args: list[str], log_path: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            args,
            env=None if env is None else dict(env),
            cwd=log_path.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def _wait_until_answering(
    url: str, proc: subprocess.Popen[bytes], log_path: Path, path: str, timeout: float = 25
) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"exited with {proc.returncode}:\n{tail(log_path)}")
            try:
                await client.get(url + path)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"not answering:\n{tail(log_path)}") from None
                await asyncio.sleep(0.05)


@asynccontextmanager
async def upstream_process(tmp: Path) -> AsyncIterator[str]:
    port = free_port()
    log_path = tmp / "upstream.log"
    proc = _spawn([sys.executable, "-c", UPSTREAM_SCRIPT, str(port)], log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_until_answering(url, proc, log_path, "/health/ready")
        yield url
    finally:
        await asyncio.to_thread(terminate_group, proc, 10)


@asynccontextmanager
async def gateway_process(
    tmp: Path, upstream_url: str, env: Mapping[str, str] | None = None
) -> AsyncIterator[str]:
    """``python -m gateway`` (uvloop, httptools, as deployed) in front of ``upstream_url``
    as citizen-services; rate limits off."""
    port = free_port()
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_", "OTEL_")) and k != "REDIS_URL"
    }
    full_env.update(
        {
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(port),
            "GATEWAY_CITIZEN_SERVICES_URL": upstream_url,
            "GATEWAY_INCLUSION_URL": closed_url(),
            "GATEWAY_NOTIFICATIONS_URL": closed_url(),
            "GATEWAY_DATABASE_URL": f"sqlite:///{tmp}/gateway.sqlite3",
            "GATEWAY_RATE_LIMITS_ENABLED": "false",
            "GATEWAY_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
    )
    log_path = tmp / "gateway.log"
    proc = _spawn([sys.executable, "-m", "gateway"], log_path, env=full_env)
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_until_answering(url, proc, log_path, "/health")
        yield url
    finally:
        await asyncio.to_thread(terminate_group, proc, 10)


async def burst(client: httpx.AsyncClient, n: int, path: str) -> list[httpx.Response]:
    return list(await asyncio.gather(*(client.get(path) for _ in range(n))))


def summary(responses: list[httpx.Response]) -> str:
    counts = Counter(r.status_code for r in responses)
    bad = [r.text for r in responses if r.status_code >= 500][:3]
    return f"{dict(counts)} {bad}"


async def test_a_burst_of_200_concurrent_requests_gets_no_5xx(tmp_path: Path) -> None:
    started = time.monotonic()
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
    async with (
        upstream_process(tmp_path) as upstream_url,
        gateway_process(tmp_path, upstream_url) as url,
    ):
        # A cold pool upstream, then a warm one; each request costs the service 2 ms of
        # CPU and 200 ms of waiting, so the burst is truly concurrent. A new client each
        # time: 200 new connections to the gateway at once, and no race with the gateway
        # closing an idle keep-alive connection of the client's.
        for _ in range(3):
            async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
                responses = await burst(client, 200, PATH + "?cpu=2&delay=0.2")
            assert all(r.status_code == 200 for r in responses), summary(responses)
        # The breaker saw no failure: the next request is served, not refused.
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            assert (await client.get(PATH)).status_code == 200
            # 601 requests on at most the pool's 64 connections, kept alive and reused
            seen = (await client.get(upstream_url + "/connections")).json()["connections"]
        assert 1 <= seen <= 64, seen
    assert time.monotonic() - started < 60


@asynccontextmanager
async def gateway_in_process(
    tmp: Path, upstream_url: str, **settings: object
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    """The gateway on a real socket in this process (so its breaker can be inspected)."""
    gateway = create_app(
        GatewaySettings(
            citizen_services_url=upstream_url,
            inclusion_url=closed_url(),
            notifications_url=closed_url(),
            **settings,
        ),
        **gateway_kwargs(tmp),
    )
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with (
        running_app(gateway) as url,
        httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client,
    ):
        yield gateway, client


def assert_busy(resp: httpx.Response) -> None:
    assert resp.status_code == 503, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.headers["retry-after"] == "1"
    body = resp.json()
    assert body["title"] == "Upstream busy" and body["upstream"] == "citizen-services"


async def test_an_overloaded_service_gets_503_retry_after_from_a_bounded_queue(
    tmp_path: Path,
) -> None:
    """4 requests in flight, 4 more waiting: of 30 at once to a service that takes 1 s
    each, 8 are served and 22 refused at once with Retry-After; the breaker stays closed."""
    async with (
        upstream_process(tmp_path) as upstream_url,
        gateway_in_process(
            tmp_path,
            upstream_url,
            pool_size_per_upstream=4,
            upstream_queue_limit=8,
            breaker_failure_threshold=3,
        ) as (gateway, client),
    ):
        breaker = gateway.pools["citizen-services"].replicas[0].breaker

        finished = 0

        async def ordered(path: str) -> tuple[httpx.Response, int]:
            nonlocal finished
            resp = await client.get(path)
            finished += 1
            return resp, finished

        results = await asyncio.gather(*(ordered(PATH + "?delay=1") for _ in range(30)))
        served = [order for r, order in results if r.status_code == 200]
        refused = [(r, order) for r, order in results if r.status_code != 200]
        assert len(served) == 8, summary([r for r, _ in results])
        assert len(refused) == 22
        for resp, order in refused:
            assert_busy(resp)
            # refused at once, not after a timer: before any request the upstream took
            # a second to serve (an order, not a time: a busy machine slows both alike)
            assert order < min(served), (order, sorted(served))
        assert breaker.state is BreakerState.CLOSED
        assert breaker.consecutive_failures == 0
        queue = gateway.queues["citizen-services"]
        assert (queue.in_flight, queue.waiting) == (0, 0)
        assert (await client.get(PATH)).status_code == 200


async def test_the_wait_for_a_connection_is_bounded(tmp_path: Path) -> None:
    """With every connection busy for 3 s, a request waits at most
    ``upstream_queue_wait_seconds`` and gets 503 + Retry-After, not an endless wait."""
    async with (
        upstream_process(tmp_path) as upstream_url,
        gateway_in_process(
            tmp_path,
            upstream_url,
            pool_size_per_upstream=2,
            upstream_queue_wait_seconds=0.5,
            breaker_failure_threshold=1,
        ) as (gateway, client),
    ):
        slow = [asyncio.create_task(client.get(PATH + "?delay=3")) for _ in range(2)]
        await asyncio.sleep(0.3)
        started = time.monotonic()
        resp = await client.get(PATH)
        waited = time.monotonic() - started
        assert_busy(resp)
        assert 0.4 < waited < 2.0, waited
        assert [r.status_code for r in await asyncio.gather(*slow)] == [200, 200]
        assert gateway.pools["citizen-services"].replicas[0].breaker.state is BreakerState.CLOSED
        assert (await client.get(PATH)).status_code == 200


# --------------------------------------------------------------------------- slow uploads

UPLOAD = "/api/v1/service-requests"
OPEN311_UPLOAD = "/open311/v2/requests.json"


class StalledUpload:
    """A raw connection that sends a POST's headers, promises ``length`` bytes, sends
    ``sent`` of them and then nothing more."""

    def __init__(
        self, port: int, path: str, length: int, sent: int, content_type: str = "application/json"
    ) -> None:
        self.port, self.path, self.length, self.sent = port, path, length, sent
        self.content_type = content_type
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(
            f"POST {self.path} HTTP/1.1\r\nHost: gateway\r\n"
            f"Content-Type: {self.content_type}\r\n"
            f"Content-Length: {self.length}\r\n\r\n".encode()
            + b"x" * self.sent
        )
        await self.writer.drain()

    async def answer(self, timeout: float) -> bytes:
        """Whatever the gateway answered (until it closed the connection)."""
        assert self.reader is not None
        try:
            return await asyncio.wait_for(self.reader.read(65536), timeout)
        except TimeoutError:
            return b""

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()


async def test_uploads_never_finished_do_not_take_the_service_down(tmp_path: Path) -> None:
    """Ten uploads started and never finished by one anonymous client: during them and
    after (the client gives up and drops its connections), reads through the gateway
    answer 200 within 2 s and the breaker stays closed. Each stalled upload is answered
    408 once it has sent nothing for ``body_idle_timeout_seconds``; none counts against
    the service. Time-outs are shortened (route 2 s, body idle 1 s); the shape is the
    production one (30 s, 10 s)."""
    routes = tuple(dataclasses.replace(r, timeout_seconds=2.0) for r in TEST_ROUTES)
    kwargs = {**gateway_kwargs(tmp_path), "routes": routes}
    async with upstream_process(tmp_path) as upstream_url:
        gateway = create_app(
            GatewaySettings(
                citizen_services_url=upstream_url,
                inclusion_url=closed_url(),
                notifications_url=closed_url(),
                body_idle_timeout_seconds=1.0,
                body_total_timeout_seconds=30.0,
                breaker_failure_threshold=5,
            ),
            **kwargs,
        )
        breaker = gateway.pools["citizen-services"].replicas[0].breaker
        async with (
            running_app(gateway) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as client,
        ):
            port = int(url.rsplit(":", 1)[1])
            assert (await client.get(PATH)).status_code == 200
            uploads = (
                # small bodies of known length (read whole before a connection is taken)
                [StalledUpload(port, UPLOAD, 1000, 100) for _ in range(4)]
                # large ones (streamed upstream as they come)
                + [StalledUpload(port, UPLOAD, 1024 * 1024, 128 * 1024) for _ in range(4)]
                # Open311: JSON, and a form whose api_key the gateway must read first
                + [
                    StalledUpload(port, OPEN311_UPLOAD, 1000, 100),
                    StalledUpload(
                        port, OPEN311_UPLOAD, 1000, 20, "application/x-www-form-urlencoded"
                    ),
                ]
            )
            try:
                await asyncio.gather(*(u.start() for u in uploads))
                answers = [asyncio.create_task(u.answer(timeout=8)) for u in uploads]

                async def reads_stay_fast(seconds: float) -> int:
                    count = 0
                    until = time.monotonic() + seconds
                    while time.monotonic() < until:
                        started = time.monotonic()
                        resp = await client.get(PATH)
                        elapsed = time.monotonic() - started
                        assert resp.status_code == 200, resp.text
                        assert elapsed < 2.0, elapsed
                        assert breaker.state is BreakerState.CLOSED
                        assert breaker.consecutive_failures == 0
                        count += 1
                        await asyncio.sleep(0.1)
                    return count

                # during: the uploads stall (and are timed out by the gateway)
                assert await reads_stay_fast(3.0) > 5
                replies = await asyncio.gather(*answers)
                for upload, reply in zip(uploads, replies, strict=True):
                    assert reply.startswith(b"HTTP/1.1 408"), (upload.path, upload.length, reply)
                    if upload.path == OPEN311_UPLOAD:  # Open311's error shape, not a problem
                        assert b'[{"code": 408' in reply, reply
                    else:
                        assert b"application/problem+json" in reply, reply
                # after: the client drops its connections; well past the route's time-out
                for upload in uploads:
                    upload.abort()
                assert await reads_stay_fast(6.0) > 10
            finally:
                for upload in uploads:
                    upload.abort()
            queue = gateway.queues["citizen-services"]
            assert (queue.in_flight, queue.waiting) == (0, 0)


async def test_a_client_that_stops_reading_a_download_is_not_the_services_failure(
    tmp_path: Path,
) -> None:
    """A client that takes the status line of a 64 MiB download and then reads nothing, for
    three times the route's time-out: the gateway stops reading from the service (flow
    control), and the service's read time-out is paused meanwhile (aiohttp stops
    ``sock_read`` while reading is paused), so the stall is not counted against the
    service: the breaker (threshold 1) stays closed. A guard: this already held before."""
    routes = tuple(dataclasses.replace(r, timeout_seconds=1.0) for r in TEST_ROUTES)
    kwargs = {**gateway_kwargs(tmp_path), "routes": routes}
    async with upstream_process(tmp_path) as upstream_url:
        gateway = create_app(
            GatewaySettings(
                citizen_services_url=upstream_url,
                inclusion_url=closed_url(),
                notifications_url=closed_url(),
                breaker_failure_threshold=1,
            ),
            **kwargs,
        )
        breaker = gateway.pools["citizen-services"].replicas[0].breaker
        async with (
            running_app(gateway) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as client,
        ):
            port = int(url.rsplit(":", 1)[1])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(f"GET {PATH}?mib=64 HTTP/1.1\r\nHost: gateway\r\n\r\n".encode())
                await writer.drain()
                assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200")
                await asyncio.sleep(3.0)  # reads nothing, well past the 1 s time-out
                assert breaker.consecutive_failures == 0
                assert breaker.state is BreakerState.CLOSED
                assert (await client.get(PATH)).status_code == 200
            finally:
                writer.transport.abort()
            await asyncio.sleep(0.5)
            assert breaker.state is BreakerState.CLOSED
            assert (await client.get(PATH)).status_code == 200
