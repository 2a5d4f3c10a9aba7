"""Token buckets in memory: arithmetic, headers, settings, caller keys, concurrency."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gateway.limits import (
    Decision,
    LimitPolicy,
    LimitSettings,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    caller_key,
    decide,
    fail_open_decision,
    make_rate_limiter,
)
from servicekit.identity import ANONYMOUS, AuthMethod, Principal, Role


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def header_dict(decision: Decision) -> dict[str, str]:
    return dict(decision.headers())


# -- policies -------------------------------------------------------------------------------


def test_policy_parses_requests_per_seconds() -> None:
    policy = LimitPolicy.parse("default", "100/60s")
    assert (policy.name, policy.capacity, policy.window_seconds) == ("default", 100, 60)
    assert policy.refill_per_second == pytest.approx(100 / 60)
    assert LimitPolicy.parse("x", " 5 / 1m ").window_seconds == 60
    assert LimitPolicy.parse("x", "3600/1h").refill_per_second == 1
    assert LimitPolicy.parse("x", "7/3").window_seconds == 3


@pytest.mark.parametrize(
    "spec", ["", "100", "100/", "/60s", "0/60s", "10/0s", "1.5/60s", "10/60x", "ten/60s", "-1/60s"]
)
def test_bad_policy_strings_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        LimitPolicy.parse("default", spec)


# -- bucket arithmetic ----------------------------------------------------------------------


async def test_burst_then_refusal_then_refill() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    policy = LimitPolicy.parse("default", "10/60s")  # one token every 6 s

    decisions = [await limiter.hit("k", policy) for _ in range(10)]
    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions] == list(range(9, -1, -1))
    assert [d.reset_seconds for d in decisions] == [6 * n for n in range(1, 11)]
    assert all(d.retry_after_seconds == 0 and d.limit == 10 for d in decisions)

    refused = await limiter.hit("k", policy)
    assert not refused.allowed
    assert (refused.remaining, refused.retry_after_seconds, refused.reset_seconds) == (0, 6, 6)

    clock.advance(5.9)
    again = await limiter.hit("k", policy)
    assert not again.allowed and again.retry_after_seconds == 1  # 0.1 s left, rounded up

    clock.advance(0.1)
    assert (await limiter.hit("k", policy)).allowed
    assert not (await limiter.hit("k", policy)).allowed

    clock.advance(3600)  # refills to the burst, never beyond
    burst = [await limiter.hit("k", policy) for _ in range(11)]
    assert sum(d.allowed for d in burst) == 10


async def test_cost_takes_several_tokens() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    policy = LimitPolicy.parse("default", "10/10s")
    assert (await limiter.hit("k", policy, cost=7)).remaining == 3
    refused = await limiter.hit("k", policy, cost=5)
    assert not refused.allowed and refused.remaining == 3 and refused.retry_after_seconds == 2
    assert (await limiter.hit("k", policy, cost=3)).remaining == 0
    with pytest.raises(ValueError):
        await limiter.hit("k", policy, cost=11)


async def test_separate_keys_and_classes_have_separate_buckets() -> None:
    limiter = MemoryRateLimiter(clock=FakeClock())
    default = LimitPolicy.parse("default", "2/60s")
    catalogue = LimitPolicy.parse("catalogue", "2/60s")
    for key in ("key:a", "key:b"):
        assert [(await limiter.hit(key, default)).allowed for _ in range(3)] == [True, True, False]
    assert (await limiter.hit("key:a", catalogue)).allowed


# -- headers --------------------------------------------------------------------------------


async def test_headers_exact_strings() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    policy = LimitPolicy.parse("default", "2/60s")

    first = await limiter.hit("k", policy)
    assert first.headers() == [
        ("RateLimit-Policy", '"default";q=2;w=60'),
        ("RateLimit", '"default";r=1;t=30'),
    ]
    second = await limiter.hit("k", policy)
    assert second.headers() == [
        ("RateLimit-Policy", '"default";q=2;w=60'),
        ("RateLimit", '"default";r=0;t=60'),
    ]
    clock.advance(12)
    refused = await limiter.hit("k", policy)
    assert refused.headers() == [
        ("RateLimit-Policy", '"default";q=2;w=60'),
        ("RateLimit", '"default";r=0;t=18'),
        ("Retry-After", "18"),
    ]
    assert refused.asgi_headers() == [
        (b"ratelimit-policy", b'"default";q=2;w=60'),
        (b"ratelimit", b'"default";r=0;t=18'),
        (b"retry-after", b"18"),
    ]


def test_retry_after_is_at_least_one_second() -> None:
    policy = LimitPolicy("fast", 1000, 1000.0)
    refused = decide(policy, False, 0.9999)
    assert refused.retry_after_seconds == 1
    assert header_dict(refused)["Retry-After"] == "1"


def test_policy_names_are_quoted_and_escaped() -> None:
    decision = decide(LimitPolicy('we"ird\\', 5, 1.0), True, 4)
    assert header_dict(decision)["RateLimit-Policy"] == '"we\\"ird\\\\";q=5;w=5'


def test_fail_open_decision_sends_only_the_policy() -> None:
    decision = fail_open_decision(LimitPolicy.parse("open311", "600/60s"))
    assert decision.allowed and decision.degraded
    assert decision.headers() == [("RateLimit-Policy", '"open311";q=600;w=60')]


# -- concurrency and memory -----------------------------------------------------------------


async def test_one_hundred_concurrent_hits_capacity_ten() -> None:
    limiter = MemoryRateLimiter(clock=FakeClock())
    policy = LimitPolicy.parse("default", "10/60s")

    async def one() -> bool:
        await asyncio.sleep(0)
        return (await limiter.hit("sub:alice", policy)).allowed

    results = await asyncio.gather(*(one() for _ in range(100)))
    assert sum(results) == 10


def test_threads_share_a_bucket_exactly() -> None:
    limiter = MemoryRateLimiter(clock=FakeClock())
    policy = LimitPolicy.parse("default", "10/60s")
    allowed: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            ok = limiter.hit_now("ip:1.2.3.4", policy).allowed
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(allowed) == 100 and sum(allowed) == 10


async def test_memory_is_bounded_idle_full_buckets_go_first() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(max_keys=100, clock=clock)
    policy = LimitPolicy.parse("default", "10/10s")
    for n in range(50):
        await limiter.hit(f"ip:10.0.0.{n}", policy)
    assert len(limiter) == 50
    clock.advance(0.5)  # half a token back each: not yet full, nothing to drop
    await limiter.hit("ip:10.0.1.1", policy)
    assert len(limiter) == 51
    clock.advance(60)  # every bucket is full again: each hit drops up to two idle ones
    for n in range(30):
        await limiter.hit(f"ip:10.0.2.{n}", policy)
    assert len(limiter) < 51
    for n in range(1000):  # never more than max_keys, whatever the level
        await limiter.hit(f"ip:10.1.{n // 256}.{n % 256}", policy)
    assert len(limiter) == 100
    # A bucket that was dropped while full is the same as a new one.
    assert (await limiter.hit("ip:10.0.0.0", policy)).remaining == 9


# -- settings -------------------------------------------------------------------------------


def test_settings_defaults_are_generous(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("GATEWAY_REDIS_URL", raising=False)
    settings = LimitSettings()
    assert settings.redis_url is None
    policies = settings.policies()
    assert set(policies) == {"default", "catalogue", "open311", "notify", "admin", "health"}
    default = settings.policy("default")
    assert default is not None and (default.capacity, default.window_seconds) == (1200, 60)
    anonymous = settings.policy("default", anonymous=True)
    assert anonymous is not None and anonymous.name == "default"
    assert (anonymous.capacity, anonymous.window_seconds) == (600, 60)
    unknown = settings.policy("no-such-class")
    assert unknown is not None and unknown.name == "default"
    assert isinstance(make_rate_limiter(settings), MemoryRateLimiter)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_LIMIT_DEFAULT", "100/60s")
    monkeypatch.setenv("GATEWAY_LIMIT_NOTIFY", "off")
    monkeypatch.setenv("GATEWAY_LIMIT_ADMIN", "30/60s")
    monkeypatch.setenv("GATEWAY_LIMIT_ANONYMOUS", "60/60s")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.delenv("GATEWAY_REDIS_URL", raising=False)
    settings = LimitSettings()
    default = settings.policy("default")
    assert default is not None and default.capacity == 100
    assert settings.policy("notify") is None
    assert settings.redis_url == "redis://127.0.0.1:1/0"
    # Anonymous: the anonymous policy, unless the class's own is stricter.
    anon_default = settings.policy("default", anonymous=True)
    assert anon_default is not None and anon_default.capacity == 60
    anon_admin = settings.policy("admin", anonymous=True)
    assert anon_admin is not None and (anon_admin.name, anon_admin.capacity) == ("admin", 30)

    monkeypatch.setenv("GATEWAY_REDIS_URL", "redis://127.0.0.1:2/0")
    assert LimitSettings().redis_url == "redis://127.0.0.1:2/0"
    monkeypatch.setenv("GATEWAY_RATE_LIMITS_ENABLED", "false")
    assert LimitSettings().policy("default") is None


def test_settings_reject_bad_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_LIMIT_CATALOGUE", "lots")
    with pytest.raises(ValueError, match=r"catalogue|setting"):
        LimitSettings()


async def test_make_rate_limiter_uses_redis_when_configured() -> None:
    limiter = make_rate_limiter(LimitSettings(redis_url="redis://127.0.0.1:1/0"))
    try:
        assert isinstance(limiter, RedisRateLimiter)
        assert isinstance(limiter, RateLimiter)
    finally:
        await limiter.close()


# -- caller keys ----------------------------------------------------------------------------


def test_caller_key_prefers_api_key_then_subject_then_ip() -> None:
    assert caller_key(subject="u-1", api_key_id="k-9", client_ip="10.0.0.1") == "key:k-9"
    assert caller_key(subject="u-1", client_ip="10.0.0.1") == "sub:u-1"
    assert caller_key(None, "10.0.0.1") == "ip:10.0.0.1"
    assert caller_key(client_ip="::ffff:10.0.0.1") == "ip:10.0.0.1"
    assert (
        caller_key(client_ip="2001:db8::1")
        == caller_key(client_ip="2001:db8::ffff")
        == "ip:2001:db8::/64"
    )
    assert caller_key() == "ip:unknown"
    assert caller_key(None, "unknown") == "ip:unknown"
    hashed = caller_key(subject="x" * 500)
    assert hashed.startswith("sub:h-") and len(hashed) < 50
    assert caller_key(subject="a b") != caller_key(subject="a_b")


def test_caller_key_from_a_principal() -> None:
    partner = Principal(
        subject="partner-7",
        roles=frozenset({Role.PARTNER}),
        method=AuthMethod.API_KEY,
        key_id="k-42",
    )
    citizen = Principal(subject="c-1", roles=frozenset({Role.CITIZEN}), method=AuthMethod.JWT)
    assert caller_key(partner, "10.0.0.1") == "key:k-42"
    assert caller_key(citizen, "10.0.0.1") == "sub:c-1"
    assert caller_key(ANONYMOUS, "10.0.0.1") == "ip:10.0.0.1"
