"""Acceptance: the official GOV.UK Notify client (``notifications-python-client``),
unchanged, against the platform through the gateway, with the dev credentials that
``python -m notifications.devcreds`` writes for ``make run``."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from jsonschema import Draft4Validator
from notifications_python_client.errors import HTTPError
from notifications_python_client.notifications import NotificationsAPIClient
from notifications_python_client.utils import prepare_upload

from contracts.notifications import NotificationStatusChanged
from contracts.topics import NOTIFICATION
from mkinfra.smtp_sink import SmtpSink
from notifications.devcreds import read_env, write_dev_notify_credentials
from notifications.domain.notify import split_api_key
from servicekit.testing import end_offsets, eventually, read_topic

from .conftest import Platform, run_platform

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

PERSONALISATION = {
    "name": "Ann Resident",
    "reference": "MK-1234",
    "status": "in progress",
    "details": ["We have inspected the site", "A crew is booked"],
    "show_help": "yes",
}


@pytest.fixture
async def notify_platform(
    tmp_path: Path,
    kafka_bootstrap: str,
    smtp_sink: SmtpSink,
    service_db: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Platform]:
    monkeypatch.setenv("NOTIFICATIONS_SMS_SINK_DIR", str(tmp_path / "sms"))
    async with run_platform(
        tmp=tmp_path, kafka_bootstrap=kafka_bootstrap, smtp_port=smtp_sink.port, database=service_db
    ) as p:
        yield p


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)  # the client is synchronous


async def test_the_official_client_through_the_gateway(
    notify_platform: Platform, smtp_sink: SmtpSink, kafka_bootstrap: str, tmp_path: Path
) -> None:
    platform = notify_platform
    env_file = tmp_path / "dev-credentials.env"
    env_file.write_text("STAFF_TOKEN=keep-me\n")
    db_url = platform.apps["notifications"].state.runtime.database.url
    creds = await write_dev_notify_credentials(tmp_path, db_url)
    assert read_env(env_file) == {"STAFF_TOKEN": "keep-me", **creds}
    assert await write_dev_notify_credentials(tmp_path, db_url) == creds  # idempotent

    live = NotificationsAPIClient(creds["NOTIFY_API_KEY"], base_url=platform.gateway_url)
    test = NotificationsAPIClient(creds["NOTIFY_TEST_API_KEY"], base_url=platform.gateway_url)
    email_template, sms_template = (
        creds["NOTIFY_EMAIL_TEMPLATE_ID"],
        creds["NOTIFY_SMS_TEMPLATE_ID"],
    )
    offsets = await end_offsets(kafka_bootstrap, NOTIFICATION.name)

    email = await call(
        live.send_email_notification,
        "ann.resident@example.com",
        email_template,
        personalisation=PERSONALISATION,
        reference="case-1",
    )
    assert email["content"]["subject"] == "Your request MK-1234 has been updated"
    assert email["template"]["id"] == email_template
    # links point at the gateway the client called, not the service's own port
    assert email["uri"] == f"{platform.gateway_url}/v2/notifications/{email['id']}"
    assert email["template"]["uri"] == f"{platform.gateway_url}/v2/template/{email_template}"
    sms = await call(
        live.send_sms_notification,
        "+44 7700 900 321",
        sms_template,
        personalisation=PERSONALISATION,
        reference="case-1",
    )
    assert sms["content"]["body"].startswith("Milton Keynes City Council: hello Ann Resident")

    # the email arrives in the SMTP sink, rendered
    async def arrived() -> list[Any]:
        return [
            m
            for m in smtp_sink.messages()
            if m["Subject"] == "Your request MK-1234 has been updated"
        ]

    [message] = await eventually(arrived, timeout=15, message="email not in the sink")
    assert message["To"] == "ann.resident@example.com"
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "<h2>Hello Ann Resident</h2>" in html
    assert "<li>We have inspected the site</li>" in html
    assert "<blockquote>" in html and "<hr>" in html
    assert "• We have inspected the site\n• A crew is booked" in text
    sms_file = tmp_path / "sms" / f"{sms['id']}.json"
    await eventually(lambda: asyncio.sleep(0, sms_file.exists()), timeout=15)
    assert json.loads(sms_file.read_text())["to"] == "+447700900321"

    # read back by id and in pages
    async def both_delivered() -> bool:
        got = [await call(live.get_notification_by_id, n["id"]) for n in (email, sms)]
        return all(g["status"] == "delivered" for g in got)

    await eventually(both_delivered, timeout=15, message="not delivered")
    got = await call(live.get_notification_by_id, email["id"])
    assert (got["type"], got["email_address"], got["reference"]) == (
        "email",
        "ann.resident@example.com",
        "case-1",
    )
    listed = await call(lambda: list(live.get_all_notifications_iterator(reference="case-1")))
    assert [n["id"] for n in listed] == [sms["id"], email["id"]]
    page = await call(live.get_all_notifications, template_type="sms")
    assert [n["id"] for n in page["notifications"]] == [sms["id"]]
    assert sms["id"] in page["links"]["next"]

    # a test key simulates, including Notify's failure addresses
    failing = await call(
        test.send_email_notification,
        "perm-fail@simulator.notify",
        email_template,
        personalisation=PERSONALISATION,
    )

    async def permanent_failure() -> bool:
        return (await call(test.get_notification_by_id, failing["id"]))["status"] == (
            "permanent-failure"
        )

    await eventually(permanent_failure, timeout=15)

    # templates, versions, previews
    template = await call(live.get_template, email_template)
    assert template["version"] == 1 and template["type"] == "email"
    assert (await call(live.get_template_version, email_template, 1))["id"] == email_template
    templates = await call(live.get_all_templates)
    assert {t["id"] for t in templates["templates"]} >= {email_template, sms_template}
    preview = await call(live.post_template_preview, sms_template, PERSONALISATION)
    assert preview["body"] == sms["content"]["body"]

    # Notify's errors
    service_id, secret = split_api_key(creds["NOTIFY_API_KEY"])
    unknown = NotificationsAPIClient(
        f"nope-{service_id}-{uuid.uuid4()}", base_url=platform.gateway_url
    )
    with pytest.raises(HTTPError) as info:
        await call(unknown.get_all_templates)
    assert (info.value.status_code, info.value.message) == (
        403,
        [{"error": "AuthError", "message": "Invalid token: API key not found"}],
    )
    with pytest.raises(HTTPError) as info:
        await call(
            live.send_email_notification,
            "ann.resident@example.com",
            email_template,
            personalisation={"name": "Ann"},
        )
    assert (info.value.status_code, info.value.message) == (
        400,
        [
            {
                "error": "BadRequestError",
                "message": "Missing personalisation: reference, status, details, show_help",
            }
        ],
    )
    stale = jwt.encode({"iss": service_id, "iat": int(time.time()) - 60}, secret, algorithm="HS256")
    async with httpx.AsyncClient(base_url=platform.gateway_url) as http:
        r = await http.get("/v2/templates", headers={"Authorization": f"Bearer {stale}"})
    assert r.status_code == 403
    assert r.json() == {
        "status_code": 403,
        "errors": [
            {
                "error": "AuthError",
                "message": "Error: Your system clock must be accurate to within 30 seconds",
            }
        ],
    }

    # every change of status went out on Kafka as NotificationStatusChanged
    records = await read_topic(
        kafka_bootstrap,
        NOTIFICATION.name,
        start=offsets,
        count=6,
        timeout=15,
        predicate=lambda r: r.key.decode() in (email["id"], sms["id"]),
    )
    changes = sorted(
        (
            NotificationStatusChanged.from_json(r.value).notification_id,
            NotificationStatusChanged.from_json(r.value).status,
        )
        for r in records
    )
    assert changes == sorted(
        (uuid.UUID(n["id"]), s) for n in (email, sms) for s in ("created", "sending", "delivered")
    )


async def test_an_admin_issues_a_key_through_the_gateway_and_the_client_sends_with_it(
    notify_platform: Platform, tmp_path: Path
) -> None:
    """``/api/v1/notify-services`` through the gateway (ADMIN_TOKEN): the key it shows once
    works with the official client at once, and is refused at once when revoked."""
    platform = notify_platform
    creds = await write_dev_notify_credentials(
        tmp_path, platform.apps["notifications"].state.runtime.database.url
    )
    service_id = split_api_key(creds["NOTIFY_API_KEY"])[0]
    admin = platform.bearer("ADMIN_TOKEN")
    async with httpx.AsyncClient(base_url=platform.gateway_url) as http:
        assert (
            await http.get("/api/v1/notify-services", headers=platform.bearer("STAFF_TOKEN"))
        ).status_code == 403
        keys = f"/api/v1/notify-services/{service_id}/api-keys"
        issued = await http.post(
            keys, headers=admin, json={"name": "integrator", "key_type": "test"}
        )
        assert issued.status_code == 201, issued.text
        key = issued.json()
        client = NotificationsAPIClient(key["key"], base_url=platform.gateway_url)
        sent = await call(
            client.send_email_notification,
            "ann.resident@example.com",
            creds["NOTIFY_EMAIL_TEMPLATE_ID"],
            personalisation=PERSONALISATION,
        )
        assert sent["content"]["subject"] == "Your request MK-1234 has been updated"
        revoked = await http.post(f"{keys}/{key['id']}/revoke", headers=admin)
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    with pytest.raises(HTTPError) as refused:
        await call(
            client.send_email_notification,
            "ann.resident@example.com",
            creds["NOTIFY_EMAIL_TEMPLATE_ID"],
            personalisation=PERSONALISATION,
        )
    assert (refused.value.status_code, refused.value.message) == (
        403,
        [{"error": "AuthError", "message": "Invalid token: API key revoked"}],
    )


SCHEMAS = Path(__file__).parent / "notify_v2_schemas"


def notify_schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.json").read_text())
    return loaded


def valid(answer: Any, name: str) -> Any:
    """``answer``, checked as Notify's client's integration test checks Notify's answers."""
    Draft4Validator(notify_schema(name)).validate(answer)
    return answer


