"""SQLite driven on the event loop's own thread, behind SQLAlchemy's aiosqlite dialect.

Why: aiosqlite runs every call (cursor, execute, fetch, close, begin, commit) on a
connection thread and hands the result back through the loop; a primary-key read is half a
dozen thread hand-offs and GIL switches. Measured on this project's 2-core machine, one read
cost ~0.5 ms through aiosqlite and ~3 ms through SQLAlchemy over it, against ~50 µs for the
same statement on ``sqlite3`` directly, and a catalogue entry served ~150 requests/s. A
SQLite statement on a local file is shorter than one such hand-off, so this module runs it
inline instead: the connection objects below speak the small part of aiosqlite's API that
SQLAlchemy's dialect uses (``create_async_engine(..., async_creator=connector(...))``), and
each call is a plain ``sqlite3`` call.

The one thing that may not run inline is waiting for another writer's lock: blocking in
SQLite's busy handler would stop the whole event loop. So the connection's own busy timeout
is 0 and a ``database is locked`` / ``busy`` error is retried here with ``asyncio.sleep``
back-off (other requests keep running meanwhile) until ``busy_timeout`` seconds have passed,
when the error is raised as before. Retrying is safe because SQLite reports busy before the
statement changed anything (``BEGIN IMMEDIATE`` waiting for the write lock, or a read
meeting a checkpoint).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

#: First and longest sleep between tries of a statement that met another writer's lock.
_BACKOFF_FIRST = 0.0005
_BACKOFF_MAX = 0.02


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "database is locked" in text or "database is busy" in text


async def _retry_busy(call: Callable[[], Any], deadline: float) -> Any:
    delay = _BACKOFF_FIRST
    while True:
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, _BACKOFF_MAX)


class InlineCursor:
    """The awaitable cursor SQLAlchemy's aiosqlite dialect drives."""

    __slots__ = ("_busy_timeout", "_cursor")

    def __init__(self, cursor: sqlite3.Cursor, busy_timeout: float) -> None:
        self._cursor = cursor
        self._busy_timeout = busy_timeout

    async def execute(
        self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()
    ) -> InlineCursor:
        await self._run(lambda: self._cursor.execute(sql, parameters))
        return self

    async def executemany(self, sql: str, seq: Iterable[Any]) -> InlineCursor:
        rows = list(seq)
        await self._run(lambda: self._cursor.executemany(sql, rows))
        return self

    async def _run(self, call: Callable[[], Any]) -> None:
        """``call`` at once; if another writer holds the lock, again after async sleeps."""
        try:
            call()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            await _retry_busy(call, time.monotonic() + self._busy_timeout)

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _ImmediateQueue:
    """SQLAlchemy sets ``isolation_level`` by queueing a call on aiosqlite's thread queue;
    here the call runs at once."""

    __slots__ = ()

    @staticmethod
    def put_nowait(item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:
            if future is not None:
                future.set_exception(exc)
            return
        if future is not None:
            future.set_result(result)


class InlineConnection:
    """The awaitable connection SQLAlchemy's aiosqlite dialect drives."""

    _tx = _ImmediateQueue()

    def __init__(self, conn: sqlite3.Connection, busy_timeout: float) -> None:
        self._conn = conn
        self._busy_timeout = busy_timeout

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    async def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor(), self._busy_timeout)

    async def execute(
        self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()
    ) -> InlineCursor:
        cursor = await self.cursor()
        return await cursor.execute(sql, parameters)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def commit(self) -> None:
        try:
            self._conn.commit()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            await _retry_busy(self._conn.commit, time.monotonic() + self._busy_timeout)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()

    def stop(self) -> None:
        self._conn.close()


def connector(
    database: str, *, busy_timeout: float = 30.0
) -> Callable[[], Awaitable[InlineConnection]]:
    """``async_creator`` for ``create_async_engine("sqlite+aiosqlite://...")``."""

    async def connect() -> InlineConnection:
        # timeout=0: never block the loop in SQLite's busy handler; InlineCursor retries.
        # check_same_thread=False: SQLAlchemy may close a pooled connection from a GC
        # finaliser; every use is still on the loop's thread.
        conn = sqlite3.connect(
            database,
            timeout=0,
            isolation_level=None,
            check_same_thread=False,
            uri=database.startswith("file:"),
        )
        return InlineConnection(conn, busy_timeout)

    return connect
