"""Bodies stream through the gateway in bounded memory: a ``python -m gateway`` process
carries a 50 MiB upload and a 50 MiB download intact while its resident set (VmRSS,
sampled every 20 ms, and the kernel's high-water mark VmHWM) grows by far less than one
body. The real routing table allows 10 MiB request bodies; ``GATEWAY_MAX_BODY_BYTES``
raises that for every route."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from gateway.auth.testing import answer_lifespan
from gateway.config import GatewaySettings
from gateway.main import ADMIN_ROUTE, create_app
from gateway.routes import ROUTES, MiB
from mkinfra._proc import tail, terminate_group
from servicekit.testing import free_port, running_app

from .conftest import closed_url, hash_body

pytestmark = pytest.mark.slow

BODY_MIB = 50
LIMIT = 64 * MiB  # GATEWAY_MAX_BODY_BYTES for the gateway process
#: How much the gateway's memory may grow while it carries a 50 MiB body each way.
MAX_GROWTH = 25 * MiB
UPLOAD = "/api/v1/service-requests/attachments"
DOWNLOAD = "/api/v1/service-requests/export"
_BLOCK = random.Random(20261126).randbytes(MiB)


def chunk(index: int) -> bytes:
    """The ``index``-th MiB of a generated body (every one different)."""
    return index.to_bytes(8, "big") + _BLOCK[8:]


def body_chunks(mib: int) -> Iterator[bytes]:
    for index in range(mib):
        yield chunk(index)


def body_sha256(mib: int) -> str:
    digest = hashlib.sha256()
    for piece in body_chunks(mib):
        digest.update(piece)
    return digest.hexdigest()


class BulkUpstream:
    """A stand-in citizen-services for bulk transfers. ``...attachments``: hashes the body
    as it arrives and answers its SHA-256, size and number of pieces; ``...export?mib=N``:
    N MiB made one chunk at a time (never held whole); ``/health/ready``."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        sha256, size, pieces = await hash_body(receive)
        path = scope["path"]
        if path.endswith("/export"):
            mib = int(parse_qs(scope["query_string"].decode())["mib"][0])
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/octet-stream"),
                        (b"content-length", str(mib * MiB).encode()),
                    ],
                }
            )
            for index in range(mib):
                await send({"type": "http.response.body", "body": chunk(index), "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        if path == "/health/ready":
            payload: dict[str, Any] = {"status": "ok", "checks": {}}
        else:
            payload = {"sha256": sha256, "size": size, "pieces": pieces}
        data = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})


# --------------------------------------------------------------------------- the process


def proc_status_bytes(pid: int, field: str) -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``), in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(f"{field} not in /proc/{pid}/status")


