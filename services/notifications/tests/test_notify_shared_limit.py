"""Notify's rate limit shared through Redis: two notifications processes on one database
together never allow more than the limit a minute per key type; without Redis, and while
Redis is away, each process keeps its own window."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from notifications_python_client.errors import HTTPError
from notifications_python_client.notifications import NotificationsAPIClient

from mkinfra._proc import tail, terminate_group
from mkinfra.testing import free_ports
from notifications.application import notify_services
from notifications.application.notify_auth import Caller
from notifications.application.notify_limits import (
    NotifyRateLimiter,
    RedisNotifyRateLimiter,
    make_notify_limiter,
)
from notifications.domain.notify import KeyType, RateLimitError
from notifications.persistence.notify_services import NotifyServiceRepository
from servicekit.db import Database

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
LIMIT = 20


class _Key:
    def __init__(self, key_type: str) -> None:
        self.key_type = key_type


class _Service:
    def __init__(self) -> None:
        self.id = uuid.uuid4()


def _caller(service: _Service, key_type: str = "normal") -> Caller:
    return Caller(service=service, key=_Key(key_type))  # type: ignore[arg-type]


async def test_redis_window_is_one_allowance_for_every_limiter(redis_url: str) -> None:
    one, two = RedisNotifyRateLimiter(redis_url, 5), RedisNotifyRateLimiter(redis_url, 5)
    service = _Service()
    try:
        allowed = 0
        for i in range(12):
            try:
                await (one if i % 2 else two).acquire(_caller(service))
                allowed += 1
            except RateLimitError as exc:
                assert "key type LIVE of 5 requests per 60 seconds" in exc.message
        assert allowed == 5
        await one.acquire(_caller(service, "test"))  # another key type, its own allowance
        await one.acquire(_caller(_Service()))  # another service too
    finally:
        await one.stop()
        await two.stop()


async def test_without_redis_each_process_counts_alone_and_an_outage_falls_back() -> None:
    assert isinstance(make_notify_limiter(5, None), NotifyRateLimiter)
    # nothing listens there: each call fails fast and the process's own window applies
    (port,) = free_ports(1)
    limiter = RedisNotifyRateLimiter(f"redis://127.0.0.1:{port}/0", 3, timeout_seconds=0.2)
    service = _Service()
    try:
        for _ in range(3):
            await limiter.acquire(_caller(service))
        with pytest.raises(RateLimitError):
            await limiter.acquire(_caller(service))
    finally:
        await limiter.stop()


async def _keys(database_url: str) -> dict[str, str]:
    db = Database(database_url)
    try:
        async with db.session() as s:
            services = NotifyServiceRepository(s)
            service = await notify_services.create_service(
                services,
                name=f"limit test {uuid.uuid4().hex[:6]}",
                email_from="mk@notifications.test.example",
                sms_sender="MKCouncil",
            )
            keys = {}
            for name, key_type in (("live", KeyType.LIVE), ("test", KeyType.TEST)):
                _, keys[name] = await notify_services.create_api_key(
                    services, service_id=service.id, name=f"{name} key", key_type=key_type
                )
            await s.commit()
            return keys
    finally:
        await db.dispose()


async def _ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"notifications exited during start-up:\n{tail(log, 40)}")
            try:
                if (await client.get(f"{url}/health/ready")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise TimeoutError(f"{url} not ready:\n{tail(log, 40)}")


async def test_two_processes_together_never_exceed_the_limit(
    new_postgres_database, redis_url: str, tmp_path: Path
) -> None:
    database_url = new_postgres_database("notify_limit")
    ports = free_ports(2)
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for port in ports:
            log = tmp_path / f"notifications-{port}.log"
            env = {
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "NOTIFICATIONS_PORT": str(port),
                "NOTIFICATIONS_DATABASE_URL": database_url,
                "NOTIFICATIONS_ENVIRONMENT": "test",
                "NOTIFICATIONS_MESSAGING_ENABLED": "false",
                "NOTIFICATIONS_REDIS_URL": redis_url,
                "NOTIFICATIONS_NOTIFY_RATE_LIMIT_PER_MINUTE": str(LIMIT),
                "NOTIFICATIONS_SMTP_PORT": str(free_ports(1)[0]),
            }
            with log.open("ab") as out:
                proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once
                    [sys.executable, "-m", "notifications"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            procs.append((proc, log))
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for (proc, log), url in zip(procs, urls, strict=True):
            await _ready(url, proc, log)
        keys = await _keys(database_url)

        def call(i: int, key: str) -> int:
            client = NotificationsAPIClient(keys[key], base_url=urls[i % 2])
            try:
                client.get_all_templates()
                return 200
            except HTTPError as exc:
                return int(exc.status_code)

        def burst(key: str, count: int) -> list[int]:
            with ThreadPoolExecutor(max_workers=8) as pool:
                return list(pool.map(lambda i: call(i, key), range(count)))

        live = await asyncio.to_thread(burst, "live", 3 * LIMIT)
        assert live.count(200) == LIMIT, live
        assert live.count(429) == 2 * LIMIT, live
        # the other key type has its own allowance, also shared
        test = await asyncio.to_thread(burst, "test", 2 * LIMIT)
        assert (test.count(200), test.count(429)) == (LIMIT, LIMIT), test
    finally:
        for proc, _ in procs:
            terminate_group(proc, 20)
