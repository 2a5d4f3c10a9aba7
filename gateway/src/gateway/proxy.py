"""The streaming reverse proxy (aiohttp client: measured ~10x httpx's throughput here).

Bodies are streamed both ways in chunks (never buffered whole); hop-by-hop headers are
dropped; ``X-Forwarded-*`` and ``X-Request-ID`` are added; the W3C ``traceparent`` of the
gateway's span is sent upstream so one trace runs from the gateway to the consumers.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from enum import StrEnum

import aiohttp
from multidict import CIMultiDictProxy
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from starlette.types import Receive, Scope, Send
from yarl import URL

from gateway.problems import send_error
from gateway.routes import AuthMode, Route, Upstream

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


class BodyTooLarge(Exception):
    """The client sent more than the route accepts."""


async def _body(receive: Receive, limit: int, counted: list[int]) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        if chunk:
            counted[0] += len(chunk)
            if counted[0] > limit:
                raise BodyTooLarge
            yield chunk
        if not message.get("more_body", False):
            return


IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Credentials the gateway has consumed; services get the signed assertion instead.
GATEWAY_CREDENTIALS = frozenset({"authorization", "x-api-key"})
UPSTREAM_FAILURE_STATUSES = frozenset({502, 503, 504})


class Outcome(StrEnum):
    OK = "ok"  # the upstream answered (any status but 502/503/504)
    FAILED = "failed"  # no answer, a time-out, or 502/503/504: counts against the breaker
    CLIENT_ERROR = "client-error"  # the client's fault (body too large); not the upstream's


class Proxy:
    def __init__(self, session: aiohttp.ClientSession, tracer: trace.Tracer, *,
                 retries: int = 2, retry_backoff: float = 0.05) -> None:
        self.session = session
        self.tracer = tracer
        self.retries = retries
        self.retry_backoff = retry_backoff

    async def forward(self, scope: Scope, receive: Receive, send: Send, route: Route,
                      upstream: Upstream, *, add_request_headers: Sequence[tuple[str, str]] = (),
                      add_response_headers: Sequence[tuple[str, str]] = ()) -> Outcome:
        """Stream the request to ``upstream`` and its answer back; never raises."""
        method = scope["method"]
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        # encoded=True: the client's path and query go upstream byte for byte (yarl would
        # otherwise re-quote them and resolve dot segments).
        url = URL(upstream.base_url + path + (f"?{query}" if query else ""), encoded=True)
        headers, request_id, _ = _request_headers(scope)
        if route.auth is not AuthMode.UPSTREAM:
            headers = [(k, v) for k, v in headers if k not in GATEWAY_CREDENTIALS]
        parent = propagate.extract(dict(headers))
        extra_response = [(k.encode("latin-1"), v.encode("latin-1"))
                          for k, v in add_response_headers]
        with self.tracer.start_as_current_span(
            f"{method} {route.prefix}", context=parent, kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"],
                        "gateway.upstream": upstream.name, "http.request_id": request_id},
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            out_headers = [(k, v) for k, v in headers if k not in ("traceparent", "tracestate")]
            out_headers += list(carrier.items())
            out_headers += list(add_request_headers)
            has_body = any(k.lower() in (b"content-length", b"transfer-encoding")
                           for k, _ in scope["headers"])
            counted = [0]
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=2.0,
                                            sock_read=route.timeout_seconds)
            # Retried only when nothing can have reached the upstream: an idempotent method,
            # no request body, and the connection itself failed.
            retryable = route.retry_idempotent and method in IDEMPOTENT and not has_body
            attempts = 1 + (self.retries if retryable else 0)
            started = False
            for attempt in range(1, attempts + 1):
                data = _body(receive, route.max_body_bytes, counted) if has_body else None
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
                        response_headers += extra_response
                        await send({"type": "http.response.start", "status": resp.status,
                                    "headers": response_headers})
                        started = True
                        async for chunk in resp.content.iter_chunked(CHUNK):
                            await send({"type": "http.response.body", "body": chunk,
                                        "more_body": True})
                        await send({"type": "http.response.body", "body": b"",
                                    "more_body": False})
                        return (Outcome.FAILED if resp.status in UPSTREAM_FAILURE_STATUSES
                                else Outcome.OK)
                except BodyTooLarge:
                    await send_error(send, route, scope["path"], 413,
                                     "Request body too large",
                                     f"This endpoint accepts at most {route.max_body_bytes}"
                                     " bytes.", request_id=request_id,
                                     headers=list(add_response_headers))
                    return Outcome.CLIENT_ERROR
                except aiohttp.ClientConnectorError as exc:
                    # Could not connect at all: safe to try again for idempotent requests.
                    span.set_attribute("error.type", type(exc).__name__)
                    if attempt < attempts:
                        await asyncio.sleep(self.retry_backoff * attempt)
                        continue
                    return await self._unavailable(send, route, scope["path"], upstream,
                                                   request_id, exc, started)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    span.set_attribute("error.type", type(exc).__name__)
                    return await self._unavailable(send, route, scope["path"], upstream,
                                                   request_id, exc, started)
            return Outcome.FAILED  # pragma: no cover - the loop always returns

    async def _unavailable(self, send: Send, route: Route, path: str, upstream: Upstream,
                           request_id: str, exc: BaseException, started: bool) -> Outcome:
        if started:  # the status line is gone; all we can do is cut the body short
            log.warning("upstream %s broke off a response: %s", upstream.name,
                        type(exc).__name__)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return Outcome.FAILED
        log.warning("upstream %s unavailable: %s", upstream.name, type(exc).__name__)
        timed_out = isinstance(exc, TimeoutError)
        await send_error(send, route, path, 504 if timed_out else 503,
                         "Upstream timed out" if timed_out else "Upstream unavailable",
                         f"The {upstream.name} service did not answer.",
                         request_id=request_id, upstream=upstream.name)
        return Outcome.FAILED
