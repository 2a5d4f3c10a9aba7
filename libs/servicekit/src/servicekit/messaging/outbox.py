"""Writing events: into the outbox, in the same transaction as the state change."""

from __future__ import annotations

from datetime import UTC, datetime

from opentelemetry import propagate
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, Event
from servicekit.messaging.tables import OutboxMessage


def record_event(session: AsyncSession, event: Event, *, source: str) -> Envelope:
    """Add ``event`` to the outbox of ``session``'s transaction; returns its envelope.

    The current trace context is stored with it, so the relay's publish span and the
    consumer's span continue the trace of the request that caused the event.
    """
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    envelope = Envelope(
        source=source,
        type=event.event_type(),
        subject=event.aggregate_id,
        dataschema=event.dataschema(),
        traceparent=carrier.get("traceparent"),
        tracestate=carrier.get("tracestate"),
    )
    session.add(
        OutboxMessage(
            event_id=envelope.id,
            event_type=envelope.type,
            topic=event.topic,
            message_key=event.aggregate_id,
            envelope=envelope.model_dump_json(),
            payload=event.model_dump_json(),
            created_at=datetime.now(UTC),
        )
    )
    return envelope
