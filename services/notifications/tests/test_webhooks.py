"""Partner webhooks: every delivery verifies with the PyPI ``standardwebhooks`` package;
500 then 200 is retried and delivered; 410 disables the subscription; loopback and
link-local endpoints are refused unless allow-listed; secret rotation, log and replay."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka.structs import ConsumerRecord
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts import Envelope, Event
from contracts.citizen_services import ServicePublished, ServiceRequestStatusChanged
from notifications.application.webhooks import (
    PARTNER_EVENTS,
    EndpointRefusedProblem,
    check_endpoint,
    partner_data,
)
from notifications.config import Settings
from notifications.domain import webhooks
from notifications.main import create_app
from notifications.messaging.subscriptions import build_subscriptions
from servicekit.db import Database
from servicekit.messaging.consumer import EventConsumer
from servicekit.testing import eventually, identity_headers, running_app

ALL_SCOPES = ("events:subscribe", "events:catalogue", "events:service-requests")


def partner(subject: str = "partner-key-1",
            scopes: tuple[str, ...] = ALL_SCOPES) -> dict[str, str]:
    """Fresh each time: the gateway's assertion lives 60 seconds."""
    return identity_headers(subject, "partner", scopes=scopes)


def test_signatures_verify_with_the_standardwebhooks_package() -> None:
    secret = webhooks.new_secret()
    body = '{"type": "x", "data": {"a": 1}}'
    now = int(datetime.now(UTC).timestamp())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now),
               "webhook-signature": webhooks.signature_header([secret], "msg_1", now, body)}
    assert Webhook(secret).verify(body, headers) == {"type": "x", "data": {"a": 1}}
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(body, headers)
    old, new = webhooks.new_secret(), webhooks.new_secret()  # during a rotation: both sign
    headers["webhook-signature"] = webhooks.signature_header([new, old], "msg_1", now, body)
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)


def test_retry_schedule_is_the_spec_s_with_jitter() -> None:
    expected = [5, 300, 1800, 7200, 18000, 36000, 36000]
    for attempt, seconds in enumerate(expected, start=1):
        delay = webhooks.next_retry(attempt)
        assert delay is not None
        assert seconds * 0.9 <= delay.total_seconds() <= seconds * 1.1
    assert webhooks.next_retry(len(expected) + 1) is None
    delays = {webhooks.next_retry(1) for _ in range(20)}
    assert len(delays) > 1  # jitter


@pytest.mark.parametrize("url", ["https://127.0.0.1/hook", "https://localhost/hook",
                                 "https://169.254.169.254/latest", "https://10.1.2.3/x",
                                 "https://[::1]/x", "https://0.0.0.0/x",
                                 "https://[::ffff:127.0.0.1]/x"])
async def test_private_endpoints_are_refused_unless_allow_listed(url: str) -> None:
    with pytest.raises(EndpointRefusedProblem):
        await check_endpoint(url, Settings(environment="test"))
    allow = Settings(environment="test",
                     webhook_allowed_networks=["127.0.0.0/8", "::1/128", "169.254.0.0/16",
                                               "10.0.0.0/8", "0.0.0.0/32"])
    await check_endpoint(url, allow)


@pytest.mark.parametrize("url", ["http://93.184.215.14/x", "ftp://example.com/x",
                                 "https://user:pw@93.184.215.14/x", "not a url"])
async def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(EndpointRefusedProblem):
        await check_endpoint(url, Settings(environment="test"))


@dataclass
class Receiver:
    """A partner's endpoint answering scripted statuses (then 200), verifying each call."""

    secret: str = ""
    script: list[int] = field(default_factory=list)
    calls: list[tuple[dict[str, str], str, int]] = field(default_factory=list)
    verified: list[Any] = field(default_factory=list)

    async def endpoint(self, request: Request) -> Response:
        body = (await request.body()).decode()
        status = self.script.pop(0) if self.script else 200
        headers = dict(request.headers)
        self.calls.append((headers, body, status))
        if self.secret:
            self.verified.append(Webhook(self.secret).verify(body, headers))
        return Response(status_code=status)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    r = Receiver()
    app = Starlette(routes=[Route("/hook", r.endpoint, methods=["POST"])])
    async with running_app(app) as url:
        yield r, url + "/hook"


