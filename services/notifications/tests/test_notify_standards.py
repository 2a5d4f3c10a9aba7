"""GOV.UK Notify as its real clients use it (issue 15), with the official
``notifications-python-client`` against the service on SQLite and PostgreSQL:
``sanitise_content_for`` and ``sanitised_content``; Notify's request-schema 400s;
``scheduled_for`` honoured; reply-to addresses and SMS senders per service."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from notifications_python_client.errors import HTTPError
from notifications_python_client.notifications import NotificationsAPIClient
from notifications_python_client.utils import prepare_upload
from sqlmodel import col
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mkinfra.smtp_sink import SmtpSink
from notifications.application.privacy import purge_expired
from notifications.config import Settings
from notifications.main import create_app
from notifications.persistence.tables import Notification, NotifyFile
from servicekit.db import Database
from servicekit.testing import eventually, identity_headers, running_app

from .test_notify_api import Notify, notify, setup_notify  # noqa: F401 - the fixture

ADMIN = ("admin-test-1", "admin")


def _errors(call: Any) -> tuple[int, list[str]]:
    with pytest.raises(HTTPError) as info:
        call()
    body = info.value.response.json()
    assert body["status_code"] == info.value.status_code
    return info.value.status_code, [e["message"] for e in info.value.message]  # type: ignore[attr-defined]


async def test_sanitise_content_for_and_sanitised_content(
    notify: Notify,  # noqa: F811
    smtp_sink: SmtpSink,
) -> None:
    client = notify.client()
    name = "Ann-Marie [click](https://evil.example) #1"
    sent = await notify.call(
        client.send_email_notification,
        "resident@example.com",
        str(notify.email_template),
        personalisation={"name": name, "ref": "MK-1", "items": [], "help": "no"},
        sanitise_content_for=["NAME"],  # matched as Notify matches placeholders
    )
    sanitised = "Ann\\-Marie \\[click\\]\\(\\) \\#1"
    assert sent["sanitised_content"] == {"name": {"unsanitised": name, "sanitised": sanitised}}
    assert sent["content"]["body"].startswith(f"# Hello {sanitised}")
    assert sent["content"]["subject"] == f"Hello {sanitised}"

    async def arrived() -> list[Any]:
        return smtp_sink.messages()

    [message] = await eventually(arrived, timeout=15, message="email not in the sink")
    html = message.get_body(("html",)).get_content()
    assert "<h2>Hello Ann-Marie [click]() #1</h2>" in html  # text, not a link
    assert "evil.example" not in html
    # without sanitise_content_for the answer still has it, empty (Notify's schema needs it)
    plain = await notify.call(
        client.send_email_notification,
        "resident@example.com",
        str(notify.email_template),
        personalisation={"name": "Bo", "ref": "MK-2", "items": [], "help": "no"},
    )
    assert plain["sanitised_content"] == {}


async def test_notifys_validation_errors(notify: Notify) -> None:  # noqa: F811
    client = notify.client()
    email_t, sms_t = str(notify.email_template), str(notify.sms_template)
    values = {"name": "x", "ref": "y", "items": [], "help": "no"}

    def run() -> None:
        assert _errors(
            lambda: client.post(
                "/v2/notifications/email",
                {"email_address": "a@example.com", "template_id": email_t, "cc": "b"},
            )
        ) == (400, ["Additional properties are not allowed (cc was unexpected)"])
        assert _errors(
            lambda: client.send_email_notification(
                "a@example.com", email_t, values, reference="r" * 1001
            )
        ) == (400, [f"reference {'r' * 1001} is too long"])
        assert _errors(lambda: client.get_all_templates("letters")) == (
            400,
            ["type letters is not one of [sms, email, letter]"],
        )
        assert _errors(
            lambda: client.send_email_notification(
                "a@example.com", email_t, values, sanitise_content_for="name"
            )
        ) == (400, ["sanitise_content_for name is not of type array, null"])
        assert _errors(
            lambda: client.post(
                "/v2/notifications/sms",
                {"template_id": "nope", "personalisation": "x", "extra": 1},
            )
        ) == (
            400,
            [
                "template_id is not a valid UUID",
                "personalisation x is not of type object",
                "phone_number is a required property",
                "Additional properties are not allowed (extra was unexpected)",
            ],
        )
        past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        far = (datetime.now(UTC) + timedelta(hours=25)).isoformat()
        for when, message in (
            (past, "scheduled_for datetime can not be in the past"),
            (far, "scheduled_for datetime can only be 24 hours in the future"),
        ):
            assert _errors(
                lambda w=when: client.post(
                    "/v2/notifications/sms",
                    {"phone_number": "07700900123", "template_id": sms_t, "scheduled_for": w},
                )
            ) == (400, [message])

    await notify.call(run)
    async with notify.db.session() as s:  # nothing was stored
        assert (await s.execute(Notification.__table__.select())).first() is None  # type: ignore[attr-defined]


async def test_scheduled_for_is_not_sent_before_its_time(notify: Notify) -> None:  # noqa: F811
    client = notify.client()
    when = datetime.now(UTC) + timedelta(seconds=4)
    sent = await notify.call(
        client.post,
        "/v2/notifications/sms",
        {
            "phone_number": "+33 6 12 34 56 78",  # international, with phonenumbers
            "template_id": str(notify.sms_template),
            "personalisation": {"name": "Cy", "ref": "1"},
            "scheduled_for": when.replace(tzinfo=None).isoformat(),  # naive: UTC, as Notify
        },
    )
    assert sent["scheduled_for"] == when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    got = await notify.call(client.get_notification_by_id, sent["id"])
    assert got["scheduled_for"] == sent["scheduled_for"]
    assert got["phone_number"] == "+33612345678"
    path = notify.sms_dir / f"{sent['id']}.json"

    async def delivered() -> Any:
        row = await notify.call(client.get_notification_by_id, sent["id"])
        return row if row["status"] == "delivered" else None

    done = await eventually(delivered, timeout=30, message="scheduled sms never sent")
    sent_at = datetime.strptime(done["sent_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert sent_at >= when  # not before its time
    assert json.loads(path.read_text())["to"] == "+33612345678"


async def test_reply_to_addresses_and_sms_senders(notify: Notify, smtp_sink: SmtpSink) -> None:  # noqa: F811
    base = f"/api/v1/notify-services/{notify.service_id}"
    async with httpx.AsyncClient(base_url=notify.url, timeout=30) as http:
        r = await http.post(
            f"{base}/reply-to-addresses",
            headers=identity_headers(*ADMIN),
            json={"email_address": "housing@example.com"},
        )
        assert r.status_code == 201, r.text
        default_reply = r.json()
        assert default_reply["is_default"] is True  # the first one
        r = await http.post(
            f"{base}/reply-to-addresses",
            headers=identity_headers(*ADMIN),
            json={"email_address": "repairs@example.com"},
        )
        repairs = r.json()
        r = await http.post(
            f"{base}/sms-senders",
            headers=identity_headers(*ADMIN),
            json={"sms_sender": "MKRepairs"},
        )
        assert r.status_code == 201, r.text
        sender = r.json()
        r = await http.post(
            f"{base}/sms-senders", headers=identity_headers(*ADMIN), json={"sms_sender": "no!"}
        )
        assert r.status_code == 422
        r = await http.get(f"{base}/reply-to-addresses", headers=identity_headers(*ADMIN))
        assert [a["email_address"] for a in r.json()] == [
            "housing@example.com",
            "repairs@example.com",
        ]
        r = await http.get(f"{base}/sms-senders", headers=identity_headers("s", "staff"))
        assert r.status_code == 403  # admins only
    client = notify.client()
    values = {"name": "x", "ref": "y", "items": [], "help": "no"}
    chosen = await notify.call(
        client.send_email_notification,
        "a@example.com",
        str(notify.email_template),
        values,
        reference="chosen",
        email_reply_to_id=repairs["id"],
    )
    await notify.call(
        client.send_email_notification,
        "b@example.com",
        str(notify.email_template),
        values,
        reference="default",
    )
    sms = await notify.call(
        client.send_sms_notification,
        "07700900123",
        str(notify.sms_template),
        {"name": "x", "ref": "y"},
        sms_sender_id=sender["id"],
    )
    assert sms["content"]["from_number"] == "MKRepairs"
    assert chosen["id"]

    async def both() -> list[Any]:
        got = smtp_sink.messages()
        return got if len(got) == 2 else []

    messages = {m["To"]: m for m in await eventually(both, timeout=15)}
    assert messages["a@example.com"]["Reply-To"] == "repairs@example.com"
    assert messages["b@example.com"]["Reply-To"] == "housing@example.com"
    path = notify.sms_dir / f"{sms['id']}.json"
    await eventually(lambda: _exists(path), timeout=15)
    assert json.loads(path.read_text())["from"] == "MKRepairs"

    other = "7f1e52c5-1a43-4c65-9d0e-5b1b8b6f1a2a"

    def unknown() -> None:
        assert _errors(
            lambda: client.send_email_notification(
                "a@example.com", str(notify.email_template), values, email_reply_to_id=other
            )
        ) == (
            400,
            [
                f"email_reply_to_id {other} does not exist in database for service id "
                f"{notify.service_id}"
            ],
        )
        assert _errors(
            lambda: client.send_sms_notification(
                "07700900123",
                str(notify.sms_template),
                {"name": "x", "ref": "y"},
                sms_sender_id=default_reply["id"],  # a reply-to is not an SMS sender
            )
        ) == (
            400,
            [
                f"sms_sender_id {default_reply['id']} does not exist in database for "
                f"service id {notify.service_id}"
            ],
        )

    await notify.call(unknown)


async def _exists(path: Any) -> bool:
    return bool(path.exists())


async def test_links_use_the_public_base_url_only_from_the_gateway(notify: Notify) -> None:  # noqa: F811
    """``uri``, ``template.uri`` and ``links`` are built from the gateway's forwarded
    headers when the request carries the gateway's assertion; a client's own forwarded
    headers (no assertion) are ignored."""
    token = notify.client()._create_request_objects("/v2/notifications", None, None)[1]
    auth = token["headers"]["Authorization"]
    forwarded = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "api.mk.example",
        "X-Forwarded-Prefix": "/notify",
    }
    async with httpx.AsyncClient(base_url=notify.url, timeout=30) as http:
        for extra, base in (
            ({**forwarded, **identity_headers(None)}, "https://api.mk.example/notify"),
            (forwarded, notify.url),  # not from the gateway: ignored
            (
                {
                    **identity_headers(None),
                    "X-Forwarded-Proto": "https",
                    "X-Forwarded-Host": "evil.example/@x",
                },
                notify.url,
            ),  # not a host: ignored
        ):
            r = await http.post(
                "/v2/notifications/email",
                headers={"Authorization": auth, **extra},
                json={
                    "email_address": "a@example.com",
                    "template_id": str(notify.email_template),
                    "personalisation": {"name": "x", "ref": "y", "items": [], "help": "no"},
                },
            )
            assert r.status_code == 201, r.text
            sent = r.json()
            assert sent["uri"] == f"{base}/v2/notifications/{sent['id']}"
            assert sent["template"]["uri"] == f"{base}/v2/template/{notify.email_template}"
            r = await http.get("/v2/notifications", headers={"Authorization": auth, **extra})
            assert r.json()["links"]["current"] == f"{base}/v2/notifications"


async def test_retention_purges_content_keeps_status_and_replicas_share_it(
    notify: Notify,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After ``NOTIFICATIONS_NOTIFY_RETENTION_DAYS`` a /v2 message's recipient, content and
    personalisation are gone and its status stays; two purges at once (two processes'
    engines) blank each message once."""
    monkeypatch.setenv("NOTIFICATIONS_NOTIFY_RETENTION_DAYS", "2")
    settings = Settings(database_url=notify.settings.database_url, environment="test")
    assert settings.content_retention_days == 2
    client = notify.client("test")
    ids = []
    for n in range(6):
        sent = await notify.call(
            client.send_email_notification,
            "resident@example.com",
            str(notify.email_template),
            personalisation={"name": f"Secret{n}", "ref": "r", "items": [], "help": "no"},
        )
        ids.append(sent["id"])

    async def finished() -> bool:
        got = [await notify.call(client.get_notification_by_id, i) for i in ids]
        return all(g["status"] == "delivered" for g in got)

    await eventually(finished, timeout=20)
    async with notify.db.session() as s:  # four are three days old, two one day
        for n, nid in enumerate(ids):
            age = timedelta(days=3 if n < 4 else 1)
            await s.execute(
                sa.update(Notification)
                .where(col(Notification.id) == uuid.UUID(nid))
                .values(created_at=datetime.now(UTC) - age)
            )
        await s.commit()
    one, two = Database(settings.database_url), Database(settings.database_url)
    try:
        done = await asyncio.gather(purge_expired(one, settings), purge_expired(two, settings))
    finally:
        await one.dispose()
        await two.dispose()
    assert sum(done) == 4
    for n, nid in enumerate(ids):
        got = await notify.call(client.get_notification_by_id, nid)
        assert got["status"] == "delivered"
        if n < 4:
            assert (got["email_address"], got["body"], got["subject"]) == (None, "", None)
        else:
            assert f"Secret{n}" in got["body"] and got["email_address"] == "resident@example.com"


