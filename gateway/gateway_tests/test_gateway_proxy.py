"""The gateway in front of real upstream servers: routing, headers, tracing ids, streaming,
failures and aggregated health."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

from gateway.routes import ROUTES, Route, match
from servicekit.testing import running_app

from .conftest import BIG, BIG_SHA256, MB, GatewayFactory, Upstream, closed_url

PROBLEM_JSON = "application/problem+json"


def header(seen: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in seen["headers"] if k == name]


# -- routing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "upstream"),
    [
        ("/api/v1/services", "citizen-services"),
        ("/api/v1/services/123/publish", "citizen-services"),
        ("/api/v1/service-requests/9", "citizen-services"),
        ("/open311/v2/services.xml", "citizen-services"),
        ("/open311/v2/requests.json", "citizen-services"),
        ("/v2/notifications", "notifications"),
        ("/v2/notifications/email", "notifications"),
        ("/api/v1/templates/abc", "notifications"),
    ],
)
async def test_paths_go_to_their_upstream_unchanged(
    client: httpx.AsyncClient, path: str, upstream: str
) -> None:
    r = await client.get(path)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["upstream"] == upstream
    assert seen["path"] == path
    assert seen["method"] == "GET"


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api",
        "/api/v1",
        "/api/v1/servicesX",
        "/api/v1/services-other",
        "/v20/x",
        "/open311",
        "/health/ready",
        "/metrics",
    ],
)
async def test_unrouted_paths_are_404_problems(
    client: httpx.AsyncClient, path: str, upstreams: dict[str, tuple[Upstream, str]]
) -> None:
    # /metrics is the gateway's own, for scrapers on loopback only (GATEWAY_METRICS_ALLOW_FROM):
    # the public comes from elsewhere, or through a proxy, as here
    headers = {"X-Forwarded-For": "203.0.113.9"} if path == "/metrics" else {}
    r = await client.get(path, headers=headers)
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM_JSON
    body = r.json()
    assert body["status"] == 404 and body["title"] == "Not found"
    assert path in body["detail"]
    assert all(app.requests == [] for app, _ in upstreams.values())


def test_longest_prefix_wins() -> None:
    routes = (Route("/api", "a"), Route("/api/v1/things", "c"), Route("/api/v1", "b"))
    assert match("/api/v1/things/7", routes) == routes[1]
    assert match("/api/v1/things", routes) == routes[1]
    assert match("/api/v1/thingsX", routes) == routes[2]
    assert match("/api/v1", routes) == routes[2]
    assert match("/api/v2", routes) == routes[0]
    assert match("/apiary", routes) is None
    matched = match("/open311/v2/services.json", ROUTES)
    assert matched is not None
    assert (matched.prefix, matched.upstream) == ("/open311/v2", "citizen-services")


async def test_dot_segments_cannot_escape_a_route(
    client: httpx.AsyncClient, upstreams: dict[str, tuple[Upstream, str]]
) -> None:
    # "/api/v1/services/../../../metrics" would match the services route but reach /metrics.
    for path in (
        "/api/v1/services/%2e%2e/%2e%2e/%2e%2e/metrics",
        "/api/v1/services/%2E%2E/%2E%2E/%2E%2E/health/ready",
        "/v2/%2e%2e/api/v1/services/./x",
    ):
        r = await client.get(path)
        assert r.status_code == 400, (path, r.status_code, r.text)
        assert r.headers["content-type"] == PROBLEM_JSON
    assert all(app.requests == [] for app, _ in upstreams.values())


# -- request headers ------------------------------------------------------------------------


async def test_hop_by_hop_headers_are_not_forwarded(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/api/v1/services",
        headers={
            "Connection": "keep-alive, X-Hop-Secret",
            "X-Hop-Secret": "only-for-the-gateway",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "X-End-To-End": "kept",
        },
    )
    seen = r.json()
    names = {k for k, _ in seen["headers"]}
    for dropped in ("x-hop-secret", "keep-alive", "te", "proxy-authorization"):
        assert dropped not in names, dropped
    assert all("x-hop-secret" not in v.lower() for v in header(seen, "connection"))
    assert header(seen, "x-end-to-end") == ["kept"]


async def test_hop_by_hop_response_headers_are_not_forwarded(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/services/hop")
    assert r.status_code == 200
    assert r.headers["x-end-to-end"] == "kept"
    assert "keep-alive" not in r.headers
    assert "x-upstream-hop" not in r.headers
    assert "x-upstream-hop" not in r.headers.get("connection", "")


async def test_forwarded_headers_are_set_and_client_copies_not_trusted(
    client: httpx.AsyncClient,
) -> None:
    # Connect from 127.0.0.2, as a client elsewhere would: uvicorn itself trusts
    # X-Forwarded-* only from 127.0.0.1 (its forwarded_allow_ips default).
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=client.base_url, transport=transport) as remote:
        r = await remote.get(
            "/api/v1/services",
            headers={
                "X-Forwarded-For": "6.6.6.6",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "evil.example",
                "X-Forwarded-Port": "1",
                "Forwarded": "for=6.6.6.6",
            },
        )
    seen = r.json()
    gateway_host = client.base_url.netloc.decode()
    assert header(seen, "x-forwarded-for") == ["127.0.0.2"]
    assert header(seen, "x-forwarded-proto") == ["http"]
    assert header(seen, "x-forwarded-host") == [gateway_host]
    assert header(seen, "x-forwarded-port") == []
    assert header(seen, "forwarded") == []
    assert "6.6.6.6" not in str(seen["headers"])
    # the upstream sees its own address as Host; the client's is in X-Forwarded-Host
    [host] = header(seen, "host")
    assert host != gateway_host


async def test_client_identity_headers_are_stripped(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/services",
        json={"name": "x"},
        headers={
            "X-MK-Identity": "forged",
            "X-MK-Principal": "admin",
            "X-User-Id": "1",
            "X-Roles": "admin,staff",
        },
    )
    seen = r.json()
    names = {k for k, _ in seen["headers"]}
    assert not names & {"x-mk-principal", "x-user-id", "x-roles"}
    # instead, exactly one assertion signed by the gateway (anonymous here)
    [assertion] = header(seen, "x-mk-identity")
    assert assertion != "forged"


async def test_request_id_is_echoed_and_reaches_the_upstream(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/services", headers={"X-Request-ID": "req-7f3a-42"})
    assert r.headers["x-request-id"] == "req-7f3a-42"
    assert header(r.json(), "x-request-id") == ["req-7f3a-42"]


async def test_request_id_is_generated_when_missing_or_unusable(client: httpx.AsyncClient) -> None:
    ids = set()
    for headers in ({}, {"X-Request-ID": "x" * 201}, {"X-Request-ID": ""}):
        r = await client.get("/api/v1/services", headers=headers)
        generated = r.headers["x-request-id"]
        uuid.UUID(generated)
        assert header(r.json(), "x-request-id") == [generated]
        ids.add(generated)
    assert len(ids) == 3
    # also on the gateway's own answers
    r = await client.get("/api/v1/programmes", headers={"X-Request-ID": "req-down"})
    assert r.status_code == 503 and r.headers["x-request-id"] == "req-down"
    r = await client.get("/nowhere", headers={"X-Request-ID": "req-404"})
    assert r.status_code == 404 and r.headers["x-request-id"] == "req-404"
    r = await client.get("/nowhere")
    uuid.UUID(r.headers["x-request-id"])


async def test_trace_continues_from_the_clients_traceparent(client: httpx.AsyncClient) -> None:
    trace_id, parent_span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    with suppress_http_instrumentation():  # else httpx's own instrumentation replaces ours
        r = await client.get(
            "/api/v1/services",
            headers={"traceparent": f"00-{trace_id}-{parent_span}-01", "tracestate": "mk=1"},
        )
    [sent] = header(r.json(), "traceparent")
    version, tid, span_id, flags = sent.split("-")
    assert (version, tid, flags) == ("00", trace_id, "01")
    assert span_id != parent_span and re.fullmatch(r"[0-9a-f]{16}", span_id)
    assert header(r.json(), "tracestate") == ["mk=1"]


async def test_without_a_traceparent_a_new_trace_starts(client: httpx.AsyncClient) -> None:
    with suppress_http_instrumentation():
        seen = [(await client.get("/api/v1/services")).json() for _ in range(2)]
    trace_ids = []
    for s in seen:
        [tp] = header(s, "traceparent")
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", tp), tp
        trace_ids.append(tp.split("-")[1])
    assert trace_ids[0] != trace_ids[1]
    assert "0" * 32 not in trace_ids


# -- bodies, statuses, queries --------------------------------------------------------------


async def test_status_codes_and_bodies_pass_through(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/services/status/201", json={"name": "x"})
    assert r.status_code == 201
    assert r.json() == {"code": 201, "from": "citizen-services"}
    assert r.headers["location"] == "/api/v1/services/abc"

    r = await client.get("/v2/notifications/status/404")
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json() == {"code": 404, "from": "notifications"}  # the upstream's, not ours

    r = await client.delete("/api/v1/services/status/409")
    assert r.status_code == 409


async def test_methods_and_query_strings_are_preserved(client: httpx.AsyncClient) -> None:
    query = "q=pot%20hole&page=2&tag=a&tag=b&empty=&plus=1+2&tilde=%7E"
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        r = await client.request(method, f"/api/v1/services?{query}")
        assert r.status_code == 200
        seen = r.json()
        assert seen["method"] == method
        assert seen["query_string"] == query
    r = await client.get("/api/v1/services/caf%C3%A9%2Fx%7E")
    assert r.json()["raw_path"] == "/api/v1/services/caf%C3%A9%2Fx%7E"


async def test_streamed_chunked_response_is_not_buffered(
    client: httpx.AsyncClient, upstreams: dict[str, tuple[Upstream, str]]
) -> None:
    upstream = upstreams["citizen-services"][0]
    received = b""
    async with client.stream("GET", "/api/v1/services/stream") as r:
        assert r.status_code == 200
        assert "content-length" not in r.headers
        async for chunk in r.aiter_raw():
            received += chunk
            if b"first\n" in received:
                upstream.release.set()
    assert received == b"first\nsecond\nthird\n"


async def test_20mb_request_body_streams_up_intact(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/services/upload", content=BIG, headers={"content-type": "application/octet-stream"}
    )
    seen = r.json()
    assert seen["body_size"] == len(BIG)
    assert seen["body_sha256"] == BIG_SHA256
    assert header(seen, "content-length") == [str(len(BIG))]
    assert seen["body_chunks"] > 1  # it arrived in pieces, not as one buffered blob

    async def chunks():  # chunked transfer encoding from the client
        for start in range(0, len(BIG), MB):
            yield BIG[start : start + MB]

    r = await client.put("/v2/notifications/upload", content=chunks())
    seen = r.json()
    assert (seen["body_size"], seen["body_sha256"]) == (len(BIG), BIG_SHA256)


async def test_20mb_response_streams_down_intact(client: httpx.AsyncClient) -> None:
    digest, size = hashlib.sha256(), 0
    async with client.stream("GET", "/api/v1/services/big") as r:
        assert r.status_code == 200
        async for chunk in r.aiter_raw():
            digest.update(chunk)
            size += len(chunk)
    assert size == len(BIG)
    assert digest.hexdigest() == BIG_SHA256


async def test_concurrent_requests_are_not_mixed_up(client: httpx.AsyncClient) -> None:
    async def one(n: int) -> None:
        r = await client.get(f"/api/v1/services/{n}?n={n}", headers={"X-Request-ID": f"r{n}"})
        assert r.json()["path"] == f"/api/v1/services/{n}"
        assert r.json()["query_string"] == f"n={n}"
        assert r.headers["x-request-id"] == f"r{n}"

    await asyncio.gather(*(one(n) for n in range(50)))


# -- failures and health --------------------------------------------------------------------


async def test_upstream_down_is_a_quick_503_naming_it(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    r = await client.post("/api/v1/programmes", json={"name": "Digital skills"})
    elapsed = time.monotonic() - started
    assert r.status_code == 503
    assert r.headers["content-type"] == PROBLEM_JSON
    body = r.json()
    assert body["upstream"] == "inclusion"
    assert "inclusion" in body["detail"]
    assert body["status"] == 503
    assert elapsed < 1.5, elapsed


async def test_health_aggregates_each_upstreams_readiness(
    upstreams: dict[str, tuple[Upstream, str]], start_gateway: GatewayFactory
) -> None:
    """The public answer: overall status and each service's ok/unavailable, no detail
    (checks, errors and circuits are for admins: test_gateway_health_docs.py)."""
    citizen_url = upstreams["citizen-services"][1]
    only_citizen = await start_gateway(citizen_services_url=citizen_url, health_cache_seconds=0)
    r = await only_citizen.get("/health")
    assert r.status_code == 503
    assert r.headers["cache-control"] == "no-store"
    assert r.json() == {
        "status": "degraded",
        "services": {
            "citizen-services": {"status": "ok"},
            "inclusion": {"status": "unavailable"},
            "notifications": {"status": "unavailable"},
        },
    }

    notifications, notifications_url = upstreams["notifications"]
    inclusion = Upstream("inclusion")
    async with running_app(inclusion) as inclusion_url:
        everything = await start_gateway(
            citizen_services_url=citizen_url,
            notifications_url=notifications_url,
            inclusion_url=inclusion_url,
            health_cache_seconds=0,
        )
        r = await everything.get("/health")
        assert r.status_code == 200
        assert r.json()["status"] == "ok"
        assert {s["status"] for s in r.json()["services"].values()} == {"ok"}

        notifications.ready_status = 503  # answers, but is not ready
        r = await everything.get("/health")
        assert r.status_code == 503
        assert r.json()["services"]["notifications"] == {"status": "unavailable"}
        assert r.json()["services"]["citizen-services"]["status"] == "ok"


async def test_gateway_with_nothing_behind_it_answers_quickly(
    start_gateway: GatewayFactory,
) -> None:
    client = await start_gateway(citizen_services_url=closed_url())
    started = time.monotonic()
    r = await client.get("/health")
    assert r.status_code == 503
    assert {s["status"] for s in r.json()["services"].values()} == {"unavailable"}
    r = await client.get("/open311/v2/services.xml")
    assert r.status_code == 503 and r.headers["content-type"].startswith("text/xml")
    assert b"<code>503</code>" in r.content and b"citizen-services" in r.content
    r = await client.get("/api/v1/services")
    assert r.status_code == 503 and r.json()["upstream"] == "citizen-services"
    assert time.monotonic() - started < 3


# -- redirects ------------------------------------------------------------------------------


def redirecting_service() -> FastAPI:
    """A service as the platform's are built (FastAPI): its trailing-slash redirect names
    the address it was reached on; ``/api/v1/services/go?to=`` answers 302 to ``to``."""
    app = FastAPI()

    @app.get("/api/v1/services")
    async def services() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/api/v1/services/go")
    async def go(to: str) -> RedirectResponse:
        return RedirectResponse(to, status_code=302)

    return app


async def test_redirects_never_name_an_upstreams_address(
    upstreams: dict[str, tuple[Upstream, str]], start_gateway: GatewayFactory
) -> None:
    notifications_url = upstreams["notifications"][1]
    async with running_app(redirecting_service()) as service_url:
        client = await start_gateway(
            citizen_services_url=service_url, notifications_url=notifications_url
        )
        r = await client.get("/api/v1/services/?page=2")
        assert r.status_code == 307
        assert r.headers["location"] == "/api/v1/services?page=2"
        followed = await client.get(r.headers["location"])
        assert followed.status_code == 200 and followed.json() == {"ok": "yes"}

        host = service_url.split("//", 1)[1]
        cases = {
            f"{service_url}/api/v1/services/7": "/api/v1/services/7",
            f"HTTP://{host.upper()}/open311/v2/services.json": "/open311/v2/services.json",
            f"{notifications_url}/v2/notifications/1#top": "/v2/notifications/1#top",
            service_url: "/",
            f"{service_url}//evil.example/x": "/evil.example/x",
            # not an upstream: left alone
            "https://www.milton-keynes.gov.uk/council-tax": "https://www.milton-keynes.gov.uk/council-tax",
            "/api/v1/services/8": "/api/v1/services/8",
            f"{service_url}0/x": f"{service_url}0/x",  # another port
        }
        for target, expected in cases.items():
            r = await client.get("/api/v1/services/go", params={"to": target})
            assert r.status_code == 302, r.text
            assert r.headers["location"] == expected, target


async def test_a_streamed_body_over_the_limit_is_a_413_and_not_the_services_fault(
    upstreams: dict[str, tuple[Upstream, str]], start_gateway: GatewayFactory
) -> None:
    client = await start_gateway(
        citizen_services_url=upstreams["citizen-services"][1],
        max_body_bytes=MB,
        breaker_failure_threshold=1,
    )

    async def chunks():  # chunked: the gateway learns the size only as the body comes
        for _ in range(4):
            yield b"x" * (MB // 2)

    for _ in range(2):  # a failure counted would open the breaker (threshold 1)
        r = await client.post("/api/v1/services/upload", content=chunks())
        assert r.status_code == 413, r.text
        assert r.headers["content-type"] == PROBLEM_JSON
    assert (await client.get("/api/v1/services")).status_code == 200
