"""The gateway: one entry point at http://127.0.0.1:8000.

A raw ASGI app (no framework on the hot path). For each request, in order:

1. hygiene: ``X-Request-ID`` accepted or generated; CORS pre-flights answered from the
   allow-list; dot segments refused; security headers added to every response;
2. the gateway's own paths: ``/health`` (each service ok or unavailable; limited per
   address, the check of the services cached for ``health_cache_seconds``),
   ``/openapi.json`` and ``/docs`` (every service's operations; Swagger UI from
   ``gateway.swagger``), ``/api/v1/admin/api-keys`` and ``/api/v1/admin/health`` (admins);
3. routing: the longest prefix in ``routes.ROUTES``; body size limit per route;
4. authentication: a bearer JWT or an API key becomes a ``Principal``; bad credentials are
   a 401 wherever they are presented (on Open311 routes in Open311's error shape, and a bad
   ``api_key`` parameter is the spec's 403); failures are counted per client address and,
   past ``GATEWAY_LIMIT_AUTH_FAILURES``, answered 429 before any check (``auth.failures``);
5. rate limit: a token bucket per API key, per signed-in subject or per client IP, by the
   route's limit class; 429 with ``Retry-After`` and ``RateLimit``/``RateLimit-Policy``;
6. circuit breaker per upstream: a fast 503 naming the upstream while it is open;
7. the streaming proxy, with the identity headers a client sent stripped and one signed,
   short-lived identity assertion added (``X-MK-Identity``): a small body is read whole
   first (408 if the client stalls), then a slot in the upstream's bounded queue
   (``gateway.admission``; 503 + ``Retry-After`` when full) is held while the request runs.
   Only the upstream's own failures count against its breaker (``proxy.Outcome``).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
from opentelemetry import trace
from starlette.types import Message, Receive, Scope, Send

from gateway import swagger
from gateway.admission import UpstreamQueue
from gateway.assertion import AssertionSigner, sign_assertion
from gateway.auth import Authenticator, AuthFailed, AuthSettings
from gateway.auth.admin import create_admin_app
from gateway.auth.credentials import (
    has_header_credentials,
    is_multipart,
    may_present,
    without_open311_key,
)
from gateway.auth.devoidc import dev_oidc_mount
from gateway.auth.errors import BEARER_CHALLENGE
from gateway.auth.failures import AuthFailureGuard
from gateway.balancer import HealthChecker, ReplicaPool
from gateway.breaker import BreakerState, CircuitBreaker
from gateway.clientaddr import TrustedProxies
from gateway.config import GatewaySettings
from gateway.limits import LimitSettings, RateLimiter, caller_key, make_rate_limiter
from gateway.metrics import CONTENT_TYPE, AccessLog, GatewayMetrics
from gateway.openapi import IDENTITY_SCHEME, Aggregator
from gateway.problems import send_error, send_problem
from gateway.proxy import (
    SKIP_AUTO_HEADERS,
    BodyPolicy,
    ClientBody,
    ClientBodyError,
    Exchange,
    Proxy,
    answer_client_body_error,
    request_id_of,
)
from gateway.routes import ROUTES, AuthMode, Route, Router, Upstream, upstreams
from servicekit.identity import ASSERTION_HEADER, Principal, Role
from servicekit.telemetry import configure_logging, make_tracer_provider, request_id_var

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/api/v1/admin/"
#: Every service's readiness in full (checks, circuit states): admins only.
ADMIN_HEALTH = "/api/v1/admin/health"
ADMIN_ROUTE = Route("/api/v1/admin", "gateway", limit_class="admin", max_body_bytes=64 * 1024)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"geolocation=(), camera=(), microphone=()"),
]
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
#: /docs: Swagger UI's files are the gateway's own (gateway.swagger), and no inline script.
DOCS_CSP = (
    b"content-security-policy",
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
)
_API_EXTRA = (*SECURITY_HEADERS, API_CSP)
_DOCS_EXTRA = (*SECURITY_HEADERS, DOCS_CSP)
EXPOSED = b"X-Request-ID, RateLimit, RateLimit-Policy, Retry-After, ETag, Location"
FORM = "application/x-www-form-urlencoded"
MAX_FORM_FOR_AUTH = 1024 * 1024


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k.lower() == name:
            return str(v.decode("latin-1"))
    return None


def _auth_blocked_detail(retry_after_seconds: int) -> str:
    """The 429's detail for an address that has spent its failed-authentication bucket."""
    return (
        f"Too many failed authentications from this address; try again in {retry_after_seconds} s."
    )


