"""The gateway's own pages: ``/health`` (public, trimmed, rate-limited per address, its
fan-out to the services cached), ``/api/v1/admin/health`` (the detail, admins only) and
``/docs`` (Swagger UI served by the gateway from pinned files, CSP ``'self'``)."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth import AuthSettings
from gateway.auth.testing import auth_settings
from gateway.config import GatewaySettings
from gateway.devcreds import ensure_dev_credentials
from gateway.limits import LimitSettings
from gateway.main import create_app
from servicekit.testing import running_app

from .conftest import GatewayFactory, Upstream, closed_url, gateway_kwargs

PROBLEM_JSON = "application/problem+json"
#: The vendored Swagger UI files (gateway/static/swagger-ui/README.md).
SWAGGER_SHA256 = {
    "swagger-ui-bundle.js": "b164c5a22535e40dae08c00271674a67e437ec195098c55fcedf8ffac7ac3c88",
    "swagger-ui.css": "7eb9f5a125e4bc9b3f0b71869b66d1a3d7c501f972f53d44ef91c2ae6c5bda5e",
}


def health_probes(upstreams: dict[str, tuple[Upstream, str]]) -> dict[str, int]:
    return {
        name: sum(r["path"] == "/health/ready" for r in app.requests)
        for name, (app, _) in upstreams.items()
    }


async def test_health_is_rate_limited_per_address(
    upstreams: dict[str, tuple[Upstream, str]], tmp_path: Path
) -> None:
    settings = GatewaySettings(
        citizen_services_url=upstreams["citizen-services"][1],
        notifications_url=upstreams["notifications"][1],
        inclusion_url=closed_url(),
    )
    kwargs = {
        **gateway_kwargs(tmp_path),
        "limit_settings": LimitSettings(redis_url=None, limit_health="3/60s"),
    }
    async with (
        running_app(create_app(settings, **kwargs)) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        for _ in range(3):
            r = await client.get("/health")
            assert r.status_code == 503  # inclusion is down: degraded, but answered
        refused = await client.get("/health")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == PROBLEM_JSON
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit-policy"] == '"health";q=3;w=60'
        # another address has its own allowance
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx.AsyncClient(base_url=url, transport=transport) as other:
            assert (await other.get("/health")).status_code == 503


async def test_health_live_answers_for_the_gateway_alone(
    upstreams: dict[str, tuple[Upstream, str]], start_gateway: GatewayFactory
) -> None:
    """``/health/live`` (the probes' and the image's HEALTHCHECK's): 200 while every service
    behind the gateway is down, and no service is asked."""
    client = await start_gateway(
        citizen_services_url=closed_url(),
        notifications_url=upstreams["notifications"][1],
        inclusion_url=closed_url(),
    )
    before = health_probes(upstreams)
    live = await client.get("/health/live")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert live.headers["cache-control"] == "no-store"
    assert health_probes(upstreams) == before


async def test_a_flood_of_health_checks_fans_out_once(
    upstreams: dict[str, tuple[Upstream, str]], start_gateway: GatewayFactory
) -> None:
    client = await start_gateway(
        citizen_services_url=upstreams["citizen-services"][1],
        notifications_url=upstreams["notifications"][1],
        health_cache_seconds=1.0,
    )
    before = health_probes(upstreams)  # the module's other tests probe them too

    def probes() -> dict[str, int]:
        return {name: n - before[name] for name, n in health_probes(upstreams).items()}

    answers = await asyncio.gather(*(client.get("/health") for _ in range(30)))
    answers += [await client.get("/health") for _ in range(10)]
    assert {r.status_code for r in answers} == {503}
    assert probes() == {"citizen-services": 1, "notifications": 1}
    await asyncio.sleep(1.1)
    assert (await client.get("/health")).status_code == 503
    assert probes() == {"citizen-services": 2, "notifications": 2}


@pytest.fixture
async def admin_gateway(
    upstreams: dict[str, tuple[Upstream, str]], tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """A gateway trusting the dev issuer; yields a client and the dev credentials."""
    auth_db = f"sqlite:///{tmp_path}/gateway.sqlite3"
    creds = await ensure_dev_credentials(tmp_path, AuthSettings(database_url=auth_db))
    settings = GatewaySettings(
        citizen_services_url=upstreams["citizen-services"][1],
        notifications_url=upstreams["notifications"][1],
        inclusion_url=closed_url(),
    )
    app = create_app(
        settings,
        **{
            **gateway_kwargs(tmp_path),
            "auth_settings": auth_settings(auth_db, jwks_file=creds.issuer.jwks_path),
        },
    )
    async with running_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        yield client, creds.values


async def test_health_detail_is_for_admins_only(admin_gateway: Any) -> None:
    client, creds = admin_gateway
    public = (await client.get("/health")).json()
    assert public == {
        "status": "degraded",
        "services": {
            "citizen-services": {"status": "ok"},
            "inclusion": {"status": "unavailable"},
            "notifications": {"status": "ok"},
        },
    }

    anonymous = await client.get("/api/v1/admin/health")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == PROBLEM_JSON
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    citizen = await client.get(
        "/api/v1/admin/health", headers={"Authorization": f"Bearer {creds['CITIZEN_TOKEN']}"}
    )
    assert citizen.status_code == 403
    assert citizen.headers["content-type"] == PROBLEM_JSON
    for credentials in ({"Authorization": f"Bearer {creds['ADMIN_TOKEN']}"},):
        detail = await client.get("/api/v1/admin/health", headers=credentials)
        assert detail.status_code == 503
        assert detail.headers["cache-control"] == "no-store"
        services = detail.json()["services"]
        assert services["citizen-services"] == {
            "status": "ok",
            "checks": {"database": "ok"},
            "circuit": "closed",
        }
        assert services["inclusion"] == {
            "status": "unavailable",
            "error": "ClientConnectorError",
            "circuit": "closed",
        }


async def test_docs_are_served_by_the_gateway_from_pinned_files(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp
    assert "unsafe-inline" not in csp and "http" not in csp
    assert "<script>" not in page.text  # no inline script: every script has a src
    assert "//" not in page.text.replace("<!doctype", "")  # nothing from another origin
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) == 3, assets
    seen: dict[str, str] = {}
    for path in assets:
        assert path.startswith("/docs/swagger-ui-"), path
        r = await client.get(path)
        assert r.status_code == 200, path
        assert "immutable" in r.headers["cache-control"]
        name = path.rsplit("/", 1)[1]
        seen[name] = hashlib.sha256(r.content).hexdigest()
        expected_type = "text/css" if name.endswith(".css") else "text/javascript"
        assert r.headers["content-type"].startswith(expected_type)
    assert {k: v for k, v in seen.items() if k in SWAGGER_SHA256} == SWAGGER_SHA256
    init = await client.get(next(p for p in assets if p.endswith("/init.js")))
    assert b'"/openapi.json"' in init.content
    for missing in (
        "/docs/",
        "/docs/swagger-ui-5.36.0/index.html",
        "/docs/swagger-ui-5.36.0/LICENSE",
        "/docs/swagger-ui-4.0.0/init.js",
    ):
        r = await client.get(missing)
        assert r.status_code == 404, missing
        assert r.headers["content-type"] == PROBLEM_JSON
