"""Several replicas behind one upstream service: which replica gets a request, and which are
in rotation.

``GATEWAY_<SERVICE>_URL`` is one URL or a comma-separated list (one per replica). Each
replica has its own circuit breaker (:mod:`gateway.breaker`), so one dead replica does not
take its service out, and its own count of outstanding requests.

* **Choice** (:meth:`ReplicaPool.choose`): the replica with the fewest outstanding requests,
  ties broken round robin; replicas in rotation before those out of it; a replica whose
  breaker refuses is passed over. Only when every replica's breaker refuses is the service
  unavailable (503 with ``Retry-After``).
* **Passive health**: each attempt's outcome counts against the replica that served it
  (connect failures, 502/503/504 and time-outs open its breaker, as for one upstream).
  Retries go to another replica when there is one (:mod:`gateway.proxy` decides when a
  retry is safe).
* **Active health** (:class:`HealthChecker`): every ``GATEWAY_HEALTH_CHECK_INTERVAL_SECONDS``
  each replica's ``/health/ready`` is asked; a replica that does not answer 200 is out of
  rotation until it does. Out of rotation is a last resort, not a ban: when no replica in
  rotation can take a request (all of them failing, or all unready, say while Kafka is
  down), the others are still tried, as a one-replica service always is. A service with one
  replica is not polled (its breaker alone decides, and an idle gateway stays idle).

Not thread-safe by design: one event loop owns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection

import aiohttp
from yarl import URL

from gateway.admission import UpstreamQueue
from gateway.breaker import CircuitBreaker

log = logging.getLogger(__name__)


def replica_label(url: str) -> str:
    """``host:port`` of a replica's URL (its name in logs and metrics)."""
    parsed = URL(url)
    return f"{parsed.host}:{parsed.port}" if parsed.host else url


class Replica:
    __slots__ = ("breaker", "in_rotation", "index", "label", "outstanding", "upstream", "url")

    def __init__(self, upstream: str, url: str, index: int, breaker: CircuitBreaker) -> None:
        self.upstream = upstream
        self.url = url
        self.index = index
        self.label = replica_label(url)
        self.breaker = breaker
        self.outstanding = 0
        #: False while its last active health check failed
        self.in_rotation = True

    def __repr__(self) -> str:
        return (
            f"Replica({self.upstream!r}, {self.label}, outstanding={self.outstanding}, "
            f"in_rotation={self.in_rotation}, breaker={self.breaker.state.value})"
        )


class ReplicaPool:
    """One upstream service's replicas and its bounded queue (shared by the replicas)."""

    def __init__(
        self,
        name: str,
        urls: Collection[str],
        *,
        queue: UpstreamQueue,
        breaker: Callable[[str], CircuitBreaker],
    ) -> None:
        if not urls:
            raise ValueError(f"{name}: at least one upstream URL")
        self.name = name
        self.queue = queue
        self.replicas = tuple(
            Replica(name, url, i, breaker(f"{name}@{replica_label(url)}"))
            for i, url in enumerate(urls)
        )
        self._single = self.replicas[0] if len(self.replicas) == 1 else None
        self._next = 0  # round robin among equals

    def available(self) -> bool:
        """Would some replica's breaker let a request through now? (Takes no probe slot.)"""
        return any(r.breaker.retry_after_seconds() == 0 for r in self.replicas)

    def retry_after_seconds(self) -> int:
        """Whole seconds until some replica's breaker lets a request through (at least 1)."""
        return max(1, min(r.breaker.retry_after_seconds() for r in self.replicas))

    def choose(self, tried: Collection[Replica] = ()) -> Replica | None:
        """The replica for the next attempt, not one of ``tried``; None when none may take
        it. The chosen replica's breaker has let it through (:meth:`CircuitBreaker.allow`):
        the attempt's outcome must be recorded on it, or the slot released."""
        single = self._single
        if single is not None:
            if single in tried:
                return None
            return single if single.breaker.allow() else None
        replicas = self.replicas
        n = len(replicas)
        start = self._next
        self._next = (start + 1) % n
        order = sorted(
            (r for r in replicas if r not in tried),
            key=lambda r: (not r.in_rotation, r.outstanding, (r.index - start) % n),
        )
        for replica in order:
            if replica.breaker.allow():
                return replica
        return None


class HealthChecker:
    """Polls each replica's ``/health/ready`` of every service with more than one replica,
    taking a replica out of rotation while it does not answer 200."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        pools: Collection[ReplicaPool],
        *,
        interval: float,
        timeout: float,
    ) -> None:
        self.http = http
        self.replicas = [r for p in pools if len(p.replicas) > 1 for r in p.replicas]
        self.interval = interval
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.replicas and self._task is None:
            self._task = asyncio.create_task(self._run(), name="gateway-health-checks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def check_all(self) -> None:
        await asyncio.gather(*(self.check(r) for r in self.replicas))

    async def check(self, replica: Replica) -> None:
        try:
            async with self.http.get(
                replica.url + "/health/ready", timeout=self.timeout, allow_redirects=False
            ) as resp:
                await resp.read()
                ready, why = resp.status == 200, f"status {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            ready, why = False, type(exc).__name__
        if ready != replica.in_rotation:
            if ready:
                log.info("replica %s of %s back in rotation", replica.label, replica.upstream)
            else:
                log.warning(
                    "replica %s of %s out of rotation: health check %s",
                    replica.label,
                    replica.upstream,
                    why,
                )
            replica.in_rotation = ready

    async def _run(self) -> None:
        while True:
            try:
                await self.check_all()
            except Exception:  # pragma: no cover - check() handles what it expects
                log.exception("health checks failed")
            await asyncio.sleep(self.interval)