class Gateway:
    def __init__(
        self,
        settings: GatewaySettings,
        *,
        routes: tuple[Route, ...] = ROUTES,
        auth_settings: AuthSettings | None = None,
        limit_settings: LimitSettings | None = None,
    ) -> None:
        self.settings = settings
        self.upstreams: dict[str, Upstream] = upstreams(settings)
        if settings.max_body_bytes is not None:  # GATEWAY_MAX_BODY_BYTES: one limit for all
            routes = tuple(
                dataclasses.replace(r, max_body_bytes=settings.max_body_bytes) for r in routes
            )
        self.routes = routes
        self.router = Router(routes)
        self.tracer_provider = make_tracer_provider(
            settings.service_name, settings.otel_exporter_otlp_endpoint
        )
        self.tracer = trace.get_tracer("gateway", tracer_provider=self.tracer_provider)
        self.authenticator = Authenticator(auth_settings or AuthSettings())
        self.limit_settings = limit_settings or LimitSettings()
        self.limiter: RateLimiter = make_rate_limiter(self.limit_settings)
        self.auth_failures = AuthFailureGuard(
            self.limiter, self.limit_settings.auth_failure_policy()
        )
        #: each service's replicas, with a breaker per replica and the service's queue
        self.pools: dict[str, ReplicaPool] = {
            name: ReplicaPool(
                name,
                upstream.urls,
                queue=UpstreamQueue(
                    name,
                    concurrency=settings.pool_size_per_upstream * len(upstream.urls),
                    limit=settings.upstream_queue_limit * len(upstream.urls),
                    wait_seconds=settings.upstream_queue_wait_seconds,
                ),
                breaker=functools.partial(
                    CircuitBreaker,
                    failure_threshold=settings.breaker_failure_threshold,
                    reset_timeout=settings.breaker_reset_seconds,
                ),
            )
            for name, upstream in self.upstreams.items()
        }
        self.queues = {name: pool.queue for name, pool in self.pools.items()}
        self.health_checker: HealthChecker | None = None
        self.admin_app = create_admin_app(self.authenticator)
        self.dev_oidc = dev_oidc_mount(settings.environment, self.authenticator.settings)
        self.cors_origins = frozenset(settings.cors_allow_origins)
        self.trusted_proxies = TrustedProxies(settings.trusted_proxies)
        self.metrics_allowed = TrustedProxies(settings.metrics_allow_from)
        self.metrics = GatewayMetrics(self.pools.values(), settings.service_name)
        self.access_log = AccessLog(settings.service_name) if settings.access_log else None
        self.secret = settings.identity_secret.get_secret_value()
        self.signer = AssertionSigner(self.secret, ttl=settings.identity_ttl_seconds)
        self.http: aiohttp.ClientSession | None = None
        self.proxy: Proxy | None = None
        self.aggregator: Aggregator | None = None
        self._health_lock = asyncio.Lock()
        self._health_cache: tuple[float, dict[str, dict[str, Any]]] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def startup(self) -> None:
        # No limit here: the bounded queue per upstream (self.queues) is the pool's bound,
        # so waiting for a connection is never confused with a slow TCP connect.
        connector = aiohttp.TCPConnector(
            limit=0,
            limit_per_host=0,
            keepalive_timeout=self.settings.upstream_keepalive_seconds,
            ttl_dns_cache=300,
        )
        self.http = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=SKIP_AUTO_HEADERS,
        )
        self.proxy = Proxy(
            self.http,
            self.tracer,
            retries=self.settings.retries,
            connect_timeout=self.settings.connect_timeout_seconds,
            bodies=BodyPolicy(
                buffer_bytes=self.settings.buffer_body_bytes,
                idle_timeout=self.settings.body_idle_timeout_seconds,
                total_timeout=self.settings.body_total_timeout_seconds,
            ),
            public_origins=[url for u in self.upstreams.values() for url in u.urls],
            observe=self.metrics.attempt,
        )
        self.health_checker = HealthChecker(
            self.http,
            self.pools.values(),
            interval=self.settings.health_check_interval_seconds,
            timeout=self.settings.health_check_timeout_seconds,
        )
        self.health_checker.start()
        await self.authenticator.start()
        self.aggregator = Aggregator(
            self.http, self.upstreams, self.routes, own=[_admin_spec(self.admin_app.openapi())]
        )

    async def shutdown(self) -> None:
        if self.access_log is not None:
            self.access_log.flush()
        if self.health_checker is not None:
            await self.health_checker.stop()
        await self.authenticator.stop()
        close = getattr(self.limiter, "close", None)
        if close is not None:
            await close()
        if self.http:
            await self.http.close()
        self.tracer_provider.force_flush(timeout_millis=2000)

    # -- the pipeline ----------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] == "/metrics" and self._may_scrape(scope):
            await self._metrics(send)
            return
        if self.trusted_proxies:  # behind a load balancer: the client it names
            scope = self.trusted_proxies.resolve(scope)
        request_id = request_id_of(scope)
        request_id_var.set(request_id)  # this request's task: its log lines carry the id
        exchange = Exchange()
        metrics = self.metrics
        metrics.in_flight.inc()
        started = time.perf_counter()
        try:
            await self._handle(scope, receive, send, request_id, exchange)
        finally:
            elapsed = time.perf_counter() - started
            metrics.in_flight.dec()
            route = self._route_label(scope["path"])
            metrics.request(scope["method"], route, exchange.status, elapsed)
            if self.access_log is not None:
                self.access_log.write(scope["method"], route, request_id, exchange, elapsed)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, exchange: Exchange
    ) -> None:
        origin = _header(scope, b"origin")
        path = scope["path"]
        send = self._decorate(
            send,
            request_id,
            origin,
            exchange,
            docs=path == "/docs",
            public=bool(origin) and self._public_read(path),
        )

        if (
            scope["method"] == "OPTIONS"
            and origin
            and _header(scope, b"access-control-request-method")
        ):
            await self._preflight(scope, send, origin, request_id)
            return
        if self.dev_oidc is not None and self.dev_oidc.owns(path):  # development only
            await self.dev_oidc.app(scope, receive, send)
            return
        if path == "/health":
            await self._health(scope, send, request_id)
            return
        if path == "/health/live":  # the gateway process itself: no service is asked
            await self._json(send, {"status": "ok"}, cache=b"no-store")
            return
        if path == "/openapi.json":
            await self._json(send, await self._openapi())
            return
        if path == "/docs":
            await self._html(send, swagger.DOCS_HTML)
            return
        if path.startswith("/docs/"):
            await self._docs_asset(send, path, request_id)
            return
        if "." in path and any(segment in (".", "..") for segment in path.split("/")):
            # "/api/v1/services/../../metrics" must not reach paths outside the route table.
            await send_problem(
                send,
                400,
                "Bad request",
                "Dot segments are not allowed in paths.",
                request_id=request_id,
            )
            return
        admin = path.startswith(ADMIN_PREFIX) or path == ADMIN_PREFIX.rstrip("/")
        route = ADMIN_ROUTE if admin else self.router.match(path)
        if route is None or self.proxy is None:
            await send_problem(
                send, 404, "Not found", f"No route for {path}.", request_id=request_id
            )
            return
        # every error from here on is answered in the route's own shape
        refuse = functools.partial(send_error, send, route, path, request_id=request_id)
        length = _header(scope, b"content-length")
        if length and length.isdigit() and int(length) > route.max_body_bytes:
            await refuse(
                413,
                "Request body too large",
                f"This endpoint accepts at most {route.max_body_bytes} bytes.",
            )
            return

        # authentication (an Open311 form may carry its api_key in the body); an address
        # that has spent its failed-authentication bucket is refused before any check
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = scope.get("query_string", b"").decode("latin-1")
        peer = scope.get("client")
        address = peer[0] if peer else None
        blocked = self.auth_failures.retry_after(address)
        if blocked is not None and may_present(headers, query, route, scope["method"]):
            self.metrics.rate_limited("auth-failures")
            await refuse(
                429,
                "Too many requests",
                _auth_blocked_detail(blocked),
                headers=[("retry-after", str(blocked))],
            )
            return
        scope, receive, form_body = await self._maybe_read_form(scope, receive, route)
        if isinstance(form_body, ClientBodyError):  # too large (413), too slow (408), gone
            await answer_client_body_error(
                send,
                route,
                path,
                form_body,
                request_id=request_id,
                too_large="A form this large cannot be authenticated.",
            )
            return
        try:
            principal = await self.authenticator.authenticate(
                headers, query, route, form_body if isinstance(form_body, bytes) else None
            )
        except AuthFailed as failure:
            spent = await self.auth_failures.failed(address) if failure.status == 401 else None
            if spent is not None and not spent.allowed:
                self.metrics.rate_limited("auth-failures")
                await refuse(
                    429,
                    "Too many requests",
                    _auth_blocked_detail(spent.retry_after_seconds),
                    headers=spent.headers(),
                )
                return
            if (
                route.auth is AuthMode.OPEN311
                and failure.status == 401
                and not has_header_credentials(headers, route)
            ):
                # Open311's own key, the api_key parameter, refused: the spec's 403.
                await refuse(403, "Forbidden", f"api_key: {failure.detail}")
                return
            await refuse(failure.status, failure.title, failure.detail, headers=failure.headers)
            return

        if route.auth is AuthMode.OPEN311:  # the api_key parameter stops here
            scope = {**scope, "query_string": without_open311_key(scope.get("query_string", b""))}

        # rate limit
        client = scope.get("client")
        key = caller_key(principal, client[0] if client else "unknown")
        # On a route whose upstream authenticates (Notify's /v2) every caller looks
        # anonymous here: the class's own policy applies per client address, not the
        # anonymous one; the upstream meters its own keys.
        policy = self.limit_settings.policy(
            route.limit_class,
            anonymous=principal.is_anonymous and route.auth is not AuthMode.UPSTREAM,
        )
        limit_headers: list[tuple[str, str]] = []
        if policy is not None:  # None: this class is not limited
            decision = await self.limiter.hit(key, policy)
            limit_headers = decision.headers()
            if not decision.allowed:
                self.metrics.rate_limited(policy.name)
                await refuse(
                    429,
                    "Too many requests",
                    f"Rate limit '{policy.name}' exceeded; try again in "
                    f"{decision.retry_after_seconds} s.",
                    headers=limit_headers,
                )
                return

        if admin:
            if path == ADMIN_HEALTH and scope["method"] in ("GET", "HEAD"):
                await self._admin_health(send, principal, request_id, limit_headers)
                return
            scope = {**scope, "mk.principal": principal}
            await self.admin_app(scope, receive, self._add_headers(send, limit_headers))
            return

        # circuit breakers (one per replica), then the proxy
        pool = self.pools[route.upstream]
        if not pool.available():
            await refuse(
                503,
                "Upstream unavailable",
                f"The {pool.name} service is failing; the gateway is giving it time to recover.",
                headers=[("retry-after", str(pool.retry_after_seconds()))],
                upstream=pool.name,
            )
            return
        # Bound to this service, method and raw path (as the proxy sends them), once.
        assertion = sign_assertion(
            self.signer,
            principal,
            audience=pool.name,
            method=scope["method"],
            path=scope.get("raw_path", scope["path"].encode()).decode("latin-1"),
            request_id=request_id,
        )
        await self.proxy.forward(
            scope,
            receive,
            send,
            route,
            pool,
            add_request_headers=[(ASSERTION_HEADER, assertion)],
            add_response_headers=limit_headers,
            request_id=request_id,
            record=exchange,
        )

    # -- pieces ----------------------------------------------------------------------------
    async def _maybe_read_form(
        self, scope: Scope, receive: Receive, route: Route
    ) -> tuple[Scope, Receive, bytes | ClientBodyError | None]:
        """For Open311 form POSTs: read the body (a form-encoded one is small; a multipart
        one with photos up to the route's limit) so its ``api_key`` field can be checked,
        then replay it to the upstream without that field (``Content-Length`` to match)."""
        if route.auth is not AuthMode.OPEN311:  # only Open311 takes a key in a form body
            return scope, receive, None
        content_type = _header(scope, b"content-type") or ""
        if not self.authenticator.needs_form_body(route, scope["method"], content_type):
            return scope, receive, None
        multipart = is_multipart(content_type)
        reader = ClientBody(
            receive,
            limit=route.max_body_bytes
            if multipart
            else min(MAX_FORM_FOR_AUTH, route.max_body_bytes),
            idle=self.settings.body_idle_timeout_seconds,
            total=self.settings.body_total_timeout_seconds,
        )
        try:
            body = await reader.read()
        except ClientBodyError as exc:
            return scope, receive, exc
        forwarded = without_open311_key(body, content_type)
        if forwarded != body:
            length = str(len(forwarded)).encode()
            scope = {
                **scope,
                "headers": [
                    (k, length if k.lower() == b"content-length" else v)
                    for k, v in scope["headers"]
                ],
            }
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": forwarded, "more_body": False}
            return await receive()

        return scope, replay, body

    def _decorate(
        self,
        send: Send,
        request_id: str,
        origin: str | None,
        exchange: Exchange,
        *,
        docs: bool,
        public: bool = False,
    ) -> Send:
        extra: Sequence[tuple[bytes, bytes]] = _DOCS_EXTRA if docs else _API_EXTRA
        if origin and origin in self.cors_origins:
            extra = [
                *extra,
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-expose-headers", EXPOSED),
                (b"vary", b"Origin"),
            ]
        elif public:
            # a public read route (/hsds) is open to any origin: the gateway's own answers
            # there (429, 502, 503, 504) say so too, as the service's do
            extra = [
                *extra,
                (b"access-control-allow-origin", b"*"),
                (b"access-control-expose-headers", EXPOSED),
            ]

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                headers = list(message.get("headers", ()))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                if b"x-request-id" not in present:
                    headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        return wrapped

    def _public_read(self, path: str) -> bool:
        route = self.router.match(path)
        return route is not None and route.public_read

    def _route_label(self, path: str) -> str:
        """The route a request is counted and logged under: the routing table's prefix
        or the gateway's own path (never the raw path)."""
        if path in _OWN_PATHS:
            return path
        if path.startswith("/docs/"):
            return "/docs/*"
        if path.startswith(ADMIN_PREFIX) or path == ADMIN_PREFIX.rstrip("/"):
            return ADMIN_ROUTE.prefix
        route = self.router.match(path)
        return route.prefix if route is not None else "unmatched"

    def _may_scrape(self, scope: Scope) -> bool:
        """``/metrics`` for a socket peer in ``GATEWAY_METRICS_ALLOW_FROM`` that came through
        no proxy; to anyone else it does not exist."""
        peer = scope.get("client")
        return bool(
            peer
            and self.metrics_allowed.trusts(peer[0])
            and _header(scope, b"x-forwarded-for") is None
        )

    async def _metrics(self, send: Send) -> None:
        payload = self.metrics.render()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", CONTENT_TYPE),
                    (b"content-length", str(len(payload)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    @staticmethod
    def _add_headers(send: Send, headers: list[tuple[str, str]]) -> Send:
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *raw]}
            await send(message)

        return wrapped

    async def _preflight(self, scope: Scope, send: Send, origin: str, request_id: str) -> None:
        route = self.router.match(scope["path"])
        if route is not None and route.public_read:
            # the upstream's own answers carry Access-Control-Allow-Origin: * (e.g. /hsds)
            public = [
                (b"access-control-allow-origin", b"*"),
                (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
                (b"access-control-allow-headers", b"If-None-Match"),
                (b"access-control-max-age", str(self.settings.cors_max_age_seconds).encode()),
                (b"content-length", b"0"),
            ]
            await send({"type": "http.response.start", "status": 204, "headers": public})
            await send({"type": "http.response.body", "body": b""})
            return
        if origin not in self.cors_origins:
            await send_problem(
                send,
                403,
                "Origin not allowed",
                "This origin may not call the API from a browser.",
                request_id=request_id,
            )
            return
        requested = _header(scope, b"access-control-request-headers") or ""
        allowed_headers = ", ".join(
            h.strip()
            for h in requested.split(",")
            if h.strip() and h.strip().lower() not in ("x-mk-identity",)
        )
        headers = [
            (b"access-control-allow-methods", b"GET, POST, PUT, PATCH, DELETE, OPTIONS"),
            (b"access-control-allow-headers", allowed_headers.encode("latin-1")),
            (b"access-control-max-age", str(self.settings.cors_max_age_seconds).encode()),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _openapi(self) -> dict[str, Any]:
        assert self.aggregator is not None
        return await self.aggregator.document()

    @staticmethod
    async def _json(send: Send, body: Any, status: int = 200, cache: bytes = b"no-cache") -> None:
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"cache-control", cache),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    @staticmethod
    async def _html(send: Send, html: str) -> None:
        payload = html.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    @staticmethod
    async def _docs_asset(send: Send, path: str, request_id: str) -> None:
        found = swagger.asset(path)
        if found is None:
            await send_problem(
                send, 404, "Not found", f"No route for {path}.", request_id=request_id
            )
            return
        content_type, payload = found
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(payload)).encode()),
                    (b"cache-control", b"public, max-age=31536000, immutable"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("gateway start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _service_health(self) -> dict[str, dict[str, Any]]:
        """Every service's ``/health/ready``, checked at most once per
        ``health_cache_seconds`` (callers meanwhile share the last answer, and concurrent
        callers one check)."""

        async def probe(url: str) -> dict[str, Any]:
            assert self.http is not None
            try:
                async with self.http.get(
                    url + "/health/ready", timeout=aiohttp.ClientTimeout(total=3)
                ) as resp:
                    body = await resp.json(content_type=None)
                    return {
                        "status": "ok" if resp.status == 200 else "unavailable",
                        "checks": body.get("checks", {}),
                    }
            except Exception as exc:
                return {"status": "unavailable", "error": type(exc).__name__}

        async def service(upstream: Upstream) -> tuple[str, dict[str, Any]]:
            # a service is ok while one of its replicas is
            answers = await asyncio.gather(*(probe(url) for url in upstream.urls))
            ok = [a for a in answers if a["status"] == "ok"]
            result = dict(ok[0] if ok else answers[0])
            if len(answers) > 1:
                replicas = self.pools[upstream.name].replicas
                result["replicas"] = {
                    replica.label: answer for replica, answer in zip(replicas, answers, strict=True)
                }
            return upstream.name, result

        async with self._health_lock:
            cached = self._health_cache
            if (
                cached is not None
                and time.monotonic() - cached[0] < self.settings.health_cache_seconds
            ):
                return cached[1]
            results = dict(await asyncio.gather(*(service(u) for u in self.upstreams.values())))
            self._health_cache = (time.monotonic(), results)
            return results

    async def _health(self, scope: Scope, send: Send, request_id: str) -> None:
        """``/health``, public: overall status and each service's ok/unavailable, nothing
        more (the detail is at ``ADMIN_HEALTH``); limited per client address."""
        policy = self.limit_settings.class_policy("health")
        if policy is not None:
            client = scope.get("client")
            decision = await self.limiter.hit(
                caller_key(None, client[0] if client else None), policy
            )
            if not decision.allowed:
                self.metrics.rate_limited(policy.name)
                await send_problem(
                    send,
                    429,
                    "Too many requests",
                    f"Rate limit '{policy.name}' exceeded; try again in "
                    f"{decision.retry_after_seconds} s.",
                    request_id=request_id,
                    headers=decision.headers(),
                )
                return
        results = await self._service_health()
        ok = all(r["status"] == "ok" for r in results.values())
        await self._json(
            send,
            {
                "status": "ok" if ok else "degraded",
                "services": {name: {"status": r["status"]} for name, r in results.items()},
            },
            status=200 if ok else 503,
            cache=b"no-store",
        )

    async def _admin_health(
        self,
        send: Send,
        principal: Principal,
        request_id: str,
        limit_headers: list[tuple[str, str]],
    ) -> None:
        """``ADMIN_HEALTH``: each service's checks, or the error that made it unavailable,
        and its circuit breaker's state."""
        if principal.is_anonymous:
            await send_problem(
                send,
                401,
                "Unauthorized",
                "Sign in as an admin.",
                request_id=request_id,
                headers=[*limit_headers, ("www-authenticate", BEARER_CHALLENGE)],
            )
            return
        if not principal.has_role(Role.ADMIN):
            await send_problem(
                send,
                403,
                "Forbidden",
                "This needs the admin role.",
                request_id=request_id,
                headers=limit_headers,
            )
            return
        results = await self._service_health()
        ok = all(r["status"] == "ok" for r in results.values())
        services = {}
        for name, result in results.items():
            replicas = self.pools[name].replicas
            states = {r.breaker.state for r in replicas}
            # the service's circuit: closed while one replica's is
            circuit = next(s for s in _CIRCUIT_ORDER if s in states)
            service = {**result, "circuit": circuit.value}
            if len(replicas) > 1:
                service["replicas"] = {
                    r.label: {
                        **result["replicas"][r.label],
                        "circuit": r.breaker.state.value,
                        "in_rotation": r.in_rotation,
                    }
                    for r in replicas
                }
            services[name] = service
        await self._json(
            self._add_headers(send, limit_headers),
            {"status": "ok" if ok else "degraded", "services": services},
            status=200 if ok else 503,
            cache=b"no-store",
        )


_OWN_PATHS = frozenset({"/health", "/health/live", "/openapi.json", "/docs"})
_CIRCUIT_ORDER = (BreakerState.CLOSED, BreakerState.HALF_OPEN, BreakerState.OPEN)


def _admin_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The admin API documented like the services: admin role required on every operation
    (the aggregator turns that into the public schemes and ``x-roles``)."""
    spec = copy.deepcopy(spec)
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict):
                operation["security"] = [{IDENTITY_SCHEME: ["admin"]}]
    spec.get("components", {}).pop("securitySchemes", None)
    return spec


def create_app(settings: GatewaySettings | None = None, **kwargs: Any) -> Gateway:
    settings = settings or GatewaySettings()
    configure_logging(settings.service_name, settings.log_level)
    return Gateway(settings, **kwargs)
