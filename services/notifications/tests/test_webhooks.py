"""Partner webhooks: every delivery verifies with the PyPI ``standardwebhooks`` package;
500 then 200 is retried and delivered; 410 disables the subscription; loopback and
link-local endpoints are refused unless allow-listed; secret rotation, log and replay."""

from __future__ import annotations

import asyncio
import socket
import ssl
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.structs import ConsumerRecord
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
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
    WebhookDeliveryWorker,
    check_endpoint,
    partner_data,
)
from notifications.config import Settings
from notifications.domain import webhooks
from notifications.main import create_app
from notifications.messaging.subscriptions import SUBSCRIPTIONS
from notifications.persistence.tables import WebhookDelivery, WebhookSubscription
from servicekit.db import Database
from servicekit.messaging.consumer import EventConsumer
from servicekit.testing import eventually, free_port, identity_headers, running_app

ALL_SCOPES = ("events:subscribe", "events:catalogue", "events:service-requests")


def partner(subject: str = "partner-key-1", scopes: tuple[str, ...] = ALL_SCOPES) -> dict[str, str]:
    """Fresh each time: the gateway's assertion lives 60 seconds."""
    return identity_headers(subject, "partner", scopes=scopes)


def test_signatures_verify_with_the_standardwebhooks_package() -> None:
    secret = webhooks.new_secret()
    body = '{"type": "x", "data": {"a": 1}}'
    now = int(datetime.now(UTC).timestamp())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": webhooks.signature_header([secret], "msg_1", now, body),
    }
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


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://169.254.169.254/latest",
        "https://10.1.2.3/x",
        "https://[::1]/x",
        "https://0.0.0.0/x",
        "https://[::ffff:127.0.0.1]/x",
    ],
)
async def test_private_endpoints_are_refused_unless_allow_listed(url: str) -> None:
    with pytest.raises(EndpointRefusedProblem):
        await check_endpoint(url, Settings(environment="test"))
    allow = Settings(
        environment="test",
        webhook_allowed_networks=[
            "127.0.0.0/8",
            "::1/128",
            "169.254.0.0/16",
            "10.0.0.0/8",
            "0.0.0.0/32",
        ],
    )
    await check_endpoint(url, allow)


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.215.14/x",
        "ftp://example.com/x",
        "https://user:pw@93.184.215.14/x",
        "not a url",
    ],
)
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
    envelope = Envelope(
        source="urn:uk-gov-milton-keynes:citizen-services",
        type=event.event_type(),
        subject=event.aggregate_id,
        dataschema=event.dataschema(),
    )
    value, key = event.to_json(), event.aggregate_id.encode()
    return ConsumerRecord(
        topic=event.topic,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(value),
        headers=envelope.to_headers(),
    )


def published() -> ServicePublished:
    return ServicePublished(
        service_id=uuid.uuid4(),
        service_code="c",
        slug="s",
        name="Bins",
        entry_version=1,
        occurred_at=datetime.now(UTC),
    )


async def test_subscribe_deliver_retry_gone_rotate_replay(
    database_url: str, receiver: tuple[Receiver, str]
) -> None:
    rx, hook = receiver
    settings = Settings(
        database_url=database_url,
        messaging_enabled=False,
        environment="test",
        staff_alert_email=None,
        webhook_require_https=False,
        webhook_allowed_networks=["127.0.0.0/8"],
        webhook_retry_scale=0.01,
        delivery_idle_seconds=0.05,
    )
    app = create_app(settings)
    async with running_app(app) as url, httpx.AsyncClient(base_url=url) as http:
        db: Database = app.state.runtime.database
        consumer = EventConsumer(
            db,
            bootstrap_servers="127.0.0.1:1",
            group_id="notifications",
            subscriptions=SUBSCRIPTIONS,
            settings=settings,
            service_name="notifications",
            source=settings.cloudevents_source,
        )
        base = "/api/v1/webhook-subscriptions"
        created = await http.post(
            base, headers=partner(), json={"url": hook, "event_types": ["ServicePublished"]}
        )
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
    database_url: str, receiver: tuple[Receiver, str]
) -> None:
    rx, hook = receiver
    rx.script = [503] * 20
    settings = Settings(
        database_url=database_url,
        messaging_enabled=False,
        environment="test",
        staff_alert_email=None,
        webhook_require_https=False,
        webhook_allowed_networks=["127.0.0.0/8"],
        webhook_retry_scale=0.001,
        webhook_disable_after_seconds=0.0,
        delivery_idle_seconds=0.05,
    )
    app = create_app(settings)
    async with running_app(app) as url, httpx.AsyncClient(base_url=url) as http:
        db: Database = app.state.runtime.database
        consumer = EventConsumer(
            db,
            bootstrap_servers="127.0.0.1:1",
            group_id="notifications",
            subscriptions=SUBSCRIPTIONS,
            settings=settings,
            service_name="notifications",
            source=settings.cloudevents_source,
        )
        sub = (
            await http.post(
                "/api/v1/webhook-subscriptions",
                headers=partner(),
                json={"url": hook, "event_types": ["ServicePublished"]},
            )
        ).json()
        assert await consumer.process(record(published(), 1)) == "handled"

        async def disabled() -> bool:
            got = (
                await http.get(f"/api/v1/webhook-subscriptions/{sub['id']}", headers=partner())
            ).json()
            return got["status"] == "disabled"

        await eventually(disabled, timeout=10)


