"""A burst through the gateway, every service and the gateway its own process (as deployed):
200 concurrent reads of the catalogue answer without a single 5xx, on this 2-core machine
and while other work loads it."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from .conftest import Platform

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def test_200_concurrent_reads_through_the_gateway_get_no_5xx(
    platform_processes: Platform,
) -> None:
    platform = platform_processes
    async with httpx.AsyncClient(
        base_url=platform.gateway_url, timeout=60, limits=httpx.Limits(max_connections=250)
    ) as client:
        page = await client.get("/api/v1/services", params={"per_page": 50})
        assert page.status_code == 200, page.text
        ids = [s["id"] for s in page.json()["items"]]
        assert ids
        for round_ in range(2):  # cold connections first, then pooled ones
            responses = await asyncio.gather(
                *(client.get(f"/api/v1/services/{ids[i % len(ids)]}") for i in range(200))
            )
            statuses = Counter(r.status_code for r in responses)
            failures = [r.text for r in responses if r.status_code >= 500][:3]
            assert statuses == {200: 200}, (round_, statuses, failures)
