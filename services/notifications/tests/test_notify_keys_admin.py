"""The admin API for Notify services and keys (``/api/v1/notify-services``), on SQLite and
PostgreSQL: an admin issues a key, an integrator sends with it (the official
``notifications-python-client``), the admin revokes it and the very next request, even
with a token this process verified moments ago, gets Notify's 403 ``AuthError``. Lists show
no secret; only admins get in; the audit records who and when. The operators' CLI too."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from notifications_python_client.errors import HTTPError
from notifications_python_client.notifications import NotificationsAPIClient

from mkinfra.smtp_sink import SmtpSink
from notifications import keys as keys_cli
from notifications.application import notify_services
from notifications.application.notify_auth import KeyCache
from notifications.config import Settings
from notifications.domain.notify import split_api_key
from notifications.main import create_app
from notifications.persistence.notify_services import NotifyServiceRepository
from servicekit.db import Database
from servicekit.testing import STAFF, identity_headers, running_app

BASE = "/api/v1/notify-services"
ADMIN_SUBJECT = "admin-test-1"
REVOKED = {"error": "AuthError", "message": "Invalid token: API key revoked"}


def admin() -> dict[str, str]:
    """Fresh each time: the gateway's assertion lives 60 seconds."""
    return identity_headers(ADMIN_SUBJECT, "admin")


