"""``/hsds`` through the real gateway (both served by uvicorn on free ports): answers
validate against HSDS 3.0 and Open Referral UK with zero errors, ``openapi_url`` is the
gateway's, and any web page may read it (``Access-Control-Allow-Origin: *``, pre-flight
included) while other routes keep the gateway's origin list."""

from __future__ import annotations

from pathlib import Path

import httpx

from citizen_services.config import Settings
from citizen_services.main import create_app
from gateway.auth import AuthSettings
from gateway.config import GatewaySettings
from gateway.limits import LimitSettings
from gateway.main import create_app as create_gateway
from servicekit.testing import running_app

from .openreferral import Checker

ORIGIN = "https://directory.example.org"  # not one of the gateway's allowed origins


async def test_hsds_through_the_gateway(settings: Settings, tmp_path: Path) -> None:
    service = create_app(settings.model_copy(update={"seed_data": True}))
    async with running_app(service) as service_url:
        gateway = create_gateway(
            GatewaySettings(
                citizen_services_url=service_url,
                inclusion_url=service_url,
                notifications_url=service_url,
            ),
            auth_settings=AuthSettings(database_url=f"sqlite:///{tmp_path}/gateway.sqlite3"),
            limit_settings=LimitSettings(rate_limits_enabled=False),
        )
        async with (
            running_app(gateway) as url,
            httpx.AsyncClient(base_url=url, timeout=60, headers={"Origin": ORIGIN}) as client,
        ):
            checker = Checker()
            about = await client.get("/hsds")
            assert about.status_code == 200 and about.headers["access-control-allow-origin"] == "*"
            assert about.json()["openapi_url"] == f"{url}/openapi.json"
            checker.check("about", about.json(), where="/hsds")

            services = await client.get("/hsds/services", params={"per_page": 200})
            assert services.status_code == 200, services.text
            assert services.headers["access-control-allow-origin"] == "*"
            assert len(services.json()["contents"]) == 200
            checker.page("service_list", services.json(), where="/hsds/services")
            sals = await client.get("/hsds/service_at_locations", params={"per_page": 200})
            checker.page("service_at_location_list", sals.json(), where="/hsds/sal")
            sal = sals.json()["contents"][0]
            for shape, path in (
                ("service", f"/hsds/services/{services.json()['contents'][0]['id']}"),
                ("service_at_location", f"/hsds/service_at_locations/{sal['id']}"),
            ):
                r = await client.get(path)
                assert r.status_code == 200, r.text
                checker.check(shape, r.json(), where=path)
            print(checker.report())
            assert sum(checker.counts.values()) == 0, checker.examples

            missing = await client.get("/hsds/services/nope")
            assert missing.status_code == 404
            assert missing.headers["access-control-allow-origin"] == "*"

            preflight = await client.options(
                "/hsds/services",
                headers={
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "If-None-Match",
                },
            )
            assert preflight.status_code == 204, preflight.text
            assert preflight.headers["access-control-allow-origin"] == "*"
            assert "GET" in preflight.headers["access-control-allow-methods"]
            assert "POST" not in preflight.headers["access-control-allow-methods"]

            # the rest of the API keeps the gateway's list of allowed origins
            other = await client.options(
                "/api/v1/services", headers={"Access-Control-Request-Method": "GET"}
            )
            assert other.status_code == 403
            listed = await client.get("/api/v1/services")
            assert "access-control-allow-origin" not in listed.headers


async def test_the_gateways_own_errors_on_hsds_are_open_to_any_origin(tmp_path: Path) -> None:
    """With citizen-services down, the gateway answers ``/hsds`` itself (502/503): a web page
    on any origin may still read that answer; other routes keep the gateway's origin list."""
    from mkinfra._proc import free_port

    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    gateway = create_gateway(
        GatewaySettings(citizen_services_url=down, inclusion_url=down, notifications_url=down),
        auth_settings=AuthSettings(database_url=f"sqlite:///{tmp_path}/gateway.sqlite3"),
        limit_settings=LimitSettings(rate_limits_enabled=False),
    )
    async with (
        running_app(gateway) as url,
        httpx.AsyncClient(base_url=url, timeout=60, headers={"Origin": ORIGIN}) as client,
    ):
        failed = await client.get("/hsds/services")
        assert failed.status_code in (502, 503), failed.text
        assert failed.headers["content-type"] == "application/problem+json"
        assert failed.headers["access-control-allow-origin"] == "*"
        assert "Retry-After" in failed.headers["access-control-expose-headers"]
        other = await client.get("/api/v1/services")
        assert other.status_code in (502, 503)
        assert "access-control-allow-origin" not in other.headers
