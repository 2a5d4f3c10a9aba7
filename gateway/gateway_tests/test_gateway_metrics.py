"""The gateway's ``/metrics`` (Prometheus, for allowed scrapers only) and its JSON access log
(one line per request, no query string, no credentials, no client address)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import GatewaySettings
from gateway.limits import LimitSettings
from gateway.main import create_app
from servicekit.testing import running_app

from .conftest import Upstream, closed_url, gateway_kwargs

PATH = "/api/v1/services/abc"


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as s:
        yield s


async def gateway(stack: AsyncExitStack, tmp: Path, **settings: Any) -> httpx.AsyncClient:
    upstream_url = await stack.enter_async_context(running_app(Upstream("citizen-services")))
    app = create_app(
        GatewaySettings(
            citizen_services_url=upstream_url,
            inclusion_url=closed_url(),
            notifications_url=closed_url(),
            breaker_failure_threshold=1,
            **settings,
        ),
        **{
            **gateway_kwargs(tmp),
            "limit_settings": LimitSettings(
                redis_url=None, rate_limits_enabled=True, limit_catalogue="2/60s"
            ),
        },
    )
    url = await stack.enter_async_context(running_app(app))
    client: httpx.AsyncClient = await stack.enter_async_context(
        httpx.AsyncClient(base_url=url, timeout=30)
    )
    return client


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_count_requests_by_route_upstream_state_and_refusals(
    stack: AsyncExitStack, tmp_path: Path
) -> None:
    client = await gateway(stack, tmp_path)
    assert (await client.get(PATH, params={"email": "someone@example.org"})).status_code == 200
    assert (await client.get(PATH)).status_code == 200
    assert (await client.get(PATH)).status_code == 429  # catalogue: 2/60s
    assert (await client.get("/nowhere")).status_code == 404
    assert (await client.post("/api/v1/programmes", json={})).status_code == 503  # inclusion down

    resp = await client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    found = samples(resp.text)
    requests = "http_requests_total"
    route = "/api/v1/services"
    assert value(found, requests, method="GET", route=route, status="200") == 2
    assert value(found, requests, method="GET", route=route, status="429") == 1
    assert value(found, requests, method="GET", route="unmatched", status="404") == 1
    assert value(found, requests, method="POST", route="/api/v1/programmes", status="503") == 1
    assert value(found, "http_request_duration_seconds_count", method="GET", route=route) == 3
    assert value(found, "gateway_rate_limited_total", limit_class="catalogue") == 1
    assert value(found, "gateway_requests_in_flight") == 0
    replica = client.base_url.host  # only to show what a replica label looks like
    assert replica == "127.0.0.1"
    cs = [k for k in found if k[0] == "gateway_upstream_requests_total"]
    assert {dict(labels)["upstream"] for _, labels in cs} == {"citizen-services", "inclusion"}
    by_outcome = {
        (dict(labels)["upstream"], dict(labels)["outcome"]): found[(name, labels)]
        for name, labels in cs
    }
    assert by_outcome == {("citizen-services", "ok"): 2, ("inclusion", "failed"): 1}
    # breaker state per replica: inclusion's one failure opened it (threshold 1)
    states = {
        (dict(labels)["upstream"], dict(labels)["state"]): v
        for (name, labels), v in found.items()
        if name == "gateway_upstream_breaker_state"
    }
    assert states[("citizen-services", "closed")] == 1
    assert states[("inclusion", "open")] == 1 and states[("inclusion", "closed")] == 0
    assert all(
        v == 1 for (name, _), v in found.items() if name == "gateway_upstream_replica_in_rotation"
    )
    assert "someone@example.org" not in resp.text


async def test_metrics_only_for_allowed_scrapers_not_through_a_proxy(
    stack: AsyncExitStack, tmp_path: Path
) -> None:
    client = await gateway(stack, tmp_path)
    assert (await client.get("/metrics")).status_code == 200
    forwarded = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert forwarded.status_code == 404
    assert forwarded.json()["detail"] == "No route for /metrics."

    elsewhere = await gateway(stack, tmp_path, metrics_allow_from="10.0.0.0/8")
    resp = await elsewhere.get("/metrics")
    assert resp.status_code == 404
    assert "http_requests_total" not in resp.text


def access_lines(err: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "gateway.access"]


async def test_one_json_access_line_per_request(
    stack: AsyncExitStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # written whatever the log level
    client = await gateway(stack, tmp_path, log_level="WARNING")
    capsys.readouterr()
    resp = await client.get(
        PATH,
        params={"email": "someone@example.org"},
        headers={"Authorization": "Bearer not-a-token", "X-Request-ID": "req-42"},
    )
    assert resp.status_code == 401
    resp = await client.get(PATH, headers={"X-Request-ID": "req-43"})
    assert resp.status_code == 200
    traceparent = next(v for k, v in resp.json()["headers"] if k == "traceparent")
    await asyncio.sleep(0.5)  # lines are written together, within 0.2 s
    err = capsys.readouterr().err
    lines = access_lines(err)
    assert len(lines) == 2, err
    first, second = lines
    assert first["route"] == "/api/v1/services" and first["status"] == 401
    assert first["request_id"] == "req-42" and first["service"] == "gateway"
    assert "replica" not in first  # refused at the gateway: no upstream
    assert second["status"] == 200 and second["method"] == "GET"
    assert second["request_id"] == "req-43"
    assert second["upstream"] == "citizen-services"
    assert second["replica"].startswith("127.0.0.1:")
    assert second["trace_id"] == traceparent.split("-")[1]
    assert second["duration_ms"] > 0
    assert second["message"].startswith("GET /api/v1/services 200 ")
    # nothing personal or secret: no query string, no header, no client address
    for line in lines:
        text = json.dumps({k: v for k, v in line.items() if k != "replica"})
        for secret in ("someone", "example.org", "email", "not-a-token", "Bearer", "127.0.0.1"):
            assert secret not in text, (secret, text)

    off = await gateway(stack, tmp_path, access_log=False)
    capsys.readouterr()
    assert (await off.get("/health")).status_code in (200, 503)
    await asyncio.sleep(0.5)
    assert not access_lines(capsys.readouterr().err)
