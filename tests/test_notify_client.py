"""Acceptance: the official GOV.UK Notify client (``notifications-python-client``),
unchanged, against the platform through the gateway, with the dev credentials that
``python -m notifications.devcreds`` writes for ``make run``."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from notifications_python_client.errors import HTTPError
from notifications_python_client.notifications import NotificationsAPIClient

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
