"""``inbox.claim``: the one claim the consumer uses for a batch and for a single record."""

from __future__ import annotations

import uuid

from servicekit.db import Database
from servicekit.messaging import inbox
from servicekit.uow import UnitOfWork


def delivery(event_id: str, offset: int) -> inbox.Delivery:
    return inbox.Delivery(
        event_id=event_id,
        event_type="uk.gov.milton-keynes.test.v1",
        topic="test.thing.v1",
        partition=0,
        offset=offset,
    )


async def test_a_claim_returns_only_events_not_claimed_before_by_the_group(db: Database) -> None:
    a, b, c = (uuid.uuid4().hex for _ in range(3))
    async with UnitOfWork(db, source="test") as uow:
        assert await inbox.claim(uow.db, "group-1", [delivery(a, 1), delivery(b, 2)]) == {a, b}
    async with UnitOfWork(db, source="test") as uow:  # a batch: one new, one seen
        assert await inbox.claim(uow.db, "group-1", [delivery(b, 2), delivery(c, 3)]) == {c}
    async with UnitOfWork(db, source="test") as uow:  # one record, seen
        assert await inbox.claim(uow.db, "group-1", [delivery(a, 1)]) == set()
    async with UnitOfWork(db, source="test") as uow:  # another group has its own inbox
        assert await inbox.claim(uow.db, "group-2", [delivery(a, 1)]) == {a}
    async with UnitOfWork(db, source="test") as uow:
        assert await inbox.claim(uow.db, "group-1", []) == set()


async def test_a_claim_rolled_back_is_no_claim(db: Database) -> None:
    event_id = uuid.uuid4().hex

    class HandlerFailed(Exception):
        pass

    try:
        async with UnitOfWork(db, source="test") as uow:
            assert await inbox.claim(uow.db, "group-1", [delivery(event_id, 1)]) == {event_id}
            raise HandlerFailed
    except HandlerFailed:
        pass
    async with UnitOfWork(db, source="test") as uow:
        assert await inbox.claim(uow.db, "group-1", [delivery(event_id, 1)]) == {event_id}


async def test_a_claim_is_one_statement_whatever_the_batch_and_keeps_a_repeat_once(
    db: Database,
) -> None:
    """One statement a claim, of the same text for every batch size on PostgreSQL (one
    prepared statement; a multi-row VALUES would be a new text, prepared anew, per size);
    an event twice in one batch is claimed once."""
    from sqlalchemy import event

    statements: list[str] = []
    texts: set[str] = set()

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        for size in (1, 3, 7):
            ids = [uuid.uuid4().hex for _ in range(size)]
            batch = [delivery(i, n) for n, i in enumerate(ids)] + [delivery(ids[0], size)]
            async with UnitOfWork(db, source="test") as uow:
                statements.clear()
                assert await inbox.claim(uow.db, "group-1", batch) == set(ids)
                claims = [s for s in statements if "servicekit_inbox" in s]
                if db.is_postgres:
                    assert len(claims) == 1
                    texts.add(claims[0])
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    if db.is_postgres:
        assert len(texts) == 1
