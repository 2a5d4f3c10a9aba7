"""GOV.UK Notify's API v2 served by the notifications service, driven by the official
``notifications-python-client`` unchanged, on SQLite and PostgreSQL (no Kafka: the
outbox rows are checked instead)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
from notifications_python_client.errors import HTTPError
from notifications_python_client.notifications import NotificationsAPIClient

from contracts.notifications import NotificationStatusChanged
from mkinfra.smtp_sink import SmtpSink
from notifications.application import notify_services, templates
from notifications.config import Settings
from notifications.domain.notify import KeyType, split_api_key
from notifications.main import create_app
from notifications.persistence.notify_services import NotifyServiceRepository
from notifications.persistence.tables import Notification
from notifications.persistence.templates import TemplateRepository
from servicekit.db import Database
from servicekit.messaging.tables import OutboxMessage
from servicekit.testing import STAFF, eventually, identity_headers, running_app

EMAIL_BODY = (
    "# Hello ((name))\n\nYour reference is ((ref)).\n\n((items))\n\n"
    "((help??^ Call us on 01908 691691))\n\n---\n\nhttps://www.milton-keynes.gov.uk"
)


@dataclass
class Notify:
    url: str
    db: Database
    settings: Settings
    service_id: uuid.UUID
    keys: dict[str, str]
    email_template: uuid.UUID
    sms_template: uuid.UUID
    sms_dir: Path

    def client(self, key: str = "live") -> NotificationsAPIClient:
        return NotificationsAPIClient(self.keys[key], base_url=self.url)

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)  # the client is synchronous

    async def row(self, notification_id: str) -> Notification:
        async with self.db.session() as s:
            found = await s.get(Notification, uuid.UUID(notification_id))
            assert found is not None
            return found


async def setup_notify(
    db: Database, *, team: list[str] | None = None
) -> tuple[uuid.UUID, dict[str, str], uuid.UUID, uuid.UUID]:
    async with db.session() as s:
        services = NotifyServiceRepository(s)
        service = await notify_services.create_service(
            services,
            name="MK test",
            email_from="mk@notifications.test.example",
            sms_sender="MKCouncil",
            team_members=team or ["team.member@example.com"],
        )
        keys = {}
        for name, key_type in (
            ("live", KeyType.LIVE),
            ("test", KeyType.TEST),
            ("team", KeyType.TEAM),
        ):
            _, keys[name] = await notify_services.create_api_key(
                services, service_id=service.id, name=f"my {name} key", key_type=key_type
            )
        email = await templates.create_template(
            TemplateRepository(s),
            services,
            service_id=service.id,
            template_type="email",
            name="Welcome",
            subject="Hello ((name))",
            body=EMAIL_BODY,
        )
        sms = await templates.create_template(
            TemplateRepository(s),
            services,
            service_id=service.id,
            template_type="sms",
            name="Text",
            body="Hi ((name)), ref ((ref))",
        )
        await s.commit()
        return service.id, keys, email.template.id, sms.template.id


@pytest.fixture
async def notify(database_url: str, smtp_sink: SmtpSink, tmp_path: Path) -> AsyncIterator[Notify]:
    settings = Settings(
        database_url=database_url,
        messaging_enabled=False,
        environment="test",
        smtp_port=smtp_sink.port,
        sms_sink_dir=str(tmp_path / "sms"),
        notify_page_size=2,
        notify_rate_limit_per_minute=0,
        delivery_idle_seconds=0.2,
    )
    app = create_app(settings)
    async with running_app(app) as url:
        db: Database = app.state.runtime.database
        service_id, keys, email_t, sms_t = await setup_notify(db)
        yield Notify(url, db, settings, service_id, keys, email_t, sms_t, tmp_path / "sms")


def notify_errors(exc: HTTPError) -> tuple[int, list[dict[str, str]]]:
    return exc.status_code, exc.message  # type: ignore[return-value]


async def test_send_an_email_read_it_back_and_it_arrives_rendered(
    notify: Notify, smtp_sink: SmtpSink
) -> None:
    client = notify.client()
    sent = await notify.call(
        client.send_email_notification,
        "resident@example.com",
        str(notify.email_template),
        personalisation={
            "Name": "Ann",
            "REF": "MK-1",
            "items": ["a bill", "a passport"],
            "help": "yes",
        },
        reference="my-ref-1",
    )
    assert set(sent) >= {"id", "reference", "content", "uri", "template", "scheduled_for"}
    assert sent["reference"] == "my-ref-1"
    assert sent["content"]["subject"] == "Hello Ann"
    assert sent["content"]["from_email"] == "mk@notifications.test.example"
    assert sent["content"]["body"].startswith("# Hello Ann\n\nYour reference is MK-1.")
    assert sent["uri"].endswith(f"/v2/notifications/{sent['id']}")
    assert sent["template"] == {
        "id": str(notify.email_template),
        "version": 1,
        "uri": f"{notify.url}/v2/template/{notify.email_template}",
    }

    async def delivered() -> Any:
        got = await notify.call(client.get_notification_by_id, sent["id"])
        return got if got["status"] == "delivered" else None

    got = await eventually(delivered, timeout=15, message="email not delivered")
    assert got["type"] == "email"
    assert got["email_address"] == "resident@example.com"
    assert got["phone_number"] is None
    assert got["subject"] == "Hello Ann"
    assert got["reference"] == "my-ref-1"
    assert got["template"]["version"] == 1
    assert got["created_at"].endswith("Z") and got["sent_at"] and got["completed_at"]

    [email] = smtp_sink.messages()
    assert email["To"] == "resident@example.com"
    assert email["Subject"] == "Hello Ann"
    html = email.get_body(("html",)).get_content().replace("\r\n", "\n")
    text = email.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "<h2>Hello Ann</h2>" in html
    assert "<ul><li>a bill</li><li>a passport</li></ul>" in html
    assert "<blockquote><p>Call us on 01908 691691</p></blockquote>" in html
    assert '<a href="https://www.milton-keynes.gov.uk">' in html
    assert "• a bill\n• a passport" in text
    assert "# Hello" not in text and "Hello Ann\n-----" in text

    async with notify.db.session() as s:
        rows = (await s.execute(sa.select(OutboxMessage))).scalars().all()
    events = [
        NotificationStatusChanged.model_validate_json(r.payload)
        for r in rows
        if r.event_type == NotificationStatusChanged.event_type()
    ]
    assert [
        (e.previous_status, e.status) for e in events if str(e.notification_id) == sent["id"]
    ] == [(None, "created"), ("created", "sending"), ("sending", "delivered")]
    assert all("resident" not in r.payload for r in rows)


async def test_send_an_sms_to_the_dev_sink(notify: Notify) -> None:
    client = notify.client()
    sent = await notify.call(
        client.send_sms_notification,
        "07700 900 123",
        str(notify.sms_template),
        personalisation={"name": "Bo", "ref": 7},
    )
    assert sent["content"] == {"body": "Hi Bo, ref 7", "from_number": "MKCouncil"}
    path = notify.sms_dir / f"{sent['id']}.json"

    async def arrived() -> bool:
        return path.exists()

    await eventually(arrived, timeout=15, message="sms not in the sink")
    record = json.loads(path.read_text())
    assert record["to"] == "+447700900123"
    assert record["body"] == "Hi Bo, ref 7"
    got = await eventually(lambda: _status(notify, sent["id"], "delivered"), timeout=10)
    assert got["phone_number"] == "+447700900123"
    assert got["type"] == "sms"


async def _status(notify: Notify, notification_id: str, status: str, key: str = "live") -> Any:
    got = await notify.call(notify.client(key).get_notification_by_id, notification_id)
    return got if got["status"] == status else None


async def test_a_test_key_simulates_delivery_and_notify_failures(
    notify: Notify, smtp_sink: SmtpSink
) -> None:
    client = notify.client("test")
    cases = [
        (client.send_email_notification, "someone@example.com", notify.email_template, "delivered"),
        (
            client.send_email_notification,
            "temp-fail@simulator.notify",
            notify.email_template,
            "temporary-failure",
        ),
        (
            client.send_email_notification,
            "perm-fail@simulator.notify",
            notify.email_template,
            "permanent-failure",
        ),
        (client.send_sms_notification, "07700900003", notify.sms_template, "temporary-failure"),
        (client.send_sms_notification, "07700900002", notify.sms_template, "permanent-failure"),
        (client.send_sms_notification, "07700900456", notify.sms_template, "delivered"),
    ]
    values = {"name": "x", "ref": "y", "items": [], "help": "no"}
    for send, to, template, expected in cases:
        sent = await notify.call(send, to, str(template), personalisation=values)
        await eventually(
            lambda s=sent, e=expected: _status(notify, s["id"], e, "test"),
            timeout=10,
            message=f"{to} not {expected}",
        )
    assert smtp_sink.messages() == []
    assert not notify.sms_dir.exists() or not list(notify.sms_dir.iterdir())
    # live keys do not see test notifications and the other way round
    live = await notify.call(notify.client().get_all_notifications)
    assert live["notifications"] == []
    test = await notify.call(lambda: list(client.get_all_notifications_iterator()))
    assert len(test) == len(cases)


async def test_lists_are_newest_first_in_pages_and_filter(notify: Notify) -> None:
    client = notify.client()
    values = {"name": "x", "ref": "y", "items": ["i"], "help": "no"}
    ids = []
    for n in range(5):
        if n % 2:
            sent = await notify.call(
                client.send_sms_notification,
                "07700900111",
                str(notify.sms_template),
                personalisation=values,
                reference=f"r{n}",
            )
        else:
            sent = await notify.call(
                client.send_email_notification,
                "simulate-delivered@notifications.service.gov.uk",
                str(notify.email_template),
                personalisation=values,
                reference=f"r{n}",
            )
        ids.append(sent["id"])
    first = await notify.call(client.get_all_notifications)
    assert [n["id"] for n in first["notifications"]] == ids[::-1][:2]  # page size 2
    assert first["links"]["current"].endswith("/v2/notifications")
    assert f"older_than={ids[3]}" in first["links"]["next"]
    everything = await notify.call(lambda: list(client.get_all_notifications_iterator()))
    assert [n["id"] for n in everything] == ids[::-1]
    sms = await notify.call(
        lambda: list(client.get_all_notifications_iterator(template_type="sms"))
    )
    assert [n["id"] for n in sms] == [ids[3], ids[1]]
    ref = await notify.call(client.get_all_notifications, reference="r2")
    assert [n["id"] for n in ref["notifications"]] == [ids[2]]
    older = await notify.call(client.get_all_notifications, older_than=ids[2])
    assert [n["id"] for n in older["notifications"]] == [ids[1], ids[0]]

    async def all_delivered() -> bool:
        page = await notify.call(
            client.get_all_notifications, status="delivered", template_type="email"
        )
        return len(page["notifications"]) == 2 and page

    await eventually(all_delivered, timeout=10)


async def test_templates_versions_and_previews(notify: Notify, database_url: str) -> None:
    client = notify.client()
    got = await notify.call(client.get_template, str(notify.email_template))
    assert got["type"] == "email" and got["version"] == 1 and got["name"] == "Welcome"
    assert got["subject"] == "Hello ((name))" and got["body"] == EMAIL_BODY
    assert got["personalisation"] == {
        k: {"required": True} for k in ("name", "ref", "items", "help")
    }
    async with httpx.AsyncClient(base_url=notify.url) as http:  # the staff API: a new version
        r = await http.put(
            f"/api/v1/templates/{notify.email_template}",
            headers=identity_headers(*STAFF),
            json={"subject": "Hi ((name)), version 2"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 2
    assert (await notify.call(client.get_template, str(notify.email_template)))["version"] == 2
    v1 = await notify.call(client.get_template_version, str(notify.email_template), 1)
    assert v1["subject"] == "Hello ((name))" and v1["version"] == 1
    listed = await notify.call(client.get_all_templates)
    assert {t["id"] for t in listed["templates"]} == {
        str(notify.email_template),
        str(notify.sms_template),
    }
    only_sms = await notify.call(client.get_all_templates, "sms")
    assert [t["id"] for t in only_sms["templates"]] == [str(notify.sms_template)]
    preview = await notify.call(
        client.post_template_preview,
        str(notify.email_template),
        {"name": "Cy", "ref": "1", "items": ["a"], "help": "no"},
    )
    assert preview["subject"] == "Hi Cy, version 2"
    assert preview["version"] == 2 and preview["type"] == "email"
    assert "<h2>Hello Cy</h2>" in preview["html"]
    sms = await notify.call(
        client.post_template_preview, str(notify.sms_template), {"name": "Cy", "ref": "1"}
    )
    assert sms["body"] == "Hi Cy, ref 1" and sms["html"] is None
    # a sent email records the version it used
    sent = await notify.call(
        client.send_email_notification,
        "resident@example.com",
        str(notify.email_template),
        personalisation={"name": "D", "ref": "1", "items": [], "help": ""},
    )
    assert sent["template"]["version"] == 2
    assert sent["content"]["subject"] == "Hi D, version 2"


async def test_notify_errors(notify: Notify) -> None:
    client = notify.client()
    service_id, _ = split_api_key(notify.keys["live"])

    def expect(call: Callable[[], Any], status: int, error: str, message: str) -> None:
        with pytest.raises(HTTPError) as info:
            call()
        assert notify_errors(info.value) == (status, [{"error": error, "message": message}])
        assert info.value.response.json()["status_code"] == status

    def run_all() -> None:
        unknown = NotificationsAPIClient(f"bad-{service_id}-{uuid.uuid4()}", base_url=notify.url)
        expect(
            lambda: unknown.get_all_templates(),
            403,
            "AuthError",
            "Invalid token: API key not found",
        )
        no_service = NotificationsAPIClient(
            f"bad-{uuid.uuid4()}-{uuid.uuid4()}", base_url=notify.url
        )
        expect(
            lambda: no_service.get_all_templates(),
            403,
            "AuthError",
            "Invalid token: service not found",
        )
        values = {"name": "x"}
        expect(
            lambda: client.send_email_notification(
                "resident@example.com", str(notify.email_template), values
            ),
            400,
            "BadRequestError",
            "Missing personalisation: ref, items, help",
        )
        expect(
            lambda: client.send_email_notification(
                "not-an-email", str(notify.email_template), values
            ),
            400,
            "ValidationError",
            "email_address Not a valid email address",
        )
        expect(
            lambda: client.send_sms_notification(
                "01908 691691", str(notify.sms_template), {"name": "x", "ref": "y"}
            ),
            400,
            "ValidationError",
            "phone_number Not a UK mobile number",
        )
        expect(
            lambda: client.send_sms_notification(
                "07700900123", str(uuid.uuid4()), {"name": "x", "ref": "y"}
            ),
            400,
            "BadRequestError",
            "Template not found",
        )
        expect(
            lambda: client.send_sms_notification("07700900123", str(notify.email_template), {}),
            400,
            "BadRequestError",
            "email template is not suitable for sms notification",
        )
        expect(
            lambda: client.send_sms_notification(
                "07700900123", str(notify.sms_template), {"name": "x" * 1000, "ref": "y"}
            ),
            400,
            "BadRequestError",
            "Your message is too long. Text messages cannot be longer than 918 characters. "
            "Your message is 1010 characters long.",
        )
        expect(
            lambda: client.send_letter_notification(
                str(notify.email_template), {"address_line_1": "x"}
            ),
            400,
            "BadRequestError",
            "Service is not allowed to send letters",
        )
        expect(
            lambda: client.get_notification_by_id(str(uuid.uuid4())),
            404,
            "NoResultFound",
            "No result found",
        )
        expect(
            lambda: client.get_notification_by_id("nope"),
            400,
            "ValidationError",
            "notification_id is not a valid UUID",
        )
        expect(
            lambda: client.get_template(str(uuid.uuid4())), 404, "NoResultFound", "No result found"
        )
        team = notify.client("team")
        expect(
            lambda: team.send_email_notification(
                "resident@example.com",
                str(notify.email_template),
                {"name": "x", "ref": "y", "items": [], "help": ""},
            ),
            400,
            "BadRequestError",
            "Can\u2019t send to this recipient using a team-only API key",
        )
        team.send_email_notification(
            "Team.Member@example.com",
            str(notify.email_template),
            {"name": "x", "ref": "y", "items": [], "help": ""},
        )

    await notify.call(run_all)


async def test_jwt_rules(notify: Notify) -> None:
    service_id, secret = split_api_key(notify.keys["live"])

    def token(**claims: Any) -> str:
        return jwt.encode(
            {"iss": service_id, "iat": int(time.time()), **claims}, secret, algorithm="HS256"
        )

    async with httpx.AsyncClient(base_url=notify.url) as http:

        async def error(headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
            r = await http.get("/v2/templates", headers=headers)
            return r.status_code, r.json()["errors"][0]

        assert await error({}) == (
            401,
            {
                "error": "AuthError",
                "message": "Unauthorized: authentication token must be provided",
            },
        )
        assert await error({"Authorization": f"Basic {token()}"}) == (
            401,
            {
                "error": "AuthError",
                "message": "Unauthorized: authentication bearer scheme must be used",
            },
        )
        clock = {
            "error": "AuthError",
            "message": "Error: Your system clock must be accurate to within 30 seconds",
        }
        stale = token(iat=int(time.time()) - 60)
        assert await error({"Authorization": f"Bearer {stale}"}) == (403, clock)
        future = token(iat=int(time.time()) + 60)
        assert await error({"Authorization": f"Bearer {future}"}) == (403, clock)
        no_iss = jwt.encode({"iat": int(time.time())}, secret, algorithm="HS256")
        assert (await error({"Authorization": f"Bearer {no_iss}"}))[1]["message"] == (
            "Invalid token: iss field not provided"
        )
        assert (await error({"Authorization": "Bearer not.a.jwt"}))[0] == 403
        r = await http.get("/v2/templates", headers={"Authorization": f"Bearer {token()}"})
        assert r.status_code == 200


async def test_rate_limit_per_key_type(
    database_url: str, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=database_url,
        messaging_enabled=False,
        environment="test",
        smtp_port=smtp_sink.port,
        notify_rate_limit_per_minute=3,
    )
    app = create_app(settings)
    async with running_app(app) as url:
        _, keys, _, _ = await setup_notify(app.state.runtime.database)
        live = NotificationsAPIClient(keys["live"], base_url=url)
        test = NotificationsAPIClient(keys["test"], base_url=url)

        def run() -> None:
            for _ in range(3):
                live.get_all_templates()
            with pytest.raises(HTTPError) as info:
                live.get_all_templates()
            assert notify_errors(info.value) == (
                429,
                [
                    {
                        "error": "RateLimitError",
                        "message": "Exceeded rate limit for key type LIVE of 3 requests per 60 "
                        "seconds",
                    }
                ],
            )
            test.get_all_templates()  # another key type, its own allowance

        await asyncio.to_thread(run)


async def test_out_of_range_versions_are_not_found(notify: Notify) -> None:
    client = notify.client()

    def run() -> None:
        for version in (0, 2**31, 10**18):
            with pytest.raises(HTTPError) as info:
                client.get_template_version(str(notify.email_template), version)
            assert info.value.status_code == 404

    await notify.call(run)
    async with httpx.AsyncClient(base_url=notify.url) as http:
        staff = identity_headers(*STAFF)
        r = await http.post(
            f"/api/v1/templates/{notify.email_template}/preview",
            params={"version": 10**18},
            headers=staff,
            json={},
        )
        assert r.status_code == 422
        r = await http.get(
            f"/api/v1/templates/{notify.email_template}/versions/{10**18}", headers=staff
        )
        assert r.status_code == 422


async def test_arguments_notify_does_not_take_are_refused(notify: Notify) -> None:
    """As Notify's request schemas do: an unknown query argument on a list, and a
    ``personalisation`` that is not an object (``false`` too), are a 400 ValidationError."""
    service_id, secret = split_api_key(notify.keys["live"])
    token = jwt.encode({"iss": str(service_id), "iat": int(time.time())}, secret, "HS256")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=notify.url, headers=headers) as http:
        for path in ("/v2/notifications?colour=red", "/v2/templates?colour=red"):
            r = await http.get(path)
            assert r.status_code == 400, (path, r.text)
            assert r.json()["errors"] == [
                {
                    "error": "ValidationError",
                    "message": "Additional properties are not allowed (colour was unexpected)",
                }
            ]
        listed = await http.get("/v2/notifications?template_type=email&older_than=")
        assert listed.status_code == 200, listed.text
        for path, body in (
            (f"/v2/template/{notify.email_template}/preview", {"personalisation": False}),
            (
                "/v2/notifications/email",
                {
                    "email_address": "resident@example.com",
                    "template_id": str(notify.email_template),
                    "personalisation": False,
                },
            ),
        ):
            r = await http.post(path, json=body)
            assert r.status_code == 400, (path, r.text)
            assert r.json()["errors"] == [
                {
                    "error": "ValidationError",
                    "message": "personalisation False is not of type object",
                }
            ]


async def test_the_send_routes_skip_the_router_and_keep_their_errors_and_metrics(
    notify: Notify, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``POST /v2/notifications/{email,sms}`` are answered by ``notify.SendFastPath`` (no
    route matching, no endpoint wrappers): the router never handles them, while every
    other route still goes through it; Notify's errors, a 500's problem and the request
    metrics (by route template) are as on the normal path."""
    from fastapi.routing import APIRoute

    handled: list[str] = []
    original = APIRoute.handle

    async def handle(self: APIRoute, scope: Any, receive: Any, send: Any) -> None:
        handled.append(self.path)
        await original(self, scope, receive, send)

    monkeypatch.setattr(APIRoute, "handle", handle)
    service_id, secret = split_api_key(notify.keys["live"])
    headers = {
        "Authorization": "Bearer "
        + jwt.encode({"iss": service_id, "iat": int(time.time())}, secret, algorithm="HS256")
    }
    async with httpx.AsyncClient(base_url=notify.url, timeout=30) as http:
        sent = await http.post(
            "/v2/notifications/email",
            headers=headers,
            json={
                "email_address": "someone@example.com",
                "template_id": str(notify.email_template),
                "personalisation": {"name": "Ann", "ref": "R1", "items": "x", "help": "no"},
            },
        )
        assert sent.status_code == 201, sent.text
        texted = await http.post(
            "/v2/notifications/sms",
            headers=headers,
            json={
                "phone_number": "07700900123",
                "template_id": str(notify.sms_template),
                "personalisation": {"name": "Ann", "ref": "R1"},
            },
        )
        assert texted.status_code == 201, texted.text
        bad = await http.post("/v2/notifications/email", headers=headers, content=b"{")
        assert (bad.status_code, bad.json()) == (
            400,
            {
                "status_code": 400,
                "errors": [
                    {"error": "BadRequestError", "message": "Invalid JSON supplied in POST data"}
                ],
            },
        )
        unauthorised = await http.post("/v2/notifications/sms", json={})
        assert unauthorised.status_code == 401
        assert unauthorised.json()["errors"][0]["error"] == "AuthError"
        assert handled == []  # none of these went through the router
        read = await http.get(f"/v2/notifications/{sent.json()['id']}", headers=headers)
        assert read.status_code == 200 and handled == ["/v2/notifications/{notification_id}"]

        async def broken(*_: Any, **__: Any) -> None:
            raise RuntimeError("boom")

        monkeypatch.setattr("notifications.application.notify_send.accept", broken)
        failed = await http.post(
            "/v2/notifications/email",
            headers=headers,
            json={"email_address": "someone@example.com", "template_id": str(uuid.uuid4())},
        )
        assert failed.status_code == 500
        assert failed.headers["content-type"].startswith("application/problem+json")
        assert "boom" not in failed.text
        metrics = (await http.get("/metrics")).text
    for route, status in (
        ("/v2/notifications/email", "201"),
        ("/v2/notifications/email", "400"),
        ("/v2/notifications/sms", "201"),
        ("/v2/notifications/sms", "401"),
        ("/v2/notifications/email", "500"),
    ):
        assert (
            f'http_requests_total{{method="POST",route="{route}",status="{status}"}} 1.0' in metrics
        ), (route, status)
