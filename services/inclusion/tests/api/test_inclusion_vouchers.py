"""Data-SIM vouchers on SQLite and PostgreSQL: stock per programme, allocation to eligible
participants, never twice (also when allocated at once), stock running out."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
from fastapi.testclient import TestClient

from inclusion.config import Settings
from inclusion.main import create_app
from servicekit.errors import TYPE_BASE
from servicekit.testing import STAFF, identity_headers, running_app

from ..conftest import citizen, make_programme, outbox_types


def problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.json()["type"] == TYPE_BASE + code
    return r.json()  # type: ignore[no-any-return]


def participant(client: TestClient, n: int, **facts: Any) -> str:
    r = client.put("/api/v1/participants/me", json={"consent": True, **facts}, headers=citizen(n))
    assert r.status_code == 200, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


def test_stock_allocation_never_twice_and_running_out(client: TestClient) -> None:
    data = make_programme(
        client,
        title="Free mobile data",
        kind="connectivity",
        eligibility={"no_connection_at_home": True},
    )
    course = make_programme(client)
    problem(
        client.post(
            "/api/v1/vouchers",
            json={"programme_id": course["id"], "provider": "X", "codes": ["ABCD-1"]},
        ),
        422,
        "not-a-connectivity-programme",
    )
    added = client.post(
        "/api/v1/vouchers",
        json={
            "programme_id": data["id"],
            "provider": "National Databank (Vodafone)",
            "codes": ["VF-0001", "VF-0002"],
        },
    )
    assert added.status_code == 201 and added.json() == {"added": 2}
    problem(
        client.post(
            "/api/v1/vouchers",
            json={"programme_id": data["id"], "provider": "X", "codes": ["VF-0002"]},
        ),
        409,
        "duplicate-voucher-code",
    )

    connected = participant(client, 1, has_connection_at_home=True)
    a, b, c = (participant(client, n, has_connection_at_home=False) for n in (2, 3, 4))
    allocate = "/api/v1/vouchers/allocations"
    body = problem(
        client.post(allocate, json={"programme_id": data["id"], "participant_id": connected}),
        422,
        "not-eligible",
    )
    assert body["unmet_rules"][0]["rule"] == "no_connection_at_home"
    first = client.post(allocate, json={"programme_id": data["id"], "participant_id": a})
    assert first.status_code == 201 and first.json()["code"] == "VF-0001"
    problem(
        client.post(allocate, json={"programme_id": data["id"], "participant_id": a}),
        409,
        "voucher-already-allocated",
    )
    assert (
        client.post(allocate, json={"programme_id": data["id"], "participant_id": b}).status_code
        == 201
    )
    problem(
        client.post(allocate, json={"programme_id": data["id"], "participant_id": c}),
        409,
        "voucher-stock-empty",
    )
    assert client.get("/api/v1/vouchers/stock").json() == [
        {
            "programme_id": data["id"],
            "programme_title": "Free mobile data",
            "total": 2,
            "allocated": 2,
            "in_stock": 0,
        }
    ]
    mine = client.get("/api/v1/vouchers/mine", headers=citizen(2)).json()
    assert [v["code"] for v in mine] == ["VF-0001"]
    assert client.get("/api/v1/vouchers/mine", headers=citizen(4)).json() == []
    assert outbox_types(client).count("VoucherAllocated") == 2


async def test_one_voucher_per_participant_when_allocated_at_once(settings: Settings) -> None:
    async with (
        running_app(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=identity_headers(*STAFF)) as client,
    ):
        programme = (
            await client.post(
                "/api/v1/programmes",
                json={"title": "Data", "kind": "connectivity", "delivered_by": "MK"},
            )
        ).json()
        await client.post(
            f"/api/v1/programmes/{programme['id']}/status", json={"status": "published"}
        )
        await client.post(
            "/api/v1/vouchers",
            json={
                "programme_id": programme["id"],
                "provider": "Three",
                "codes": [f"H3-{n:04d}" for n in range(10)],
            },
        )
        people = [
            (
                await client.put(
                    "/api/v1/participants/me", json={"consent": True}, headers=citizen(n)
                )
            ).json()["id"]
            for n in range(4)
        ]
        # Each participant asked for three times at once, 12 requests for 10 vouchers.
        results = await asyncio.gather(
            *(
                client.post(
                    "/api/v1/vouchers/allocations",
                    json={"programme_id": programme["id"], "participant_id": p},
                )
                for p in people * 3
            )
        )
        assert Counter(r.status_code for r in results) == {201: 4, 409: 8}
        assert len({r.json()["code"] for r in results if r.status_code == 201}) == 4
        stock = (await client.get("/api/v1/vouchers/stock")).json()
        assert stock[0]["allocated"] == 4 and stock[0]["in_stock"] == 6
