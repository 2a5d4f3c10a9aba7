"""The circuit breaker's states, driven by a fake monotonic clock."""

from __future__ import annotations

import logging

import pytest

from gateway.breaker import BreakerState, CircuitBreaker, is_failure_status


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def open_breaker(clock: FakeClock, **kwargs: float) -> CircuitBreaker:
    breaker = CircuitBreaker(
        "inclusion", failure_threshold=3, reset_timeout=10.0, clock=clock, **kwargs
    )  # type: ignore[arg-type]
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    return breaker


def test_failure_statuses() -> None:
    assert [s for s in (200, 404, 429, 500, 501, 502, 503, 504, 505) if is_failure_status(s)] == [
        502,
        503,
        504,
    ]


def test_closed_until_threshold_consecutive_failures(clock: FakeClock) -> None:
    breaker = CircuitBreaker("citizen-services", failure_threshold=3, clock=clock)
    assert breaker.state is BreakerState.CLOSED and breaker.retry_after_seconds() == 0
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # consecutive only: a success starts the count again
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    assert breaker.consecutive_failures == 2
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()


def test_open_refuses_until_reset_timeout(clock: FakeClock) -> None:
    breaker = open_breaker(clock)
    assert breaker.retry_after_seconds() == 10
    clock.now += 3.5
    assert not breaker.allow()
    assert breaker.retry_after_seconds() == 7  # 6.5 s left, rounded up
    clock.now += 6.4
    assert breaker.retry_after_seconds() == 1
    assert breaker.state is BreakerState.OPEN
    # Late answers of requests let through before it opened change nothing.
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN


def test_half_open_probe_success_closes(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    breaker = open_breaker(clock)
    clock.now += 10
    with caplog.at_level(logging.INFO, logger="gateway.breaker"):
        assert breaker.allow()  # the probe
        assert breaker.state is BreakerState.HALF_OPEN
        assert not breaker.allow()  # one probe at a time
        assert breaker.retry_after_seconds() == 1
        breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.allow() for _ in range(10))
    assert breaker.retry_after_seconds() == 0
    messages = [r.getMessage() for r in caplog.records]
    assert "circuit breaker inclusion: open -> half-open" in messages
    assert "circuit breaker inclusion: half-open -> closed" in messages
    # Closed again with a fresh count: it takes the full threshold to open.
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_half_open_probe_failure_reopens(clock: FakeClock) -> None:
    breaker = open_breaker(clock)
    clock.now += 12
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.retry_after_seconds() == 10  # a full new period from the probe's failure
    clock.now += 10
    assert breaker.allow()  # the next probe
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_several_probe_slots(clock: FakeClock) -> None:
    breaker = open_breaker(clock, half_open_max_calls=2)
    clock.now += 10
    assert [breaker.allow() for _ in range(3)] == [True, True, False]
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_a_probe_that_never_reports_frees_its_slot(clock: FakeClock) -> None:
    breaker = open_breaker(clock)
    clock.now += 10
    assert breaker.allow()  # this probe's client goes away: no record_* ever comes
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()
    assert breaker.state is BreakerState.HALF_OPEN


def test_release_gives_back_the_probe_slot(clock: FakeClock) -> None:
    breaker = open_breaker(clock)
    clock.now += 10
    assert breaker.allow()
    assert not breaker.allow()
    breaker.release()  # e.g. the request was refused as too large: no news of the upstream
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    breaker.record_success()
    breaker.release()  # harmless when closed
    assert breaker.state is BreakerState.CLOSED


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("x", failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker("x", reset_timeout=0)
    with pytest.raises(ValueError):
        CircuitBreaker("x", half_open_max_calls=0)
