"""Locks shared by every process of one service (several workers, or several replicas).

* :func:`exclusive` — wait for, hold and release a named lock: start-up work that must run
  once at a time (migrations, seed data), whatever the number of processes starting.
* :class:`Leadership` — a named lock held for as long as the process runs: the one process
  that may do something (the outbox relay publishes from one process per service, so the
  order of each aggregate's events is kept). It is tried without waiting; a process that
  does not hold it tries again on its next pass. When the holder dies the operating system
  (SQLite: ``flock`` on a file beside the database) or PostgreSQL (an advisory lock of the
  holder's session, released when its connection closes) lets go at once, and another
  process takes over on its next try.

SQLite in memory has one process by definition: every lock is granted.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from servicekit.db import Database

log = logging.getLogger(__name__)


def _lock_path(database: Database, name: str) -> str | None:
    filename = make_url(database.url).database
    if not filename or filename == ":memory:":
        return None
    return f"{filename}.{name}.lock"


def _advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` from the lock's name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _pg_dsn(database: Database) -> str:
    return make_url(database.url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def exclusive(database: Database, name: str, *, poll: float = 0.05) -> AsyncIterator[None]:
    """Hold the lock ``name`` across this service's processes for the block."""
    if database.is_postgres:
        import asyncpg

        conn = await asyncpg.connect(_pg_dsn(database))
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", _advisory_key(name))
            yield
        finally:
            await conn.close()
        return
    path = _lock_path(database, name)
    if path is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(poll)
        yield
    finally:
        os.close(fd)  # closing releases the flock


class Leadership:
    """A named lock this process may hold for its lifetime (see the module docs)."""

    def __init__(self, database: Database, name: str) -> None:
        self.database = database
        self.name = name
        self._fd: int | None = None
        self._conn: Any = None
        self._lost = False

    @property
    def held(self) -> bool:
        if self.database.is_postgres:
            return self._conn is not None and not self._lost and not self._conn.is_closed()
        return self._fd is not None or _lock_path(self.database, self.name) is None

    async def acquire(self) -> bool:
        """Take the lock if it is free; True while this process holds it."""
        if self.held:
            return True
        if self.database.is_postgres:
            return await self._acquire_pg()
        path = _lock_path(self.database, self.name)
        if path is None:
            return True
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        log.info("%s: this process leads", self.name)
        return True

    async def _acquire_pg(self) -> bool:
        import asyncpg

        await self.release()
        try:
            conn = await asyncpg.connect(_pg_dsn(self.database))
        except (OSError, asyncpg.PostgresError):
            return False
        try:
            got = await conn.fetchval("SELECT pg_try_advisory_lock($1)", _advisory_key(self.name))
        except Exception:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        self._lost = False
        conn.add_termination_listener(self._on_lost)
        self._conn = conn
        log.info("%s: this process leads", self.name)
        return True

    def _on_lost(self, _conn: Any) -> None:
        self._lost = True
        log.warning("%s: lost the lock's connection; no longer leading", self.name)

    async def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)
