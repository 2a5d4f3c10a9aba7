"""CommitWokenWorker: a commit that made work for it wakes it (and nothing else does); with
``linger_seconds`` a burst of commits is one pass, not a pass per commit."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

from sqlalchemy import text

from servicekit.db import Database, mark_work
from servicekit.testing import eventually
from servicekit.worker import CommitWokenWorker


class Counting(CommitWokenWorker):
    name = "counting"
    wake_on = frozenset({"work_item"})

    def __init__(self, database: Database, **kwargs: float) -> None:
        super().__init__(database, idle_seconds=30, **kwargs)
        self.passes = 0

    async def run_once(self) -> int:
        self.passes += 1
        # like a delivery worker's claim: a transaction of its own that finds nothing
        async with self.database.session() as s, s.begin():
            await s.execute(text("SELECT 1"))
        return 0


async def _burst(db: Database, commits: int, *, table: str = "work_item") -> None:
    for _ in range(commits):
        async with db.session() as s:
            await s.execute(text("SELECT 1"))
            mark_work(s, table)
            await s.commit()
        await asyncio.sleep(0.005)


async def test_only_commits_that_make_its_work_wake_it(tmp_path: Path) -> None:
    """Its own empty claims, commits of other tables and rolled-back work wake nothing;
    an INSERT into its table does (found by the session, not declared)."""
    db = Database(f"sqlite:///{tmp_path}/w.sqlite3")
    async with db.session() as s:
        await s.execute(text("CREATE TABLE work_item (id INTEGER PRIMARY KEY)"))
        await s.commit()
    worker = Counting(db)
    try:
        await worker.start()
        await asyncio.sleep(0.3)
        assert worker.passes == 1  # the first pass; its own commit did not wake it again
        await _burst(db, 5, table="other_table")
        async with db.session() as s:
            mark_work(s, "work_item")
            await s.rollback()
        await asyncio.sleep(0.3)
        assert worker.passes == 1
        import sqlalchemy as sa

        item = sa.table("work_item", sa.column("id"))
        async with db.session() as s:
            await s.execute(sa.insert(item).values(id=1))
            await s.commit()

        async def woken() -> bool:
            return worker.passes == 2

        await eventually(woken, timeout=10, message="an insert into its table did not wake it")
        await asyncio.sleep(0.3)
        assert worker.passes == 2
    finally:
        await worker.stop()
        await db.dispose()


async def test_wake_in_runs_a_pass_when_a_retry_falls_due(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/w.sqlite3")
    worker = Counting(db)  # idle poll: 30 s
    try:
        await worker.start()
        await asyncio.sleep(0.2)
        worker.wake_in(0.3)
        worker.wake()  # let the loop re-compute its sleep
        await asyncio.sleep(0.1)
        passes = worker.passes

        async def due() -> bool:
            return worker.passes > passes

        await eventually(due, timeout=5, message="wake_in did not run a pass")
    finally:
        await worker.stop()
        await db.dispose()


async def test_linger_gathers_a_burst_of_commits_into_one_pass(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/w.sqlite3")
    linger = 0.5
    eager, lingering = Counting(db), Counting(db, linger_seconds=linger)
    try:
        for worker in (eager, lingering):
            await worker.start()
        await asyncio.sleep(0.05)  # both ran their first pass and wait
        eager.passes = lingering.passes = 0
        started = time.monotonic()
        await _burst(db, 20)
        burst = time.monotonic() - started

        async def lingered() -> bool:
            return lingering.passes >= 1

        await eventually(lingered, timeout=10, message="the lingering worker never ran")
        await asyncio.sleep(linger + 0.2)  # any pass still due has run
        assert eager.passes >= 2  # woken again and again
        # One pass per linger window the burst spanned (one, on a quiet machine), however
        # slow the machine: without the linger it would be a pass per commit, like eager's.
        assert lingering.passes <= 1 + math.ceil(burst / linger), (lingering.passes, burst)
        assert lingering.passes < 20
    finally:
        for worker in (eager, lingering):
            await worker.stop()
        await db.dispose()


class Failing(Counting):
    """Its passes fail until ``healthy``; its backoff hook holds it off ``hold`` seconds."""

    def __init__(self, database: Database, hold: float | None) -> None:
        super().__init__(database)
        self.hold = hold
        self.healthy = False
        self.failures: list[str] = []

    async def run_once(self) -> int:
        await super().run_once()
        if not self.healthy:
            raise ConnectionError("the server it needs is away")
        return 0

    async def backoff(self, error: Exception) -> float | None:
        self.failures.append(type(error).__name__)
        return self.hold


async def test_the_backoff_hook_holds_a_failing_worker_off_whatever_commits(tmp_path: Path) -> None:
    """While its passes fail, commits do not wake it before its backoff has passed (no
    pass per commit against a server that is away); stop() ends the hold at once."""
    db = Database(f"sqlite:///{tmp_path}/w.sqlite3")
    async with db.session() as s:
        await s.execute(text("CREATE TABLE work_item (id INTEGER PRIMARY KEY)"))
        await s.commit()
    worker = Failing(db, hold=30)
    try:
        await worker.start()
        await asyncio.sleep(0.2)
        assert worker.failures == ["ConnectionError"] and worker.passes == 1
        await _burst(db, 5)
        await asyncio.sleep(0.3)
        assert worker.passes == 1  # held off: the commits did not wake it
        started = time.monotonic()
    finally:
        await worker.stop()
        await db.dispose()
    assert time.monotonic() - started < 5  # the hold ended with stop()


async def test_without_a_backoff_a_failing_worker_is_woken_as_usual(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/w.sqlite3")
    async with db.session() as s:
        await s.execute(text("CREATE TABLE work_item (id INTEGER PRIMARY KEY)"))
        await s.commit()
    worker = Failing(db, hold=None)
    try:
        await worker.start()
        await asyncio.sleep(0.2)
        worker.healthy = True
        await _burst(db, 1)

        async def woken() -> bool:
            return worker.passes >= 2

        await eventually(woken, timeout=10, message="a commit did not wake it")
        assert worker.failures == ["ConnectionError"]
    finally:
        await worker.stop()
        await db.dispose()
