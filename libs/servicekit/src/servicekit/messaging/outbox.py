"""Writing events: into the outbox, in the same transaction as the state change.

:func:`record_event` only appends the row to the transaction (``session.info``); the
rows are written with one Core ``INSERT`` (several rows in one statement) just before the
session runs its next statement or commits, so a transaction that reads the outbox back
still sees its own events, and nothing is written if it rolls back. An ORM object per
event cost ~0.1 ms to build and more to flush: the outbox is on every write path.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
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


_random = b""


def _forget_random() -> None:
    global _random
    _random = b""  # a forked child must not hand out its parent's ids


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_random)


def new_event_id() -> str:
    """A random (version 4) UUID as text, as ``str(uuid.uuid4())`` but from random bytes
    read 256 ids at a time (one ``getrandom`` call instead of one an event)."""
    global _random
    if not _random:
        _random = os.urandom(16 * 256)
    b, _random = bytearray(_random[:16]), _random[16:]
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def record_event(db: AsyncSession | Session, event: Event, *, source: str) -> Envelope:
    """Add ``event`` to the outbox of ``db``'s transaction; returns its envelope.

    The current trace context (W3C ``traceparent`` / ``tracestate``, which is what the
    envelope carries) is stored with it, so the relay's publish span and the consumer's span
    continue the trace of the request that caused the event. The trace context is read from
    the current span directly (the global propagators wrote baggage too, which the envelope
    does not carry) and the id comes from :func:`new_event_id`: with ``uuid.uuid4`` they were
    over half the cost of an event here.
    """
    span_context = trace.get_current_span().get_span_context()
    traceparent = tracestate = None
    if span_context.is_valid:
        traceparent = (
            f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
            f"-{span_context.trace_flags:02x}"
        )
        tracestate = span_context.trace_state.to_header() or None
    key = event.aggregate_id
    cls = type(event)
    envelope = Envelope(
        id=new_event_id(),
        source=source,
        type=cls.event_type(),
        time=datetime.now(UTC),
        subject=key,
        dataschema=cls.dataschema(),
        traceparent=traceparent,
        tracestate=tracestate,
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
            "message_key": key,
            "envelope": envelope.model_dump_json(),
            "payload": event.model_dump_json(),
            "created_at": envelope.time,
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
