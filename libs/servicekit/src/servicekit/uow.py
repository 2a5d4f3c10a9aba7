"""The unit of work: one transaction per command; events go to the outbox inside it and
everything commits once (no commit inside repository functions)."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, Event
from servicekit.db import Database
from servicekit.messaging.outbox import discard_outbox, record_event


class UnitOfWork:
    session: AsyncSession

    def __init__(self, db: Database, *, source: str) -> None:
        self._db = db
        self.source = source
        self.published: list[Envelope] = []

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._db.sessionmaker()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is not None:
            await self.rollback()
        await self.session.close()

    def publish(self, event: Event) -> Envelope:
        """Record ``event`` in the outbox; it is published only if :meth:`commit` succeeds."""
        envelope = record_event(self.session, event, source=self.source)
        self.published.append(envelope)
        return envelope

    async def commit(self) -> None:
        await self.session.commit()

    async def rollback(self) -> None:
        discard_outbox(self.session.sync_session)  # recorded, perhaps not yet inserted
        await self.session.rollback()
