"""Notify's rate limit, per process."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict, deque

from notifications.application.notify_auth import Caller
from notifications.domain.notify import RateLimitError


class NotifyRateLimiter:
    """Notify's limit: ``per_minute`` requests a minute per service and key type (a sliding
    one-minute window kept in memory, per process)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[tuple[uuid.UUID, str], deque[float]] = defaultdict(deque)

    def check(self, caller: Caller, *, now: float | None = None) -> None:
        if self.per_minute <= 0:
            return
        now = now if now is not None else time.monotonic()
        hits = self._hits[(caller.service.id, caller.key.key_type)]
        while hits and hits[0] <= now - 60:
            hits.popleft()
        if len(hits) >= self.per_minute:
            name = {"normal": "live"}.get(caller.key.key_type, caller.key.key_type)
            raise RateLimitError(
                f"Exceeded rate limit for key type {name.upper()} of "
                f"{self.per_minute} requests per 60 seconds"
            )
        hits.append(now)
