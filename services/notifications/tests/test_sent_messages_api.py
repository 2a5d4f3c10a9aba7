"""The staff listing of sent messages (``/api/v1/messages``), on SQLite and PostgreSQL:
staff only; newest first, a page at a time; filtered by reference, status, channel and
template; recipients masked in the list and no content; one message whole until it is
erased, then without recipient or content; a bad or unknown filter is a 400 problem naming
it; the filters are served by the migration's indexes (the query plans say so)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from mkinfra.smtp_sink import SmtpSink
from notifications.application.privacy import erase
from notifications.config import Settings
from notifications.main import create_app
from notifications.persistence.contacts import ContactRepository
from notifications.persistence.notifications import NotificationRepository
from notifications.persistence.sent_messages import MessageFilter, list_query
from notifications.persistence.webhooks import WebhookRepository
from servicekit.db import Database
from servicekit.testing import identity_headers, running_app
from servicekit.uow import UnitOfWork

BASE = "/api/v1/messages"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def staff() -> dict[str, str]:
    return identity_headers("staff-test-1", "staff")


@dataclass
class Running:
    http: httpx.AsyncClient
    db: Database
    template: dict[str, Any]
    ids: dict[str, uuid.UUID]


def message(name: str, minutes: int, **values: Any) -> dict[str, Any]:
    at = T0 + timedelta(minutes=minutes)
    return {
        "id": uuid.uuid4(),
        "channel": "email",
        "recipient": f"{name}@example.com",
        "subject": f"Subject of {name}",
        "body": f"Body of {name}",
        "status": "delivered",
        "created_at": at,
        "updated_at": at,
        **values,
    }


@pytest.fixture
async def running(database_url: str, smtp_sink: SmtpSink, tmp_path: Path) -> AsyncIterator[Running]:
    settings = Settings(
        database_url=database_url,
        messaging_enabled=False,
        environment="test",
        smtp_port=smtp_sink.port,
        sms_sink_dir=str(tmp_path / "sms"),
        notify_rate_limit_per_minute=0,
    )
    app = create_app(settings)
    async with running_app(app) as url, httpx.AsyncClient(base_url=url) as http:
        made = await http.post(
            "/api/v1/templates",
            headers=staff(),
            json={"type": "sms", "name": "Bin day", "body": "Bins out on ((day))"},
        )
        assert made.status_code == 201, made.text
        template = made.json()
        sms = {
            "channel": "sms",
            "recipient": "+447700900123",
            "subject": None,
            "template_id": uuid.UUID(template["id"]),
            "template_version": 1,
            "service_id": uuid.UUID(template["service_id"]),
            "key_type": "normal",
        }
        rows = [
            message("ann", 1, reference="ref-a"),
            message("bob", 2, reference="ref-b", status="permanent-failure"),
            message("cat", 3, reference="ref-a", status="sending"),
            message("dan", 4, **sms, reference="ref-a", body="Bins out on Monday"),
            message("eve", 5, **sms, reference="ref-c", status="temporary-failure"),
            message("fay", 6, citizen_id="citizen-to-erase", reference="ref-d"),
            message(
                "gus",
                7,
                status="created",
                next_attempt_at=T0 + timedelta(days=3650),  # not due: no worker takes it
            ),
        ]
        database: Database = app.state.runtime.database
        async with UnitOfWork(database, source="test") as uow:
            for row in rows:
                await NotificationRepository(uow.db).insert(row)
        ids = {str(row["recipient"]).split("@")[0]: row["id"] for row in rows}
        ids["dan"], ids["eve"] = rows[3]["id"], rows[4]["id"]
        yield Running(http, database, template, ids)


def is_problem(response: httpx.Response, status: int) -> bool:
    return response.status_code == status and response.headers["content-type"].startswith(
        "application/problem+json"
    )


async def listed(running: Running, **params: Any) -> list[uuid.UUID]:
    answer = await running.http.get(BASE, headers=staff(), params=params)
    assert answer.status_code == 200, answer.text
    return [uuid.UUID(item["id"]) for item in answer.json()["items"]]


async def test_staff_only(running: Running) -> None:
    http = running.http
    assert is_problem(await http.get(BASE), 401)
    for caller in (
        identity_headers("citizen-test-1", "citizen"),
        identity_headers("partner-test-1", "partner"),
    ):
        assert is_problem(await http.get(BASE, headers=caller), 403)
        assert is_problem(await http.get(f"{BASE}/{running.ids['ann']}", headers=caller), 403)
    admin = identity_headers("admin-test-1", "admin")
    assert (await http.get(BASE, headers=admin)).status_code == 200


async def test_newest_first_filtered_and_paged(running: Running) -> None:
    ids = running.ids
    order = ["gus", "fay", "eve", "dan", "cat", "bob", "ann"]
    assert await listed(running) == [ids[n] for n in order]
    assert await listed(running, reference="ref-a") == [ids["dan"], ids["cat"], ids["ann"]]
    assert await listed(running, status="delivered") == [ids["fay"], ids["dan"], ids["ann"]]
    assert await listed(running, status="failed") == [ids["eve"], ids["bob"]]
    assert await listed(running, status="sending,created") == [ids["gus"], ids["cat"]]
    assert await listed(running, channel="sms") == [ids["eve"], ids["dan"]]
    assert await listed(running, template_id=running.template["id"]) == [ids["eve"], ids["dan"]]
    assert await listed(running, reference="ref-a", channel="email") == [ids["cat"], ids["ann"]]
    assert await listed(running, reference="nobody's") == []

    pages, page = [], 1
    while True:
        answer = (
            await running.http.get(BASE, headers=staff(), params={"page": page, "page_size": 3})
        ).json()
        pages.append([uuid.UUID(i["id"]) for i in answer["items"]])
        assert answer["previous_page"] == (page - 1 if page > 1 else None)
        if answer["next_page"] is None:
            break
        page = answer["next_page"]
    assert pages == [[ids[n] for n in order[i : i + 3]] for i in (0, 3, 6)]


async def test_the_list_masks_recipients_and_shows_no_content(running: Running) -> None:
    items = {
        i["id"]: i
        for i in (await running.http.get(BASE, headers=staff(), params={"page_size": 200})).json()[
            "items"
        ]
    }
    ann, dan = items[str(running.ids["ann"])], items[str(running.ids["dan"])]
    assert ann["recipient"] == "a…@example.com"
    assert dan["recipient"] == "+44…123"
    assert (dan["template_name"], dan["template_version"], dan["channel"]) == ("Bin day", 1, "sms")
    assert ann["template_name"] is None
    for item in items.values():
        assert "body" not in item and "subject" not in item
        assert "example.com" not in item["recipient"] or "…" in item["recipient"]


async def test_one_message_whole_until_erased(running: Running) -> None:
    http, ids = running.http, running.ids
    one = (await http.get(f"{BASE}/{ids['fay']}", headers=staff())).json()
    assert (one["recipient"], one["subject"], one["body"]) == (
        "fay@example.com",
        "Subject of fay",
        "Body of fay",
    )
    assert one["redacted_at"] is None

    async with UnitOfWork(running.db, source="test") as uow:
        db = uow.db
        erased = await erase(
            uow,
            ContactRepository(db),
            NotificationRepository(db),
            WebhookRepository(db),
            citizen_id="citizen-to-erase",
        )
    assert erased == 1
    one = (await http.get(f"{BASE}/{ids['fay']}", headers=staff())).json()
    assert (one["recipient"], one["subject"], one["body"]) == (None, None, None)
    assert one["redacted_at"] is not None
    assert (one["status"], one["reference"]) == ("delivered", "ref-d")
    item = next(
        i
        for i in (await http.get(BASE, headers=staff(), params={"reference": "ref-d"})).json()[
            "items"
        ]
    )
    assert item["recipient"] is None and item["redacted_at"] is not None

    missing = await http.get(f"{BASE}/{uuid.uuid4()}", headers=staff())
    assert is_problem(missing, 404)
    assert is_problem(await http.get(f"{BASE}/not-an-id", headers=staff()), 422)


BAD_FILTERS: list[tuple[dict[str, Any], str]] = [
    ({"status": "lost"}, "status"),
    ({"status": "delivered,lost"}, "status"),
    ({"channel": "letter"}, "channel"),
    ({"template_id": "bin-day"}, "template_id"),
    ({"service_id": "1"}, "service_id"),
    ({"page": "0"}, "page"),
    ({"page": "two"}, "page"),
    ({"page_size": "201"}, "page_size"),
    ({"reference": "x" * 1001}, "reference"),
    ({"colour": "red"}, "colour"),
    ({"channel": ["sms", "email"]}, "channel"),
]


async def test_a_bad_filter_is_a_400_naming_it(running: Running) -> None:
    for params, field in BAD_FILTERS:
        answer = await running.http.get(BASE, headers=staff(), params=params)
        assert is_problem(answer, 400), (params, answer.text)
        body = answer.json()
        assert body["type"].endswith("/bad-filter")
        assert [e["field"] for e in body["errors"]] == [field], params
    both = await running.http.get(BASE, headers=staff(), params={"page": "-1", "status": "x"})
    assert sorted(e["field"] for e in both.json()["errors"]) == ["page", "status"]


async def test_the_filters_are_served_by_indexes(running: Running) -> None:
    wanted = {
        "ix_notification_reference": MessageFilter(reference="ref-a"),
        "ix_notification_template": MessageFilter(template_id=uuid.UUID(running.template["id"])),
        "ix_notification_created": MessageFilter(),
    }
    async with running.db.engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            await conn.execute(sa.text("SET enable_seqscan = off"))  # a few rows: force it
        explain = "EXPLAIN" if postgres else "EXPLAIN QUERY PLAN"
        for index, which in wanted.items():
            query = list_query(which, offset=0, limit=51)
            compiled = query.compile(conn.engine, compile_kwargs={"literal_binds": True})
            plan = "\n".join(
                str(r[-1]) for r in (await conn.execute(sa.text(f"{explain} {compiled}"))).all()
            )
            assert index in plan, plan
