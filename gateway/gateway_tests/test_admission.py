"""The bounded queue per upstream, on its own: slots, arrival order, the bound, the wait,
and no slot lost when a waiter gives up or is cancelled."""

from __future__ import annotations

import asyncio

import pytest

from gateway.admission import Overloaded, UpstreamQueue


def queue(concurrency: int = 2, limit: int = 4, wait: float = 5.0) -> UpstreamQueue:
    return UpstreamQueue("svc", concurrency=concurrency, limit=limit, wait_seconds=wait)


async def test_free_slots_are_taken_at_once_then_callers_wait_in_order() -> None:
    q = queue()
    await q.acquire()
    await q.acquire()
    order: list[int] = []

    async def waiter(n: int) -> None:
        await q.acquire()
        order.append(n)

    tasks = [asyncio.create_task(waiter(n)) for n in (1, 2)]
    await asyncio.sleep(0)
    assert (q.in_flight, q.waiting) == (2, 2)
    with pytest.raises(Overloaded, match="queue full"):  # 2 in flight + 2 waiting = limit
        await q.acquire()
    q.release()
    q.release()
    await asyncio.gather(*tasks)
    assert order == [1, 2]
    assert (q.in_flight, q.waiting) == (2, 0)
    q.release()
    q.release()
    assert q.in_flight == 0


async def test_the_wait_is_bounded_and_a_timed_out_waiter_leaves_no_trace() -> None:
    q = queue(concurrency=1, limit=3, wait=0.05)
    await q.acquire()
    with pytest.raises(Overloaded, match="waited"):
        await q.acquire()
    assert (q.in_flight, q.waiting) == (1, 0)
    q.release()
    assert q.in_flight == 0


async def test_a_cancelled_waiter_does_not_keep_or_lose_a_slot() -> None:
    q = queue(concurrency=1, limit=3)
    await q.acquire()
    cancelled = asyncio.create_task(q.acquire())
    kept = asyncio.create_task(q.acquire())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    q.release()  # goes to the next live waiter
    await kept
    assert (q.in_flight, q.waiting) == (1, 0)
    q.release()
    assert q.in_flight == 0


async def test_a_slot_handed_to_a_waiter_that_is_cancelled_is_passed_on() -> None:
    q = queue(concurrency=1, limit=3)
    await q.acquire()
    first = asyncio.create_task(q.acquire())
    second = asyncio.create_task(q.acquire())
    await asyncio.sleep(0)
    q.release()  # hands the slot to `first`...
    first.cancel()  # ...which is cancelled before it runs: the slot goes to `second`
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert (q.in_flight, q.waiting) == (1, 0)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="limit >= concurrency"):
        UpstreamQueue("svc", concurrency=4, limit=2, wait_seconds=1)