async def test_every_non_letter_method_through_the_gateway_matches_notifys_schemas(
    notify_platform: Platform, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """The Done-when test of issue 15: the official client through the gateway over every
    non-letter method — files, reply-to, scheduled, SMS sender, received texts — each
    answer valid against Notify's v2 response schemas; Notify's documented errors."""
    platform = notify_platform
    creds = await write_dev_notify_credentials(
        tmp_path, platform.apps["notifications"].state.runtime.database.url
    )
    service_id = split_api_key(creds["NOTIFY_API_KEY"])[0]
    email_t, sms_t = creds["NOTIFY_EMAIL_TEMPLATE_ID"], creds["NOTIFY_SMS_TEMPLATE_ID"]
    client = NotificationsAPIClient(creds["NOTIFY_API_KEY"], base_url=platform.gateway_url)
    admin = platform.bearer("ADMIN_TOKEN")
    services = f"/api/v1/notify-services/{service_id}"
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as http:
        r = await http.post(
            f"{services}/reply-to-addresses",
            headers=admin,
            json={"email_address": "housing.replies@example.com"},
        )
        assert r.status_code == 201, r.text
        reply_to = r.json()["id"]
        r = await http.post(
            f"{services}/sms-senders", headers=admin, json={"sms_sender": "MKHousing"}
        )
        assert r.status_code == 201, r.text
        sms_sender = r.json()["id"]

    file_values = {
        **PERSONALISATION,
        "status": prepare_upload(
            io.BytesIO(b"%PDF-1.4 your tenancy agreement"),
            filename="tenancy.pdf",
            confirm_email_before_download=False,
            retention_period="4 weeks",
        ),
    }
    with_file = valid(
        await call(
            client.send_email_notification,
            "ann.resident@example.com",
            email_t,
            personalisation=file_values,
            reference="done-when",
            email_reply_to_id=reply_to,
            sanitise_content_for=["name"],
        ),
        "post_email_response",
    )
    link = re.search(r"/api/v1/files/\S+\?key=[\w-]+", with_file["content"]["body"])
    assert link, with_file["content"]["body"]
    when = datetime.now(UTC) + timedelta(seconds=2)
    scheduled = valid(
        await call(
            client.post,
            "/v2/notifications/email",
            {
                "email_address": "ann.resident@example.com",
                "template_id": email_t,
                "personalisation": PERSONALISATION,
                "reference": "done-when",
                "scheduled_for": when.isoformat(),
            },
        ),
        "post_email_response",
    )
    assert scheduled["scheduled_for"] == when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    sms = valid(
        await call(
            client.send_sms_notification,
            "+44 7700 900 321",
            sms_t,
            personalisation=PERSONALISATION,
            reference="done-when",
            sms_sender_id=sms_sender,
        ),
        "post_sms_response",
    )
    assert sms["content"]["from_number"] == "MKHousing"
    assert sms["uri"].startswith(platform.gateway_url)

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as http:
        got = await http.get(link.group().replace("?", "/download?"))  # public, anonymous
        assert got.status_code == 200 and got.content == b"%PDF-1.4 your tenancy agreement"
        for n, body in enumerate(("YES", "STOP")):
            r = await http.post(
                "/api/v1/sms/inbound",
                headers={"X-Provider-Token": "dev-only-sms-inbound-token"},
                json={"from": "07700900456", "to": "07700900999", "body": body, "id": f"in-{n}"},
            )
            assert r.status_code == 202, r.text

    async def all_delivered() -> list[Any]:
        got = [
            valid(await call(client.get_notification_by_id, n["id"]), "get_notification_response")
            for n in (with_file, scheduled, sms)
        ]
        return got if all(g["status"] == "delivered" for g in got) else []

    by_id = {g["id"]: g for g in await eventually(all_delivered, timeout=30)}
    sent_at = datetime.strptime(by_id[scheduled["id"]]["sent_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert sent_at.replace(tzinfo=UTC) >= when  # not before its time
    page = valid(
        await call(client.get_all_notifications, reference="done-when"),
        "get_notifications_response",
    )
    for n in page["notifications"]:
        valid(n, "get_notification_response")
    listed = await call(lambda: list(client.get_all_notifications_iterator(reference="done-when")))
    assert [n["id"] for n in listed] == [sms["id"], scheduled["id"], with_file["id"]]

    texts = valid(await call(client.get_received_texts), "get_inbound_sms_response")
    assert [t["content"] for t in texts["received_text_messages"]][:2] == ["STOP", "YES"]
    every_text = await call(lambda: list(client.get_received_texts_iterator()))
    assert [t["content"] for t in every_text] == ["STOP", "YES"]

    for template_id in (email_t, sms_t):
        valid(await call(client.get_template, template_id), "get_template_by_id_response")
        version = valid(
            await call(client.get_template_version, template_id, 1), "get_template_by_id_response"
        )
        assert version["version"] == 1
        valid(
            await call(client.post_template_preview, template_id, PERSONALISATION),
            "post_template_preview_response",
        )
    for template_type in (None, "email", "sms"):
        valid(await call(client.get_all_templates, template_type), "get_all_template_response")

    # Notify's documented errors
    other = str(uuid.uuid4())
    upload = prepare_upload(io.BytesIO(b"x"), filename="notes.txt")
    cases: list[tuple[Callable[[], Any], str, str]] = [
        (
            lambda: client.post(
                "/v2/notifications/email",
                {"email_address": "a@example.com", "template_id": email_t, "bcc": "x"},
            ),
            "ValidationError",
            "Additional properties are not allowed (bcc was unexpected)",
        ),
        (
            lambda: client.send_email_notification(
                "a@example.com", email_t, PERSONALISATION, reference="r" * 1001
            ),
            "ValidationError",
            f"reference {'r' * 1001} is too long",
        ),
        (
            lambda: client.get_all_templates("letters"),
            "ValidationError",
            "type letters is not one of [sms, email, letter]",
        ),
        (
            lambda: client.send_email_notification(
                "a@example.com", email_t, PERSONALISATION, sanitise_content_for="name"
            ),
            "ValidationError",
            "sanitise_content_for name is not of type array, null",
        ),
        (
            lambda: client.send_email_notification(
                "a@example.com", email_t, PERSONALISATION, email_reply_to_id=other
            ),
            "BadRequestError",
            f"email_reply_to_id {other} does not exist in database for service id {service_id}",
        ),
        (
            lambda: client.send_sms_notification(
                "07700900123", sms_t, PERSONALISATION, sms_sender_id=other
            ),
            "BadRequestError",
            f"sms_sender_id {other} does not exist in database for service id {service_id}",
        ),
        (
            lambda: client.post(
                "/v2/notifications/sms",
                {
                    "phone_number": "07700900123",
                    "template_id": sms_t,
                    "personalisation": PERSONALISATION,
                    "scheduled_for": "2020-01-01T10:00:00",
                },
            ),
            "ValidationError",
            "scheduled_for datetime can not be in the past",
        ),
        (
            lambda: client.send_sms_notification(
                "07700900123", sms_t, {**PERSONALISATION, "status": upload}
            ),
            "BadRequestError",
            "Can only send a file by email",
        ),
        (
            lambda: client.send_email_notification(
                "a@example.com",
                email_t,
                {**PERSONALISATION, "status": {**upload, "filename": "notes"}},
            ),
            "ValidationError",
            "filename `filename` must end with a file extension. For example, filename.csv",
        ),
        (
            lambda: client.send_email_notification(
                "a@example.com",
                email_t,
                {
                    **PERSONALISATION,
                    "status": {"file": base64.b64encode(b"x" * (2 * 1024 * 1024 + 1)).decode()},
                },
            ),
            "BadRequestError",
            "File is larger than 2MB",
        ),
        (
            lambda: client.send_email_notification(
                "a@example.com",
                email_t,
                {**PERSONALISATION, "status": {**upload, "retention_period": "79 weeks"}},
            ),
            "ValidationError",
            "retention_period Unsupported value for retention_period: 79 weeks. "
            "Supported periods are from 1 to 78 weeks.",
        ),
    ]

    def refused() -> None:
        for send, error, message in cases:
            with pytest.raises(HTTPError) as info:
                send()
            assert (info.value.status_code, info.value.message) == (
                400,
                [{"error": error, "message": message}],
            ), message

    await call(refused)
