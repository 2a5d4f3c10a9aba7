"""GOV.UK Notify as its real clients use it (issue 15), with the official
``notifications-python-client`` against the service on SQLite and PostgreSQL:
``sanitise_content_for`` and ``sanitised_content``; Notify's request-schema 400s;
``scheduled_for`` honoured; reply-to addresses and SMS senders per service."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from notifications_python_client.errors import HTTPError

from mkinfra.smtp_sink import SmtpSink
from servicekit.testing import eventually, identity_headers

from .test_notify_api import Notify, notify  # noqa: F401 - the fixture

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
        from notifications.persistence.tables import Notification

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