async def test_files_by_email_download_page_confirmation_and_expiry(
    notify: Notify,  # noqa: F811
    smtp_sink: SmtpSink,
) -> None:
    client = notify.client()
    pdf = b"%PDF-1.4 a council letter\n" + bytes(range(256)) * 10
    values: dict[str, Any] = {
        "name": "Ann",
        "items": [],
        "help": "no",
        "ref": prepare_upload(io.BytesIO(pdf), filename="letter.pdf"),
    }
    sent = await notify.call(
        client.send_email_notification, "Ann@Example.com", str(notify.email_template), values
    )
    link = re.search(r"https?://\S+/api/v1/files/\S+\?key=[\w-]+", sent["content"]["body"])
    assert link, sent["content"]["body"]
    url = link.group()
    assert url.startswith(f"{notify.settings.public_url}/api/v1/files/")
    assert "%PDF" not in sent["content"]["body"]

    async def arrived() -> list[Any]:
        return smtp_sink.messages()

    [message] = await eventually(arrived, timeout=15, message="email not in the sink")
    assert url in message.get_body(("plain",)).get_content()
    path = url.split("/api/v1/files/", 1)[1]
    async with httpx.AsyncClient(base_url=notify.url, timeout=30) as http:
        page = await http.get(f"/api/v1/files/{path}")  # asks for the address first
        assert page.status_code == 200 and 'name="email_address"' in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "<script" not in page.text
        wrong = await http.post(f"/api/v1/files/{path}", data={"email_address": "b@example.com"})
        assert wrong.status_code == 400 and "not the email address" in wrong.text
        direct = await http.get(f"/api/v1/files/{path.replace('?', '/download?')}")
        assert direct.status_code == 200 and direct.content != pdf  # the form again
        got = await http.post(f"/api/v1/files/{path}", data={"email_address": " ann@example.COM"})
        assert got.status_code == 200 and got.content == pdf
        assert got.headers["content-type"] == "application/pdf"
        assert 'filename="letter.pdf"' in got.headers["content-disposition"]
        bad_key = await http.get(f"/api/v1/files/{path.split('?')[0]}?key=guess")
        assert bad_key.status_code == 404

    # without the confirmation step, a plain link; a retention period of one week
    values["ref"] = prepare_upload(
        io.BytesIO(b"a,b\n1,2\n"),
        filename="data.csv",
        confirm_email_before_download=False,
        retention_period="1 week",
    )
    sent = await notify.call(
        client.send_email_notification, "ann@example.com", str(notify.email_template), values
    )
    path = re.search(r"/api/v1/files/(\S+\?key=[\w-]+)", sent["content"]["body"]).group(1)  # type: ignore[union-attr]
    async with httpx.AsyncClient(base_url=notify.url, timeout=30) as http:
        page = await http.get(f"/api/v1/files/{path}")
        assert page.status_code == 200 and "Download this file" in page.text
        got = await http.get(f"/api/v1/files/{path.replace('?', '/download?')}")
        assert got.content == b"a,b\n1,2\n" and got.headers["content-type"].startswith("text/csv")
        async with notify.db.session() as s:
            expires = (
                (await s.execute(sa.select(NotifyFile.expires_at).order_by(NotifyFile.created_at)))
                .scalars()
                .all()
            )
        assert [round((e - datetime.now(UTC)).days) for e in expires] == [26 * 7 - 1, 6]
        # expired: gone at once, and the purge deletes it
        async with notify.db.session() as s:
            await s.execute(
                sa.update(NotifyFile).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
            await s.commit()
        assert (await http.get(f"/api/v1/files/{path}")).status_code == 404
    await purge_expired(notify.db, notify.settings)
    async with notify.db.session() as s:
        assert (await s.execute(sa.select(NotifyFile))).first() is None

    # Notify's 400s
    def refused() -> None:
        sms_values = {"name": "x", "ref": prepare_upload(io.BytesIO(b"x"), filename="a.txt")}
        assert _errors(
            lambda: client.send_sms_notification(
                "07700900123", str(notify.sms_template), sms_values
            )
        ) == (400, ["Can only send a file by email"])
        for upload, message in (
            (
                prepare_upload(io.BytesIO(b"x"), filename="noextension"),
                "filename `filename` must end with a file extension. For example, filename.csv",
            ),
            (
                prepare_upload(io.BytesIO(b"x"), filename="a.txt", retention_period="80 weeks"),
                "retention_period Unsupported value for retention_period: 80 weeks. "
                "Supported periods are from 1 to 78 weeks.",
            ),
            (
                {
                    "file": base64.b64encode(b"x" * (2 * 1024 * 1024 + 1)).decode(),
                    "filename": "a.txt",
                },
                "File is larger than 2MB",
            ),
        ):
            assert _errors(
                lambda u=upload: client.send_email_notification(
                    "a@example.com", str(notify.email_template), {**values, "ref": u}
                )
            ) == (400, [message])

    await notify.call(refused)


async def test_received_texts_from_the_provider_webhook(notify: Notify) -> None:  # noqa: F811
    """The provider's webhook (its token) stores received texts; the official client reads
    them back newest first, paged by ``older_than`` (page size 2 here)."""
    token = {"X-Provider-Token": "dev-only-sms-inbound-token"}
    async with httpx.AsyncClient(base_url=notify.url, timeout=30) as http:
        r = await http.post(  # texts to this number are the test service's
            f"/api/v1/notify-services/{notify.service_id}/sms-senders",
            headers=identity_headers(*ADMIN),
            json={"sms_sender": "447700900999"},
        )
        assert r.status_code == 201, r.text
        ids = []
        for n in range(3):
            r = await http.post(
                "/api/v1/sms/inbound",
                headers=token,
                json={
                    "from": f"07700 900 12{n}",
                    "to": "+44 7700 900999",
                    "body": f"hi {n}",
                    "id": f"prov-{n}",
                },
            )
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        again = await http.post(  # the provider retried: stored once
            "/api/v1/sms/inbound",
            headers=token,
            json={"from": "07700900120", "to": "447700900999", "body": "hi 0", "id": "prov-0"},
        )
        assert again.status_code == 202 and again.json() == {"id": None}
        notify_shape = await http.post(  # GOV.UK Notify's own inbound callback, called directly
            "/api/v1/sms/inbound",
            headers={"Authorization": "Bearer dev-only-sms-inbound-token"},
            json={
                "id": "n-1",
                "source_number": "447700900123",
                "destination_number": "07700900999",
                "message": "from notify",
                "date_received": "2026-12-07T10:00:00Z",
            },
        )
        assert notify_shape.status_code == 202, notify_shape.text
        for headers, body, status in (
            ({"X-Provider-Token": "wrong"}, {"from": "1234", "to": "1234", "body": "x"}, 403),
            ({}, {"from": "1234", "to": "1234", "body": "x"}, 403),
            (token, {"from": "x", "to": "1234", "body": "x"}, 422),
            (token, {"to": "1234", "body": "x"}, 422),
        ):
            r = await http.post("/api/v1/sms/inbound", headers=headers, json=body)
            assert r.status_code == status, r.text
            assert r.headers["content-type"] == "application/problem+json"
    client = notify.client()
    everything = await notify.call(lambda: list(client.get_received_texts_iterator()))
    assert [t["id"] for t in everything] == [ids[2], ids[1], ids[0], notify_shape.json()["id"]]
    first = everything[0]
    assert (first["user_number"], first["notify_number"], first["content"]) == (
        "447700900122",
        "447700900999",
        "hi 2",
    )
    page = await notify.call(client.get_received_texts)
    assert len(page["received_text_messages"]) == 2
    assert page["links"]["next"].endswith(f"older_than={ids[1]}")
    with pytest.raises(HTTPError) as info:
        await notify.call(client.get, "/v2/received-text-messages?since=x")
    assert info.value.status_code == 400


@dataclass
class CallbackReceiver:
    """The calling service's callback endpoint: answers scripted statuses (then 200)."""

    script: list[int] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)

    async def endpoint(self, request: Request) -> Response:
        status = self.script.pop(0) if self.script else 200
        self.calls.append(
            (request.headers.get("authorization", ""), json.loads(await request.body()), status)
        )
        return Response(status_code=status)


