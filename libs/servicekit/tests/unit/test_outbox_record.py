"""``record_event``: the envelope it stores (ids, trace context), without a database."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

from opentelemetry import context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from contracts import Envelope
from contracts.citizen_services import ServicePublished
from servicekit.messaging.outbox import PENDING_KEY, new_event_id, record_event


class _Db:
    def __init__(self) -> None:
        self.info: dict[str, object] = {}


def _event() -> ServicePublished:
    return ServicePublished(
        service_id=uuid.uuid4(),
        service_code="c-1",
        slug="s",
        name="Service",
        entry_version=1,
        occurred_at=datetime.now(UTC),
    )


def test_event_ids_are_distinct_version_4_uuids_and_a_forked_child_makes_its_own() -> None:
    ids = [new_event_id() for _ in range(1000)]  # several refills of the random buffer
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == value
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids must not be the parent's
        os.write(write, "".join(new_event_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 1000).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child != "".join(new_event_id() for _ in range(3))


def test_the_envelope_carries_the_current_trace_context_or_none() -> None:
    db = _Db()
    event = _event()
    plain = record_event(db, event, source="urn:test")  # type: ignore[arg-type]
    assert plain.traceparent is None and plain.tracestate is None
    span = SpanContext(
        trace_id=0xABC << 64 | 0x1,
        span_id=0x2,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("mk", "1")]),
    )
    token = context.attach(trace.set_span_in_context(NonRecordingSpan(span)))
    try:
        traced = record_event(db, event, source="urn:test")  # type: ignore[arg-type]
    finally:
        context.detach(token)
    assert traced.traceparent == f"00-{span.trace_id:032x}-{span.span_id:016x}-01"
    assert traced.tracestate == "mk=1"
    rows = db.info[PENDING_KEY]
    assert isinstance(rows, list) and len(rows) == 2
    stored = Envelope.model_validate_json(rows[1]["envelope"])
    assert stored == traced
    assert rows[1]["event_id"] == traced.id and rows[1]["message_key"] == event.aggregate_id
    assert rows[1]["created_at"] == traced.time and traced.subject == event.aggregate_id
    assert traced.dataschema == ServicePublished.dataschema()