async def test_subscribing_a_loopback_endpoint_is_refused_by_default(database_url: str) -> None:
    app = create_app(
        Settings(database_url=database_url, messaging_enabled=False, environment="test")
    )
    async with running_app(app) as url, httpx.AsyncClient(base_url=url) as http:
        for hook in ("https://127.0.0.1:9/hook", "https://169.254.169.254/latest/meta-data"):
            r = await http.post(
                "/api/v1/webhook-subscriptions",
                headers=partner(),
                json={"url": hook, "event_types": ["ServicePublished"]},
            )
            assert r.status_code == 400, r.text
            assert r.json()["type"].endswith("/endpoint-refused")
        r = await http.post(
            "/api/v1/webhook-subscriptions",
            headers=partner(),
            json={"url": "https://127.0.0.1/x", "event_types": ["Nope"]},
        )
        assert r.status_code == 400
        assert r.json()["type"].endswith("/unknown-event-type")
        citizen = identity_headers("c-1", "citizen")
        assert (await http.get("/api/v1/webhook-subscriptions", headers=citizen)).status_code == 403
    assert timedelta(0) == timedelta(0)


@pytest.mark.parametrize(
    "url",
    [
        "https://[::1/x",
        "https://example.com:99999/x",
        "https://a\x00b.example/x",
        "https://" + "a" * 70 + ".example/",
    ],
)
async def test_malformed_urls_are_refused_not_errors(url: str) -> None:
    with pytest.raises(EndpointRefusedProblem):
        await check_endpoint(url, Settings(environment="test"))


def test_partner_payloads_are_allow_listed_fields_of_real_events() -> None:
    for cls, (scope, fields) in PARTNER_EVENTS.items():
        assert scope.startswith("events:")
        assert set(fields) <= set(cls.model_fields), cls.__name__
        for private in (
            "citizen_id",
            "note",
            "published_by",
            "updated_by",
            "suspended_by",
            "retired_by",
        ):
            assert private not in fields, (cls.__name__, private)


def status_changed() -> ServiceRequestStatusChanged:
    return ServiceRequestStatusChanged(
        request_id=uuid.uuid4(),
        service_code="bench",
        status="fixed",
        previous_status="open",
        occurred_at=datetime.now(UTC),
        citizen_id="citizen-42",
        note="Resident at 4 Elm Road says the crew was rude",
    )


def test_partner_data_drops_citizen_ids_and_notes() -> None:
    event = status_changed()
    data = partner_data(event.event_type(), event)
    assert set(data) == {"request_id", "service_code", "status", "previous_status", "occurred_at"}
    assert partner_data("an.unknown.type", event) == {}


