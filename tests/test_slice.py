"""The thin slice, real end to end: staff publish a service through the gateway ->
ServicePublished through the outbox and Kafka -> notifications emails the staff address
through SMTP -> the sink stores it. One trace runs from the HTTP request to the consumer."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from mkinfra.smtp_sink import SmtpSink
from servicekit.testing import eventually

from .conftest import Platform

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def test_publish_through_gateway_emails_staff_in_one_trace(
    platform: Platform, smtp_sink: SmtpSink
) -> None:
    spans = InMemorySpanExporter()
    for app in platform.apps.values():
        app.state.runtime.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    platform.gateway.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    async with httpx.AsyncClient(
        base_url=platform.gateway_url, headers=platform.bearer("STAFF_TOKEN")
    ) as client:
        tag = uuid.uuid4().hex[:10]
        created = await client.post(
            "/api/v1/services",
            json={
                "name": f"Report a pothole {tag}",
                "keywords": ["roads", "potholes"],
                "groups": ["Roads and transport"],
            },
        )
        assert created.status_code == 201, created.text
        assert created.headers["x-request-id"]
        service_id = created.json()["id"]
        started = time.monotonic()
        published = await client.post(f"/api/v1/services/{service_id}/publish")
        assert published.status_code == 200, published.text
        assert published.json()["status"] == "published"

        async def arrived() -> list:
            return [m for m in smtp_sink.messages() if tag in str(m["Subject"])]

        [email] = await eventually(arrived, timeout=15, message="no email in the sink")
        elapsed = time.monotonic() - started
        assert email["To"] == "digital-team@milton-keynes.example"
        assert "Report a pothole" in email.get_body(("plain",)).get_content()
        assert elapsed < 5, f"email took {elapsed:.2f}s"

        health = (await client.get("/health")).json()
        assert {s["status"] for s in health["services"].values()} == {"ok"}

    finished = spans.get_finished_spans()
    publish_request = [
        s
        for s in finished
        if s.kind == SpanKind.SERVER
        and s.instrumentation_scope.name == "gateway"
        and str(s.attributes.get("url.path", "")).endswith("/publish")
    ]
    assert publish_request, "no gateway span for the publish request"
    trace_id = publish_request[0].context.trace_id
    in_trace = [s for s in finished if s.context.trace_id == trace_id]
    kinds = {(s.kind, s.instrumentation_scope.name) for s in in_trace}
    assert (SpanKind.PRODUCER, "servicekit.outbox") in kinds
    assert (SpanKind.CONSUMER, "servicekit.consumer") in kinds, (
        "the consumer's span is not in the HTTP request's trace"
    )
    assert any(
        s.kind == SpanKind.SERVER and "servicekit.http" in s.instrumentation_scope.name
        for s in in_trace
    )