class RssSampler:
    """Samples a process's VmRSS every ``interval`` seconds in a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, proc_status_bytes(self.pid, "VmRSS"))
            self.samples += 1
            self._done.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, proc_status_bytes(self.pid, "VmRSS"))


def _spawn(port: int, env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway"],
            env=dict(env),
            cwd=log_path.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@asynccontextmanager
async def gateway_process(
    tmp: Path, upstream_url: str
) -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    """``python -m gateway`` in front of ``upstream_url`` (as citizen-services), no rate
    limits, every route taking bodies up to ``LIMIT``; SIGTERM to its group at the end."""
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
            "GATEWAY_DATABASE_URL": f"sqlite:///{tmp}/gateway.sqlite3",
            "GATEWAY_RATE_LIMITS_ENABLED": "false",
            "GATEWAY_MAX_BODY_BYTES": str(LIMIT),
            "GATEWAY_LOG_LEVEL": "WARNING",
        }
    )
    log_path = tmp / "gateway.log"
    proc = _spawn(port, env, log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 25
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if proc.poll() is not None:
                    raise AssertionError(
                        f"gateway exited with {proc.returncode}:\n{tail(log_path)}"
                    )
                try:
                    await client.get(url + "/health")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"gateway not ready:\n{tail(log_path)}") from None
                    await asyncio.sleep(0.05)
        yield url, proc
    finally:
        await asyncio.to_thread(terminate_group, proc, 15)


async def upload(client: httpx.AsyncClient, mib: int) -> dict[str, Any]:
    """``mib`` MiB up in 1 MiB pieces (chunked: the client never holds the whole body)."""

    async def pieces() -> AsyncIterator[bytes]:
        for piece in body_chunks(mib):
            yield piece

    resp = await client.post(
        UPLOAD, content=pieces(), headers={"content-type": "application/octet-stream"}
    )
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()
    return result


async def download(client: httpx.AsyncClient, mib: int) -> tuple[int, str]:
    """``mib`` MiB down, hashed as it arrives: (size, SHA-256)."""
    digest, size = hashlib.sha256(), 0
    async with client.stream("GET", DOWNLOAD, params={"mib": mib}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-length"] == str(mib * MiB)
        async for piece in resp.aiter_raw():
            digest.update(piece)
            size += len(piece)
    return size, digest.hexdigest()


async def test_50_mib_each_way_in_bounded_memory(tmp_path: Path) -> None:
    started = time.monotonic()
    expected = body_sha256(BODY_MIB)
    async with (
        running_app(BulkUpstream()) as upstream_url,
        gateway_process(tmp_path, upstream_url) as (url, proc),
        httpx.AsyncClient(base_url=url, timeout=60) as client,
    ):
        # Warm up: every code path used below, with small bodies, then let it settle.
        for _ in range(3):
            assert (await upload(client, 4))["sha256"] == body_sha256(4)
            assert await download(client, 4) == (4 * MiB, body_sha256(4))
        for n in range(20):
            assert (await client.get(f"{UPLOAD}/{n}")).status_code == 200
        await asyncio.sleep(0.3)
        baseline = proc_status_bytes(proc.pid, "VmRSS")
        hwm_before = proc_status_bytes(proc.pid, "VmHWM")

        with RssSampler(proc.pid) as sampler:
            t0 = time.monotonic()
            seen = await upload(client, BODY_MIB)
            t1 = time.monotonic()
            size, sha = await download(client, BODY_MIB)
            t2 = time.monotonic()
        hwm_after = proc_status_bytes(proc.pid, "VmHWM")

        # Integrity, both ways.
        assert (seen["size"], seen["sha256"]) == (BODY_MIB * MiB, expected)
        assert seen["pieces"] > BODY_MIB  # it reached the upstream in pieces, as it came
        assert (size, sha) == (BODY_MIB * MiB, expected)

        growth = sampler.peak - baseline
        hwm_growth = hwm_after - baseline
        report = (
            f"gateway RSS baseline {baseline / MiB:.1f} MiB, sampled peak +"
            f"{growth / MiB:.1f} MiB over {sampler.samples} samples, VmHWM "
            f"{hwm_before / MiB:.1f} -> {hwm_after / MiB:.1f} MiB (+{hwm_growth / MiB:.1f}"
            f" over baseline); upload {BODY_MIB / (t1 - t0):.0f} MiB/s, download "
            f"{BODY_MIB / (t2 - t1):.0f} MiB/s"
        )
        print(report)
        assert sampler.samples >= 5, report
        assert growth < MAX_GROWTH, report
        assert hwm_growth < MAX_GROWTH, report
    assert time.monotonic() - started < 30


async def test_max_body_bytes_setting(tmp_path: Path) -> None:
    """``GATEWAY_MAX_BODY_BYTES`` replaces every route's limit but the admin API's, and the
    limit is still enforced."""
    default = create_app(GatewaySettings())
    assert default.routes == ROUTES
    assert {r.max_body_bytes for r in default.routes} == {10 * MiB}

    raised = create_app(GatewaySettings(max_body_bytes=LIMIT))
    assert [r.prefix for r in raised.routes] == [r.prefix for r in ROUTES]
    assert {r.max_body_bytes for r in raised.routes} == {LIMIT}
    assert ADMIN_ROUTE.max_body_bytes == 64 * 1024
    with pytest.raises(ValueError, match="max_body_bytes"):
        GatewaySettings(max_body_bytes=0)

    # The process refuses a declared body over the limit before reading any of it.
    async with (
        running_app(BulkUpstream()) as upstream_url,
        gateway_process(tmp_path, upstream_url) as (url, _),
    ):
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                f"POST {UPLOAD} HTTP/1.1\r\nHost: gateway\r\n"
                f"Content-Length: {LIMIT + 1}\r\n"
                "Content-Type: application/octet-stream\r\n\r\n".encode()
            )
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), timeout=5)
        finally:
            writer.close()
        assert status_line.startswith(b"HTTP/1.1 413"), status_line
