"""FastAPI dependency aliases shared by every service (``SessionDep``, ``UowDep``...)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import Database
from servicekit.uow import UnitOfWork


def get_runtime(request: Request) -> Any:
    return request.app.state.runtime


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.runtime.db
    return db


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.runtime.db.session() as session:
        yield session


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.runtime.db.read_session() as session:
        yield session


async def get_uow(request: Request) -> AsyncIterator[UnitOfWork]:
    runtime = request.app.state.runtime
    async with UnitOfWork(runtime.db, source=runtime.settings.cloudevents_source) as uow:
        yield uow


#: The service's database, for handlers that open read sessions only when they need one
#: (e.g. after a :meth:`Database.read_cache` miss).
DatabaseDep = Annotated[Database, Depends(get_db)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
#: For GET handlers: never waits for SQLite's write lock; do not write through it.
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]
UowDep = Annotated[UnitOfWork, Depends(get_uow)]