async def test_partner_operations_need_their_scopes(
    database_url: str, receiver: tuple[Receiver, str]
) -> None:
    """Finding 3: a key with only ``open311`` could manage subscriptions and subscribe to
    ServiceRequestStatusChanged, whose deliveries carried the citizen id and the note."""
    rx, hook = receiver
    settings = Settings(
        database_url=database_url,
        messaging_enabled=False,
        environment="test",
        staff_alert_email=None,
        webhook_require_https=False,
        webhook_allowed_networks=["127.0.0.0/8"],
        delivery_idle_seconds=0.05,
    )
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
        assert r.status_code == 403 and r.json()["required_scopes"] == ["events:service-requests"]
        r = await http.post(
            base,
            headers=catalogue,
            json={"url": hook, "event_types": ["ServicePublished", "ServiceRetired"]},
        )
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
        db: Database = app.state.runtime.database
        consumer = EventConsumer(
            db,
            bootstrap_servers="127.0.0.1:1",
            group_id="notifications",
            subscriptions=SUBSCRIPTIONS,
            settings=settings,
            service_name="notifications",
            source=settings.cloudevents_source,
        )
        event = status_changed()
        assert await consumer.process(record(event, 1)) == "handled"
        await eventually(lambda: _count(rx, 1), timeout=10)
    [(_, body, _)] = rx.calls
    bodies = [body]
    assert all("citizen-42" not in body and "Elm Road" not in body for body in bodies)
    assert rx.verified[0]["data"]["request_id"] == str(event.request_id)
    assert rx.verified[0]["data"]["status"] == "fixed"


# -- SSRF: what counts as public, the port, DNS rebinding, what the log may say ----------------


@pytest.mark.parametrize(
    "url",
    [
        "https://100.100.100.200/latest/meta-data",  # CGNAT 100.64.0.0/10: Alibaba's metadata
        "https://100.64.0.1/x",
        "https://192.0.0.8/x",
        "https://224.0.0.1/x",
        "https://[2002:a9fe:a9fe::1]/x",  # 6to4 around 169.254.169.254
        "https://[2002:7f00:1::1]/x",  # 6to4 around 127.0.0.1
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/x",  # Teredo
        "https://[64:ff9b::a9fe:a9fe]/x",  # NAT64 around 169.254.169.254
        "https://[64:ff9b::a00:1]/x",  # NAT64 around 10.0.0.1
        "https://[ff02::1]/x",
        "https://[fec0::1]/x",
        "https://[::127.0.0.1]/x",
    ],
)
async def test_addresses_that_are_not_globally_routable_are_refused(url: str) -> None:
    with pytest.raises(EndpointRefusedProblem):
        await check_endpoint(url, Settings(environment="test"))


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.215.14/x",
        "https://[2606:4700::1111]/x",
        "https://[64:ff9b::5db8:d70e]/x",  # NAT64 of a public one
        "https://[2002:5db8:d70e::1]/x",
    ],
)  # 6to4 of a public one
async def test_public_addresses_on_443_are_accepted(url: str) -> None:
    endpoint = await check_endpoint(url, Settings(environment="test"))
    assert endpoint.port == 443


@pytest.mark.parametrize(
    "url",
    ["https://93.184.215.14:8443/x", "https://93.184.215.14:22/x", "https://93.184.215.14:80/x"],
)
async def test_only_port_443_unless_the_address_is_allow_listed(url: str) -> None:
    with pytest.raises(EndpointRefusedProblem) as refused:
        await check_endpoint(url, Settings(environment="test"))
    assert refused.value.detail == "The endpoint must use port 443."
    await check_endpoint(
        url, Settings(environment="test", webhook_allowed_networks=["93.184.215.0/24"])
    )


async def _insert_delivery(db: Database, url: str) -> str:
    now = datetime.now(UTC)
    sub = WebhookSubscription(
        owner="p",
        url=url,
        event_types=ServicePublished.event_type(),
        secret=webhooks.new_secret(),
        created_at=now,
        updated_at=now,
    )
    delivery_id = "msg_" + uuid.uuid4().hex
    async with db.session() as s:
        s.add(sub)
        await s.flush()
        s.add(
            WebhookDelivery(
                id=delivery_id,
                subscription_id=sub.id,
                event_id=str(uuid.uuid4()),
                event_type=ServicePublished.event_type(),
                payload='{"a": 1}',
                status="pending",
                created_at=now,
                updated_at=now,
            )
        )
        await s.commit()
    return delivery_id


async def _delivery(db: Database, delivery_id: str) -> WebhookDelivery:
    async with db.session() as s:
        row = await s.get(WebhookDelivery, delivery_id)
        assert row is not None
        return row


