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

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.messaging.tables import InboxMessage
from servicekit.types import UtcDateTime

_T = InboxMessage.__table__  # type: ignore[attr-defined]

#: PostgreSQL: the whole batch in one statement of fixed text (one prepared statement for
#: every batch size: a multi-row ``VALUES`` has a text per size, each prepared anew), the
#: columns as arrays.
_PG_CLAIM = sa.text(
    "INSERT INTO servicekit_inbox"
    ' (consumer_group, event_id, event_type, topic, partition, "offset", processed_at)'
    " SELECT :group, u.e, u.t, u.tp, u.p, u.o, :now"
    " FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:types AS VARCHAR[]),"
    " CAST(:topics AS VARCHAR[]), CAST(:partitions AS INTEGER[]), CAST(:offsets AS BIGINT[]))"
    " AS u(e, t, tp, p, o)"
    " ON CONFLICT DO NOTHING RETURNING event_id"
).bindparams(sa.bindparam("now", type_=UtcDateTime()))
#: SQLite (statements run in-process, no round trips): the Core insert, executemany.
_SQLITE_CLAIM = sqlite_insert(_T).on_conflict_do_nothing().returning(_T.c.event_id)


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
    # On the session's connection (in its transaction): no ORM statement path, no bulk
    # ORM bookkeeping per row; the claim is the transaction's first statement, so the
    # session's before-statement hooks have nothing to do for it.
    conn = await db.connection()
    if conn.dialect.name == "postgresql":
        result = await conn.execute(
            _PG_CLAIM,
            {
                "group": consumer_group,
                "now": now,
                "ids": [d.event_id for d in deliveries],
                "types": [d.event_type for d in deliveries],
                "topics": [d.topic for d in deliveries],
                "partitions": [d.partition for d in deliveries],
                "offsets": [d.offset for d in deliveries],
            },
        )
        return {row[0] for row in result}
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
    result = await conn.execute(_SQLITE_CLAIM, rows)
    return {row[0] for row in result if row is not None}
