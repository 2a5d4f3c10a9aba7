"""Notify's rate limit: ``per_minute`` requests a minute per service and key type, over a
sliding one-minute window (GOV.UK Notify: 3,000).

* :class:`RedisNotifyRateLimiter` (``NOTIFICATIONS_REDIS_URL`` or ``REDIS_URL`` set): the
  window lives in Redis, so every process and replica of notifications shares one
  allowance. When Redis fails, each process falls back to its own in-memory window (the
  limit then holds per process, not in total) and logs it once per outage.
* :class:`NotifyRateLimiter` (no Redis): in memory, so the limit holds per process. Fine
  for one process; with several workers or replicas the total allowed is the limit times
  their number, and the service logs a warning at start-up when it runs production-like
  without Redis (docs/architecture.md, "Per-process state").
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict, deque
from typing import Protocol

from notifications.application.notify_auth import Caller
from notifications.domain.notify import RateLimitError

log = logging.getLogger(__name__)

#: Redis keys: ``mk:notify-rl:<service id>:<key type>`` (a sorted set of request times).
REDIS_KEY_PREFIX = "mk:notify-rl:"


class NotifyLimiter(Protocol):
    async def acquire(self, caller: Caller) -> None:
        """Count one request of ``caller``, raising :class:`RateLimitError` when over."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def _refuse(caller: Caller, per_minute: int) -> RateLimitError:
    name = {"normal": "live"}.get(caller.key.key_type, caller.key.key_type)
    return RateLimitError(
        f"Exceeded rate limit for key type {name.upper()} of {per_minute} requests per 60 seconds"
    )


class NotifyRateLimiter:
    """Notify's limit in this process's memory (a sliding one-minute window per service and
    key type)."""

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
            raise _refuse(caller, self.per_minute)
        hits.append(now)

    async def acquire(self, caller: Caller) -> None:
        self.check(caller)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


#: KEYS[1] the caller's window; ARGV per_minute, a unique member. Redis's own clock (TIME) is
#: the time base, so processes on different hosts agree. Returns 1 (counted) or 0 (over).
_WINDOW_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000000)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], 61000)
return 1
"""


class RedisNotifyRateLimiter:
    """Notify's limit shared by every process through Redis: one atomic script call per
    request keeps the last minute's requests of a service and key type in a sorted set."""

    def __init__(self, redis_url: str, per_minute: int, *, timeout_seconds: float = 0.5) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.per_minute = per_minute
        self.timeout_seconds = timeout_seconds
        self._redis = Redis.from_url(
            redis_url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 1),  # a pooled connection may be stale after a restart
        )
        self._script = self._redis.register_script(_WINDOW_SCRIPT)
        self._fallback = NotifyRateLimiter(per_minute)
        self._outage = False

    async def acquire(self, caller: Caller) -> None:
        from redis.exceptions import RedisError

        if self.per_minute <= 0:
            return
        key = f"{REDIS_KEY_PREFIX}{caller.service.id}:{caller.key.key_type}"
        try:
            counted = await self._script(keys=[key], args=[self.per_minute, uuid.uuid4().hex])
        except (RedisError, OSError, TimeoutError) as exc:
            if not self._outage:
                self._outage = True
                log.warning(
                    "Notify rate limit: Redis unavailable (%s); limiting per process until "
                    "it answers again",
                    type(exc).__name__,
                )
            self._fallback.check(caller)
            return
        if self._outage:
            self._outage = False
            log.info("Notify rate limit: Redis answers again; the limit is shared again")
        if not int(counted):
            raise _refuse(caller, self.per_minute)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self._redis.aclose()


def make_notify_limiter(per_minute: int, redis_url: str | None) -> NotifyLimiter:
    """:class:`RedisNotifyRateLimiter` when ``redis_url`` is set, else in memory."""
    if redis_url:
        return RedisNotifyRateLimiter(redis_url, per_minute)
    return NotifyRateLimiter(per_minute)
