"""Fixtures for the gateway: small upstream ASGI apps and gateways in front of them, all on
real ports (uvicorn) in the test's event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth import AuthSettings
from gateway.auth.testing import answer_lifespan
from gateway.config import GatewaySettings
from gateway.limits import LimitSettings
from gateway.main import create_app
from gateway.routes import ROUTES
from servicekit.testing import free_port, running_app

MB = 1024 * 1024
BIG = random.Random(20261126).randbytes(20 * MB)
BIG_SHA256 = hashlib.sha256(BIG).hexdigest()


class Upstream:
    """A stand-in for one service: echoes what it received as JSON, plus a few special paths
    (``.../status/<code>``, ``.../big``, ``.../stream``, ``.../hop``) and ``/health/ready``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ready_status = 200
        self.requests: list[dict[str, Any]] = []
        self.release = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        sha256, size, chunks = await hash_body(receive)
        path: str = scope["path"]
        seen = {
            "upstream": self.name,
            "method": scope["method"],
            "path": path,
            "raw_path": scope["raw_path"].decode("latin-1"),
            "query_string": scope["query_string"].decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "client": scope["client"][0],
            "body_sha256": sha256,
            "body_size": size,
            "body_chunks": chunks,
        }
        self.requests.append(seen)
        if path == "/health/ready":
            ok = self.ready_status == 200
            await respond(
                send,
                self.ready_status,
                {
                    "status": "ok" if ok else "unavailable",
                    "checks": {"database": "ok" if ok else "unavailable"},
                },
            )
        elif "/status/" in path:
            code = int(path.rsplit("/", 1)[1])
            await respond(
                send,
                code,
                {"code": code, "from": self.name},
                content_type=b"application/problem+json" if code >= 400 else None,
                extra=[(b"location", b"/api/v1/services/abc")] if code == 201 else [],
            )
        elif path.endswith("/big"):
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")],
                }
            )
            for start in range(0, len(BIG), MB):
                await send(
                    {
                        "type": "http.response.body",
                        "body": BIG[start : start + MB],
                        "more_body": True,
                    }
                )
            await send({"type": "http.response.body", "body": b""})
        elif path.endswith("/stream"):
            # The second part is only sent once the client has seen the first: a gateway that
            # buffered the response would deadlock here until the time-out.
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
            try:
                await asyncio.wait_for(self.release.wait(), timeout=5)
                tail = b"second\n"
            except TimeoutError:
                tail = b"buffered!\n"
            await send({"type": "http.response.body", "body": tail, "more_body": True})
            await send({"type": "http.response.body", "body": b"third\n"})
        elif path.endswith("/hop"):
            await respond(
                send,
                200,
                {"ok": True},
                extra=[
                    (b"connection", b"x-upstream-hop"),
                    (b"x-upstream-hop", b"secret"),
                    (b"keep-alive", b"timeout=5"),
                    (b"x-end-to-end", b"kept"),
                ],
            )
        else:
            await respond(send, 200, seen)


async def hash_body(receive: Any) -> tuple[str, int, int]:
    """Read a request body as it arrives, keeping none of it: its SHA-256 (hex), its size,
    and how many non-empty pieces it came in."""
    digest, size, chunks = hashlib.sha256(), 0, 0
    while True:
        message = await receive()
        body = message.get("body", b"")
        digest.update(body)
        size += len(body)
        chunks += bool(body)
        if not message.get("more_body", False):
            return digest.hexdigest(), size, chunks


async def respond(
    send: Any,
    status: int,
    payload: dict[str, Any],
    *,
    content_type: bytes | None = None,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type or b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


GatewayFactory = Callable[..., Any]


@pytest.fixture(scope="module")
async def upstreams() -> AsyncIterator[dict[str, tuple[Upstream, str]]]:
    """citizen-services and notifications up (shared by a module's tests); inclusion down."""
    async with AsyncExitStack() as stack:
        out: dict[str, tuple[Upstream, str]] = {}
        for name in ("citizen-services", "notifications"):
            app = Upstream(name)
            out[name] = (app, await stack.enter_async_context(running_app(app)))
        yield out


@pytest.fixture(autouse=True)
def _fresh_upstreams(request: pytest.FixtureRequest) -> None:
    if "upstreams" in request.fixturenames:
        for app, _ in request.getfixturevalue("upstreams").values():
            app.requests.clear()
            app.release = asyncio.Event()
            app.ready_status = 200


#: The real routing table, with room for the 50 MB streaming tests.
TEST_ROUTES = tuple(dataclasses.replace(r, max_body_bytes=64 * 1024 * 1024) for r in ROUTES)


def gateway_kwargs(tmp: Path) -> dict[str, Any]:
    """A gateway with its own API-key database and generous limits, for tests."""
    return {
        "routes": TEST_ROUTES,
        "auth_settings": AuthSettings(database_url=f"sqlite:///{tmp}/gateway.sqlite3"),
        "limit_settings": LimitSettings(rate_limits_enabled=False),
    }


@pytest.fixture(scope="module")
async def client(
    upstreams: dict[str, tuple[Upstream, str]], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a gateway in front of ``upstreams`` (inclusion not running)."""
    settings = GatewaySettings(
        citizen_services_url=upstreams["citizen-services"][1],
        notifications_url=upstreams["notifications"][1],
        inclusion_url=closed_url(),
    )
    app = create_app(settings, **gateway_kwargs(tmp_path_factory.mktemp("gw")))
    async with running_app(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as c:
        yield c


@pytest.fixture
async def start_gateway(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """``await start_gateway(citizen_services_url=..., ...)`` -> an httpx client of a new
    gateway (any other ``GatewaySettings`` may be given too); upstreams not named point at
    closed ports."""
    async with AsyncExitStack() as stack:

        async def start(**settings_values: Any) -> httpx.AsyncClient:
            settings = GatewaySettings(
                **{
                    "citizen_services_url": closed_url(),
                    "inclusion_url": closed_url(),
                    "notifications_url": closed_url(),
                    **settings_values,
                }
            )
            app = create_app(settings, **gateway_kwargs(tmp_path))
            url = await stack.enter_async_context(running_app(app))
            return await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))

        yield start
