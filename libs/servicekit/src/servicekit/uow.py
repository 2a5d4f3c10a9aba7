"""The unit of work: one transaction per command, and the one place that commits.

    async with UnitOfWork(database, source=settings.cloudevents_source) as uow:
        uow.db.add(thing)                    # uow.db: the transaction's AsyncSession
        uow.publish(ThingCreated(...))       # into the outbox, in the same transaction
    # the block ended without an exception: committed (and the relay woken);
    # an exception: rolled back, nothing published

Commands (``application/``) take a ``uow`` and never commit: the API's ``UowDep``, the
consumer (one unit of work per batch of records, see :mod:`servicekit.messaging.consumer`)
and the background workers open it and it commits when they are done — as eShop's
``TransactionBehavior`` does around each command. A command that must turn a constraint
violation into a domain error calls :meth:`flush` inside ``try``/``except IntegrityError``:
the database checks the row then, not only at the commit.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, Event
from servicekit.db import Database
from servicekit.messaging.outbox import discard_outbox, record_event


class UnitOfWork:
    #: The transaction's database session (named ``db`` everywhere: "session" is a
    #: programme's session in the inclusion service).
    db: AsyncSession

    def __init__(self, database: Database, *, source: str) -> None:
        self._database = database
        self.source = source

    async def __aenter__(self) -> UnitOfWork:
        self.db = self._database.sessionmaker()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                await self.db.commit()
            else:
                discard_outbox(self.db.sync_session)  # recorded, perhaps not yet inserted
                await self.db.rollback()
        finally:
            await self.db.close()

    def publish(self, event: Event) -> Envelope:
        """Record ``event`` in the outbox; it is published only if the unit of work commits."""
        return record_event(self.db, event, source=self.source)

    async def flush(self) -> None:
        """Send what is pending to the database now (its constraints are checked here)."""
        await self.db.flush()
