"""The gateway's Prometheus figures (``/metrics``) and its JSON access log.

Per request: ``http_requests_total{method,route,status}`` and
``http_request_duration_seconds{method,route}`` (the names the services use; ``route`` is the
routing table's prefix or the gateway's own path, never the raw path),
``gateway_requests_in_flight``, and ``gateway_rate_limited_total{limit_class}`` for each 429.
Per attempt upstream: ``gateway_upstream_requests_total{upstream,replica,outcome}``. Read
when scraped (nothing on the hot path): each replica's ``gateway_upstream_breaker_state``
(1 for its current state), ``gateway_upstream_replica_in_rotation``,
``gateway_upstream_replica_outstanding``, and each service's queue
(``gateway_upstream_queue_in_flight``, ``gateway_upstream_queue_waiting``).

``/metrics`` is not in the public route table: it is answered only to a socket peer in
``GATEWAY_METRICS_ALLOW_FROM`` (default loopback) whose request came through no proxy (no
``X-Forwarded-For``); anyone else gets the 404 of an unknown path.

The access log (:class:`AccessLog`): one JSON line per request on stderr, in the shape of
every other log line (``logger``: ``gateway.access``; method, route, status, duration,
upstream, replica, request and trace ids), no query string, no header, no client address.
It is written whatever ``GATEWAY_LOG_LEVEL`` says; ``GATEWAY_ACCESS_LOG=false`` turns it off.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Collection, Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from gateway.balancer import ReplicaPool
from gateway.breaker import BreakerState
from gateway.proxy import Exchange, Outcome
from servicekit.redact import scrub

#: Methods counted by name; any other is ``other`` (a client picks the method: the label's
#: values must stay few).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CONTENT_TYPE = CONTENT_TYPE_LATEST.encode()


class _Pools(Collector):
    """Replica and queue state, read at scrape time."""

    def __init__(self, pools: Collection[ReplicaPool]) -> None:
        self.pools = pools

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "gateway_upstream_breaker_state",
            "Circuit breaker state of each upstream replica (1 for its current state)",
            labels=["upstream", "replica", "state"],
        )
        rotation = GaugeMetricFamily(
            "gateway_upstream_replica_in_rotation",
            "1 while the replica passes its active health check (or is not checked)",
            labels=["upstream", "replica"],
        )
        outstanding = GaugeMetricFamily(
            "gateway_upstream_replica_outstanding",
            "Requests in flight to the replica from this process",
            labels=["upstream", "replica"],
        )
        in_flight = GaugeMetricFamily(
            "gateway_upstream_queue_in_flight",
            "Requests holding a slot of the service's bounded queue",
            labels=["upstream"],
        )
        waiting = GaugeMetricFamily(
            "gateway_upstream_queue_waiting",
            "Requests waiting for a slot of the service's bounded queue",
            labels=["upstream"],
        )
        for pool in self.pools:
            for r in pool.replicas:
                current = r.breaker.state
                for s in BreakerState:
                    state.add_metric([pool.name, r.label, s.value], float(s is current))
                rotation.add_metric([pool.name, r.label], float(r.in_rotation))
                outstanding.add_metric([pool.name, r.label], r.outstanding)
            in_flight.add_metric([pool.name], pool.queue.in_flight)
            waiting.add_metric([pool.name], pool.queue.waiting)
        yield from (state, rotation, outstanding, in_flight, waiting)


class GatewayMetrics:
    def __init__(self, pools: Collection[ReplicaPool], service_name: str = "gateway") -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "http_requests_total",
            "HTTP requests handled",
            ["method", "route", "status"],
            registry=r,
        )
        self._duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request duration",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.in_flight = Gauge(
            "gateway_requests_in_flight", "Requests the gateway is handling", registry=r
        )
        self._rate_limited = Counter(
            "gateway_rate_limited_total",
            "Requests refused 429 by a rate limit",
            ["limit_class"],
            registry=r,
        )
        self._attempts = Counter(
            "gateway_upstream_requests_total",
            "Attempts upstream, by replica and outcome",
            ["upstream", "replica", "outcome"],
            registry=r,
        )
        Gauge("service_info", "Service identity", ["service"], registry=r).labels(service_name).set(
            1
        )
        r.register(_Pools(pools))
        # label children looked up once each (labels() takes a lock and builds a tuple)
        self._request_children: dict[tuple[str, str, int], Counter] = {}
        self._duration_children: dict[tuple[str, str], Histogram] = {}

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in METHODS:
            method = "other"
        counter = self._request_children.get((method, route, status))
        if counter is None:
            counter = self._request_children[(method, route, status)] = self._requests.labels(
                method, route, str(status)
            )
        counter.inc()
        histogram = self._duration_children.get((method, route))
        if histogram is None:
            histogram = self._duration_children[(method, route)] = self._duration.labels(
                method, route
            )
        histogram.observe(seconds)

    def rate_limited(self, limit_class: str) -> None:
        self._rate_limited.labels(limit_class).inc()

    def attempt(self, upstream: str, replica: str, outcome: Outcome) -> None:
        self._attempts.labels(upstream, replica, outcome.value).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class AccessLog:
    """Writes the access lines itself, in ``servicekit.telemetry.JsonFormatter``'s shape:
    through ``logging`` a line cost ~60 µs of the gateway's time per request (a LogRecord,
    the formatter scrubbing every field, a write to stderr each). Here a line is formatted
    directly and lines are written together, at most ``FLUSH_SECONDS`` later (or every
    ``FLUSH_LINES``; and when the gateway stops). Every value but the request id (the
    client's ``X-Request-ID``, scrubbed like in every log line) is the gateway's own."""

    FLUSH_SECONDS = 0.2
    FLUSH_LINES = 256

    def __init__(self, service_name: str) -> None:
        self.service_name = service_name
        self._pending: list[str] = []

    def flush(self) -> None:
        if self._pending:
            lines, self._pending = self._pending, []
            sys.stderr.write("".join(lines))

    def write(
        self,
        method: str,
        route: str,
        request_id: str,
        exchange: Exchange,
        seconds: float,
    ) -> None:
        method = method if method in METHODS else "other"
        duration_ms = round(seconds * 1000, 2)
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="milliseconds"),
            "level": "info",
            "logger": "gateway.access",
            "message": f"{method} {route} {exchange.status} {duration_ms:.1f} ms",
            "service": self.service_name,
            "request_id": scrub(request_id),
            "method": method,
            "route": route,
            "status": exchange.status,
            "duration_ms": duration_ms,
        }
        if exchange.replica is not None:
            entry["upstream"] = exchange.upstream
            entry["replica"] = exchange.replica
        if exchange.trace_id:
            entry["trace_id"] = format(exchange.trace_id, "032x")
        pending = self._pending
        pending.append(json.dumps(entry) + "\n")
        if len(pending) == 1:
            asyncio.get_running_loop().call_later(self.FLUSH_SECONDS, self.flush)
        elif len(pending) >= self.FLUSH_LINES:
            self.flush()
