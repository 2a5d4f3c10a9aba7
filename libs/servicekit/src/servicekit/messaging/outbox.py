"""Writing events: into the outbox, in the same transaction as the state change.

:func:`record_event` only appends the row to the transaction (``session.info``); the
rows are written with one Core ``INSERT`` (several rows in one statement) just before the
session runs its next statement or commits, so a transaction that reads the outbox back
still sees its own events, and nothing is written if it rolls back. An ORM object per
event cost ~0.1 ms to build and more to flush: the outbox is on every write path.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from opentelemetry import propagate
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from contracts import Envelope, Event
from servicekit.messaging.tables import OutboxMessage

#: ``session.info`` key: outbox rows recorded and not yet inserted.
PENDING_KEY = "mk.outbox"
#: ``session.info`` keys: the tables this transaction wrote work into; it changed rows
#: (read by :mod:`servicekit.db` at commit).
WORK_KEY, CHANGED_KEY = "mk.work", "mk.changed"
_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


def record_event(db: AsyncSession | Session, event: Event, *, source: str) -> Envelope:
    """Add ``event`` to the outbox of ``db``'s transaction; returns its envelope.

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
    info = db.info
    pending = info.get(PENDING_KEY)
    if pending is None:
        pending = info[PENDING_KEY] = []
    pending.append(
        {
            "event_id": envelope.id,
            "event_type": envelope.type,
            "topic": event.topic,
            "message_key": event.aggregate_id,
            "envelope": envelope.model_dump_json(),
            "payload": event.model_dump_json(),
            "created_at": datetime.now(UTC),
            "published_at": None,
            "attempts": 0,
            "last_error": None,
        }
    )
    return envelope


def flush_outbox(db: Session, *_args: Any) -> None:
    """Insert the rows :func:`record_event` recorded (a sync ``Session`` hook: before each
    statement the session runs and before its commit, see :mod:`servicekit.db`)."""
    rows = db.info.pop(PENDING_KEY, None)
    if not rows:
        return
    db.connection().execute(_OUTBOX.insert(), rows)
    info = db.info
    info.setdefault(WORK_KEY, set()).add(_OUTBOX.name)
    info[CHANGED_KEY] = True


def discard_outbox(db: Session) -> None:
    """Forget recorded rows (the transaction rolled back)."""
    db.info.pop(PENDING_KEY, None)
