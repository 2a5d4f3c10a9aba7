"""Token buckets in a real Redis: exact under concurrency, shared between OS processes,
expiring, and failing open (never raising) when Redis is away."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from gateway.limits import LimitPolicy, LimitSettings, RedisRateLimiter, make_rate_limiter
from mkinfra.testing import free_port

pytestmark = pytest.mark.redis

#: So long a window that nothing refills during a test: counts are exact.
NO_REFILL = "/86400s"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def unique(prefix: str = "sub") -> str:
    return f"{prefix}:{uuid.uuid4().hex}"


async def test_one_hundred_concurrent_hits_capacity_ten(redis_url: str) -> None:
    # What is tested is the script's atomicity, not the fail-open time-out (its own tests
    # below): a generous time-out, so a saturated machine cannot turn this into fail-open.
    limiter = RedisRateLimiter(redis_url, timeout_seconds=10.0)
    policy = LimitPolicy.parse("default", "10" + NO_REFILL)
    key = unique()
    try:
        decisions = await asyncio.gather(*(limiter.hit(key, policy) for _ in range(100)))
        assert sum(d.allowed for d in decisions) == 10
        assert not any(d.degraded for d in decisions)
        assert sorted(d.remaining for d in decisions if d.allowed) == list(range(10))
        refused = [d for d in decisions if not d.allowed]
        assert all(d.retry_after_seconds >= 1 for d in refused)
        assert dict(refused[0].headers())["Retry-After"] == str(refused[0].retry_after_seconds)
    finally:
        await limiter.close()


async def test_arithmetic_matches_memory_limiter(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis_url)
    policy = LimitPolicy.parse("catalogue", "2/60s")
    key = unique("key")
    try:
        first = await limiter.hit(key, policy)
        second = await limiter.hit(key, policy)
        third = await limiter.hit(key, policy)
        assert (first.allowed, first.remaining, first.reset_seconds) == (True, 1, 30)
        assert (second.allowed, second.remaining, second.reset_seconds) == (True, 0, 60)
        assert (third.allowed, third.remaining) == (False, 0)
        assert 29 <= third.retry_after_seconds <= 30
        assert first.headers() == [
            ("RateLimit-Policy", '"catalogue";q=2;w=60'),
            ("RateLimit", '"catalogue";r=1;t=30'),
        ]
    finally:
        await limiter.close()


async def test_refill_over_real_time(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis_url)
    policy = LimitPolicy.parse("default", "5/1s")  # a token every 0.2 s
    key = unique()
    try:
        burst = [await limiter.hit(key, policy) for _ in range(6)]
        assert [d.allowed for d in burst] == [True] * 5 + [False]
        assert burst[-1].retry_after_seconds == 1
        await asyncio.sleep(0.45)  # 2.25 tokens back (a little more on a slow machine)
        later = [(await limiter.hit(key, policy)).allowed for _ in range(5)]
        assert later[:2] == [True, True] and later[-1] is False
    finally:
        await limiter.close()


async def test_keys_are_separate_and_expire(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis_url)
    policy = LimitPolicy.parse("open311", "3/30s")
    a, b = unique("key"), unique("ip")
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert [(await limiter.hit(a, policy)).allowed for _ in range(4)] == [True] * 3 + [False]
        assert (await limiter.hit(b, policy)).allowed
        other_class = LimitPolicy.parse("notify", "3/30s")
        assert (await limiter.hit(a, other_class)).allowed
        name = f"mk:rl:open311:{a}"
        assert limiter.redis_key(a, policy) == name
        ttl_ms = await client.pttl(name)
        assert 30_000 < ttl_ms <= 31_000  # empty bucket: full again in 30 s (+1 s slack)
        assert await client.pttl(f"mk:rl:open311:{b}") <= 11_000  # 1 token short: 10 s
    finally:
        await client.aclose()
        await limiter.close()


_CHILD = textwrap.dedent("""
    import asyncio, json, sys
    from gateway.limits import LimitPolicy, RedisRateLimiter

    async def main(url, key, hits):
        limiter = RedisRateLimiter(url, timeout_seconds=2.0)
        policy = LimitPolicy.parse("default", "25/86400s")
        await limiter.hit("warm-up:" + key, policy)  # connect before the start line
        print("ready", flush=True)
        sys.stdin.readline()
        decisions = await asyncio.gather(*(limiter.hit(key, policy) for _ in range(hits)))
        await limiter.close()
        print(json.dumps({"allowed": sum(d.allowed for d in decisions),
                          "degraded": sum(d.degraded for d in decisions)}), flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
""")


def test_two_processes_share_one_bucket_exactly(redis_url: str) -> None:
    key = unique()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, redis_url, key, "60"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:  # both start together
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert sum(r["degraded"] for r in results) == 0
    assert sum(r["allowed"] for r in results) == 25


async def test_redis_down_fails_open_without_raising(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    limiter = RedisRateLimiter(
        f"redis://127.0.0.1:{free_port()}/0", fail_open_seconds=5, clock=clock
    )
    policy = LimitPolicy.parse("default", "1/60s")
    try:
        with caplog.at_level(logging.WARNING, logger="gateway.limits"):
            decisions = [await limiter.hit("ip:10.0.0.1", policy) for _ in range(5)]
        assert all(d.allowed and d.degraded for d in decisions)
        assert decisions[0].headers() == [("RateLimit-Policy", '"default";q=1;w=60')]
        assert limiter.failing_open
        warnings = [r for r in caplog.records if "failing open" in r.getMessage()]
        assert len(warnings) == 1  # one warning per outage, not per request
        clock.now += 5  # the fail-open period is over: Redis is tried (and fails) again
        assert not limiter.failing_open
        assert (await limiter.hit("ip:10.0.0.1", policy)).degraded
        assert limiter.failing_open
    finally:
        await limiter.close()


@pytest.fixture
def redis_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mk-redis-limits-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_limiting_resumes_when_redis_comes_back(
    redis_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from mkinfra.redis import RedisServer, ensure_redis_installed

    server = RedisServer(redis_dir, port=free_port(), binary=ensure_redis_installed())
    clock = FakeClock()
    limiter = make_rate_limiter(
        LimitSettings(redis_url=server.url, rate_limit_fail_open_seconds=2), clock=clock
    )
    assert isinstance(limiter, RedisRateLimiter)
    policy = LimitPolicy.parse("default", "1" + NO_REFILL)
    try:
        assert (await limiter.hit("k", policy)).degraded  # not started yet
        await asyncio.to_thread(server.start)
        assert (await limiter.hit("k", policy)).degraded  # still inside the fail-open period
        clock.now += 2
        with caplog.at_level(logging.INFO, logger="gateway.limits"):
            first, second = [await limiter.hit("k", policy) for _ in range(2)]
        assert (first.allowed, first.degraded) == (True, False)
        assert (second.allowed, second.degraded) == (False, False)
        assert any("resumed" in r.getMessage() for r in caplog.records)

        await asyncio.to_thread(server.kill)  # a crash mid-flight: pooled connections die
        assert (await limiter.hit("k", policy)).degraded
    finally:
        await limiter.close()
        await asyncio.to_thread(server.stop)
