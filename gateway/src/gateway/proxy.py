"""The streaming reverse proxy (aiohttp client: measured ~10x httpx's throughput here).

Bodies are streamed both ways in chunks (never buffered whole), except a request body of
known length up to ``BodyPolicy.buffer_bytes`` (64 KiB), which is read whole before a
connection upstream is taken; hop-by-hop headers are dropped; ``X-Forwarded-*`` and
``X-Request-ID`` are added; the W3C ``traceparent`` of the gateway's span is sent upstream so
one trace runs from the gateway to the consumers. An absolute ``Location`` (or
``Content-Location``) naming an upstream's address is made relative to the gateway.

A service may have several replicas (:mod:`gateway.balancer`): each attempt goes to one,
and counts against that replica's circuit breaker; :meth:`Proxy._send` says when a failed
attempt is retried on another. Whose fault a failure is decides whether it counts
(:class:`Outcome`): a client that stops sending its body gets a 408 after
``BodyPolicy.idle_timeout`` (or ``total_timeout`` for the whole body) and is the client's;
a full queue or the gateway's own lack of sockets is the gateway's (503 + ``Retry-After``);
a connection broken before the client's whole body was sent gives no verdict. Only a
failed connect, or a failure once the whole request was sent, counts.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType

import aiohttp
from multidict import CIMultiDictProxy
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import Message, Receive, Scope, Send
from yarl import URL

from gateway.admission import Overloaded
from gateway.balancer import Replica, ReplicaPool
from gateway.problems import send_error
from gateway.routes import AuthMode, Route

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    }
)
#: Identity headers only the gateway may set; a client's copies are dropped.
IDENTITY_HEADERS = frozenset({"x-mk-identity", "x-mk-principal", "x-user-id", "x-roles"})
CHUNK = 64 * 1024
_HOP_BY_HOP_BYTES = frozenset(h.encode() for h in HOP_BY_HOP)
_LOCATIONS = (b"location", b"content-location")


def request_id_of(scope: Scope) -> str:
    """The client's X-Request-ID if usable, else a new one."""
    request_id = next(
        (v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"x-request-id"), ""
    )
    if not request_id or len(request_id) > 200 or not request_id.isprintable():
        request_id = str(uuid.uuid4())
    return request_id


_DROP_REQUEST = HOP_BY_HOP | IDENTITY_HEADERS | {"host", "forwarded", "x-request-id"}


def _request_headers(
    scope: Scope, request_id: str | None = None
) -> tuple[list[tuple[str, str]], str, str]:
    """The headers to send upstream (lower-case names), the request id (``request_id``
    when the caller already chose it, else :func:`request_id_of`) and the client's Host."""
    raw = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
    drop = _DROP_REQUEST
    host = ""
    for k, v in raw:
        if k == "connection":
            drop = drop | {t.strip().lower() for t in v.split(",")}
        elif k == "host" and not host:
            host = v
    headers = [(k, v) for k, v in raw if k not in drop and not k.startswith("x-forwarded-")]
    if request_id is None:
        request_id = request_id_of(scope)
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
    return frozenset(
        t.strip().lower() for v in headers.getall("connection", ()) for t in v.split(",")
    )


class ClientBodyError(Exception):
    """The client did not deliver its request body: none of this is the upstream's fault."""


class BodyTooLarge(ClientBodyError):
    """The client sent more than the route accepts."""


class BodyTimeout(ClientBodyError):
    """The client stopped sending its body (idle too long) or took too long in all."""


class ClientGone(ClientBodyError):
    """The client disconnected before its body was complete."""


