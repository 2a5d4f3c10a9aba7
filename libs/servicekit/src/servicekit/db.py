"""Database setup: SQLite by default (embedded), PostgreSQL by URL; async SQLModel sessions.

SQLite runs in WAL mode and every transaction of the main engine starts with
``BEGIN IMMEDIATE`` so concurrent writers queue on the busy timeout instead of failing with
"database is locked" half-way; ``read_session()`` uses a second engine whose transactions
begin DEFERRED, so reads never wait for the write lock.
Listeners registered with :meth:`Database.on_commit` run after every commit, which is how the
outbox relay and delivery workers wake without a slow fixed poll.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


def async_url(url: str) -> str:
    """Map a plain URL onto the async driver: sqlite -> aiosqlite, postgresql -> asyncpg."""
    u = make_url(url)
    if u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    elif u.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+asyncpg")
    return u.render_as_string(hide_password=False)


class Database:
    """One engine and session factory per service process."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 20) -> None:
        self.url = async_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        # hide_parameters: SQL errors must not carry personal data into logs.
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.is_sqlite:
            database = make_url(self.url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        #: For queries that only read. On SQLite its transactions begin DEFERRED, so readers
        #: do not queue behind the write lock (WAL lets them read while a writer works).
        self.read_engine: AsyncEngine = self.engine
        if self.is_sqlite:
            self._configure_sqlite(self.engine.sync_engine, immediate=True)
            self.read_engine = create_async_engine(self.url, **kwargs)
            self._configure_sqlite(self.read_engine.sync_engine, immediate=False)
        self._commit_listeners: list[Callable[[], None]] = []
        session_class = type("ServiceSession", (Session,), {})
        event.listen(session_class, "after_commit", self._after_commit)
        self.sessionmaker = async_sessionmaker(
            self.engine, class_=AsyncSession, sync_session_class=session_class,
            expire_on_commit=False,
        )
        self.read_sessionmaker = async_sessionmaker(
            self.read_engine, class_=AsyncSession, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @staticmethod
    def _configure_sqlite(sync_engine: Any, *, immediate: bool) -> None:
        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when transactions begin.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    def on_commit(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` after each commit; returns a function that unregisters it."""
        self._commit_listeners.append(listener)
        return lambda: self._commit_listeners.remove(listener)

    def _after_commit(self, _session: Session) -> None:
        for listener in list(self._commit_listeners):
            try:
                listener()
            except Exception:  # a listener must never break a commit
                log.exception("commit listener failed")

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """A session for reading only (never commit through it)."""
        async with self.read_sessionmaker() as session:
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
