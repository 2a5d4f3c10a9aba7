"""Rate limits: token buckets per caller and limit class, in memory or shared through Redis.

Every route has a limit class (``Route.limit_class``: ``default``, ``catalogue``, ``open311``,
``notify``, ``admin``); the gateway's ``/health`` has the class ``health``, always per client
address. A caller is an API key (``key:<id>``), else an authenticated citizen or
member of staff (``sub:<subject>``), else the client's IP address (``ip:<addr>``, anonymous
callers, whose policy is ``GATEWAY_LIMIT_ANONYMOUS`` unless the class's own is stricter).
Each (class, caller) pair has one token bucket: ``capacity`` tokens (the burst), refilled
continuously at ``capacity / window`` tokens a second; a request takes one token or is refused.

* :class:`MemoryRateLimiter` keeps the buckets in this process (one gateway process, tests).
* :class:`RedisRateLimiter` keeps them in Redis (``mk:rl:<class>:<caller>``), updated by one
  atomic Lua script per request, so every gateway process shares one bucket per caller. If
  Redis cannot be reached it *fails open*: requests are allowed, unmetered, for
  ``fail_open_seconds`` (then Redis is tried again), with one warning log per outage.

Decisions render as the IETF ``RateLimit-Policy`` / ``RateLimit`` response fields
(:meth:`Decision.headers`), plus ``Retry-After`` on refusals.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from servicekit.identity import Principal

log = logging.getLogger(__name__)

Clock = Callable[[], float]

#: The limit classes the routing table uses (``Route.limit_class``), and ``health``: the
#: gateway's own ``/health``, per client address.
LIMIT_CLASSES = ("default", "catalogue", "open311", "notify", "admin", "health")
#: The policy (and bucket-name prefix) of failed authentications per client address.
AUTH_FAILURES = "auth-failures"
#: Policy strings that switch a class's limit off.
OFF = frozenset({"off", "none", "unlimited"})
REDIS_KEY_PREFIX = "mk:rl:"

_POLICY_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*([smh]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}
#: Rounding slack: 1/(1/30) must give 30 seconds, not 31.
_EPS = 1e-9


def _ceil(value: float) -> int:
    return max(0, math.ceil(value - _EPS))


# --------------------------------------------------------------------------- policies


@dataclass(frozen=True)
class LimitPolicy:
    """A token bucket's shape: ``capacity`` tokens (the burst), ``refill_per_second`` tokens
    added back every second. ``window_seconds`` is what ``RateLimit-Policy`` advertises as
    ``w`` (the time an empty bucket takes to fill: ``capacity / refill_per_second``)."""

    name: str
    capacity: int
    refill_per_second: float

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"rate limit {self.name!r}: capacity must be at least 1")
        if not self.refill_per_second > 0:
            raise ValueError(f"rate limit {self.name!r}: refill rate must be positive")

    @classmethod
    def parse(cls, name: str, spec: str) -> LimitPolicy:
        """``"100/60s"`` -> 100 requests per 60 seconds, burst 100 (also ``"5/1m"``, ``"9/1h"``)."""
        match = _POLICY_RE.match(spec)
        if not match:
            raise ValueError(
                f"rate limit {name!r}: {spec!r} is not '<requests>/<seconds>s' (e.g. '100/60s')"
            )
        requests = int(match.group(1))
        seconds = int(match.group(2)) * _UNIT_SECONDS[match.group(3)]
        if requests < 1 or seconds < 1:
            raise ValueError(f"rate limit {name!r}: {spec!r} needs requests >= 1 and seconds >= 1")
        return cls(name, requests, requests / seconds)

    @property
    def window_seconds(self) -> int:
        return max(1, _ceil(self.capacity / self.refill_per_second))

    def renamed(self, name: str) -> LimitPolicy:
        return LimitPolicy(name, self.capacity, self.refill_per_second)


def _sf_string(value: str) -> str:
    """An RFC 9651 sf-string: quoted, with ``\\`` and ``"`` escaped, printable ASCII only."""
    cleaned = "".join(c if " " <= c <= "~" else "_" for c in value)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


@functools.lru_cache(maxsize=64)
def _policy_fields(policy: LimitPolicy, limit: int) -> tuple[str, str]:
    """The sf-string of ``policy``'s name and its ``RateLimit-Policy`` field (the same for
    every request under the policy: made once)."""
    name = _sf_string(policy.name)
    return name, f"{name};q={limit};w={policy.window_seconds}"


