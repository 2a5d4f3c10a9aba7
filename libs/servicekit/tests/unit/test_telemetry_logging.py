"""``JsonFormatter``: one JSON object per line, trace ids inside a span, personal data scrubbed."""

from __future__ import annotations

import json
import logging
import sys

from opentelemetry.sdk.trace import TracerProvider

from servicekit.telemetry import JsonFormatter


def record(msg: str, *args: object, exc_info=None, **extra: object) -> logging.LogRecord:  # type: ignore[no-untyped-def]
    logger = logging.getLogger("notifications.test")
    return logger.makeRecord(
        logger.name, logging.WARNING, __file__, 10, msg, args, exc_info, extra=extra or None
    )


def test_inside_a_span_the_trace_and_span_ids_are_included() -> None:
    tracer = TracerProvider().get_tracer("test")
    fmt = JsonFormatter("notifications")
    with tracer.start_as_current_span("work") as span:
        line = fmt.format(record("handled %d events", 3))
    ctx = span.get_span_context()
    entry = json.loads(line)
    assert entry["trace_id"] == format(ctx.trace_id, "032x")
    assert entry["span_id"] == format(ctx.span_id, "016x")
    assert entry["message"] == "handled 3 events"
    assert entry["level"] == "warning"
    assert entry["logger"] == "notifications.test"
    assert entry["service"] == "notifications"
    assert entry["time"].endswith("+00:00")
    assert "\n" not in line


def test_outside_a_span_there_is_no_trace_id() -> None:
    entry = json.loads(JsonFormatter("svc").format(record("idle")))
    assert "trace_id" not in entry and "span_id" not in entry


def test_personal_data_is_scrubbed_from_message_extras_and_exceptions() -> None:
    try:
        raise ValueError("bounced: jo.bloggs@example.com")
    except ValueError:
        exc_info = sys.exc_info()
    line = JsonFormatter("svc").format(
        record(
            "email to %s failed, call %s",
            "jo.bloggs@example.com",
            "07700 900123",
            exc_info=exc_info,
            recipient="jo.bloggs@example.com",
            attempts=3,
        )
    )
    assert "jo.bloggs" not in line and "900123" not in line
    entry = json.loads(line)
    assert entry["message"] == "email to [email] failed, call [phone]"
    assert entry["recipient"] == "[email]"
    assert entry["attempts"] == 3
    assert "ValueError: bounced: [email]" in entry["exception"]
