"""Finding 11 of the security issue: an identity assertion the gateway sent to one service
worked, copied, on any service and any path, as often as wanted, for 60 seconds. Now it is
bound to its service, method and path, and accepted once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import gateway.main
from servicekit.identity import ASSERTION_HEADER

from .conftest import Platform

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def test_a_copied_assertion_is_refused_by_every_service(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    sign = gateway.main.sign_assertion

    def recording(*args: Any, **kwargs: Any) -> str:
        token = sign(*args, **kwargs)
        sent.append(token)
        return token

    monkeypatch.setattr(gateway.main, "sign_assertion", recording)
    staff = platform.bearer("STAFF_TOKEN")
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        through = await client.get("/api/v1/service-requests", headers=staff)
        assert through.status_code == 200, through.text
    [copied] = sent
    header = {ASSERTION_HEADER: copied}
    citizen_services = platform.service_urls["citizen-services"]
    attempts = {
        "the same request again": (citizen_services, "/api/v1/service-requests"),
        "another path": (
            citizen_services,
            "/api/v1/service-requests/0b7c1a53-8a53-4f0b-9a35-0f3f6f54c1a7",
        ),
        "another service": (platform.service_urls["notifications"], "/api/v1/templates"),
        "a third service": (platform.service_urls["inclusion"], "/api/v1/enrolments"),
    }
    for what, (base, path) in attempts.items():
        async with httpx.AsyncClient(base_url=base, timeout=30) as direct:
            replayed = await direct.get(path, headers=header)
        assert replayed.status_code == 401, (what, replayed.status_code, replayed.text)
