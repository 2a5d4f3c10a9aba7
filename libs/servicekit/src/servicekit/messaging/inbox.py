"""The inbox: what makes a consumer's effects exactly-once per (consumer group, event id).

:func:`claim` inserts an inbox row for each record, in the transaction its handlers write
in; a row already there means the event was handled before (a re-delivery, or the relay
publishing a batch twice) and it is skipped. The consumer claims a whole batch of records
or a single one with the same function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from servicekit.messaging.tables import InboxMessage


@dataclass(frozen=True)
class Delivery:
    """What the inbox records of a consumed event."""

    event_id: str
    event_type: str
    topic: str
    partition: int
    offset: int


async def claim(db: AsyncSession, consumer_group: str, deliveries: Sequence[Delivery]) -> set[str]:
    """Insert the inbox rows of ``deliveries`` in ``db``'s transaction; returns the event ids
    that were not there before (the events to handle now)."""
    if not deliveries:
        return set()
    now = datetime.now(UTC)
    rows = [
        {
            "consumer_group": consumer_group,
            "event_id": d.event_id,
            "event_type": d.event_type,
            "topic": d.topic,
            "partition": d.partition,
            "offset": d.offset,
            "processed_at": now,
        }
        for d in deliveries
    ]
    is_postgres = db.get_bind().dialect.name == "postgresql"
    insert = pg_insert if is_postgres else sqlite_insert
    # executemany + RETURNING: SQLAlchemy batches it as "insertmanyvalues" with a cached
    # statement, instead of compiling a new multi-row VALUES for every batch size.
    stmt = insert(InboxMessage).on_conflict_do_nothing().returning(col(InboxMessage.event_id))
    result = await db.execute(stmt, rows)
    return {row[0] for row in result if row is not None}
