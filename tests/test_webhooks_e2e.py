"""Acceptance, through the gateway with real Kafka: a partner subscribes to ServicePublished;
staff publish services; the partner's receiver verifies every delivery with the PyPI
``standardwebhooks`` package, gets the event again after answering 500, and a 410 disables
the subscription. Endpoints on loopback or link-local addresses are refused unless
allow-listed (here 127.0.0.0/8 is, so the receiver can run on this machine; ::1 and
169.254.0.0/16 are not)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mkinfra.smtp_sink import SmtpSink
from servicekit.testing import eventually, running_app

from .conftest import Platform, run_platform

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

SUBSCRIPTIONS = "/api/v1/webhook-subscriptions"


@dataclass
class Receiver:
    """A partner's endpoint: answers the scripted statuses in turn (then 200) and verifies
    every call with ``standardwebhooks`` once it knows the secret."""

    secret: str = ""
    script: list[int] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)

    async def endpoint(self, request: Request) -> Response:
        body = (await request.body()).decode()
        payload = Webhook(self.secret).verify(body, dict(request.headers))  # raises if bad
        status = self.script.pop(0) if self.script else 200
        self.calls.append(
            {"id": request.headers["webhook-id"], "status": status, "payload": payload}
        )
        return Response(status_code=status)

    def for_service(self, service_id: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["payload"]["data"].get("service_id") == service_id]


@pytest.fixture
async def webhook_platform(
    tmp_path: Path, kafka_bootstrap: str, smtp_sink: SmtpSink, service_db: Callable[[str], str]
) -> AsyncIterator[Platform]:
    overrides = {
        "webhook_require_https": False,
        "webhook_allowed_networks": ["127.0.0.0/8"],
        "webhook_retry_scale": 0.01,
    }
    async with run_platform(
        tmp=tmp_path,
        kafka_bootstrap=kafka_bootstrap,
        smtp_port=smtp_sink.port,
        database=service_db,
        notifications_overrides=overrides,
    ) as p:
        yield p


async def _publish(client: httpx.AsyncClient, staff: dict[str, str], name: str) -> str:
    created = await client.post("/api/v1/services", headers=staff, json={"name": name})
    assert created.status_code == 201, created.text
    service_id: str = created.json()["id"]
    published = await client.post(f"/api/v1/services/{service_id}/publish", headers=staff)
    assert published.status_code == 200, published.text
    return service_id


async def test_partner_webhooks_through_the_gateway(
    webhook_platform: Platform, smtp_sink: SmtpSink
) -> None:
    rx = Receiver()
    receiver_app = Starlette(routes=[Route("/hook", rx.endpoint, methods=["POST"])])
    partner = {"X-API-Key": webhook_platform.credentials["PARTNER_API_KEY"]}
    staff = webhook_platform.bearer("STAFF_TOKEN")
    tag = uuid.uuid4().hex[:8]
    async with (
        running_app(receiver_app) as receiver_url,
        httpx.AsyncClient(base_url=webhook_platform.gateway_url, timeout=30) as client,
    ):
        port = httpx.URL(receiver_url).port
        # Loopback outside the allow-list, and link-local: refused when subscribing.
        for url in (f"http://[::1]:{port}/hook", "http://169.254.169.254/latest/meta-data"):
            refused = await client.post(
                SUBSCRIPTIONS,
                headers=partner,
                json={"url": url, "event_types": ["ServicePublished"]},
            )
            assert refused.status_code == 400, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["title"] == "Endpoint refused"

        created = await client.post(
            SUBSCRIPTIONS,
            headers=partner,
            json={"url": f"{receiver_url}/hook", "event_types": ["ServicePublished"]},
        )
        assert created.status_code == 201, created.text
        rx.secret = created.json()["secret"]
        subscription = f"{SUBSCRIPTIONS}/{created.json()['id']}"

        # Delivered and verified.
        first = await _publish(client, staff, f"Apply for a skip permit {tag}")
        await eventually(
            lambda: _calls(rx, first, 1),
            timeout=30,
            message="the first ServicePublished was not delivered",
        )
        [call] = rx.for_service(first)
        assert call["payload"]["type"].endswith(".ServicePublished.v1")
        assert call["status"] == 200

        # 500, then 200: the same delivery again (same webhook-id).
        rx.script = [500]
        second = await _publish(client, staff, f"Apply for a scaffold licence {tag}")
        await eventually(
            lambda: _calls(rx, second, 2),
            timeout=30,
            message="the delivery answered 500 was not retried",
        )
        failed, retried = rx.for_service(second)
        assert (failed["status"], retried["status"]) == (500, 200)
        assert failed["id"] == retried["id"]

        # 410 Gone disables the subscription.
        rx.script = [410]
        third = await _publish(client, staff, f"Apply for a hoarding licence {tag}")
        await eventually(lambda: _calls(rx, third, 1), timeout=30)

        async def disabled() -> bool:
            got = await client.get(subscription, headers=partner)
            return got.json()["status"] == "disabled"

        await eventually(disabled, timeout=30, message="410 did not disable the subscription")
        log = (await client.get(f"{subscription}/deliveries", headers=partner)).json()
        assert len(log) == 3, json.dumps(log)

        name = f"Apply for a tables and chairs licence {tag}"
        fourth = await _publish(client, staff, name)
        # Notifications has handled the event once its staff alert is in the sink: the
        # webhook deliveries are decided in the same transaction.
        await eventually(
            lambda: _alerted(smtp_sink, name),
            timeout=30,
            message="notifications did not handle the fourth event",
        )
        # The log is the authority (a queued delivery might not have been attempted yet):
        # no delivery was created for the fourth event.
        after = (await client.get(f"{subscription}/deliveries", headers=partner)).json()
        assert len(after) == 3, json.dumps(after)
        assert rx.for_service(fourth) == []
        assert len(rx.for_service(third)) == 1  # 410 is final: not retried


async def _calls(rx: Receiver, service_id: str, count: int) -> bool:
    return len(rx.for_service(service_id)) >= count


async def _alerted(sink: SmtpSink, name: str) -> bool:
    return any(m["Subject"] == f"Service published: {name}" for m in sink.messages())


async def test_partner_keys_are_scoped_and_payloads_carry_no_personal_data(
    webhook_platform: Platform,
) -> None:
    """Finding 3 of the security issue: an Open311-only key could list and create webhook
    subscriptions, including to ServiceRequestStatusChanged, whose payload carried the
    citizen's id and the staff note. Now every operation needs ``events:subscribe`` and each
    event type its own scope; a partner receives only the event's allow-listed fields."""
    rx = Receiver()
    receiver_app = Starlette(routes=[Route("/hook", rx.endpoint, methods=["POST"])])
    platform = webhook_platform
    admin = platform.bearer("ADMIN_TOKEN")
    staff, citizen = platform.bearer("STAFF_TOKEN"), platform.bearer("CITIZEN_TOKEN")
    partner = {"X-API-Key": platform.credentials["PARTNER_API_KEY"]}
    open311 = {"X-API-Key": platform.credentials["OPEN311_API_KEY"]}
    async with (
        running_app(receiver_app) as receiver_url,
        httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client,
    ):
        hook = {"url": f"{receiver_url}/hook", "event_types": ["ServiceRequestStatusChanged"]}

        async def key_with(*scopes: str) -> dict[str, str]:
            made = await client.post(
                "/api/v1/admin/api-keys",
                headers=admin,
                json={"name": "scoped", "role": "partner", "scopes": list(scopes)},
            )
            assert made.status_code == 201, made.text
            return {"X-API-Key": made.json()["key"]}

        catalogue_only = await key_with("events:subscribe", "events:catalogue")
        for who in (open311, await key_with("events:catalogue")):
            for method, body in (("GET", None), ("POST", hook)):
                refused = await client.request(method, SUBSCRIPTIONS, headers=who, json=body)
                assert refused.status_code == 403, refused.text
                assert refused.headers["content-type"] == "application/problem+json"
                assert refused.json()["required_scopes"] == ["events:subscribe"]
        refused = await client.post(SUBSCRIPTIONS, headers=catalogue_only, json=hook)
        assert refused.status_code == 403, refused.text
        assert refused.json()["required_scopes"] == ["events:service-requests"]
        allowed = await client.post(
            SUBSCRIPTIONS,
            headers=catalogue_only,
            json={"url": f"{receiver_url}/elsewhere", "event_types": ["ServicePublished"]},
        )
        assert allowed.status_code == 201, allowed.text
        gone = await client.delete(
            f"{SUBSCRIPTIONS}/{allowed.json()['id']}", headers=catalogue_only
        )
        assert gone.status_code == 204, gone.text

        created = await client.post(SUBSCRIPTIONS, headers=partner, json=hook)
        assert created.status_code == 201, created.text
        rx.secret = created.json()["secret"]

        made = await client.post(
            "/api/v1/services",
            headers=staff,
            json={
                "name": f"Report a broken bench {uuid.uuid4().hex}",
                "attributes": [
                    {
                        "code": "damage",
                        "datatype": "string",
                        "required": False,
                        "description": "What is wrong?",
                    }
                ],
            },
        )
        assert made.status_code == 201, made.text
        service = made.json()
        published = await client.post(f"/api/v1/services/{service['id']}/publish", headers=staff)
        assert published.status_code == 200, published.text
        submitted = await client.post(
            "/api/v1/service-requests",
            headers=citizen,
            json={
                "service_code": service["service_code"],
                "description": "Slats snapped",
                "lat": 52.0406,
                "long": -0.7594,
            },
        )
        assert submitted.status_code == 201, submitted.text
        request_id = submitted.json()["id"]
        note = "Spoke to the resident at home; crew booked for Tuesday"
        changed = await client.post(
            f"/api/v1/service-requests/{request_id}/updates",
            headers=staff,
            json={"status": "fixed", "note": note},
        )
        assert changed.status_code == 200, changed.text

        async def delivered() -> bool:
            return any(c["payload"]["data"].get("request_id") == request_id for c in rx.calls)

        await eventually(delivered, timeout=30, message="the status change was not delivered")
    [call] = [c for c in rx.calls if c["payload"]["data"].get("request_id") == request_id]
    assert call["payload"]["type"].endswith(".ServiceRequestStatusChanged.v1")
    assert call["payload"]["data"] == {
        "request_id": request_id,
        "service_code": service["service_code"],
        "status": "fixed",
        "previous_status": "open",
        "occurred_at": call["payload"]["data"]["occurred_at"],
    }
    raw = json.dumps(call["payload"])
    assert "citizen-dev-1" not in raw and note not in raw
