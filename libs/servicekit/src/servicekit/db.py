"""Database setup: SQLite by default (embedded), PostgreSQL by URL; async SQLModel sessions.

SQLite statements run inline on the event loop's thread (:mod:`servicekit.sqlite_inline`:
no driver thread, lock waits are asynchronous sleeps). SQLite runs in WAL mode and every
transaction of the main engine starts with ``BEGIN IMMEDIATE`` so concurrent writers queue
for the lock instead of failing with "database is locked" half-way; ``read_session()`` uses
a second engine in autocommit mode, so reads never wait for the write lock (PostgreSQL's
read engine is autocommit too: no BEGIN/ROLLBACK round trips around a request's reads).

Listeners registered with :meth:`Database.on_commit` run after a commit that wrote work for
them, which is how the outbox relay and delivery workers wake without a slow fixed poll. A
listener names the tables whose new rows are its work (``tables=``); a transaction records
the tables it inserted into (ORM objects added or changed, Core ``INSERT`` statements) and
anything marked with :func:`mark_work`, and its commit wakes only the listeners of those
tables. A worker's own claim (an ``UPDATE``) therefore never wakes it again, and an idle
service sleeps.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
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

from servicekit import readcache, sqlite_inline
from servicekit.messaging import outbox

log = logging.getLogger(__name__)

WORK_KEY = outbox.WORK_KEY


def mark_work(db: Session | AsyncSession, *tables: str) -> None:
    """Say that ``db``'s transaction made work for the listeners of ``tables`` (e.g. an
    ``UPDATE`` that makes a row due again); its commit wakes them."""
    info = db.info
    info.setdefault(WORK_KEY, set()).update(tables)


def _record_inserts(db: Session, _flush_context: Any, _instances: Any) -> None:
    """ORM objects added or changed: their tables have work (a replayed webhook delivery set
    back to pending is work again; the workers' own claims are Core UPDATEs, not counted)."""
    if db.new or db.dirty or db.deleted:
        db.info[CHANGED_KEY] = True
    if db.new or db.dirty:
        work = db.info.setdefault(WORK_KEY, set())
        for obj in (*db.new, *db.dirty):
            table = getattr(type(obj), "__tablename__", None)
            if table:
                work.add(table)


CHANGED_KEY = outbox.CHANGED_KEY


def _record_core_insert(state: Any) -> None:
    outbox.flush_outbox(state.session)  # events recorded so far go in before the statement
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[CHANGED_KEY] = True
    if state.is_insert:
        table = getattr(state.statement, "table", None)
        name = getattr(table, "name", None)
        if name:
            state.session.info.setdefault(WORK_KEY, set()).add(name)


def _forget_work(db: Session, *_args: Any) -> None:
    if not db.in_transaction():  # the whole transaction rolled back: no work was made
        outbox.discard_outbox(db)
        db.info.pop(WORK_KEY, None)
        db.info.pop(CHANGED_KEY, None)


def _notify_change(db: Session) -> None:
    """PostgreSQL: tell every process's read caches, at commit, that rows changed."""
    pending = db.new or db.dirty or db.deleted  # flushed after this hook
    if db.info.get(CHANGED_KEY) or pending:
        db.execute(text(f"SELECT pg_notify('{readcache.CHANNEL}', '')"))


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

    def __init__(
        self, url: str, *, echo: bool = False, pool_size: int = 20, read_caches: bool = False
    ) -> None:
        """``read_caches``: this service uses :meth:`read_cache`. On PostgreSQL every write
        transaction that changes rows then sends a ``NOTIFY`` (a round trip) so the other
        processes' caches empty; without it no read cache holds anything on PostgreSQL."""
        self.url = async_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        # hide_parameters: SQL errors must not carry personal data into logs.
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.is_sqlite:
            database = make_url(self.url).database or ":memory:"
            if database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
                # statements run inline on the loop's thread (servicekit.sqlite_inline);
                # a file database needs no thread per connection, so keep enough of them
                kwargs.update(pool_size=pool_size, max_overflow=pool_size)
            kwargs["async_creator"] = sqlite_inline.connector(database, busy_timeout=30.0)
        else:
            # No pre-ping: it was a round trip on every checkout. A connection the server
            # dropped fails its one request, and SQLAlchemy then refreshes the whole pool.
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        #: For queries that only read: each statement runs in autocommit mode (no BEGIN and
        #: ROLLBACK around a request's reads: on PostgreSQL two round trips fewer, on SQLite
        #: readers never queue behind the write lock, WAL lets them read while a writer
        #: works). Each statement sees its own snapshot; a read that needs one snapshot
        #: across statements uses :meth:`session`.
        if self.is_sqlite:
            self._configure_sqlite(self.engine.sync_engine, immediate=True)
            self.read_engine = create_async_engine(self.url, **kwargs)
            self._configure_sqlite(self.read_engine.sync_engine, immediate=None)
        else:
            self.read_engine = create_async_engine(self.url, isolation_level="AUTOCOMMIT", **kwargs)
        self._commit_listeners: list[tuple[frozenset[str] | None, Callable[[], None]]] = []
        session_class = type("ServiceSession", (Session,), {})
        event.listen(session_class, "before_flush", _record_inserts)
        event.listen(session_class, "do_orm_execute", _record_core_insert)
        event.listen(session_class, "before_commit", outbox.flush_outbox)
        event.listen(session_class, "after_commit", self._after_commit)
        event.listen(session_class, "after_soft_rollback", _forget_work)
        self.read_caches = read_caches
        if self.is_postgres and read_caches:
            event.listen(session_class, "before_commit", _notify_change)
        #: Moves whenever any process commits a change; what read caches are checked with.
        self.changes = readcache.ChangeWatch(self)
        self._read_caches: dict[str, readcache.ReadCache[Any, Any]] = {}
        self.sessionmaker = async_sessionmaker(
            self.engine,
            class_=AsyncSession,
            sync_session_class=session_class,
            expire_on_commit=False,
        )
        self.read_sessionmaker = async_sessionmaker(
            self.read_engine, class_=AsyncSession, expire_on_commit=False
        )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @staticmethod
    def _configure_sqlite(sync_engine: Any, *, immediate: bool | None) -> None:
        """``immediate``: transactions begin IMMEDIATE (True), DEFERRED (False), or not at
        all (None: autocommit, each statement on its own)."""

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when transactions begin.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # 0: waiting for another writer's lock is done by sqlite_inline with
            # asyncio.sleep, never inside SQLite where it would block the event loop
            cursor.execute("PRAGMA busy_timeout=0")
            cursor.close()

        if immediate is None:
            return

        @event.listens_for(sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    def on_commit(
        self, listener: Callable[[], None], *, tables: Iterable[str] | None = None
    ) -> Callable[[], None]:
        """Call ``listener`` after each commit that wrote into one of ``tables`` (inserted a
        row, or :func:`mark_work`); with ``tables=None``, after every commit. Returns a
        function that unregisters it."""
        entry = (frozenset(tables) if tables is not None else None, listener)
        self._commit_listeners.append(entry)
        return lambda: self._commit_listeners.remove(entry)

    def _after_commit(self, db: Session) -> None:
        work: set[str] = db.info.pop(WORK_KEY, None) or set()
        if db.info.pop(CHANGED_KEY, None):
            self.changes.changed_here()  # this process's caches: at once, not on NOTIFY
        for tables, listener in list(self._commit_listeners):
            if tables is not None and tables.isdisjoint(work):
                continue
            try:
                listener()
            except Exception:  # a listener must never break a commit
                log.exception("commit listener failed")

    def committed_outside_session(self, *work: str) -> None:
        """A change was committed without a session (one autocommit statement on a pooled
        driver connection: notifications' Notify accept path): this process's read caches
        are stale, and the listeners of ``work`` (table names, :func:`mark_work` names) run
        as after a session's commit. Other processes' read caches are not told (no
        ``NOTIFY``): a service with read caches on PostgreSQL writes through sessions."""
        self.changes.changed_here()
        for tables, listener in list(self._commit_listeners):
            if tables is None or not tables.isdisjoint(work):
                try:
                    listener()
                except Exception:  # a listener must never break a commit
                    log.exception("commit listener failed")

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as db:
            yield db

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """A session for reading only (never commit through it)."""
        async with self.read_sessionmaker() as db:
            yield db

    def read_cache(self, name: str, *, maxsize: int = 4096) -> readcache.ReadCache[Any, Any]:
        """The process's read cache called ``name`` (made on first use), emptied whenever
        the database changes (:mod:`servicekit.readcache`)."""
        cache = self._read_caches.get(name)
        if cache is None:
            cache = self._read_caches[name] = readcache.ReadCache(self.changes, maxsize=maxsize)
        return cache

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.changes.stop()
        await self.engine.dispose()
        await self.read_engine.dispose()
