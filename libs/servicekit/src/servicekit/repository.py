"""The base of every service's repositories (``services/<name>/persistence/<thing>.py``).

A repository holds a service's queries, locks and claims on one database session: a unit of
work's (``Repo(uow.db)``, for commands) or a read session's (for queries). Application code
talks only to repositories, so its unit tests pass in-memory fakes with the same methods.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


class Repository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    def add(self, row: Any) -> None:
        """A new row (an ORM object), inserted with the unit of work's next flush."""
        self.db.add(row)

    async def locked(self, model: type[T], row_id: Any) -> T | None:
        """The row as it is in the database now (not as this session last saw it), locked
        until the transaction ends: ``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite
        serialises writers anyway."""
        return await self.db.get(model, row_id, with_for_update=True, populate_existing=True)