class ClientBody:
    """A request body as the client sends it, read under the route's size limit, an idle
    time-out between pieces and a deadline for the whole body (counted from the first read:
    a streamed body is read once a connection upstream is free). Records how it ended:
    ``complete`` once the last piece arrived; ``error`` (a :class:`ClientBodyError`) when the
    client failed to deliver, so a failure of the upstream request can be told apart from the
    client's own (aiohttp wraps what the body iterator raises)."""

    __slots__ = ("_receive", "complete", "deadline", "error", "idle", "limit", "size", "total")

    def __init__(self, receive: Receive, *, limit: int, idle: float, total: float) -> None:
        self._receive = receive
        self.limit = limit
        self.idle = idle
        self.total = total
        self.deadline: float | None = None
        self.size = 0
        self.complete = False
        self.error: ClientBodyError | None = None

    def _fail(self, error: ClientBodyError) -> ClientBodyError:
        self.error = error
        return error

    async def _next(self) -> Message:
        now = asyncio.get_running_loop().time()
        if self.deadline is None:
            self.deadline = now + self.total
        timeout = min(self.idle, self.deadline - now)
        try:
            if timeout <= 0:
                raise TimeoutError
            async with asyncio.timeout(timeout):
                return await self._receive()
        except TimeoutError:
            raise self._fail(BodyTimeout()) from None

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            message = await self._next()
            if message["type"] == "http.disconnect":
                raise self._fail(ClientGone())
            chunk = message.get("body", b"")
            self.size += len(chunk)
            if self.size > self.limit:
                raise self._fail(BodyTooLarge())
            if not message.get("more_body", False):
                self.complete = True
            if chunk:
                yield chunk
            if self.complete:
                return

    async def read(self) -> bytes:
        """The whole body (for small ones, read before a connection upstream is taken)."""
        return b"".join([chunk async for chunk in self.chunks()])


async def answer_client_body_error(
    send: Send,
    route: Route,
    path: str,
    error: ClientBodyError,
    *,
    request_id: str,
    headers: Sequence[tuple[str, str]] = (),
    too_large: str | None = None,
) -> Outcome:
    """413 for a body over the route's limit, 408 for one that did not arrive in time (in
    the route's error shape, closing the connection: the rest of the body is not wanted),
    nothing for a client that left. Always :attr:`Outcome.CLIENT_ERROR`."""
    if isinstance(error, BodyTooLarge):
        status, title = 413, "Request body too large"
        detail = too_large or f"This endpoint accepts at most {route.max_body_bytes} bytes."
    elif isinstance(error, BodyTimeout):
        status, title = 408, "Request timeout"
        detail = "The request body did not arrive in time."
    else:  # the client left: nobody to answer
        return Outcome.CLIENT_ERROR
    await send_error(
        send,
        route,
        path,
        status,
        title,
        detail,
        request_id=request_id,
        headers=[*headers, ("connection", "close")],
    )
    return Outcome.CLIENT_ERROR


IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Credentials the gateway has consumed; services get the signed assertion instead.
GATEWAY_CREDENTIALS = frozenset({"authorization", "x-api-key"})
UPSTREAM_FAILURE_STATUSES = frozenset({502, 503, 504})
#: A connect that failed for want of the gateway's own resources (file descriptors, ports,
#: buffers): the callers' load, not the service's health.
LOCAL_CONNECT_ERRNOS = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.EADDRNOTAVAIL, errno.ENOBUFS, errno.ENOMEM}
)
#: Seconds a client is asked to wait after the gateway refused for want of capacity.
BUSY_RETRY_AFTER = "1"
#: Headers aiohttp would add of its own: none is the client's, so none is sent. Give them
#: to the ``ClientSession`` (``skip_auto_headers``) so it is not re-made per request.
SKIP_AUTO_HEADERS = ("User-Agent", "Accept-Encoding", "Content-Type")


class Outcome(StrEnum):
    OK = "ok"  # the upstream answered (any status but 502/503/504)
    #: it could not be reached, or it had the whole request and failed to answer in time,
    #: or answered 502/503/504: counts against the breaker
    FAILED = "failed"
    CLIENT_ERROR = "client-error"  # the client's fault (body too large, too slow, gone)
    #: the gateway had no capacity for the request (its queue for the upstream was full,
    #: or its own sockets ran out): says nothing about the upstream
    OVERLOADED = "overloaded"
    #: the upstream connection broke before the whole request was sent: no verdict
    INCONCLUSIVE = "inconclusive"


class Exchange:
    """What one request's metrics and access-log line learn as it is handled: the status
    sent, and from the proxy the replica that answered (the last one tried) and the trace
    id."""

    __slots__ = ("replica", "status", "trace_id", "upstream")

    def __init__(self) -> None:
        self.upstream: str | None = None
        self.replica: str | None = None
        self.trace_id = 0
        #: the status sent to the client (500 until one is sent)
        self.status = 500


@dataclass(frozen=True)
class BodyPolicy:
    """How request bodies are read from clients (``GatewaySettings``)."""

    #: bodies of known length up to this are read whole before a connection is taken
    buffer_bytes: int = 64 * 1024
    #: most seconds between two pieces of a body, and for a whole body
    idle_timeout: float = 10.0
    total_timeout: float = 120.0


