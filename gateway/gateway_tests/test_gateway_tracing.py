"""The gateway's server span (``proxy._ServerSpan``, a lighter ``start_as_current_span``):
with an exporter configured it is recorded with its attributes and ended, it is the parent
named in the ``traceparent`` sent upstream, and it continues the caller's sampled trace."""

from __future__ import annotations

from pathlib import Path

import httpx
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gateway.config import GatewaySettings
from gateway.main import create_app
from servicekit.testing import running_app

from .conftest import Upstream, closed_url, gateway_kwargs


async def test_the_server_span_is_recorded_and_is_the_upstreams_parent(
    upstreams: dict[str, tuple[Upstream, str]], tmp_path: Path
) -> None:
    app = create_app(
        GatewaySettings(
            citizen_services_url=upstreams["citizen-services"][1],
            notifications_url=upstreams["notifications"][1],
            inclusion_url=closed_url(),
        ),
        **gateway_kwargs(tmp_path),
    )
    exporter = InMemorySpanExporter()
    app.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_id, caller_span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    async with running_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        with suppress_http_instrumentation():
            r = await client.get(
                "/api/v1/services/x",
                headers={
                    "X-Request-ID": "req-span",
                    "traceparent": f"00-{trace_id}-{caller_span}-01",
                },
            )
    assert r.status_code == 200
    [span] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert span.name == "GET /api/v1/services"
    assert span.end_time is not None
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "url.path": "/api/v1/services/x",
        "gateway.upstream": "citizen-services",
        "http.request_id": "req-span",
        "http.response.status_code": 200,
    }
    assert span.parent is not None and f"{span.parent.span_id:016x}" == caller_span
    [sent] = [v for k, v in r.json()["headers"] if k == "traceparent"]
    assert sent == f"00-{trace_id}-{span.context.span_id:016x}-01"
