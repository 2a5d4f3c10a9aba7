"""Read caches emptied by any process's commit; locks shared by a service's processes; the
inline SQLite driver under concurrent writers. Each case runs on SQLite and PostgreSQL, with
two ``Database`` objects standing for two processes of one service (separate pools and
connections, as separate processes have)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from servicekit.db import Database
from servicekit.leader import Leadership, exclusive
from servicekit.testing import eventually

from ..conftest import effect_table


async def _write(db: Database, tag: str) -> None:
    async with db.session() as s:
        await s.execute(sa.insert(effect_table).values(event_id="e", tag=tag))
        await s.commit()


async def test_a_commit_in_another_process_empties_the_cache(
    db: Database, database_url: str
) -> None:
    watched = Database(database_url, read_caches=True)  # a service that uses read caches
    other = Database(database_url, read_caches=True)
    try:
        await watched.changes.start()
        await other.changes.start()
        cache = watched.read_cache("test")

        async def watching() -> bool:
            return cache.generation() is not None

        await eventually(watching, timeout=10, message="the change watch never started")
        cache.put("k", "v1", cache.generation())
        assert cache.get("k") == "v1"

        async with watched.read_session() as s:  # reading changes nothing
            await s.execute(sa.select(effect_table))
        assert cache.get("k") == "v1"

        await _write(other, "from-the-other-process")

        async def emptied() -> bool:
            return cache.get("k") is None

        await eventually(emptied, timeout=5, message="a commit elsewhere left the cache full")
        # a value loaded before a change is not kept
        generation = cache.generation()
        await _write(other, "again")
        await eventually(
            lambda: _moved(cache, generation), timeout=5, message="the generation never moved"
        )
        cache.put("k", "stale", generation)
        assert cache.get("k") is None
    finally:
        await other.dispose()
        await watched.dispose()


async def _moved(cache, generation) -> bool:  # type: ignore[no-untyped-def]
    return cache.generation() != generation


async def test_without_read_caches_postgresql_keeps_nothing(db: Database) -> None:
    """A service that did not ask for read caches sends no NOTIFY on PostgreSQL, so its
    caches must not keep anything there (they could not learn of other processes' writes);
    on SQLite the data version needs no help."""
    await db.changes.start()
    cache = db.read_cache("test")
    cache.put("k", "v", cache.generation())
    assert (cache.get("k") is None) == db.is_postgres


async def test_one_leader_at_a_time_and_a_fast_hand_over(db: Database, database_url: str) -> None:
    other = Database(database_url)
    first, second = Leadership(db, "relay-test"), Leadership(other, "relay-test")
    try:
        assert await first.acquire()
        assert not await second.acquire()
        assert await first.acquire()  # still held
        await first.release()  # the leader goes (a process exit releases it the same way)
        assert await second.acquire()
        assert not await first.acquire()
    finally:
        await first.release()
        await second.release()
        await other.dispose()


async def test_exclusive_runs_blocks_one_at_a_time(db: Database, database_url: str) -> None:
    other = Database(database_url)
    inside: list[int] = []
    overlap = False

    async def critical(d: Database, n: int) -> None:
        nonlocal overlap
        async with exclusive(d, "startup-test"):
            overlap = overlap or bool(inside)
            inside.append(n)
            await asyncio.sleep(0.2)
            inside.remove(n)

    try:
        await asyncio.gather(critical(db, 1), critical(other, 2))
        assert not overlap
    finally:
        await other.dispose()


async def test_concurrent_writers_all_commit(db: Database, tag: str) -> None:
    """Forty transactions at once on one service (SQLite: each waits for the write lock
    with asyncio sleeps, not in SQLite's busy handler): all commit, none is lost."""

    async def one(i: int) -> None:
        async with db.session() as s:
            await s.execute(sa.insert(effect_table).values(event_id=str(i), tag=tag))
            await asyncio.sleep(0.01)  # hold the write lock across an await
            await s.commit()

    await asyncio.gather(*(one(i) for i in range(40)))
    async with db.read_session() as s:
        n = (
            await s.execute(
                sa.select(sa.func.count())
                .select_from(effect_table)
                .where(effect_table.c.tag == tag)
            )
        ).scalar_one()
    assert n == 40