class _ServerSpan:
    """``tracer.start_as_current_span(name, context=parent, kind=SERVER, attributes=...)``
    without its two generator-based context managers (a good share of the tracing cost of
    a request here): the same span, current while the request runs and ended after it; an
    ``Exception`` escaping is recorded on a recording span with an error status, as
    ``opentelemetry.trace.use_span`` does."""

    __slots__ = ("_token", "span")

    def __init__(
        self, tracer: trace.Tracer, name: str, parent: Context, attributes: dict[str, str]
    ) -> None:
        self.span = tracer.start_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        self._token: object = None

    def __enter__(self) -> trace.Span:
        self._token = otel_context.attach(trace.set_span_in_context(self.span))
        return self.span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]
        if isinstance(exc, Exception) and self.span.is_recording():
            self.span.record_exception(exc)
            self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        self.span.end()


class Proxy:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        tracer: trace.Tracer,
        *,
        retries: int = 2,
        retry_backoff: float = 0.05,
        connect_timeout: float = 2.0,
        bodies: BodyPolicy = BodyPolicy(),
        public_origins: Sequence[str] = (),
        observe: Callable[[str, str, Outcome], None] | None = None,
    ) -> None:
        self.http = http
        #: told each attempt's (upstream, replica, outcome): the gateway's metrics
        self.observe = observe
        self.tracer = tracer
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.connect_timeout = connect_timeout
        self.bodies = bodies
        skipped = {str(h).lower() for h in http.skip_auto_headers}
        self._skip_auto_headers = (
            None if {h.lower() for h in SKIP_AUTO_HEADERS} <= skipped else SKIP_AUTO_HEADERS
        )
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        #: absolute URL prefixes of the upstreams, rewritten out of ``Location``
        self.internal_prefixes = tuple(
            sorted(
                {p for origin in public_origins for p in _url_prefixes(origin)},
                key=len,
                reverse=True,
            )
        )

    async def forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        pool: ReplicaPool,
        *,
        add_request_headers: Sequence[tuple[str, str]] = (),
        add_response_headers: Sequence[tuple[str, str]] = (),
        request_id: str | None = None,
        record: Exchange | None = None,
    ) -> Outcome:
        """Stream the request to one of ``pool``'s replicas and its answer back; never
        raises.

        A small body of known length is read whole first; then a slot in the pool's
        bounded queue is taken for the time of the upstream request, and a replica chosen
        (:meth:`ReplicaPool.choose`). Each attempt's outcome counts against its replica's
        breaker. ``record`` (if given) learns the replica that answered and the trace id."""
        method = scope["method"]
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        target = path + (f"?{query}" if query else "")
        headers, request_id, _ = _request_headers(scope, request_id)
        if route.auth is not AuthMode.UPSTREAM:
            headers = [(k, v) for k, v in headers if k not in GATEWAY_CREDENTIALS]
        parent = propagate.extract(dict(headers))
        extra_response = [
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in add_response_headers
        ]
        with _ServerSpan(
            self.tracer,
            f"{method} {route.prefix}",
            parent,
            {
                "http.request.method": method,
                "url.path": scope["path"],
                "gateway.upstream": pool.name,
                "http.request_id": request_id,
            },
        ) as span:
            if record is not None:
                record.trace_id = span.get_span_context().trace_id
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            out_headers = [(k, v) for k, v in headers if k not in ("traceparent", "tracestate")]
            out_headers += list(carrier.items())
            out_headers += list(add_request_headers)
            length: str | None = None
            chunked = False
            for k, v in scope["headers"]:
                name = k.lower()
                if name == b"content-length":
                    length = v.decode("latin-1")
                elif name == b"transfer-encoding":
                    chunked = True
            body: ClientBody | None = None
            payload: bytes | None = None
            if length is not None or chunked:
                body = ClientBody(
                    receive,
                    limit=route.max_body_bytes,
                    idle=self.bodies.idle_timeout,
                    total=self.bodies.total_timeout,
                )
                if (
                    not chunked
                    and length is not None
                    and length.isdigit()
                    and int(length) <= self.bodies.buffer_bytes
                ):
                    # Read whole before a connection is taken: a client that never finishes
                    # a small upload holds nothing of the upstream's.
                    try:
                        payload = await body.read()
                    except ClientBodyError as exc:
                        return await answer_client_body_error(
                            send,
                            route,
                            scope["path"],
                            exc,
                            request_id=request_id,
                            headers=add_response_headers,
                        )
            queue = pool.queue
            try:
                await queue.acquire()
            except Overloaded as exc:
                return await self._busy(
                    send,
                    route,
                    scope["path"],
                    pool.name,
                    request_id,
                    exc.reason,
                    add_response_headers,
                )
            try:
                return await self._send(
                    scope,
                    send,
                    route,
                    pool,
                    method,
                    target,
                    out_headers,
                    extra_response,
                    body,
                    payload,
                    request_id,
                    add_response_headers,
                    span,
                    record,
                )
            finally:
                queue.release()

    async def _send(
        self,
        scope: Scope,
        send: Send,
        route: Route,
        pool: ReplicaPool,
        method: str,
        target: str,
        out_headers: list[tuple[str, str]],
        extra_response: list[tuple[bytes, bytes]],
        body: ClientBody | None,
        payload: bytes | None,
        request_id: str,
        add_response_headers: Sequence[tuple[str, str]],
        span: trace.Span,
        record: Exchange | None,
    ) -> Outcome:
        """Attempts on the pool's replicas until one answers or no retry is safe.

        A retry goes to a replica not tried yet when there is one (else, for an idempotent
        request, the same ones again after a back-off, as with one replica). It is safe when
        nothing can have reached the upstream (the connect failed, and the body was buffered
        or not read yet: any method), or for an idempotent method with a buffered body whose
        replica broke the connection or answered 502/503/504 (another replica is asked
        instead; with one replica its answer is passed on). A time-out waiting for an answer
        is never retried (the request may still be running there)."""
        # aiohttp's pool is unbounded (the queue is the bound), so ``sock_connect`` times
        # the TCP connect alone; ``sock_read`` runs once the whole request is sent.
        timeout = self._timeouts.get(route.timeout_seconds)
        if timeout is None:
            timeout = self._timeouts[route.timeout_seconds] = aiohttp.ClientTimeout(
                total=None, sock_connect=self.connect_timeout, sock_read=route.timeout_seconds
            )
        idempotent = (
            route.retry_idempotent
            and method in IDEMPOTENT
            and (body is None or payload is not None)
        )
        attempts = 1 + self.retries
        several = len(pool.replicas) > 1
        tried: list[Replica] = []
        attempt = 0
        failure: BaseException | None = None
        while True:
            attempt += 1
            replica = pool.choose(tried)
            again = False
            if replica is None and idempotent and tried:
                replica = pool.choose()  # every replica tried: the same ones again
                again = True
            if replica is None:
                if failure is not None:  # what this request met, not the breakers' verdict
                    return await self._unavailable(
                        send,
                        route,
                        scope["path"],
                        pool.name,
                        request_id,
                        failure,
                        False,
                        Outcome.FAILED,
                    )
                return await self._failing(send, route, scope["path"], pool, request_id)
            if again:
                await asyncio.sleep(self.retry_backoff * attempt)
            if record is not None:
                record.upstream = pool.name
                record.replica = replica.label
            untried_left = several and len(tried) + 1 < len(pool.replicas)
            last = attempt >= attempts
            result = await self._attempt(
                scope,
                send,
                route,
                pool,
                replica,
                method,
                target,
                out_headers,
                extra_response,
                body,
                payload,
                request_id,
                add_response_headers,
                span,
                retry_on_status=idempotent and untried_left and not last,
                counts=not again,
            )
            tried.append(replica)
            if isinstance(result, Outcome):
                return result
            # a failure nothing was sent for: try again, or answer it
            exc, connect_failed = result
            failure = exc
            body_untouched = body is None or payload is not None or body.deadline is None
            if not last and (
                (connect_failed and body_untouched and (idempotent or untried_left))
                or (not connect_failed and idempotent and untried_left)
            ):
                continue
            if exc is None:  # a 502/503/504 swallowed for a retry that cannot happen
                return await self._failing(send, route, scope["path"], pool, request_id)
            return await self._unavailable(
                send, route, scope["path"], pool.name, request_id, exc, False, Outcome.FAILED
            )

    async def _attempt(
        self,
        scope: Scope,
        send: Send,
        route: Route,
        pool: ReplicaPool,
        replica: Replica,
        method: str,
        target: str,
        out_headers: list[tuple[str, str]],
        extra_response: list[tuple[bytes, bytes]],
        body: ClientBody | None,
        payload: bytes | None,
        request_id: str,
        add_response_headers: Sequence[tuple[str, str]],
        span: trace.Span,
        *,
        retry_on_status: bool,
        counts: bool,
    ) -> Outcome | tuple[BaseException | None, bool]:
        """One request to ``replica``: its :class:`Outcome` once the client has been
        answered, or (the error or None for a 502/503/504, whether the connect failed) for
        a failure the client has not heard of yet (the caller retries or answers it). Either
        way the replica's breaker has been told; a failure counts against a replica once
        per request (``counts`` is False when the same replica is tried again)."""
        breaker = replica.breaker
        replica.outstanding += 1
        try:
            result = await self._exchange(
                scope,
                send,
                route,
                pool,
                replica,
                method,
                target,
                out_headers,
                extra_response,
                body,
                payload,
                request_id,
                add_response_headers,
                span,
                retry_on_status=retry_on_status,
            )
        except BaseException:
            breaker.release()
            raise
        finally:
            replica.outstanding -= 1
        outcome = result if isinstance(result, Outcome) else Outcome.FAILED
        if outcome is Outcome.OK:
            breaker.record_success()
        elif outcome is Outcome.FAILED and counts:
            breaker.record_failure()
        else:
            breaker.release()
        if self.observe is not None:
            self.observe(pool.name, replica.label, outcome)
        return result

    async def _exchange(
        self,
        scope: Scope,
        send: Send,
        route: Route,
        pool: ReplicaPool,
        replica: Replica,
        method: str,
        target: str,
        out_headers: list[tuple[str, str]],
        extra_response: list[tuple[bytes, bytes]],
        body: ClientBody | None,
        payload: bytes | None,
        request_id: str,
        add_response_headers: Sequence[tuple[str, str]],
        span: trace.Span,
        *,
        retry_on_status: bool,
    ) -> Outcome | tuple[BaseException | None, bool]:
        timeout = self._timeouts[route.timeout_seconds]
        path = scope["path"]
        # encoded=True: the client's path and query go upstream byte for byte (yarl would
        # otherwise re-quote them and resolve dot segments).
        url = URL(replica.url + target, encoded=True)
        data: bytes | AsyncIterator[bytes] | None = (
            payload if payload is not None else body.chunks() if body is not None else None
        )
        started = False
        try:
            async with self.http.request(
                method,
                url,
                headers=out_headers,
                data=data,
                allow_redirects=False,
                timeout=timeout,
                skip_auto_headers=self._skip_auto_headers,
            ) as resp:
                status = resp.status
                if retry_on_status and status in UPSTREAM_FAILURE_STATUSES:
                    log.warning(
                        "replica %s of %s answered %s; asking another",
                        replica.label,
                        pool.name,
                        status,
                    )
                    return None, False
                span.set_attribute("http.response.status_code", status)
                drop = _HOP_BY_HOP_BYTES
                if "connection" in resp.headers:
                    drop = drop | {t.encode("latin-1") for t in _connection_tokens(resp.headers)}
                response_headers = []
                for k, v in resp.raw_headers:
                    name = k.lower()
                    if name in drop:
                        continue
                    if name in _LOCATIONS and self.internal_prefixes:
                        v = self._public_location(v)
                    response_headers.append((name, v))
                response_headers.append((b"x-request-id", request_id.encode()))
                response_headers += extra_response
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": response_headers,
                    }
                )
                started = True
                size = resp.content_length
                if size is not None and size <= CHUNK:
                    # small (a JSON answer, mostly): read whole, sent in one message
                    await send(
                        {
                            "type": "http.response.body",
                            "body": await resp.read(),
                            "more_body": False,
                        }
                    )
                else:
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return Outcome.FAILED if status in UPSTREAM_FAILURE_STATUSES else Outcome.OK
        except (aiohttp.ClientError, TimeoutError) as exc:
            span.set_attribute("error.type", type(exc).__name__)
            if body is not None and body.error is not None:  # the client's doing
                if started:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return Outcome.CLIENT_ERROR
                return await answer_client_body_error(
                    send,
                    route,
                    path,
                    body.error,
                    request_id=request_id,
                    headers=add_response_headers,
                )
            if started:  # the status line is gone; all we can do is cut the body short
                return await self._unavailable(
                    send, route, path, pool.name, request_id, exc, True, Outcome.FAILED
                )
            connect_failed = isinstance(
                exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
            )
            if connect_failed:
                os_error = getattr(exc, "os_error", None)
                if getattr(os_error, "errno", None) in LOCAL_CONNECT_ERRNOS:
                    return await self._busy(
                        send,
                        route,
                        path,
                        pool.name,
                        request_id,
                        "no local sockets",
                        add_response_headers,
                    )
                log.warning(
                    "replica %s of %s: connect failed (%s)",
                    replica.label,
                    pool.name,
                    type(exc).__name__,
                )
                return exc, True
            if body is not None and not body.complete:
                # Broken off while the client's body was still on its way: no verdict
                # on the upstream (counting it would let slow uploads open the breaker).
                return await self._unavailable(
                    send, route, path, pool.name, request_id, exc, False, Outcome.INCONCLUSIVE
                )
            if isinstance(exc, TimeoutError) and not isinstance(
                exc, aiohttp.ConnectionTimeoutError
            ):
                # no answer in time: never retried (the request may still be running)
                return await self._unavailable(
                    send, route, path, pool.name, request_id, exc, False, Outcome.FAILED
                )
            return exc, False

    async def _failing(
        self, send: Send, route: Route, path: str, pool: ReplicaPool, request_id: str
    ) -> Outcome:
        """Every replica's breaker refuses: a fast 503 with ``Retry-After``."""
        await send_error(
            send,
            route,
            path,
            503,
            "Upstream unavailable",
            f"The {pool.name} service is failing; the gateway is giving it time to recover.",
            request_id=request_id,
            headers=[("retry-after", str(pool.retry_after_seconds()))],
            upstream=pool.name,
        )
        return Outcome.FAILED

    def _public_location(self, value: bytes) -> bytes:
        """An upstream's absolute ``Location`` made relative to the gateway (no internal
        address leaves the gateway)."""
        text = value.decode("latin-1")
        lowered = text.lower()
        for prefix in self.internal_prefixes:
            if lowered.startswith(prefix):
                rest = text[len(prefix) :]
                if not rest or rest[0] in "/?#":
                    # one leading slash: "//host/..." would name another host
                    return ("/" + rest.lstrip("/")).encode("latin-1")
        return value

    async def _busy(
        self,
        send: Send,
        route: Route,
        path: str,
        upstream: str,
        request_id: str,
        reason: str,
        add_response_headers: Sequence[tuple[str, str]],
    ) -> Outcome:
        log.warning("upstream %s: request refused, gateway at capacity (%s)", upstream, reason)
        await send_error(
            send,
            route,
            path,
            503,
            "Upstream busy",
            f"The {upstream} service has too many requests waiting; try again shortly.",
            request_id=request_id,
            headers=[*add_response_headers, ("retry-after", BUSY_RETRY_AFTER)],
            upstream=upstream,
        )
        return Outcome.OVERLOADED

    async def _unavailable(
        self,
        send: Send,
        route: Route,
        path: str,
        upstream: str,
        request_id: str,
        exc: BaseException,
        started: bool,
        outcome: Outcome,
    ) -> Outcome:
        if started:  # the status line is gone; all we can do is cut the body short
            log.warning("upstream %s broke off a response: %s", upstream, type(exc).__name__)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return outcome
        log.warning("upstream %s unavailable: %s", upstream, type(exc).__name__)
        timed_out = isinstance(exc, TimeoutError) and not isinstance(
            exc, aiohttp.ConnectionTimeoutError
        )
        await send_error(
            send,
            route,
            path,
            504 if timed_out else 503,
            "Upstream timed out" if timed_out else "Upstream unavailable",
            f"The {upstream} service did not answer.",
            request_id=request_id,
            upstream=upstream,
        )
        return outcome


def _url_prefixes(base_url: str) -> list[str]:
    """The lower-cased absolute URL prefixes an upstream at ``base_url`` may put in a
    ``Location``: its base URL, and its origin with and without the default port."""
    parsed = URL(base_url)
    if not parsed.is_absolute() or not parsed.host:
        return []
    host = parsed.host.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    scheme = parsed.scheme.lower()
    origins = [f"{scheme}://{host}:{parsed.port}"]
    if parsed.is_default_port():
        origins.append(f"{scheme}://{host}")
    base_path = parsed.path.rstrip("/")
    return [o + base_path for o in origins] + ([*origins] if base_path else [])
