"""A background worker that wakes on the commits that made work for it.

Subclasses name the tables their work lives in (``wake_on``) and implement
:meth:`CommitWokenWorker.run_once` (one pass: claim due work, do it, record outcomes; return
how many items it handled). The loop runs passes until one handles nothing, then sleeps until
a commit that inserted into one of those tables (``Database.on_commit(tables=...)``; a
transaction that only claims or updates rows wakes nobody, so the worker's own empty claims
never wake it), until a time it asked for with :meth:`wake_in` (a retry falling due), or
``idle_seconds``: the fallback poll for rows written by other processes. With
``linger_seconds``, a worker woken by a commit waits that long before its pass, so a stream
of small commits (an API call each) is handled in batches instead of a claim transaction
per commit. A failing
pass is logged and the loop goes on; ``stop()`` lets the pass in hand finish (up to
``stop_timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from servicekit.db import Database

log = logging.getLogger(__name__)


class CommitWokenWorker:
    name = "worker"
    #: Tables whose new rows are this worker's work; their inserts wake it.
    wake_on: frozenset[str] = frozenset()

    def __init__(self, db: Database, *, idle_seconds: float = 1.0,
                 stop_timeout: float = 10.0, linger_seconds: float = 0.0) -> None:
        self.db = db
        self.idle_seconds = idle_seconds
        self.linger_seconds = linger_seconds
        self.stop_timeout = stop_timeout
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe = db.on_commit(self.wake, tables=self.wake_on)
        self._stopping = False
        self._due_at: float | None = None

    async def run_once(self) -> int:
        """One pass; returns how many items it handled (0 = nothing was due)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release clients and connections after the loop has stopped."""

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stopping = True
        self._unsubscribe()
        self._wake.set()
        if self._task:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=self.stop_timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        await self.close()

    def wake_in(self, seconds: float) -> None:
        """Run a pass after ``seconds`` at the latest (e.g. when a retry falls due)."""
        due = time.monotonic() + max(0.0, seconds)
        if self._due_at is None or due < self._due_at:
            self._due_at = due

    def _sleep_for(self) -> float:
        if self._due_at is None:
            return self.idle_seconds
        left = self._due_at - time.monotonic()
        if left <= 0:
            self._due_at = None
            return 0.0
        return min(self.idle_seconds, left)

    def wake(self) -> None:
        """Called after each commit (possibly from another thread's greenlet)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                while not self._stopping and await self.run_once() > 0:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: pass failed", self.name)
            timeout = self._sleep_for()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
                if self.linger_seconds > 0 and not self._stopping:
                    await asyncio.sleep(self.linger_seconds)  # woken: let commits gather
