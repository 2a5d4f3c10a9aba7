"""FastAPI dependency aliases shared by every service (``UowDep``, ``ReadDbDep``...).

``UowDep`` is a unit of work that commits when the endpoint returns without an exception
(before the response is sent: the dependency's scope is the endpoint function), so a
command never commits and an error after it rolls everything back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import Database
from servicekit.uow import UnitOfWork


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.runtime.database
    return database


async def get_read_db(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.runtime.database.read_session() as db:
        yield db


async def get_uow(request: Request) -> AsyncIterator[UnitOfWork]:
    runtime = request.app.state.runtime
    async with UnitOfWork(runtime.database, source=runtime.settings.cloudevents_source) as uow:
        yield uow


#: The service's database, for handlers that open read sessions only when they need one
#: (e.g. after a :meth:`Database.read_cache` miss).
DatabaseDep = Annotated[Database, Depends(get_database)]
#: For GET handlers: never waits for SQLite's write lock; do not write through it.
ReadDbDep = Annotated[AsyncSession, Depends(get_read_db)]
UowDep = Annotated[UnitOfWork, Depends(get_uow, scope="function")]
