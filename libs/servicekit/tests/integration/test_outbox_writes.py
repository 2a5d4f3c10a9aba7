"""How events reach the outbox table: with the transaction that recorded them, only."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from contracts.citizen_services import ServicePublished
from servicekit.db import Database
from servicekit.messaging.tables import OutboxMessage
from servicekit.uow import UnitOfWork

SOURCE = "urn:uk-gov-milton-keynes:test"


class Rollback(Exception):
    """Raised to leave a unit of work's block without committing it."""


def published(tag: str, n: int) -> ServicePublished:
    return ServicePublished(
        service_id=uuid.uuid4(),
        service_code=f"{tag}-{n}",
        slug=tag,
        name=f"Service {n}",
        entry_version=n,
        occurred_at=datetime.now(UTC),
    )


async def rows(db: Database, tag: str) -> list[OutboxMessage]:
    async with db.session() as s:
        result = await s.execute(
            sa.select(OutboxMessage)
            .where(OutboxMessage.payload.contains(tag))
            .order_by(OutboxMessage.id)
        )
        return list(result.scalars())


async def test_events_are_written_in_order_at_commit_and_wake_the_relay(
    db: Database, tag: str
) -> None:
    woken: list[str] = []
    db.on_commit(lambda: woken.append("relay"), tables=[OutboxMessage.__tablename__])
    async with UnitOfWork(db, source=SOURCE) as uow:
        envelopes = [uow.publish(published(tag, n)) for n in range(5)]
    # the block ended: committed
    stored = await rows(db, tag)
    assert [r.event_id for r in stored] == [e.id for e in envelopes]
    assert [ServicePublished.from_json(r.payload).entry_version for r in stored] == [0, 1, 2, 3, 4]
    assert all(r.published_at is None and r.attempts == 0 for r in stored)
    assert stored[0].topic == "citizen-services.service.v1"
    assert woken == ["relay"]


async def test_a_transaction_reads_its_own_events_before_commit(db: Database, tag: str) -> None:
    async with UnitOfWork(db, source=SOURCE) as uow:
        uow.publish(published(tag, 1))
        seen = await uow.db.execute(
            sa.select(sa.func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.payload.contains(tag))
        )
        assert seen.scalar_one() == 1
        uow.publish(published(tag, 2))
    assert len(await rows(db, tag)) == 2


async def test_nothing_is_written_when_the_transaction_rolls_back(db: Database, tag: str) -> None:
    woken: list[str] = []
    db.on_commit(lambda: woken.append("relay"), tables=[OutboxMessage.__tablename__])
    with contextlib.suppress(Rollback):
        async with UnitOfWork(db, source=SOURCE) as uow:  # recorded, never flushed
            uow.publish(published(tag, 1))
            raise Rollback
    with contextlib.suppress(Rollback):
        async with UnitOfWork(db, source=SOURCE) as uow:  # flushed by a read, rolled back
            uow.publish(published(tag, 2))
            await uow.db.execute(sa.select(sa.func.count()).select_from(OutboxMessage))
            raise Rollback
    try:
        async with UnitOfWork(db, source=SOURCE) as uow:  # an error leaves the block
            uow.publish(published(tag, 3))
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    async with UnitOfWork(db, source=SOURCE):  # then a commit with no events
        pass
    assert await rows(db, tag) == []
    assert woken == []
