"""Several replicas of one service behind the gateway, each its own process: requests are
shared between them; one SIGKILLed loses no request (connect failures go to the other);
a replica answering 503 is skipped by idempotent requests; a replica whose
``/health/ready`` fails is out of rotation until it answers again."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config import GatewaySettings
from gateway.main import Gateway, create_app
from mkinfra._proc import kill_group, tail, terminate_group
from servicekit.identity import Principal, Role
from servicekit.testing import eventually, free_port, running_app

from .conftest import closed_url, gateway_kwargs

pytestmark = pytest.mark.slow

PATH = "/api/v1/services/replicas"

#: A stand-in citizen-services replica as its own process. ``argv[2]``: ``ok``; ``sick``
#: (503 everywhere but ``/health/ready``); ``unready`` (``/health/ready`` 503, the rest
#: answered). Every answer names the process.
REPLICA_SCRIPT = r"""
import json, os, sys
import uvicorn

MODE = sys.argv[2]

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    while (await receive()).get("more_body"):
        pass
    if scope["path"] == "/health/ready":
        status = 503 if MODE == "unready" else 200
    else:
        status = 503 if MODE == "sick" else 200
    body = json.dumps({"pid": os.getpid(), "method": scope["method"]}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            lifespan="on", access_log=False)
"""


class ReplicaProcess:
    def __init__(self, log_dir: Path, name: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def spawn(self, mode: str) -> Path:
        self.starts += 1
        log_path = self.log_dir / f"{self.name}-{self.starts}.log"
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", REPLICA_SCRIPT, str(self.port), mode],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return log_path

    async def start(self, mode: str = "ok", timeout: float = 30.0) -> int:
        """Start (on the same port each time) and wait until it answers; its pid."""
        log_path = self.spawn(mode)
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"{self.name} exited:\n{tail(log_path)}")
                try:
                    await client.get(self.url + "/health/live")
                    return self.proc.pid
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} did not start in {timeout} s")

    def kill(self) -> None:
        if self.proc is not None:
            kill_group(self.proc)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            terminate_group(self.proc, 5)


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[tuple[ReplicaProcess, ReplicaProcess]]:
    a, b = ReplicaProcess(tmp_path, "a"), ReplicaProcess(tmp_path, "b")
    try:
        yield a, b
    finally:
        await asyncio.to_thread(a.stop)
        await asyncio.to_thread(b.stop)


def gateway_for(tmp_path: Path, *urls: str, **settings: object) -> Gateway:
    values: dict[str, object] = {
        "citizen_services_url": ",".join(urls),
        "inclusion_url": closed_url(),
        "notifications_url": closed_url(),
        "health_check_interval_seconds": 0.2,
        **settings,
    }
    return create_app(GatewaySettings(**values), **gateway_kwargs(tmp_path))  # type: ignore[arg-type]


async def test_requests_are_shared_and_a_killed_replica_loses_none(
    replicas: tuple[ReplicaProcess, ReplicaProcess], tmp_path: Path
) -> None:
    a, b = replicas
    pid_a, pid_b = await asyncio.gather(a.start(), b.start())
    app = gateway_for(tmp_path, a.url, b.url, breaker_failure_threshold=2, breaker_reset_seconds=1)
    replica_b = app.pools["citizen-services"].replicas[1]
    async with running_app(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        # one at a time, nothing outstanding: round robin
        seen: Counter[int] = Counter()
        for _ in range(20):
            resp = await client.get(PATH)
            assert resp.status_code == 200, resp.text
            seen[resp.json()["pid"]] += 1
        assert seen == {pid_a: 10, pid_b: 10}

        await asyncio.to_thread(b.kill)

        # every request answered by the survivor: a connect failure is retried on the other
        # replica for any method (nothing reached the dead one)
        async def one(n: int) -> httpx.Response:
            if n % 2:
                return await client.post(PATH, json={"n": n})
            return await client.get(PATH)

        answers = []
        for _ in range(4):
            answers += await asyncio.gather(*(one(n) for n in range(10)))
        assert Counter(r.status_code for r in answers) == {200: 40}
        assert {r.json()["pid"] for r in answers} == {pid_a}
        # the dead replica's breaker is open, and the health checks took it out of rotation
        await eventually(lambda: asyncio.sleep(0, result=not replica_b.in_rotation), timeout=10)

        # back on the same port: in rotation again, and it gets requests
        new_b = await b.start()
        await eventually(lambda: asyncio.sleep(0, result=replica_b.in_rotation), timeout=10)

        async def reaches_b() -> bool:
            resp = await client.get(PATH)
            assert resp.status_code == 200
            return bool(resp.json()["pid"] == new_b)

        await eventually(reaches_b, timeout=15, interval=0.05)
        detail = app.pools["citizen-services"].replicas
        assert all(r.in_rotation for r in detail)


async def test_idempotent_requests_skip_a_replica_that_answers_503(
    replicas: tuple[ReplicaProcess, ReplicaProcess], tmp_path: Path
) -> None:
    a, b = replicas
    pid_a, _ = await asyncio.gather(a.start(), b.start("sick"))
    # a high threshold: the breaker stays closed, the retry alone keeps GETs whole
    app = gateway_for(tmp_path, a.url, b.url, breaker_failure_threshold=1000)
    async with running_app(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        gets = [await client.get(PATH) for _ in range(10)]
        assert [r.status_code for r in gets] == [200] * 10
        assert {r.json()["pid"] for r in gets} == {pid_a}
        # a POST is not repeated once the replica had it: its 503 is the answer
        posts = [await client.post(PATH, json={}) for _ in range(10)]
        statuses = Counter(r.status_code for r in posts)
        assert set(statuses) == {200, 503} and statuses[503] >= 3, statuses


async def test_an_unready_replica_is_out_of_rotation_until_it_is_ready(
    replicas: tuple[ReplicaProcess, ReplicaProcess], tmp_path: Path
) -> None:
    a, b = replicas
    pid_a, _ = await asyncio.gather(a.start(), b.start("unready"))
    app = gateway_for(tmp_path, a.url, b.url)
    replica_b = app.pools["citizen-services"].replicas[1]
    async with running_app(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        await eventually(lambda: asyncio.sleep(0, result=not replica_b.in_rotation), timeout=10)
        answers = [await client.get(PATH) for _ in range(10)]
        assert {(r.status_code, r.json()["pid"]) for r in answers} == {(200, pid_a)}
        # the service is ok while one replica is ready; the detail names each replica
        health = (await client.get("/health")).json()["services"]["citizen-services"]
        assert health == {"status": "ok"}
        detail = (await app._service_health())["citizen-services"]
        labels = [r.label for r in app.pools["citizen-services"].replicas]
        assert {k: v["status"] for k, v in detail["replicas"].items()} == {
            labels[0]: "ok",
            labels[1]: "unavailable",
        }
        sent: list[dict[str, Any]] = []

        async def capture(message: dict[str, Any]) -> None:
            sent.append(message)

        admin = Principal(subject="admin-1", roles=frozenset({Role.ADMIN}))
        await app._admin_health(capture, admin, "req-1", [])
        service = json.loads(sent[1]["body"])["services"]["citizen-services"]
        assert service["status"] == "ok" and service["circuit"] == "closed"
        assert service["replicas"][labels[1]]["in_rotation"] is False
        assert service["replicas"][labels[0]] == {
            "status": "ok",
            "checks": {},  # this stand-in's /health/ready names no checks
            "circuit": "closed",
            "in_rotation": True,
        }

        await asyncio.to_thread(b.kill)
        new_b = await b.start("ok")
        await eventually(lambda: asyncio.sleep(0, result=replica_b.in_rotation), timeout=10)
        pids = Counter([(await client.get(PATH)).json()["pid"] for _ in range(10)])
        assert pids == {pid_a: 5, new_b: 5}