def bearer(api_key: str) -> dict[str, str]:
    service_id, secret = split_api_key(api_key)
    token = jwt.encode({"iss": service_id, "iat": int(time.time())}, secret, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Running:
    url: str
    http: httpx.AsyncClient
    settings: Settings
    db: Database


@pytest.fixture
async def running(database_url: str, smtp_sink: SmtpSink, tmp_path: Path) -> AsyncIterator[Running]:
    # a long cache: revocation must not wait for it
    settings = Settings(
        database_url=database_url,
        messaging_enabled=False,
        environment="test",
        smtp_port=smtp_sink.port,
        sms_sink_dir=str(tmp_path / "sms"),
        notify_rate_limit_per_minute=0,
        notify_key_cache_seconds=300,
        delivery_idle_seconds=0.2,
    )
    app = create_app(settings)
    async with running_app(app) as url, httpx.AsyncClient(base_url=url) as http:
        yield Running(url, http, settings, app.state.runtime.database)


def is_problem(response: httpx.Response, status: int) -> bool:
    return response.status_code == status and response.headers["content-type"].startswith(
        "application/problem+json"
    )


async def test_issue_use_revoke_a_key(running: Running) -> None:
    http = running.http
    listed = await http.get(BASE, headers=admin())
    assert listed.status_code == 200, listed.text
    assert str(running.settings.notify_default_service_id) in [s["id"] for s in listed.json()]

    created = await http.post(
        BASE,
        headers=admin(),
        json={
            "name": "Housing repairs",
            "team_members": ["Team.Member@Example.com", "07700 900123"],
        },
    )
    assert created.status_code == 201, created.text
    service = created.json()
    assert service["team_members"] == ["team.member@example.com", "+447700900123"]
    assert service["created_by"] == ADMIN_SUBJECT
    assert created.headers["location"] == f"{BASE}/{service['id']}"
    path = f"{BASE}/{service['id']}"
    assert (await http.get(path, headers=admin())).json() == service

    issued = await http.post(
        f"{path}/api-keys", headers=admin(), json={"name": "Housing system", "key_type": "normal"}
    )
    assert issued.status_code == 201, issued.text
    assert issued.headers["cache-control"] == "no-store"
    live = issued.json()
    assert live["key"].startswith(f"housing_system-{service['id']}-")
    assert (live["key_type"], live["created_by"], live["revoked_at"]) == (
        "normal",
        ADMIN_SUBJECT,
        None,
    )
    team = (
        await http.post(
            f"{path}/api-keys", headers=admin(), json={"name": "Team", "key_type": "team"}
        )
    ).json()

    # the list and the key's own page show no secret
    keys = await http.get(f"{path}/api-keys", headers=admin())
    assert keys.status_code == 200
    assert [k["id"] for k in keys.json()] == [live["id"], team["id"]]
    secret = split_api_key(live["key"])[1]
    for shown in (keys, await http.get(f"{path}/api-keys/{live['id']}", headers=admin())):
        assert secret not in shown.text and '"key"' not in shown.text
        assert "secret" not in shown.text

    # an integrator sends with it: a template of the new service, the official client
    template = await http.post(
        "/api/v1/templates",
        headers=identity_headers(*STAFF),
        json={
            "service_id": service["id"],
            "type": "email",
            "name": "Repair booked",
            "subject": "Repair ((ref))",
            "body": "Your repair ((ref)) is booked.",
        },
    )
    assert template.status_code == 201, template.text
    template_id = template.json()["id"]
    client = NotificationsAPIClient(live["key"], base_url=running.url)

    def send(to: str = "resident@example.com") -> dict[str, Any]:
        return client.send_email_notification(  # type: ignore[no-any-return]
            to, template_id, personalisation={"ref": "R-1"}
        )

    sent = await asyncio.to_thread(send)
    assert sent["content"]["subject"] == "Repair R-1"
    token = bearer(live["key"])  # verified now, so cached by this process
    assert (await http.get("/v2/templates", headers=token)).status_code == 200
    team_client = NotificationsAPIClient(team["key"], base_url=running.url)
    await asyncio.to_thread(
        team_client.send_email_notification,
        "team.member@example.com",
        template_id,
        personalisation={"ref": "R-2"},
    )

    # revoked: refused at once, the cached token too (the cache lives 300 seconds here)
    revoked = await http.post(f"{path}/api-keys/{live['id']}/revoke", headers=admin())
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_by"] == ADMIN_SUBJECT and revoked.json()["revoked_at"]
    for headers in (token, bearer(live["key"])):
        r = await http.get("/v2/templates", headers=headers)
        assert (r.status_code, r.json()) == (403, {"status_code": 403, "errors": [REVOKED]})
    with pytest.raises(HTTPError) as refused:
        await asyncio.to_thread(send)
    assert (refused.value.status_code, refused.value.message) == (403, [REVOKED])
    # other keys still work
    await asyncio.to_thread(
        team_client.send_email_notification,
        "team.member@example.com",
        template_id,
        personalisation={"ref": "R-3"},
    )

    # idempotent: the first revocation's audit stays
    again = await http.post(
        f"{path}/api-keys/{live['id']}/revoke", headers=identity_headers("admin-test-2", "admin")
    )
    assert again.status_code == 200 and again.json() == revoked.json()
    listed_keys = (await http.get(f"{path}/api-keys", headers=admin())).json()
    assert [k["revoked_at"] is not None for k in listed_keys] == [True, False]


async def test_only_admins(running: Running) -> None:
    http = running.http
    default = f"{BASE}/{running.settings.notify_default_service_id}"
    calls = [
        ("GET", BASE, None),
        ("POST", BASE, {"name": "x"}),
        ("GET", default, None),
        ("GET", f"{default}/api-keys", None),
        ("POST", f"{default}/api-keys", {"name": "x", "key_type": "test"}),
        ("POST", f"{default}/api-keys/{uuid.uuid4()}/revoke", None),
    ]
    for method, url, body in calls:
        anonymous = await http.request(method, url, json=body)
        assert is_problem(anonymous, 401), (method, url, anonymous.text)
        for who in (STAFF, ("partner-1", "partner"), ("citizen-1", "citizen")):
            refused = await http.request(method, url, json=body, headers=identity_headers(*who))
            assert is_problem(refused, 403), (method, url, who, refused.text)
    forged = await http.get(
        BASE, headers=identity_headers(ADMIN_SUBJECT, "admin", secret="not-the-platform-secret")
    )
    assert is_problem(forged, 401)


async def test_bad_ids_and_input_are_problems(running: Running) -> None:
    http = running.http
    default = f"{BASE}/{running.settings.notify_default_service_id}"
    missing = f"{BASE}/{uuid.uuid4()}"
    for method, url, body in [
        ("GET", missing, None),
        ("GET", f"{missing}/api-keys", None),
        ("POST", f"{missing}/api-keys", {"name": "x", "key_type": "test"}),
        ("POST", f"{default}/api-keys/{uuid.uuid4()}/revoke", None),
        ("GET", f"{default}/api-keys/{uuid.uuid4()}", None),
    ]:
        assert is_problem(await http.request(method, url, json=body, headers=admin()), 404)
    # a key of another service is not found under this one
    other = (await http.post(BASE, headers=admin(), json={"name": "Other"})).json()
    key = (
        await http.post(
            f"{BASE}/{other['id']}/api-keys",
            headers=admin(),
            json={"name": "k", "key_type": "test"},
        )
    ).json()
    assert is_problem(
        await http.post(f"{default}/api-keys/{key['id']}/revoke", headers=admin()), 404
    )
    assert (await http.get(f"{BASE}/{other['id']}/api-keys/{key['id']}", headers=admin())).json()[
        "revoked_at"
    ] is None

    for method, url, body in [
        ("GET", f"{BASE}/not-a-uuid", None),
        ("POST", f"{default}/api-keys", {"name": "x", "key_type": "live"}),
        ("POST", f"{default}/api-keys", {"name": "", "key_type": "test"}),
        ("POST", f"{default}/api-keys", {"name": "x", "key_type": "test", "extra": 1}),
        ("POST", BASE, {"name": "x", "sms_sender": "far-too-long-sender"}),
        ("POST", BASE, {"name": "x", "email_from": "not an email"}),
        ("POST", BASE, {}),
    ]:
        assert is_problem(await http.request(method, url, json=body, headers=admin()), 422), (
            method,
            url,
            body,
        )
    bad_member = await http.post(
        BASE,
        headers=admin(),
        json={"name": "x", "team_members": ["ok@example.com", "01908 691691"]},
    )
    assert is_problem(bad_member, 422)
    assert "01908" not in bad_member.text  # personal data is not echoed
    assert "team_members[1]" in bad_member.json()["detail"]


async def test_forgetting_a_service_beats_a_read_in_flight(db: Database) -> None:
    """A read of the keys that began before the revocation's commit is not cached."""
    async with db.session() as s:
        service = await notify_services.create_service(
            NotifyServiceRepository(s), name="MK", email_from="mk@x.example", sms_sender="MK"
        )
        await s.commit()
    cache = KeyCache(ttl=300)
    async with db.read_session() as s:
        reading = asyncio.ensure_future(cache.service_keys(NotifyServiceRepository(s), service.id))
        await asyncio.sleep(0)  # the read has started
        cache.forget(service.id)
        await reading
        again = await cache.service_keys(NotifyServiceRepository(s), service.id)
        assert again[2] is True  # read again


def test_the_operators_cli(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NOTIFICATIONS_DATABASE_URL", database_url)
    assert keys_cli.main(["--by", "ops-1", "create", "--name", "Payroll", "--type", "test"]) == 0
    issued = capsys.readouterr().out.splitlines()
    api_key = issued[-1]
    key_id = issued[0].split()[2]
    assert api_key.startswith(f"payroll-{Settings().notify_default_service_id}-")
    assert keys_cli.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert key_id in listed and "by ops-1" in listed and split_api_key(api_key)[1] not in listed
    assert keys_cli.main(["--by", "ops-2", "revoke", key_id]) == 0
    assert "revoked" in capsys.readouterr().out
    assert keys_cli.main(["revoke", key_id]) == 0
    assert "already revoked" in capsys.readouterr().out
    assert keys_cli.main(["revoke", str(uuid.uuid4())]) == 1
    assert keys_cli.main(["list"]) == 0
    final = capsys.readouterr().out
    assert "REVOKED" in final and "by ops-2" in final


async def test_bad_input_names_the_field_and_writes_nothing(running: Running) -> None:
    """Never a 500 (a NUL reached PostgreSQL as one), never a half-made service or key."""
    http = running.http
    default = f"{BASE}/{running.settings.notify_default_service_id}"
    services_before = (await http.get(BASE, headers=admin())).json()
    keys_before = (await http.get(f"{default}/api-keys", headers=admin())).json()
    for body, field in [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 10_000}, "name"),
        ({"name": "nul\x00byte"}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"name": 5}, "name"),
        ({"name": "x", "team_members": ["a\x00b@example.com"]}, "team_members.0"),
        ({"name": "x", "team_members": ["ok@example.com", ""]}, "team_members.1"),
        ({"name": "x", "team_members": ["x" * 400]}, "team_members.0"),
        ({"name": "x", "team_members": "ok@example.com"}, "team_members"),
    ]:
        r = await http.post(BASE, headers=admin(), json=body)
        assert is_problem(r, 422), (body, r.text)
        assert field in [e["field"] for e in r.json()["errors"]], (body, r.json())
    for member in ("not-an-email@", "someone@@example.com", "+33 1 23 45 67 89", "call me maybe"):
        r = await http.post(
            BASE, headers=admin(), json={"name": "x", "team_members": ["ok@example.com", member]}
        )
        assert is_problem(r, 422) and r.json()["field"] == "team_members.1", r.text
        assert member not in r.text
    for body, field in [
        ({"name": "k", "key_type": "bogus"}, "key_type"),
        ({"name": "k", "key_type": None}, "key_type"),
        ({"name": "k"}, "key_type"),
        ({"name": "\x00", "key_type": "test"}, "name"),
        ({"name": "k" * 256, "key_type": "test"}, "name"),
    ]:
        r = await http.post(f"{default}/api-keys", headers=admin(), json=body)
        assert is_problem(r, 422), (body, r.text)
        assert [e["field"] for e in r.json()["errors"]] == [field], (body, r.json())
    for url in (
        f"{default}/api-keys/not-a-uuid",
        f"{default}/api-keys/not-a-uuid/revoke",
        f"{BASE}/not-a-uuid/api-keys/{uuid.uuid4()}/revoke",
    ):
        r = await http.request("POST" if url.endswith("revoke") else "GET", url, headers=admin())
        assert is_problem(r, 422) and r.json()["errors"][0]["field"].startswith("path."), url
    assert (await http.get(BASE, headers=admin())).json() == services_before
    assert (await http.get(f"{default}/api-keys", headers=admin())).json() == keys_before

    # surrounding spaces are not part of a name
    made = await http.post(BASE, headers=admin(), json={"name": "  Parking  "})
    assert made.status_code == 201 and made.json()["name"] == "Parking"


def test_the_cli_refuses_a_bad_key_name_before_touching_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "never.sqlite3"
    monkeypatch.setenv("NOTIFICATIONS_DATABASE_URL", f"sqlite:///{database}")
    for name in ("", "  ", "x" * 300, "nul\x00"):
        assert keys_cli.main(["create", "--name", name, "--type", "test"]) == 2
        assert "--name" in capsys.readouterr().err
    assert not database.exists()
