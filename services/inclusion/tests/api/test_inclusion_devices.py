"""Device lending on SQLite and PostgreSQL: wiped before each loan, never on two loans (also
when lent concurrently), returns, history, overdue reported once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi.testclient import TestClient

from inclusion.application.scheduler import report_overdue_loans
from inclusion.config import Settings
from inclusion.main import create_app
from inclusion.persistence.tables import DeviceLoan
from servicekit.db import Database
from servicekit.errors import TYPE_BASE
from servicekit.testing import STAFF, identity_headers, running_app

from ..conftest import citizen, make_programme, outbox_types, run


def participant(client: TestClient, n: int, **facts: Any) -> str:
    r = client.put("/api/v1/participants/me", json={"consent": True, **facts}, headers=citizen(n))
    assert r.status_code == 200, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


def problem(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["type"] == TYPE_BASE + code


def due(days: float = 28) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def test_lend_return_and_history(client: TestClient) -> None:
    alice, bob = participant(client, 1), participant(client, 2)
    r = client.post(
        "/api/v1/devices",
        json={"make": "Lenovo", "model": "IdeaPad 3", "serial": "PF-3XK9Q2", "condition": "good"},
    )
    assert r.status_code == 201, r.text
    device = r.json()
    assert device["on_loan"] is False and device["history"] == []
    problem(
        client.post(
            "/api/v1/devices", json={"make": "Lenovo", "model": "x", "serial": "PF-3XK9Q2"}
        ),
        409,
        "duplicate-serial",
    )
    loans = f"/api/v1/devices/{device['id']}/loans"
    problem(
        client.post(loans, json={"participant_id": alice, "due_at": due()}), 409, "device-not-wiped"
    )
    assert client.post(f"/api/v1/devices/{device['id']}/wipe").status_code == 200
    problem(
        client.post(loans, json={"participant_id": alice, "due_at": due(-1)}),
        422,
        "due-date-in-the-past",
    )
    problem(
        client.post(loans, json={"participant_id": str(uuid.uuid4()), "due_at": due()}),
        422,
        "unknown-reference",
    )
    first = client.post(loans, json={"participant_id": alice, "due_at": due()})
    assert first.status_code == 201, first.text
    problem(
        client.post(loans, json={"participant_id": bob, "due_at": due()}),
        409,
        "device-already-on-loan",
    )
    problem(client.post(f"/api/v1/devices/{device['id']}/wipe"), 409, "device-already-on-loan")
    on_loan = client.get("/api/v1/devices", params={"on_loan": True}).json()
    assert [d["id"] for d in on_loan] == [device["id"]]
    assert on_loan[0]["current_loan"]["participant_id"] == alice

    back = client.post(f"/api/v1/devices/{device['id']}/return", json={"condition": "fair"})
    assert back.status_code == 200 and back.json()["returned_at"]
    problem(
        client.post(f"/api/v1/devices/{device['id']}/return", json={"condition": "fair"}),
        409,
        "device-not-on-loan",
    )
    # Back from a loan: wiped again before the next one.
    problem(
        client.post(loans, json={"participant_id": bob, "due_at": due()}), 409, "device-not-wiped"
    )
    client.post(f"/api/v1/devices/{device['id']}/wipe")
    assert client.post(loans, json={"participant_id": bob, "due_at": due()}).status_code == 201
    history = client.get(f"/api/v1/devices/{device['id']}").json()["history"]
    assert [h["participant_id"] for h in history] == [bob, alice]
    assert history[1]["return_condition"] == "fair"
    assert [t for t in outbox_types(client) if t.startswith("Device")] == [
        "DeviceLoaned",
        "DeviceReturned",
        "DeviceLoaned",
    ]
    for path in ("/api/v1/devices", f"/api/v1/devices/{device['id']}"):
        problem(client.get(path, headers=citizen(1)), 403, "forbidden")


def test_programme_eligibility_applies_to_loans(client: TestClient) -> None:
    programme = make_programme(
        client,
        title="Device lending library",
        kind="device-lending",
        eligibility={"no_device_at_home": True},
    )
    device = client.post(
        "/api/v1/devices",
        json={
            "make": "Apple",
            "model": "iPad 9",
            "serial": "DMPX1",
            "programme_id": programme["id"],
            "wiped_at": datetime.now(UTC).isoformat(),
        },
    ).json()
    has_one = participant(client, 1, has_device_at_home=True)
    needs_one = participant(client, 2, has_device_at_home=False)
    loans = f"/api/v1/devices/{device['id']}/loans"
    r = client.post(loans, json={"participant_id": has_one, "due_at": due()})
    problem(r, 422, "not-eligible")
    assert r.json()["unmet_rules"][0]["rule"] == "no_device_at_home"
    assert (
        client.post(loans, json={"participant_id": needs_one, "due_at": due()}).status_code == 201
    )


async def test_never_on_two_loans_when_lent_at_once(settings: Settings) -> None:
    async with (
        running_app(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=identity_headers(*STAFF)) as client,
    ):
        people = []
        for n in range(8):
            r = await client.put(
                "/api/v1/participants/me", json={"consent": True}, headers=citizen(n)
            )
            people.append(r.json()["id"])
        device = (
            await client.post(
                "/api/v1/devices",
                json={
                    "make": "Samsung",
                    "model": "Galaxy Tab A8",
                    "serial": "R9XT20",
                    "wiped_at": datetime.now(UTC).isoformat(),
                },
            )
        ).json()
        results = await asyncio.gather(
            *(
                client.post(
                    f"/api/v1/devices/{device['id']}/loans",
                    json={"participant_id": p, "due_at": due()},
                )
                for p in people
            )
        )
        assert Counter(r.status_code for r in results) == {201: 1, 409: 7}
        read = (await client.get(f"/api/v1/devices/{device['id']}")).json()
        assert len(read["history"]) == 1


def test_overdue_reported_once_by_two_instances(client: TestClient, settings: Settings) -> None:
    alice = participant(client, 1)
    device = client.post(
        "/api/v1/devices",
        json={
            "make": "Lenovo",
            "model": "Chromebook",
            "serial": "CB-1",
            "wiped_at": datetime.now(UTC).isoformat(),
        },
    ).json()
    loan = client.post(
        f"/api/v1/devices/{device['id']}/loans", json={"participant_id": alice, "due_at": due(1)}
    ).json()

    async def past_due(s: Any) -> None:
        await s.execute(
            sa.update(DeviceLoan)
            .where(DeviceLoan.id == uuid.UUID(loan["id"]))
            .values(  # type: ignore[arg-type]
                due_at=datetime.now(UTC) - timedelta(hours=1)
            )
        )

    run(client, past_due)
    assert client.get("/api/v1/devices", params={"overdue": True}).json()[0]["id"] == device["id"]

    async def two_instances() -> int:
        dbs = [Database(settings.database_url) for _ in range(2)]
        try:
            counts = []
            for _ in range(2):
                counts += await asyncio.gather(
                    *(report_overdue_loans(db, source="t") for db in dbs)
                )
            return sum(counts)
        finally:
            for db in dbs:
                await db.dispose()

    assert client.portal.call(two_instances) == 1  # type: ignore[union-attr]
    assert outbox_types(client).count("DeviceReturnOverdue") == 1
    back = client.post(f"/api/v1/devices/{device['id']}/return", json={"condition": "good"})
    assert back.status_code == 200
    assert '"was_overdue":true' in run(client, lambda s: _last_payload(s))


async def _last_payload(s: Any) -> str:
    from servicekit.messaging.tables import OutboxMessage

    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    return (
        await s.execute(sa.select(table.c.payload).order_by(table.c.id.desc()).limit(1))
    ).scalar_one()  # type: ignore[no-any-return]
