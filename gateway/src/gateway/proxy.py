"""The streaming reverse proxy (aiohttp client: measured ~10x httpx's throughput here).

Bodies are streamed both ways in chunks (never buffered whole); hop-by-hop headers are
dropped; ``X-Forwarded-*`` and ``X-Request-ID`` are added; the W3C ``traceparent`` of the
gateway's span is sent upstream so one trace runs from the gateway to the consumers.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import aiohttp
from multidict import CIMultiDictProxy
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from starlette.types import Receive, Scope, Send
from yarl import URL

from gateway.problems import send_problem
from gateway.routes import Route, Upstream

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "proxy-connection",
})
#: Identity headers only the gateway may set; a client's copies are dropped.
IDENTITY_HEADERS = frozenset({"x-mk-identity", "x-mk-principal", "x-user-id", "x-roles"})
CHUNK = 64 * 1024


def request_id_of(scope: Scope) -> str:
    """The client's X-Request-ID if usable, else a new one."""
    request_id = next((v.decode("latin-1") for k, v in scope["headers"]
                       if k.lower() == b"x-request-id"), "")
    if not request_id or len(request_id) > 200 or not request_id.isprintable():
        request_id = str(uuid.uuid4())
    return request_id


def _request_headers(scope: Scope) -> tuple[list[tuple[str, str]], str, str]:
    raw = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
    connection_tokens = {t.strip().lower() for k, v in raw if k == "connection"
                         for t in v.split(",")}
    drop = HOP_BY_HOP | connection_tokens | IDENTITY_HEADERS | {"host", "forwarded"}
    headers = [(k, v) for k, v in raw if k not in drop and not k.startswith("x-forwarded-")]
    host = next((v for k, v in raw if k == "host"), "")
    request_id = request_id_of(scope)
    headers = [(k, v) for k, v in headers if k != "x-request-id"]
    client = scope.get("client")
    # A client's own X-Forwarded-* headers are not trusted; only the socket peer is recorded.
    headers += [
        ("x-forwarded-for", client[0] if client else ""),
        ("x-forwarded-proto", scope.get("scheme", "http")),
        ("x-forwarded-host", host),
        ("x-request-id", request_id),
    ]
    return headers, request_id, host


def _connection_tokens(headers: CIMultiDictProxy[str]) -> frozenset[str]:
    """Header names an upstream listed in ``Connection``: hop-by-hop too (RFC 9110 7.6.1)."""
    return frozenset(t.strip().lower() for v in headers.getall("connection", ())
                     for t in v.split(","))


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


class Proxy:
    def __init__(self, session: aiohttp.ClientSession, tracer: trace.Tracer) -> None:
        self.session = session
        self.tracer = tracer

    async def forward(self, scope: Scope, receive: Receive, send: Send, route: Route,
                      upstream: Upstream) -> None:
        method = scope["method"]
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        # encoded=True: the client's path and query go upstream byte for byte (yarl would
        # otherwise re-quote them and resolve dot segments).
        url = URL(upstream.base_url + path + (f"?{query}" if query else ""), encoded=True)
        headers, request_id, _ = _request_headers(scope)
        parent = propagate.extract(dict(headers))
        with self.tracer.start_as_current_span(
            f"{method} {route.prefix}", context=parent, kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"],
                        "gateway.upstream": upstream.name, "http.request_id": request_id},
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            out_headers = [(k, v) for k, v in headers if k not in ("traceparent", "tracestate")]
            out_headers += list(carrier.items())
            has_body = any(k in ("content-length", "transfer-encoding")
                           for k, _ in ((k.decode().lower(), v) for k, v in scope["headers"]))
            data = _body(receive) if has_body else None
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=2.0,
                                            sock_read=route.timeout_seconds)
            started = False
            try:
                async with self.session.request(
                    method, url, headers=out_headers, data=data, allow_redirects=False,
                    timeout=timeout,
                    skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
                ) as resp:
                    span.set_attribute("http.response.status_code", resp.status)
                    drop = HOP_BY_HOP | _connection_tokens(resp.headers)
                    response_headers = [
                        (k.lower(), v) for k, v in resp.raw_headers
                        if k.lower().decode("latin-1") not in drop
                    ]
                    response_headers.append((b"x-request-id", request_id.encode()))
                    await send({"type": "http.response.start", "status": resp.status,
                                "headers": response_headers})
                    started = True
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        await send({"type": "http.response.body", "body": chunk,
                                    "more_body": True})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                span.set_attribute("error.type", type(exc).__name__)
                if started:  # the status line is gone; all we can do is cut the body short
                    log.warning("upstream %s broke off a response: %s", upstream.name,
                                type(exc).__name__)
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
                log.warning("upstream %s unavailable: %s", upstream.name, type(exc).__name__)
                await send_problem(send, 503 if not isinstance(exc, TimeoutError) else 504,
                                   "Upstream unavailable",
                                   f"The {upstream.name} service did not answer.",
                                   request_id=request_id, upstream=upstream.name)