def _tls_for(hostname: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context with a certificate for ``hostname`` only, client context trusting
    its private CA)."""

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("test CA"))
        .issuer_name(name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(hostname))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


async def _rebinding_delivery(
    db: Database, monkeypatch: pytest.MonkeyPatch, *, tls: bool
) -> dict[str, Any]:
    """A delivery to a name that resolves to an allowed address when checked and to another
    (10.255.255.1) afterwards; returns what the receiver saw and the lookups."""
    hostname = "hooks.partner.test"
    server_tls, client_tls = _tls_for(hostname) if tls else (None, None)
    seen: dict[str, Any] = {"sni": [], "requests": [], "lookups": []}
    if server_tls is not None:
        server_tls.sni_callback = lambda sock, name, ctx: seen["sni"].append(name)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        length = int(
            next(
                line.split(":", 1)[1]
                for line in head.split("\r\n")
                if line.lower().startswith("content-length")
            )
        )
        await reader.readexactly(length)
        seen["requests"].append(head)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_tls)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    real_getaddrinfo = loop.getaddrinfo

    async def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host != hostname:
            return await real_getaddrinfo(host, *args, **kwargs)
        seen["lookups"].append(host)
        address = "127.0.0.1" if len(seen["lookups"]) == 1 else "10.255.255.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(loop, "getaddrinfo", rebinding)
    settings = Settings(
        environment="test",
        webhook_allowed_networks=["127.0.0.0/8"],
        webhook_require_https=tls,
        webhook_timeout_seconds=2.0,
    )
    scheme = "https" if tls else "http"
    delivery_id = await _insert_delivery(db, f"{scheme}://{hostname}:{port}/hook")
    worker = (
        WebhookDeliveryWorker(db, settings, verify=client_tls)
        if client_tls
        else WebhookDeliveryWorker(db, settings)
    )
    try:
        assert await worker.deliver_due() == 1
    finally:
        await worker.close()
        server.close()
    row = await _delivery(db, delivery_id)
    assert (row.status, row.last_status_code, row.last_error) == ("succeeded", 200, None)
    assert seen["lookups"] == [hostname]  # resolved once: checked and connected to it
    assert f"host: {hostname}:{port}" in seen["requests"][0].lower()
    return seen


async def test_delivery_goes_to_the_address_that_was_checked(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name is resolved once; the connection goes to the address checked,
    not to what the name resolves to a moment later; the Host header keeps the name."""
    await _rebinding_delivery(db, monkeypatch, tls=False)


async def test_a_pinned_https_delivery_sends_and_verifies_the_name(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connecting to the checked address keeps TLS for the name: the SNI is the name and
    the certificate (issued for the name only, not for 127.0.0.1) verifies."""
    seen = await _rebinding_delivery(db, monkeypatch, tls=True)
    assert seen["sni"] == ["hooks.partner.test"]


async def test_the_log_does_not_say_why_an_endpoint_failed(db: Database) -> None:
    """A partner must not map the council's network through the delivery log: an address
    refused for whatever reason reads the same, and so does every transport failure."""
    silent = await asyncio.start_server(lambda r, w: asyncio.sleep(30), "127.0.0.1", 0)
    silent_port = silent.sockets[0].getsockname()[1]
    closed_port = free_port()
    ids = {
        name: await _insert_delivery(db, url)
        for name, url in {
            "no-such-host": "https://no-such-host.invalid/x",
            "private": "https://10.1.2.3/x",
            "link-local": "https://169.254.169.254/latest/meta-data",
            "refused": f"http://127.0.0.1:{closed_port}/x",
            "timeout": f"http://127.0.0.1:{silent_port}/x",
        }.items()
    }
    settings = Settings(
        environment="test",
        webhook_require_https=False,
        webhook_allowed_networks=["127.0.0.0/8"],
        webhook_timeout_seconds=0.5,
    )
    worker = WebhookDeliveryWorker(db, settings)
    try:
        assert await worker.deliver_due() == 5
    finally:
        await worker.close()
        silent.close()
    errors = {name: (await _delivery(db, i)).last_error for name, i in ids.items()}
    assert errors["no-such-host"] == errors["private"] == errors["link-local"]
    assert errors["refused"] == errors["timeout"]
    assert "Connect" not in str(errors) and "Timeout" not in str(errors)