def record(event: Event, offset: int) -> ConsumerRecord:  # type: ignore[type-arg]
    envelope = Envelope(source="urn:uk-gov-milton-keynes:citizen-services",
                        type=event.event_type(), subject=event.aggregate_id,
                        dataschema=event.dataschema())
    value, key = event.to_json(), event.aggregate_id.encode()
    return ConsumerRecord(topic=event.topic, partition=0, offset=offset, timestamp=0,
                          timestamp_type=0, key=key, value=value, checksum=None,
                          serialized_key_size=len(key), serialized_value_size=len(value),
                          headers=envelope.to_headers())


def published() -> ServicePublished:
    return ServicePublished(service_id=uuid.uuid4(), service_code="c", slug="s", name="Bins",
                            entry_version=1, occurred_at=datetime.now(UTC))


async def test_subscribe_deliver_retry_gone_rotate_replay(
        database_url: str, receiver: tuple[Receiver, str]) -> None:
    rx, hook = receiver
    settings = Settings(database_url=database_url, messaging_enabled=False, environment="test",
                        staff_alert_email=None, webhook_require_https=False,
                        webhook_allowed_networks=["127.0.0.0/8"], webhook_retry_scale=0.01,
                        delivery_idle_seconds=0.05)
    app = create_app(settings)
    async with running_app(app) as url, httpx.AsyncClient(base_url=url) as http:
        db: Database = app.state.runtime.db
        consumer = EventConsumer(db, bootstrap_servers="127.0.0.1:1", group_id="notifications",
                                 subscriptions=build_subscriptions(settings),
                                 service_name="notifications",
                                 source=settings.cloudevents_source)
        base = "/api/v1/webhook-subscriptions"
        created = await http.post(base, headers=partner(), json={
            "url": hook, "event_types": ["ServicePublished"]})
        assert created.status_code == 201, created.text
        sub = created.json()
        assert sub["event_types"] == [ServicePublished.event_type()]
        assert sub["secret"].startswith("whsec_")
        rx.secret = sub["secret"]
        path = f"{base}/{sub['id']}"
        assert (await http.get(path, headers=partner("partner-key-2"))).status_code == 404
        assert [s["id"] for s in (await http.get(base, headers=partner())).json()] == [sub["id"]]
        assert "secret" not in (await http.get(path, headers=partner())).json()

        # delivered and verified
        event = published()
        assert await consumer.process(record(event, 1)) == "handled"
        await eventually(lambda: _count(rx, 1), timeout=10)
        assert rx.verified[0]["type"] == ServicePublished.event_type()
        assert rx.verified[0]["data"]["service_id"] == str(event.service_id)

        # 500, then 200: retried (same webhook-id), and the log says so
        rx.script = [500]
        assert await consumer.process(record(published(), 2)) == "handled"
        await eventually(lambda: _count(rx, 3), timeout=10)
        assert rx.calls[1][2] == 500 and rx.calls[2][2] == 200
        assert rx.calls[1][0]["webhook-id"] == rx.calls[2][0]["webhook-id"]
        async def logged() -> list[dict[str, Any]] | None:
            log = (await http.get(f"{path}/deliveries", headers=partner())).json()
            done = [(d["status"], d["attempts"]) for d in log]
            return log if done == [("succeeded", 2), ("succeeded", 1)] else None

        log = await eventually(logged, timeout=10, message="the log does not show the retry")

        # manual replay: the same delivery again
        replayed = await http.post(f"{path}/deliveries/{log[1]['id']}/replay", headers=partner())
        assert replayed.status_code == 202, replayed.text
        await eventually(lambda: _count(rx, 4), timeout=10)
        assert rx.calls[3][0]["webhook-id"] == log[1]["id"]

        # rotation: the old secret still verifies for a while, the new one too
        rotated = (await http.post(f"{path}/rotate-secret", headers=partner())).json()
        assert rotated["secret"] != sub["secret"]
        assert await consumer.process(record(published(), 3)) == "handled"
        await eventually(lambda: _count(rx, 5), timeout=10)
        Webhook(rotated["secret"]).verify(rx.calls[4][1], rx.calls[4][0])

        # 410 Gone disables the subscription; nothing more is sent
        rx.script = [410]
        assert await consumer.process(record(published(), 4)) == "handled"
        await eventually(lambda: _count(rx, 6), timeout=10)

        async def disabled() -> bool:
            got = (await http.get(path, headers=partner())).json()
            return got["status"] == "disabled" and got["disabled_reason"] == "410 Gone"

        await eventually(disabled, timeout=10)
        assert await consumer.process(record(published(), 5)) == "handled"
        enabled = await http.post(f"{path}/enable", headers=partner())
        assert enabled.status_code == 200 and enabled.json()["status"] == "active"
        assert len(rx.calls) == 6  # the event while disabled was not queued

        assert (await http.delete(path, headers=partner())).status_code == 204
        assert (await http.get(path, headers=partner())).status_code == 404


