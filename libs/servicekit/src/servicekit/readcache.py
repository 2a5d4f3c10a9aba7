"""A per-process cache of derived reads, emptied whenever the service's database changes.

Reading a catalogue entry costs a pooled connection, a statement and a model built from
the row; the same entry is read far more often than it changes. ``ReadCache`` keeps what a
read derived (e.g. an entry's public JSON and its version) and drops all of it the moment
any process commits a change to the database, so nothing stale is served after the commit
is visible:

* **SQLite**: a dedicated read-only connection asks ``PRAGMA data_version`` on each lookup
  (microseconds); SQLite changes it whenever any other connection, in any process, has
  committed.
* **PostgreSQL**: every write transaction of :class:`~servicekit.db.Database` that changed
  rows sends ``NOTIFY servicekit_changed`` (delivered at commit); one listening connection
  per process bumps the generation. While that connection is down the cache is bypassed
  (every lookup misses), and it is emptied when the listener is back. The process that
  committed empties its own caches at once; *other* processes when the notification
  arrives, asynchronously: well under a millisecond here when idle, longer on a saturated
  machine. So on PostgreSQL another replica may answer from the old version for that
  moment after a commit (as any HTTP cache would); a write never trusts it (``If-Match``
  is checked against the database).

Only cache what a commit invalidates; never anything that depends on the caller beyond what
the key says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from servicekit.db import Database

log = logging.getLogger(__name__)

CHANNEL = "servicekit_changed"
K = TypeVar("K")
V = TypeVar("V")


class ChangeWatch:
    """``generation``: a number that moves whenever the database has changed (or ``None``
    while changes cannot be seen, in which case nothing may be cached)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._generation = 0
        self._sqlite: sqlite3.Connection | None = None
        self._sqlite_version: int | None = None
        self._listener: Any = None
        self._task: asyncio.Task[None] | None = None
        self._listening = False

    @property
    def generation(self) -> int | None:
        if self.database.is_sqlite:
            return self._sqlite_generation()
        return self._generation if self._listening else None  # not started: nothing kept

    # -- SQLite ----------------------------------------------------------------------------
    def _sqlite_generation(self) -> int | None:
        try:
            if self._sqlite is None:
                filename = make_url(self.database.url).database or ":memory:"
                if filename == ":memory:":
                    return None  # one database per connection: nothing to watch
                self._sqlite = sqlite3.connect(
                    filename, timeout=0, isolation_level=None, check_same_thread=False
                )
            version = int(self._sqlite.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            return None
        if version != self._sqlite_version:
            self._sqlite_version = version
            self._generation += 1
        return self._generation

    # -- PostgreSQL ------------------------------------------------------------------------
    async def start(self) -> None:
        if self.database.is_postgres and self.database.read_caches and self._task is None:
            self._task = asyncio.create_task(self._listen(), name="servicekit-changes")

    async def _listen(self) -> None:
        import asyncpg  # the PostgreSQL driver the platform uses

        url = make_url(self.database.url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        backoff = 0.2
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(dsn)
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _c, done=closed: done.set())
                await conn.add_listener(CHANNEL, self._notified)
                self._generation += 1  # anything may have changed while not listening
                self._listening = True
                backoff = 0.2
                await closed.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("change listener: %s; retrying in %.1fs", type(exc).__name__, backoff)
            finally:
                self._listening = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _notified(self, *_args: Any) -> None:
        self._generation += 1

    def changed_here(self) -> None:
        """This process committed a change: its own caches are stale at once."""
        self._generation += 1

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._listening = False
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None


class ReadCache(Generic[K, V]):
    """At most ``maxsize`` entries (least recently used dropped), valid for one generation of
    the database's :class:`ChangeWatch`."""

    def __init__(self, watch: ChangeWatch, *, maxsize: int = 4096) -> None:
        self.watch = watch
        self.maxsize = maxsize
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._generation: int | None = None

    def _current(self) -> int | None:
        generation = self.watch.generation
        if generation != self._generation:
            self._entries.clear()
            self._generation = generation
        return generation

    def get(self, key: K) -> V | None:
        if self._current() is None:
            return None
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def generation(self) -> int | None:
        """Read before loading a value; pass to :meth:`put` so a value loaded while the
        database changed is not kept."""
        return self._current()

    def put(self, key: K, value: V, generation: int | None) -> None:
        if generation is None or self._current() != generation:
            return
        self._entries[key] = value
        if len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
