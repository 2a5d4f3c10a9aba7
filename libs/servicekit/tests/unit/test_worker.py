"""CommitWokenWorker: a commit wakes it; with ``linger_seconds`` a burst of commits is one
pass, not a pass per commit."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from servicekit.db import Database
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
    eager, lingering = Counting(db), Counting(db, linger_seconds=0.5)
    try:
        for worker in (eager, lingering):
            await worker.start()
        await asyncio.sleep(0.05)  # both ran their first pass and wait
        eager.passes = lingering.passes = 0
        await _burst(db, 20)
        await asyncio.sleep(0.7)
        assert eager.passes >= 5  # woken again and again
        assert 1 <= lingering.passes <= 2  # one pass after the burst (two if it was slow)
    finally:
        for worker in (eager, lingering):
            await worker.stop()
        await db.dispose()
