"""Failed authentications are rate limited per client address (finding 7 of the security
issue: refused credentials ran before the limiter, so anyone could try keys and tokens as
fast as the gateway answered).

Each refused credential takes a token from the address's ``auth-failures`` bucket
(``GATEWAY_LIMIT_AUTH_FAILURES``, default 20 a minute) in the gateway's limiter — in memory,
or in Redis shared by every replica. The failure that finds the bucket empty is answered
429 instead of 401, and the address is then *blocked* in this process until a token is back:
its requests that carry a credential get 429 with ``Retry-After`` before any key look-up or
signature check. The block is a local note (no Redis round trip on the hot path); another
replica learns it on that address's next failure there. Requests without credentials are
not affected (they cost no check; the anonymous limit meters them).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.limits import Decision, LimitPolicy, RateLimiter, caller_key

#: Most blocked addresses remembered (expired ones are dropped first).
MAX_BLOCKED = 100_000


class AuthFailureGuard:
    def __init__(
        self,
        limiter: RateLimiter,
        policy: LimitPolicy | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = limiter
        self.policy = policy
        self._clock = clock
        self._blocked: dict[str, float] = {}

    @staticmethod
    def key(address: str | None) -> str:
        return caller_key(None, address)

    def retry_after(self, address: str | None) -> int | None:
        """Seconds until ``address`` may present credentials again; None when it may now."""
        if not self._blocked:
            return None
        key = self.key(address)
        until = self._blocked.get(key)
        if until is None:
            return None
        left = until - self._clock()
        if left <= 0:
            del self._blocked[key]
            return None
        return max(1, int(left + 0.999))

    async def failed(self, address: str | None) -> Decision | None:
        """Count one refused credential from ``address``; the decision (None when failures
        are not limited). A refused decision blocks the address until its Retry-After."""
        if self.policy is None:
            return None
        key = self.key(address)
        decision = await self.limiter.hit(key, self.policy)
        if not decision.allowed:
            now = self._clock()
            if len(self._blocked) >= MAX_BLOCKED:
                self._blocked = {k: t for k, t in self._blocked.items() if t > now}
                while len(self._blocked) >= MAX_BLOCKED:
                    self._blocked.pop(next(iter(self._blocked)))
            self._blocked[key] = now + decision.retry_after_seconds
        return decision
