"""SMS providers: the generic HTTP provider's outcomes, and GOV.UK Notify as the upstream
(here: this platform's own /v2, with a test key)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
import sqlalchemy as sa

from notifications.adapters.email import PermanentDeliveryError, TemporaryDeliveryError
from notifications.adapters.sms import HttpSmsSender, NotifySmsSender, OutgoingSms, SinkSmsSender
from notifications.application import notify_services, templates
from notifications.config import Settings
from notifications.domain.notify import KeyType
from notifications.main import create_app
from notifications.persistence.notify_services import NotifyServiceRepository
from notifications.persistence.tables import Notification
from notifications.persistence.templates import TemplateRepository
from servicekit.db import Database
from servicekit.testing import running_app

SMS = OutgoingSms(
    notification_id=str(uuid.uuid4()),
    to="+447700900123",
    sender="MKCouncil",
    body="Your bin collection is tomorrow",
)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, None),
        (202, None),
        (400, PermanentDeliveryError),
        (422, PermanentDeliveryError),
        (429, TemporaryDeliveryError),
        (503, TemporaryDeliveryError),
    ],
)
async def test_http_provider_outcomes(status: int, outcome: type[Exception] | None) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status)

    sender = HttpSmsSender(
        "https://sms.example/send", "tok", transport=httpx.MockTransport(handler)
    )
    try:
        if outcome is None:
            await sender.send(SMS)
        else:
            with pytest.raises(outcome):
                await sender.send(SMS)
    finally:
        await sender.close()
    [request] = seen
    assert request.headers["authorization"] == "Bearer tok"
    assert json.loads(request.content) == {
        "reference": SMS.notification_id,
        "to": "+447700900123",
        "from": "MKCouncil",
        "body": "Your bin collection is tomorrow",
    }


async def test_http_provider_unreachable_is_temporary() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    sender = HttpSmsSender("https://sms.example/send", transport=httpx.MockTransport(handler))
    with pytest.raises(TemporaryDeliveryError):
        await sender.send(SMS)
    await sender.close()


async def test_sink_writes_one_file_per_message(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sink = SinkSmsSender(tmp_path / "sms")
    await sink.send(SMS)
    await sink.send(SMS)  # a re-send replaces it
    [path] = list((tmp_path / "sms").iterdir())
    assert path.name == f"{SMS.notification_id}.json"
    assert json.loads(path.read_text())["body"] == SMS.body


async def test_notify_as_the_upstream(database_url: str) -> None:
    app = create_app(
        Settings(
            database_url=database_url,
            messaging_enabled=False,
            environment="test",
            notify_rate_limit_per_minute=0,
        )
    )
    async with running_app(app) as url:
        db: Database = app.state.runtime.database
        async with db.session() as s:
            services = NotifyServiceRepository(s)
            service = await notify_services.create_service(
                services, name="upstream", email_from="a@b.example", sms_sender="MK"
            )
            _, key = await notify_services.create_api_key(
                services, service_id=service.id, name="relay", key_type=KeyType.TEST
            )
            relay = await templates.create_template(
                TemplateRepository(s),
                services,
                service_id=service.id,
                template_type="sms",
                name="relay",
                body="((body))",
            )
            await s.commit()
        sender = NotifySmsSender(key, str(relay.template.id), base_url=url)
        try:
            await sender.send(SMS)
            with pytest.raises(PermanentDeliveryError):
                await sender.send(
                    OutgoingSms(
                        notification_id="x", to="01908 691691", sender="MK", body="landline"
                    )
                )
        finally:
            await sender.close()
        async with db.session() as s:
            [row] = (await s.execute(sa.select(Notification))).scalars().all()
        assert (row.recipient, row.body, row.reference) == (
            "+447700900123",
            SMS.body,
            SMS.notification_id,
        )
