"""A circuit breaker per upstream: stop sending requests to a service that keeps failing.

States::

    closed ──(failure_threshold consecutive failures)──► open
    open ──(reset_timeout elapsed; next allow())──► half-open
    half-open ──(probe succeeds)──► closed
    half-open ──(probe fails)──► open (for another reset_timeout)

A *failure* is a connection error, a time-out, or a 502/503/504 from the upstream
(:func:`is_failure_status`); any other response is a success (the service answered). While
open, :meth:`CircuitBreaker.allow` is False and the gateway answers 503 with
``Retry-After: retry_after_seconds()`` at once, without touching the upstream. In half-open
only ``half_open_max_calls`` probe requests are let through; a probe that never reports back
(say its client went away) frees its slot after another ``reset_timeout``.

Not thread-safe by design: one event loop owns it, and no method awaits.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from enum import StrEnum

log = logging.getLogger(__name__)

#: Upstream statuses that count as failures (the service, or what fronts it, is unwell).
FAILURE_STATUSES = frozenset({502, 503, 504})


def is_failure_status(status: int) -> bool:
    return status in FAILURE_STATUSES


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        reset_timeout: float = 10.0,
        half_open_max_calls: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or half_open_max_calls < 1 or reset_timeout <= 0:
            raise ValueError(
                "failure_threshold and half_open_max_calls must be >= 1 and reset_timeout > 0"
            )
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.half_open_max_calls = half_open_max_calls
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0  # consecutive, while closed
        self._opened_at = 0.0
        self._probes = 0  # probe slots taken, while half-open
        self._probe_since = 0.0

    # -- state

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose time-out has run out reads as half-open)."""
        self._tick()
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def _tick(self) -> None:
        now = self._clock()
        if self._state is BreakerState.OPEN and now - self._opened_at >= self.reset_timeout:
            self._transition(BreakerState.HALF_OPEN)
            self._probes = 0
        elif (
            self._state is BreakerState.HALF_OPEN
            and self._probes
            and now - self._probe_since >= self.reset_timeout
        ):
            self._probes = 0  # the probes never reported: let another one try

    def _transition(self, state: BreakerState) -> None:
        if state is self._state:
            return
        level = logging.WARNING if state is BreakerState.OPEN else logging.INFO
        log.log(level, "circuit breaker %s: %s -> %s", self.name, self._state.value, state.value)
        self._state = state

    # -- API

    def allow(self) -> bool:
        """May a request go upstream now? Never blocks. In half-open this takes a probe slot:
        every True must be followed by :meth:`record_success`, :meth:`record_failure` or
        :meth:`release` (else the slot frees itself after ``reset_timeout``)."""
        self._tick()
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            return False
        if self._probes >= self.half_open_max_calls:
            return False
        if self._probes == 0:
            self._probe_since = self._clock()
        self._probes += 1
        return True

    def record_success(self) -> None:
        """The upstream answered (any status but 502/503/504)."""
        self._tick()
        if self._state is BreakerState.OPEN:
            return  # a request let through before the breaker opened: no news
        self._failures = 0
        self._probes = 0
        self._transition(BreakerState.CLOSED)

    def record_failure(self) -> None:
        """A connection error, time-out or 502/503/504."""
        self._tick()
        if self._state is BreakerState.HALF_OPEN:
            self._open()
        elif self._state is BreakerState.CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._open()

    def release(self) -> None:
        """A call let through by :meth:`allow` ended telling nothing about the upstream (the
        client's own fault, say, or it went away): give back its half-open probe slot."""
        self._tick()
        if self._state is BreakerState.HALF_OPEN and self._probes:
            self._probes -= 1

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._probes = 0
        self._failures = 0
        self._transition(BreakerState.OPEN)

    def retry_after_seconds(self) -> int:
        """Whole seconds until a request may be let through again (``Retry-After``): 0 when
        closed or a half-open probe slot is free, 1 while a probe is in flight, else the rest
        of the open period."""
        self._tick()
        now = self._clock()
        if self._state is BreakerState.OPEN:
            return max(1, math.ceil(self._opened_at + self.reset_timeout - now - 1e-9))
        if self._state is BreakerState.HALF_OPEN and self._probes >= self.half_open_max_calls:
            return 1  # a probe is in flight: its answer decides, usually within a second
        return 0

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state.value})"
