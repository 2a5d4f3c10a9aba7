"""A bounded queue per upstream: how many requests may be in flight to a service at once
(its connection pool), and how many more may wait for one of those connections.

``concurrency`` requests run at once (``GATEWAY_POOL_SIZE_PER_UPSTREAM``); further ones wait
in arrival order, up to ``limit`` in flight and waiting together
(``GATEWAY_UPSTREAM_QUEUE_LIMIT``); past that :meth:`UpstreamQueue.acquire` refuses at once,
and a request that has waited ``wait_seconds`` (``GATEWAY_UPSTREAM_QUEUE_WAIT_SECONDS``) for
a connection gives up. Either refusal is :class:`Overloaded`: the gateway answers 503 with
``Retry-After`` and the refusal says nothing about the service's health (its circuit
breaker does not count it).

Waiting here is the only wait for a pooled connection: aiohttp's own pool is unbounded
per host, so its ``sock_connect`` time-out measures a TCP connect and nothing else.

Not thread-safe by design: one event loop owns it. The path of a request that finds a free
slot does not await.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class Overloaded(Exception):
    """No connection to the upstream for this request: the queue was full, or the wait for
    a connection ran out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UpstreamQueue:
    def __init__(self, name: str, *, concurrency: int, limit: int, wait_seconds: float) -> None:
        if concurrency < 1 or limit < concurrency or wait_seconds <= 0:
            raise ValueError("need concurrency >= 1, limit >= concurrency, wait_seconds > 0")
        self.name = name
        self.concurrency = concurrency
        self.limit = limit
        self.wait_seconds = wait_seconds
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        """Take a slot (waiting for one if needed); every successful acquire must be paired
        with one :meth:`release`. Raises :class:`Overloaded`."""
        if self.in_flight < self.concurrency and not self._waiters:
            self.in_flight += 1
            return
        if self.in_flight + len(self._waiters) >= self.limit:
            raise Overloaded("queue full")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.wait_seconds):
                await waiter  # release() hands its slot over: in_flight stays as it is
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as we gave up: pass it on
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):  # release() may have dropped it
                    self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise Overloaded("waited too long for a connection") from None
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.in_flight -= 1

    def __repr__(self) -> str:
        return f"UpstreamQueue({self.name!r}, in_flight={self.in_flight}, waiting={self.waiting})"
