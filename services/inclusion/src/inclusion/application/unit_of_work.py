"""inclusion's unit of work: servicekit's (one transaction, the outbox; whoever opened it
commits it) with the service's repositories on it, as cosmicpython's ``uow.products``.

Commands take ``uow: InclusionUnitOfWork`` and never commit; queries take
``repos: Repositories`` (a read session's, or a unit of work's). The API builds them in
``api/deps.py``, the consumer's handlers from ``ctx.uow``, background jobs with
:class:`Transactions`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from contracts import Event
from inclusion.persistence.repositories import Repositories
from servicekit.db import Database
from servicekit.uow import UnitOfWork


class InclusionUnitOfWork(Repositories):
    def __init__(self, uow: UnitOfWork) -> None:
        super().__init__(uow.db)
        self._uow = uow

    def publish(self, event: Event) -> None:
        """Record ``event`` in the outbox; published only if the unit of work commits."""
        self._uow.publish(event)

    async def flush(self) -> None:
        """Send what is pending now, so a constraint violation surfaces inside the command."""
        await self._uow.flush()


class Transactions:
    """Units of work and read sessions on one database, for background jobs and the seed:
    each ``async with transactions.unit_of_work() as uow`` block commits when it ends."""

    def __init__(self, database: Database, *, source: str) -> None:
        self.database, self.source = database, source

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[InclusionUnitOfWork]:
        async with UnitOfWork(self.database, source=self.source) as uow:
            yield InclusionUnitOfWork(uow)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Repositories]:
        async with self.database.read_session() as db:
            yield Repositories(db)