async def test_callbacks_delivery_receipts_and_received_texts(
    database_url: str, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """Delivery receipts and received texts are POSTed to the service's callback URLs with
    its bearer token, a failure retried (Notify's schedule, scaled down here), through the
    webhooks' SSRF guard (a loopback URL is refused unless allow-listed)."""
    receiver = CallbackReceiver(script=[500])
    hook_app = Starlette(routes=[Route("/cb", receiver.endpoint, methods=["POST"])])
    settings = Settings(
        database_url=database_url,
        messaging_enabled=False,
        environment="test",
        smtp_port=smtp_sink.port,
        sms_sink_dir=str(tmp_path / "sms"),
        notify_rate_limit_per_minute=0,
        delivery_idle_seconds=0.2,
        webhook_require_https=False,
        webhook_allowed_networks=["127.0.0.0/8"],
        webhook_retry_scale=0.002,  # 5 minutes -> 0.6 s
    )
    app = create_app(settings)
    async with running_app(hook_app) as hook_url, running_app(app) as url:
        db: Database = app.state.runtime.database
        service_id, keys, _email_t, sms_t = await setup_notify(db)
        admin = identity_headers(*ADMIN)
        base = f"/api/v1/notify-services/{service_id}/callbacks"
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            for kind in ("delivery-status", "received-text"):
                r = await http.put(
                    f"{base}/{kind}",
                    headers=admin,
                    json={"url": f"{hook_url}/cb", "bearer_token": f"token-for-{kind}"},
                )
                assert r.status_code == 200, r.text
            r = await http.put(
                f"{base}/delivery-status",
                headers=admin,
                json={"url": "http://169.254.169.254/latest", "bearer_token": "0123456789"},
            )
            assert r.status_code >= 400 and r.status_code < 500, r.text  # the SSRF guard
            r = await http.put(
                f"{base}/delivery-status",
                headers=admin,
                json={"url": f"{hook_url}/cb", "bearer_token": "short"},
            )
            assert r.status_code == 422
            client = NotificationsAPIClient(keys["live"], base_url=url)
            sent = await asyncio.to_thread(
                client.send_sms_notification,
                "07700900123",
                str(sms_t),
                {"name": "x", "ref": "y"},
                "case-7",
            )
            await http.post(
                "/api/v1/sms/inbound",
                headers={"X-Provider-Token": "dev-only-sms-inbound-token"},
                json={"from": "07700900456", "to": "07700900999", "body": "STOP", "id": "p1"},
            )
            # received texts go to the council's own service unless a sender matches: this
            # one is for the council's default service (no callback there), so set the number
            r = await http.post(
                f"/api/v1/notify-services/{service_id}/sms-senders",
                headers=admin,
                json={"sms_sender": "07700900999"},
            )
            assert r.status_code == 201, r.text
            await http.post(
                "/api/v1/sms/inbound",
                headers={"X-Provider-Token": "dev-only-sms-inbound-token"},
                json={"from": "07700900456", "to": "07700900999", "body": "YES", "id": "p2"},
            )

        async def both_done() -> list[Any]:
            ok = [c for c in receiver.calls if c[2] == 200]
            return ok if len(ok) == 2 else []

        done = await eventually(both_done, timeout=30, message="callbacks not made")
        by_token = {auth: payload for auth, payload, _ in done}
        receipt = by_token["Bearer token-for-delivery-status"]
        assert receipt["id"] == sent["id"] and receipt["status"] == "delivered"
        assert (receipt["reference"], receipt["to"], receipt["notification_type"]) == (
            "case-7",
            "+447700900123",
            "sms",
        )
        assert receipt["template_id"] == str(sms_t) and receipt["template_version"] == 1
        text = by_token["Bearer token-for-received-text"]
        assert (text["source_number"], text["destination_number"], text["message"]) == (
            "447700900456",
            "447700900999",
            "YES",
        )
        assert receiver.calls[0][2] == 500  # the first attempt failed and was retried
        assert sum(1 for c in receiver.calls if c[1].get("message") == "STOP") == 0
