"""``python -m gateway`` on SIGTERM: stops accepting, lets the requests it is proxying
finish, and exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from mkinfra._proc import tail, terminate_group
from servicekit.testing import eventually, free_port

from .conftest import closed_url
from .test_gateway_overload import _spawn, _wait_until_answering, upstream_process

pytestmark = pytest.mark.slow

PATH = "/api/v1/services/stop"


async def test_sigterm_lets_requests_in_flight_finish_and_exits_zero(tmp_path: Path) -> None:
    async with upstream_process(tmp_path) as upstream_url:
        port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GATEWAY_", "OTEL_")) and k != "REDIS_URL"
        }
        env.update(
            {
                "GATEWAY_HOST": "127.0.0.1",
                "GATEWAY_PORT": str(port),
                "GATEWAY_CITIZEN_SERVICES_URL": upstream_url,
                "GATEWAY_INCLUSION_URL": closed_url(),
                "GATEWAY_NOTIFICATIONS_URL": closed_url(),
                "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path}/gateway.sqlite3",
                "GATEWAY_RATE_LIMITS_ENABLED": "false",
                "GATEWAY_LOG_LEVEL": "WARNING",
                "GATEWAY_SHUTDOWN_GRACE_SECONDS": "30",
            }
        )
        log_path = tmp_path / "gateway.log"
        proc = _spawn([sys.executable, "-m", "gateway"], log_path, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            await _wait_until_answering(url, proc, log_path, "/health")
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                # each takes 2 s upstream: all in flight when the SIGTERM arrives
                slow = [
                    asyncio.create_task(client.get(PATH, params={"delay": "2", "n": str(n)}))
                    for n in range(10)
                ]

                async def all_in_flight() -> bool:  # the gateway's own count, from /metrics
                    text = (await client.get("/metrics")).text
                    return "gateway_requests_in_flight 10.0" in text

                await eventually(all_in_flight, timeout=30, interval=0.05)
                assert not any(t.done() for t in slow)
                os.killpg(proc.pid, signal.SIGTERM)
                responses = await asyncio.gather(*slow)
                assert Counter(r.status_code for r in responses) == {200: 10}
                status = await asyncio.to_thread(proc.wait, 60)
                assert status == 0, tail(log_path)
            async with httpx.AsyncClient(base_url=url, timeout=5) as client:
                with pytest.raises(httpx.ConnectError):
                    await client.get(PATH)
        finally:
            if proc.poll() is None:
                await asyncio.to_thread(terminate_group, proc, 10)