async def _count(rx: Receiver, n: int) -> bool:
    return len(rx.calls) >= n


async def test_sustained_failure_disables_the_subscription(
        database_url: str, receiver: tuple[Receiver, str]) -> None:
    rx, hook = receiver
    rx.script = [503] * 20
    settings = Settings(database_url=database_url, messaging_enabled=False, environment="test",
                        staff_alert_email=None, webhook_require_https=False,
                        webhook_allowed_networks=["127.0.0.0/8"], webhook_retry_scale=0.001,
                        webhook_disable_after_seconds=0.0, delivery_idle_seconds=0.05)
    app = create_app(settings)
    async with running_app(app) as url, httpx.AsyncClient(base_url=url) as http:
        db: Database = app.state.runtime.db
        consumer = EventConsumer(db, bootstrap_servers="127.0.0.1:1", group_id="notifications",
                                 subscriptions=build_subscriptions(settings),
                                 service_name="notifications",
                                 source=settings.cloudevents_source)
        sub = (await http.post("/api/v1/webhook-subscriptions", headers=partner(), json={
            "url": hook, "event_types": ["ServicePublished"]})).json()
        assert await consumer.process(record(published(), 1)) == "handled"

        async def disabled() -> bool:
            got = (await http.get(f"/api/v1/webhook-subscriptions/{sub['id']}",
                                  headers=partner())).json()
            return got["status"] == "disabled"

        await eventually(disabled, timeout=10)


async def test_subscribing_a_loopback_endpoint_is_refused_by_default(database_url: str) -> None:
    app = create_app(Settings(database_url=database_url, messaging_enabled=False,
                              environment="test"))
    async with running_app(app) as url, httpx.AsyncClient(base_url=url) as http:
        for hook in ("https://127.0.0.1:9/hook", "https://169.254.169.254/latest/meta-data"):
            r = await http.post("/api/v1/webhook-subscriptions", headers=partner(),
                                json={"url": hook, "event_types": ["ServicePublished"]})
            assert r.status_code == 400, r.text
            assert r.json()["type"].endswith("/endpoint-refused")
        r = await http.post("/api/v1/webhook-subscriptions", headers=partner(),
                            json={"url": "https://127.0.0.1/x", "event_types": ["Nope"]})
        assert r.status_code == 400
        assert r.json()["type"].endswith("/unknown-event-type")
        citizen = identity_headers("c-1", "citizen")
        assert (await http.get("/api/v1/webhook-subscriptions",
                               headers=citizen)).status_code == 403
    assert timedelta(0) == timedelta(0)


@pytest.mark.parametrize("url", ["https://[::1/x", "https://example.com:99999/x",
                                 "https://a\x00b.example/x", "https://" + "a" * 70 + ".example/"])
