"""The gateway: one entry point at http://127.0.0.1:8000.

A raw ASGI app (no framework on the hot path): ``/health`` aggregates each service's
readiness; every other path is matched against the routing table and streamed upstream.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
from opentelemetry import trace
from starlette.types import Receive, Scope, Send

from gateway.config import GatewaySettings
from gateway.problems import send_problem
from gateway.proxy import Proxy, request_id_of
from gateway.routes import ROUTES, Upstream, match, upstreams
from servicekit.telemetry import configure_logging, make_tracer_provider

log = logging.getLogger(__name__)


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.upstreams: dict[str, Upstream] = upstreams(settings)
        self.routes = ROUTES
        self.tracer_provider = make_tracer_provider(settings.service_name,
                                                    settings.otel_exporter_otlp_endpoint)
        self.tracer = trace.get_tracer("gateway", tracer_provider=self.tracer_provider)
        self.session: aiohttp.ClientSession | None = None
        self.proxy: Proxy | None = None

    async def startup(self) -> None:
        connector = aiohttp.TCPConnector(limit=0,
                                         limit_per_host=self.settings.pool_size_per_upstream,
                                         keepalive_timeout=30, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                             cookie_jar=aiohttp.DummyCookieJar())
        self.proxy = Proxy(self.session, self.tracer)

    async def shutdown(self) -> None:
        if self.session:
            await self.session.close()
        self.tracer_provider.force_flush(timeout_millis=2000)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/health":
            await self._health(send)
            return
        if any(segment in (".", "..") for segment in path.split("/")):
            # "/api/v1/services/../../metrics" must not reach paths outside the route table.
            await send_problem(send, 400, "Bad request", "Dot segments are not allowed in paths.",
                               request_id=request_id_of(scope))
            return
        route = match(path, self.routes)
        if route is None or self.proxy is None:
            await send_problem(send, 404, "Not found", f"No route for {path}.",
                               request_id=request_id_of(scope))
            return
        await self.proxy.forward(scope, receive, send, route, self.upstreams[route.upstream])

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _health(self, send: Send) -> None:
        async def probe(upstream: Upstream) -> tuple[str, dict[str, Any]]:
            assert self.session is not None
            try:
                async with self.session.get(upstream.base_url + "/health/ready",
                                            timeout=aiohttp.ClientTimeout(total=3)) as resp:
                    body = await resp.json(content_type=None)
                    return upstream.name, {"status": "ok" if resp.status == 200 else "unavailable",
                                           "checks": body.get("checks", {})}
            except Exception as exc:
                return upstream.name, {"status": "unavailable", "error": type(exc).__name__}

        results = dict(await asyncio.gather(*(probe(u) for u in self.upstreams.values())))
        ok = all(r["status"] == "ok" for r in results.values())
        payload = json.dumps({"status": "ok" if ok else "degraded", "services": results}).encode()
        await send({"type": "http.response.start", "status": 200 if ok else 503,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode()),
                                (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": payload})


def create_app(settings: GatewaySettings | None = None) -> Gateway:
    settings = settings or GatewaySettings()
    configure_logging(settings.service_name, settings.log_level)
    return Gateway(settings)
