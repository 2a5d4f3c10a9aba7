"""Liveness and readiness. Ready means the database answers and Kafka answers metadata."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

from aiokafka.client import AIOKafkaClient
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse


class KafkaProbe:
    """Asks the cluster for metadata, at most once a second."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str,
        kafka_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.kafka_options = dict(kafka_options or {})
        self.client_id = client_id
        self._client: AIOKafkaClient | None = None
        self._checked_at = 0.0
        self._ok = False
        self._lock = asyncio.Lock()

    async def check(self) -> bool:
        async with self._lock:
            if time.monotonic() - self._checked_at < 1.0:
                return self._ok
            try:
                if self._client is None:
                    client = AIOKafkaClient(
                        bootstrap_servers=self.bootstrap_servers,
                        **self.kafka_options,
                        client_id=self.client_id,
                        request_timeout_ms=3000,
                    )
                    await asyncio.wait_for(client.bootstrap(), timeout=3)
                    self._client = client
                metadata = await asyncio.wait_for(self._client.fetch_all_metadata(), timeout=3)
                self._ok = bool(metadata.brokers())
            except Exception:
                self._ok = False
                await self.close()
            self._checked_at = time.monotonic()
            return self._ok

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()


router = APIRouter(tags=["health"])


@router.get("/health/live", summary="Liveness: the process is up")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready", summary="Readiness: the database and Kafka answer")
async def ready(request: Request) -> JSONResponse:
    runtime = request.app.state.runtime
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(runtime.database.ping(), timeout=3)
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unavailable"
    if runtime.kafka_probe is not None:
        checks["kafka"] = "ok" if await runtime.kafka_probe.check() else "unavailable"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )
