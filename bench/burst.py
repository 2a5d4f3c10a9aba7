"""The 200-request burst: 200 concurrent ``GET /api/v1/services/{id}`` through the gateway
to citizen-services, each its own connection, all started at once; twice (cold connections,
then the gateway's pooled upstream connections warm). The gateway's limits are as deployed
(the 400 requests fit the anonymous class's 600 a minute). SQLite and PostgreSQL.

Goal: no 5xx (and no request without an answer). Printed: the status counts.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import aiohttp

from bench import _report
from bench.read import catalogue_with_entry

REQUESTS = 200


async def burst(url: str) -> tuple[Counter[str], float]:
    statuses: Counter[str] = Counter()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, force_close=True), timeout=timeout
    ) as http:

        async def one() -> None:
            try:
                async with http.get(url) as r:
                    await r.read()
                    statuses[str(r.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                statuses[type(exc).__name__] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(REQUESTS)))
        return statuses, time.perf_counter() - t0


def run() -> dict[str, Any]:
    print(
        f"\n== Burst: {REQUESTS} concurrent GETs through the gateway to citizen-services ==",
        flush=True,
    )
    results: dict[str, Any] = {}
    for database in ("sqlite", "postgresql"):
        with catalogue_with_entry(database) as c:
            for round_ in ("cold", "warm"):
                statuses, seconds = asyncio.run(burst(c.gateway + c.path))
                results[f"{database} {round_}"] = statuses
                counts = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
                print(
                    f"  {database}, {round_}: {counts} (all answered in {seconds:.2f} s)",
                    flush=True,
                )
    bad = sum(
        n
        for statuses in results.values()
        for k, n in statuses.items()
        if not (k.isdigit() and int(k) < 500)
    )
    total = sum(sum(s.values()) for s in results.values())
    _report.goal(
        "burst",
        f"{REQUESTS}-request burst: no 5xx",
        f"{bad} of {total} 5xx or unanswered",
        bad == 0,
    )
    return results
