"""Prometheus figures for one service (HTTP requests, consumer lag, outbox backlog and age,
dead letters, deliveries, schedulers) and the per-request middleware that records them with
the request id and the trace. ``infra/prometheus/alerts.yaml`` alerts on these names.

Each app gets its own registry so several services can live in one test process.
"""

from __future__ import annotations

import time

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.telemetry import request_id_var


class ServiceMetrics:
    def __init__(self, service_name: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = {"service": service_name}
        r = self.registry
        self.http_requests = Counter(
            "http_requests_total",
            "HTTP requests handled",
            ["method", "route", "status"],
            registry=r,
        ).labels
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request duration",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "outbox_backlog", "Outbox messages not yet acknowledged by Kafka", registry=r
        )
        self.outbox_oldest_age = Gauge(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox message not yet acknowledged by Kafka (0: none pending, "
            "or another replica publishes)",
            registry=r,
        )
        self.events_published = Counter(
            "outbox_events_published_total", "Events published from the outbox", registry=r
        )
        self.consumer_lag = Gauge(
            "kafka_consumer_lag",
            "Records behind the partition's high watermark",
            ["group", "topic", "partition"],
            registry=r,
        )
        self.events_consumed = Counter(
            "kafka_events_consumed_total",
            "Records consumed, by outcome",
            ["group", "topic", "outcome"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "kafka_events_dead_lettered_total",
            "Records sent to a dead-letter topic",
            ["group", "topic", "reason"],
            registry=r,
        )
        #: Labelled, so a service without deliveries or schedulers exports none of these.
        self.deliveries = Counter(
            "notification_deliveries_total",
            "Delivery attempts by channel (email, sms, webhook) and outcome",
            ["channel", "outcome"],
            registry=r,
        )
        self.scheduler_last_success = Gauge(
            "scheduler_last_success_timestamp_seconds",
            "When the scheduler last completed a pass (Unix time)",
            ["scheduler"],
            registry=r,
        )
        self.info = Gauge("service_info", "Service identity", list(labels), registry=r)
        self.info.labels(**labels).set(1)

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class HttpMiddleware:
    """The one per-request middleware of every service (pure ASGI, cheap by design).

    For each HTTP request: the gateway's ``X-Request-ID`` goes into every log line of it; a
    SERVER span continues the caller's W3C trace (``traceparent``), named by route template;
    the request is counted and timed by route template (not raw path). It replaces
    OpenTelemetry's FastAPI instrumentation, whose attribute collection cost more per
    request than reading a catalogue entry. Paths in ``untraced`` (health, metrics) get no
    span.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: ServiceMetrics,
        tracer: trace.Tracer,
        *,
        untraced: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.tracer = tracer
        self.untraced = untraced

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        request_id: str | None = None
        carrier: dict[str, str] = {}
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                request_id = value.decode("latin-1")[:200]
            elif key in (b"traceparent", b"tracestate"):
                carrier[key.decode()] = value.decode("latin-1")

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        method = scope.get("method", "GET")
        token = request_id_var.set(request_id)
        try:
            if scope["path"] in self.untraced:
                await self.app(scope, receive, send_wrapper)
                return
            with self.tracer.start_as_current_span(
                method,
                context=propagate.extract(carrier) if carrier else None,
                kind=SpanKind.SERVER,
                record_exception=True,
                attributes={"http.request.method": method, "url.path": scope["path"]},
            ) as span:
                try:
                    await self.app(scope, receive, send_wrapper)
                finally:
                    if span.is_recording():
                        route = _route_template(scope)
                        span.update_name(f"{method} {route}")
                        span.set_attribute("http.route", route)
                        span.set_attribute("http.response.status_code", status)
                        if status >= 500:
                            span.set_status(StatusCode.ERROR)
        finally:
            request_id_var.reset(token)
            route = _route_template(scope)
            self.metrics.http_requests(method, route, str(status)).inc()
            self.metrics.http_duration.labels(method, route).observe(time.perf_counter() - start)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


async def metrics_endpoint(request: Request) -> Response:
    metrics: ServiceMetrics = request.app.state.runtime.metrics
    return metrics.render()
