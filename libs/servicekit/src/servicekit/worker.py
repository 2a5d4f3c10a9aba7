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
per commit.

A failing pass goes to :meth:`~CommitWokenWorker.backoff`, the hook for a worker whose passes
fail while something it needs is away (the outbox relay while Kafka is): by default it logs
the error and the loop sleeps as usual; a worker that returns a delay is held off that long,
and commits do not wake it meanwhile (:meth:`~CommitWokenWorker.hold_off` does the same from a
pass, e.g. while another process leads). ``stop()`` lets the pass in hand finish (up to
``stop_timeout``), ends a hold at once, then calls :meth:`~CommitWokenWorker.close`.
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

    def __init__(
        self,
        database: Database,
        *,
        idle_seconds: float = 1.0,
        stop_timeout: float = 10.0,
        linger_seconds: float = 0.0,
    ) -> None:
        self.database = database
        self.idle_seconds = idle_seconds
        self.linger_seconds = linger_seconds
        self.stop_timeout = stop_timeout
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe = database.on_commit(self.wake, tables=self.wake_on)
        self._stopping = False
        self._due_at: float | None = None
        self._hold_for: float | None = None

    # -- what subclasses implement ---------------------------------------------------------
    async def run_once(self) -> int:
        """One pass; returns how many items it handled (0 = nothing was due, or the pass
        already did all that was due: the worker then sleeps until woken)."""
        raise NotImplementedError

    async def backoff(self, error: Exception) -> float | None:
        """A pass raised ``error``: how long to hold off before the next pass (commits do
        not wake the worker meanwhile), or None to sleep as usual. Logs it by default."""
        log.exception("%s: pass failed", self.name, exc_info=error)
        return None

    async def close(self) -> None:
        """Release clients and connections after the loop has stopped."""

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stopping = True
        self._unsubscribe()
        self._wake.set()
        self._stopped.set()
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

    def hold_off(self, seconds: float) -> None:
        """Sleep ``seconds`` after this pass whatever commits meanwhile (only ``stop()`` ends
        it early): e.g. while a needed server is away, or another process leads."""
        self._hold_for = max(seconds, self._hold_for or 0.0)

    def _sleep_for(self) -> float:
        if self._due_at is None:
            return self.idle_seconds
        left = self._due_at - time.monotonic()
        if left <= 0:
            self._due_at = None
            return 0.0
        return min(self.idle_seconds, left)

    def wake(self) -> None:
        """Called after each commit (on the loop's thread, or another thread's greenlet)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    # -- the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                while not self._stopping and await self.run_once() > 0:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = await self.backoff(exc)
                if delay is not None:
                    self.hold_off(delay)
            hold, self._hold_for = self._hold_for, None
            if hold is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), timeout=hold)
                continue
            timeout = self._sleep_for()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
                if self.linger_seconds > 0 and not self._stopping:
                    await asyncio.sleep(self.linger_seconds)  # woken: let commits gather
