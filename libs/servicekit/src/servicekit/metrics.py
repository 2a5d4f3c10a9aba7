"""Prometheus figures for one service: HTTP requests, consumer lag, outbox backlog.

Each app gets its own registry so several services can live in one test process.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ServiceMetrics:
    def __init__(self, service_name: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = {"service": service_name}
        r = self.registry
        self.http_requests = Counter(
            "http_requests_total", "HTTP requests handled", ["method", "route", "status"],
            registry=r).labels
        self.http_duration = Histogram(
            "http_request_duration_seconds", "HTTP request duration", ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r)
        self.outbox_backlog = Gauge(
            "outbox_backlog", "Outbox messages not yet acknowledged by Kafka",
            registry=r)
        self.events_published = Counter(
            "outbox_events_published_total", "Events published from the outbox", registry=r)
        self.consumer_lag = Gauge(
            "kafka_consumer_lag", "Records behind the partition's high watermark",
            ["group", "topic", "partition"], registry=r)
        self.events_consumed = Counter(
            "kafka_events_consumed_total", "Records consumed, by outcome",
            ["group", "topic", "outcome"], registry=r)
        self.dead_lettered = Counter(
            "kafka_events_dead_lettered_total", "Records sent to a dead-letter topic",
            ["group", "topic", "reason"], registry=r)
        self.info = Gauge("service_info", "Service identity", list(labels), registry=r)
        self.info.labels(**labels).set(1)

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Pure ASGI middleware counting requests by route template (not raw path)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = _route_template(scope)
            method = scope.get("method", "GET")
            self.metrics.http_requests(method, route, str(status)).inc()
            self.metrics.http_duration.labels(method, route).observe(time.perf_counter() - start)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


async def metrics_endpoint(request: Request) -> Response:
    metrics: ServiceMetrics = request.app.state.runtime.metrics
    return metrics.render()


class RequestIdMiddleware:
    """Puts the request's X-Request-ID (from the gateway) into every log line of it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from servicekit.telemetry import request_id_var

        value = next((v.decode("latin-1") for k, v in scope["headers"]
                      if k == b"x-request-id"), None)
        token = request_id_var.set(value[:200] if value else None)
        try:
            await self.app(scope, receive, send)
        finally:
            request_id_var.reset(token)