@dataclass(frozen=True)
class Decision:
    """The outcome of one hit on a bucket.

    ``remaining`` is the whole tokens left after this hit; ``reset_seconds`` is when the
    bucket is full again (allowed) or when the request could succeed (refused, equal to
    ``retry_after_seconds``, which is 0 when allowed and at least 1 when refused).
    ``degraded`` marks a fail-open decision: the limiter's store was unreachable.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after_seconds: int
    policy: LimitPolicy
    degraded: bool = False

    def headers(self) -> list[tuple[str, str]]:
        """``RateLimit-Policy``, ``RateLimit`` and, when refused, ``Retry-After``.

        Syntax of draft-ietf-httpapi-ratelimit-headers-11 (IETF HTTPAPI WG, 23 May 2026;
        unchanged since -08, 2024), RFC 9651 Structured Fields: each field is a List whose
        items are the quoted policy name with parameters —
        ``RateLimit-Policy: "default";q=100;w=60`` (quota ``q`` per window of ``w`` seconds)
        and ``RateLimit: "default";r=42;t=18`` (``r`` quota units remaining, ``t`` seconds
        until the quota resets). https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/

        A token bucket has no fixed window: ``t`` is when the bucket is full again, and on a
        refusal the moment the next request can pass, the same moment as ``Retry-After``
        (the draft asks for that). A fail-open decision knows no counts: only the policy is
        sent.
        """
        name, policy_field = _policy_fields(self.policy, self.limit)
        out = [("RateLimit-Policy", policy_field)]
        if self.degraded:
            return out
        out.append(("RateLimit", f"{name};r={self.remaining};t={self.reset_seconds}"))
        if not self.allowed:
            out.append(("Retry-After", str(max(1, self.retry_after_seconds))))
        return out

    def asgi_headers(self) -> list[tuple[bytes, bytes]]:
        """:meth:`headers` as raw ASGI headers (lower-case names, latin-1 bytes)."""
        return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers()]


def decide(
    policy: LimitPolicy, allowed: bool, tokens: float, cost: int = 1, *, degraded: bool = False
) -> Decision:
    """A :class:`Decision` from a bucket's token count *after* the hit."""
    tokens = min(float(policy.capacity), max(0.0, tokens))
    remaining = math.floor(tokens + _EPS)
    if allowed:
        reset = _ceil((policy.capacity - tokens) / policy.refill_per_second)
        retry_after = 0
    else:
        retry_after = max(1, _ceil((cost - tokens) / policy.refill_per_second))
        reset = retry_after
    return Decision(allowed, policy.capacity, remaining, reset, retry_after, policy, degraded)


def fail_open_decision(policy: LimitPolicy) -> Decision:
    return Decision(True, policy.capacity, policy.capacity, 0, 0, policy, degraded=True)


def _check_cost(policy: LimitPolicy, cost: int) -> None:
    if cost < 0 or cost > policy.capacity:
        raise ValueError(f"cost {cost} is outside 0..{policy.capacity} for {policy.name!r}")


# --------------------------------------------------------------------------- settings


@functools.lru_cache(maxsize=256)
def _parse_cached(name: str, spec: str) -> LimitPolicy | None:
    return None if spec.strip().lower() in OFF else LimitPolicy.parse(name, spec)


