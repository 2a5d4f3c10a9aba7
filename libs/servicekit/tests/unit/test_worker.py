"""CommitWokenWorker: a commit wakes it; with ``linger_seconds`` a burst of commits is one
pass, not a pass per commit."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

from sqlalchemy import text

from servicekit.db import Database
from servicekit.testing import eventually
from servicekit.worker import CommitWokenWorker


class Counting(CommitWokenWorker):
    name = "counting"

    def __init__(self, db: Database, **kwargs: float) -> None:
        super().__init__(db, idle_seconds=30, **kwargs)
        self.passes = 0

    async def run_once(self) -> int:
        self.passes += 1
        return 0


async def _burst(db: Database, commits: int) -> None:
    for _ in range(commits):
        async with db.session() as s:
            await s.execute(text("SELECT 1"))
            await s.commit()
        await asyncio.sleep(0.005)


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
