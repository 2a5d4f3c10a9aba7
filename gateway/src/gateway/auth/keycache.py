"""A small time-bounded cache of API keys by id, with one database look-up per id at a time.

Absent keys are cached too (an unknown id costs one query per ``ttl``), and the cache holds
at most ``max_entries`` ids. ``ttl`` 0 turns caching off (every look-up reads the database).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from gateway.auth.store import StoredKey

Loader = Callable[[str], Awaitable[StoredKey | None]]


class KeyCache:
    def __init__(self, loader: Loader, *, ttl: float, max_entries: int = 10_000) -> None:
        self.loader = loader
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, StoredKey | None]] = {}
        self._loading: dict[str, asyncio.Future[StoredKey | None]] = {}
        #: Bumped by invalidate(): a look-up that started before is not cached.
        self._generation = 0

    async def get(self, key_id: str) -> StoredKey | None:
        if self.ttl <= 0:
            return await self.loader(key_id)
        entry = self._entries.get(key_id)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        task = self._loading.get(key_id)
        if task is None:
            # A task, not a coroutine of this request: a caller that is cancelled does not
            # cancel the look-up the others are waiting for.
            task = asyncio.ensure_future(self.loader(key_id))
            self._loading[key_id] = task
            generation = self._generation
            task.add_done_callback(lambda t: self._loaded(key_id, t, generation))
        return await asyncio.shield(task)

    def _loaded(self, key_id: str, task: asyncio.Future[StoredKey | None], generation: int) -> None:
        if self._loading.get(key_id) is task:
            del self._loading[key_id]
        if generation == self._generation and not task.cancelled() and task.exception() is None:
            self._put(key_id, task.result())

    def _put(self, key_id: str, value: StoredKey | None) -> None:
        if len(self._entries) >= self.max_entries:
            now = time.monotonic()
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            while len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
        self._entries[key_id] = (time.monotonic() + self.ttl, value)

    def invalidate(self, key_id: str | None = None) -> None:
        """Forget one id (or all): the next look-up reads the database."""
        self._generation += 1
        if key_id is None:
            self._entries.clear()
            self._loading.clear()
        else:
            self._entries.pop(key_id, None)
            self._loading.pop(key_id, None)