class LimitSettings(BaseSettings):
    """Rate-limit settings: ``GATEWAY_LIMIT_<CLASS>="<requests>/<seconds>s"`` (or ``off``).

    Defaults are generous (development); production sets its own. ``redis_url`` is read from
    ``GATEWAY_REDIS_URL`` or the shared ``REDIS_URL``; without it, buckets are per process.
    """

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", populate_by_name=True)

    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("GATEWAY_REDIS_URL", "REDIS_URL")
    )
    rate_limits_enabled: bool = True
    #: Per API key or per citizen/staff subject, by the route's limit class.
    limit_default: str = "1200/60s"
    limit_catalogue: str = "2400/60s"  # public reads and search
    limit_open311: str = "600/60s"
    #: Notify's /v2, per client address (the gateway cannot tell Notify's keys apart; the
    #: notifications service enforces Notify's 3,000 a minute per key type itself): room
    #: for a live and a test key at their full rate behind one address.
    limit_notify: str = "6000/60s"
    limit_admin: str = "600/60s"
    #: ``/health`` (a check of every service), per client address, whoever the caller.
    limit_health: str = "60/60s"
    #: Anonymous callers, per client IP and limit class (the class's own if stricter).
    limit_anonymous: str = "600/60s"
    #: Failed authentications (a refused token or API key), per client address, on every
    #: route: once spent, that address's requests carrying credentials get 429 before they
    #: are checked (``gateway.auth.failures``).
    limit_auth_failures: str = "20/60s"
    #: Redis: how long one call may take before the limiter fails open, and for how long
    #: it then stays open before trying Redis again.
    redis_timeout_seconds: float = 0.25
    rate_limit_fail_open_seconds: float = 5.0
    #: In-memory limiter: most buckets kept (idle full buckets are dropped first).
    rate_limit_memory_max_keys: int = 100_000

    @field_validator(
        "limit_default",
        "limit_catalogue",
        "limit_open311",
        "limit_notify",
        "limit_admin",
        "limit_health",
        "limit_anonymous",
        "limit_auth_failures",
    )
    @classmethod
    def _valid_policy(cls, value: str) -> str:
        if value.strip().lower() not in OFF:
            LimitPolicy.parse("setting", value)
        return value.strip()

    @staticmethod
    def _parsed(name: str, spec: str) -> LimitPolicy | None:
        return _parse_cached(name, spec)

    def class_policy(self, limit_class: str) -> LimitPolicy | None:
        """The policy of an identified caller in ``limit_class`` (unknown classes: default);
        None when limits are off for it."""
        if not self.rate_limits_enabled:
            return None
        name = limit_class if limit_class in LIMIT_CLASSES else "default"
        return self._parsed(name, getattr(self, f"limit_{name}"))

    def policy(self, limit_class: str, *, anonymous: bool = False) -> LimitPolicy | None:
        """The policy for a request: the class's, or for an anonymous caller the anonymous
        one unless the class's own is stricter (lower sustained rate). None: do not limit
        (the class is ``off`` or ``GATEWAY_RATE_LIMITS_ENABLED=false``): no limiter call and
        no RateLimit headers."""
        policy = self.class_policy(limit_class)
        if policy is None or not anonymous:
            return policy
        anon = self._parsed(policy.name, self.limit_anonymous)
        if anon is None:
            return policy
        stricter = (policy.refill_per_second, policy.capacity) < (
            anon.refill_per_second,
            anon.capacity,
        )
        return policy if stricter else anon

    def auth_failure_policy(self) -> LimitPolicy | None:
        """The bucket of failed authentications per client address (``auth-failures``);
        None when rate limits are off."""
        if not self.rate_limits_enabled:
            return None
        return self._parsed(AUTH_FAILURES, self.limit_auth_failures)

    def policies(self) -> dict[str, LimitPolicy | None]:
        return {name: self.class_policy(name) for name in LIMIT_CLASSES}


# --------------------------------------------------------------------------- callers


def caller_key(
    principal: Principal | None = None,
    client_ip: str | None = None,
    *,
    subject: str | None = None,
    api_key_id: str | None = None,
) -> str:
    """The bucket key of a caller: ``key:<api key id>``, else ``sub:<subject>``, else
    ``ip:<addr>`` for anonymous callers (IPv6 clients by their /64, which one host usually
    owns; ``ip:unknown`` without an address). The key id and subject come from
    ``principal`` (its ``key_id`` and ``subject``) or from the keyword arguments. Long or odd
    identifiers are replaced by a SHA-256 prefix."""
    if principal is not None:
        api_key_id = api_key_id or principal.key_id
        subject = subject or principal.subject
    if api_key_id:
        return "key:" + _safe(api_key_id)
    if subject:
        return "sub:" + _safe(subject)
    return "ip:" + _ip_part(client_ip)


def _safe(ident: str) -> str:
    # printable ASCII but the space: "!" to "~"
    if len(ident) <= 128 and ident.isascii() and ident.isprintable() and " " not in ident:
        return ident
    return "h-" + hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _ip_part(client_ip: str | None) -> str:
    if not client_ip:
        return "unknown"
    try:
        addr = ipaddress.ip_address(client_ip.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return _safe(client_ip)
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


# --------------------------------------------------------------------------- limiters


@runtime_checkable
class RateLimiter(Protocol):
    async def hit(self, key: str, policy: LimitPolicy, cost: int = 1) -> Decision:
        """Take ``cost`` tokens from ``policy``'s bucket for caller ``key`` if it has them."""
        ...

    async def close(self) -> None: ...


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    capacity: int
    rate: float

    def level(self, now: float) -> float:
        return min(float(self.capacity), self.tokens + max(0.0, now - self.stamp) * self.rate)


class MemoryRateLimiter:
    """Token buckets in this process. Safe for concurrent tasks and threads (the check and
    the update happen under one lock, with no await in between).

    Memory is bounded: a bucket that has refilled completely is the same as no bucket, so
    each hit drops up to two idle full buckets (least recently used first), and past
    ``max_keys`` the least recently used bucket is dropped whatever its level.
    """

    def __init__(self, *, max_keys: int = 100_000, clock: Clock = time.monotonic) -> None:
        self.max_keys = max(1, max_keys)
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    async def hit(self, key: str, policy: LimitPolicy, cost: int = 1) -> Decision:
        return self.hit_now(key, policy, cost)

    def hit_now(self, key: str, policy: LimitPolicy, cost: int = 1) -> Decision:
        """:meth:`hit`, synchronously."""
        _check_cost(policy, cost)
        full_key = f"{policy.name}:{key}"
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(full_key)
            if (
                bucket is None
                or bucket.capacity != policy.capacity
                or bucket.rate != policy.refill_per_second
            ):
                bucket = _Bucket(
                    float(policy.capacity), now, policy.capacity, policy.refill_per_second
                )
                self._buckets[full_key] = bucket
            else:
                self._buckets.move_to_end(full_key)
            tokens = bucket.level(now)
            allowed = tokens >= cost - _EPS
            if allowed:
                tokens = max(0.0, tokens - cost)
            bucket.tokens, bucket.stamp = tokens, now
            self._evict(now, keep=full_key)
        return decide(policy, allowed, tokens, cost)

    def _evict(self, now: float, keep: str) -> None:
        for _ in range(2):
            oldest = next(iter(self._buckets))
            if oldest == keep or self._buckets[oldest].level(now) < self._buckets[oldest].capacity:
                break
            del self._buckets[oldest]
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)

    async def close(self) -> None:
        with self._lock:
            self._buckets.clear()