async def test_malformed_urls_are_refused_not_errors(url: str) -> None:
    with pytest.raises(EndpointRefusedProblem):
        await check_endpoint(url, Settings(environment="test"))


def test_partner_payloads_are_allow_listed_fields_of_real_events() -> None:
    for cls, (scope, fields) in PARTNER_EVENTS.items():
        assert scope.startswith("events:")
        assert set(fields) <= set(cls.model_fields), cls.__name__
        for private in ("citizen_id", "note", "published_by", "updated_by",
                        "suspended_by", "retired_by"):
            assert private not in fields, (cls.__name__, private)


def status_changed() -> ServiceRequestStatusChanged:
    return ServiceRequestStatusChanged(
        request_id=uuid.uuid4(), service_code="bench", status="fixed", previous_status="open",
        occurred_at=datetime.now(UTC), citizen_id="citizen-42",
        note="Resident at 4 Elm Road says the crew was rude")


def test_partner_data_drops_citizen_ids_and_notes() -> None:
    event = status_changed()
    data = partner_data(event.event_type(), event)
    assert set(data) == {"request_id", "service_code", "status", "previous_status",
                         "occurred_at"}
    assert partner_data("an.unknown.type", event) == {}


async def test_partner_operations_need_their_scopes(
        database_url: str, receiver: tuple[Receiver, str]) -> None:
    """Finding 3: a key with only ``open311`` could manage subscriptions and subscribe to
    ServiceRequestStatusChanged, whose deliveries carried the citizen id and the note."""
    rx, hook = receiver
    settings = Settings(database_url=database_url, messaging_enabled=False, environment="test",
                        staff_alert_email=None, webhook_require_https=False,
                        webhook_allowed_networks=["127.0.0.0/8"], delivery_idle_seconds=0.05)
    app = create_app(settings)
    base = "/api/v1/webhook-subscriptions"
    statuses = {"url": hook, "event_types": ["ServiceRequestStatusChanged"]}
    async with running_app(app) as url, httpx.AsyncClient(base_url=url) as http:
        open311 = partner("apikey:fms", scopes=("open311",))
        for method, body in (("GET", None), ("POST", statuses)):
            r = await http.request(method, base, headers=open311, json=body)
            assert r.status_code == 403, r.text
            assert r.json()["required_scopes"] == ["events:subscribe"]
        catalogue = partner("apikey:cat", scopes=("events:subscribe", "events:catalogue"))
        r = await http.post(base, headers=catalogue, json=statuses)
        assert r.status_code == 403 and r.json()["required_scopes"] == [
            "events:service-requests"]
        r = await http.post(base, headers=catalogue, json={
            "url": hook, "event_types": ["ServicePublished", "ServiceRetired"]})
        assert r.status_code == 201, r.text
        wildcard = partner("apikey:all", scopes=("*",))
        made = await http.post(base, headers=wildcard, json=statuses)
        assert made.status_code == 201, made.text
        gone = await http.delete(f"{base}/{made.json()['id']}", headers=wildcard)
        assert gone.status_code == 204
        admin = identity_headers("admin-1", "admin")  # admins need no scopes
        assert (await http.get(base, headers=admin)).status_code == 200

        created = await http.post(base, headers=partner(), json=statuses)
        assert created.status_code == 201, created.text
        rx.secret = created.json()["secret"]
        db: Database = app.state.runtime.db
        consumer = EventConsumer(db, bootstrap_servers="127.0.0.1:1", group_id="notifications",
                                 subscriptions=build_subscriptions(settings),
                                 service_name="notifications",
                                 source=settings.cloudevents_source)
        event = status_changed()
        assert await consumer.process(record(event, 1)) == "handled"
        await eventually(lambda: _count(rx, 1), timeout=10)
    [(_, body, _)] = rx.calls
    bodies = [body]
    assert all("citizen-42" not in body and "Elm Road" not in body for body in bodies)
    assert rx.verified[0]["data"]["request_id"] == str(event.request_id)
    assert rx.verified[0]["data"]["status"] == "fixed"