#: KEYS[1] bucket; ARGV capacity, refill per second, cost. Redis's own clock (TIME) is the
#: time base, so gateway processes on different hosts agree. Returns {allowed, tokens left}
#: (tokens as a string: Lua numbers would come back truncated to integers).
_BUCKET_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
elseif now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate)
else
  tokens = math.min(capacity, tokens)
end
local allowed = 0
if tokens >= cost - 1e-9 then
  tokens = math.max(0, tokens - cost)
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'ts', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
return {allowed, string.format('%.17g', tokens)}
"""


class RedisRateLimiter:
    """Token buckets in Redis (``mk:rl:<class>:<caller>``), shared by every gateway process.

    One ``EVALSHA`` of an atomic Lua script per hit; each key expires once its bucket would
    be full again. When Redis fails (unreachable, timed out, erroring) the limiter fails
    open: it answers allowed, ``degraded`` decisions without calling Redis for
    ``fail_open_seconds``, logs one warning per outage and one info line on recovery.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        timeout_seconds: float = 0.25,
        fail_open_seconds: float = 5.0,
        clock: Clock = time.monotonic,
    ) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.redis_url = redis_url
        self.timeout_seconds = timeout_seconds
        self.fail_open_seconds = fail_open_seconds
        self._clock = clock
        self._redis = Redis.from_url(
            redis_url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            # One quick retry: a pooled connection may be stale after a Redis restart.
            retry=Retry(NoBackoff(), 1),
            health_check_interval=0,
        )
        self._script = self._redis.register_script(_BUCKET_SCRIPT)
        self._open_until: float | None = None
        self._outage_logged = False

    @staticmethod
    def redis_key(key: str, policy: LimitPolicy) -> str:
        return f"{REDIS_KEY_PREFIX}{policy.name}:{key}"

    @property
    def failing_open(self) -> bool:
        return self._open_until is not None and self._clock() < self._open_until

    async def hit(self, key: str, policy: LimitPolicy, cost: int = 1) -> Decision:
        from redis.exceptions import RedisError

        _check_cost(policy, cost)
        if self.failing_open:
            return fail_open_decision(policy)
        try:
            async with asyncio.timeout(self.timeout_seconds * 3):
                allowed, tokens = await self._script(
                    keys=[self.redis_key(key, policy)],
                    args=[policy.capacity, repr(policy.refill_per_second), cost],
                )
        except (RedisError, OSError, TimeoutError) as exc:
            self._open_until = self._clock() + self.fail_open_seconds
            if not self._outage_logged:
                self._outage_logged = True
                log.warning(
                    "rate limiter: Redis unavailable (%s); failing open, requests are "
                    "not rate limited until it answers again",
                    type(exc).__name__,
                )
            return fail_open_decision(policy)
        if self._outage_logged:
            self._outage_logged = False
            log.info("rate limiter: Redis answers again; rate limiting resumed")
        self._open_until = None
        return decide(policy, bool(int(allowed)), float(tokens), cost)

    async def close(self) -> None:
        await self._redis.aclose()


def make_rate_limiter(settings: LimitSettings, *, clock: Clock = time.monotonic) -> RateLimiter:
    """A :class:`RedisRateLimiter` when ``settings.redis_url`` is set, else in memory."""
    if settings.redis_url:
        return RedisRateLimiter(
            settings.redis_url,
            timeout_seconds=settings.redis_timeout_seconds,
            fail_open_seconds=settings.rate_limit_fail_open_seconds,
            clock=clock,
        )
    return MemoryRateLimiter(max_keys=settings.rate_limit_memory_max_keys, clock=clock)
