"""The queue's area filter: a request's area (its MK postcode district) is set when it is
reported, from its location or the postcode in its address; staff filter the queue by it;
a bad area is a 400 problem; migration 0010 fills it in for older requests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from servicekit.errors import PROBLEM_JSON, TYPE_BASE
from servicekit.testing import CITIZEN

from .test_request_privacy_migration import _run
from .test_service_requests import CMK, FLY_TIPPING, As

OLNEY = {"lat": 52.1530, "long": -0.7010}
BLETCHLEY_STATION = {"lat": 51.9955, "long": -0.7365}


def test_requests_get_their_area_and_staff_filter_the_queue_by_it(client: TestClient) -> None:
    service = client.post("/api/v1/services", json=FLY_TIPPING).json()
    assert client.post(f"/api/v1/services/{service['id']}/publish").status_code == 200
    citizen = As(client, CITIZEN)
    base = {"service_code": "fly-tipping", "attributes": {"waste_type": ["tyres"]}}
    made = {}
    for name, where in (
        ("cmk", CMK),
        ("olney", OLNEY),
        ("bletchley", BLETCHLEY_STATION),
        ("address", {"address": "Outside 3 Church Green Road, Bletchley MK3 6BJ"}),
        ("no postcode", {"address": "By the canal bridge"}),
    ):
        r = citizen.post("/api/v1/service-requests", json={**base, **where})
        assert r.status_code == 201, r.text
        made[name] = r.json()
    assert {name: r["area"] for name, r in made.items()} == {
        "cmk": "MK9",
        "olney": "MK46",
        "bletchley": "MK2",
        "address": "MK3",
        "no postcode": None,
    }

    def ids(**params: str) -> list[str]:
        r = client.get("/api/v1/service-requests", params=params)
        assert r.status_code == 200, r.text
        return sorted(i["id"] for i in r.json()["items"])

    assert ids(area="MK9") == [made["cmk"]["id"]]
    assert ids(area=" mk46 ") == [made["olney"]["id"]]
    assert ids(area="MK3") == [made["address"]["id"]]
    assert ids(area="MK19") == []
    assert ids(area="MK2", status="open") == [made["bletchley"]["id"]]
    assert ids(area="MK2", status="fixed") == []
    assert len(ids(area="")) == 5
    assert ids(area="MK9") == [
        i["id"] for i in citizen.get("/api/v1/service-requests?area=MK9").json()["items"]
    ]

    for bad in ("MK99", "Bletchley", "SW1", "MK9 3EJ"):
        r = client.get("/api/v1/service-requests", params={"area": bad})
        assert r.status_code == 400, (bad, r.text)
        assert r.headers["content-type"] == PROBLEM_JSON
        assert r.json()["type"] == TYPE_BASE + "unknown-area"
        assert [e["field"] for e in r.json()["errors"]] == ["area"]
    assert client.get("/api/v1/service-requests", params={"area": "x" * 41}).status_code == 422

    areas = client.get("/api/v1/service-requests/areas")
    assert areas.status_code == 200, areas.text
    codes = [a["code"] for a in areas.json()]
    assert codes[:3] == ["MK1", "MK2", "MK3"] and "MK46" in codes
    assert {a["code"]: a["in_milton_keynes"] for a in areas.json()}["MK18"] is False
    assert citizen.get("/api/v1/service-requests/areas").status_code == 403


async def test_0010_fills_in_the_area_of_older_requests(database_url: str) -> None:
    now = datetime.now(UTC)
    service = uuid.uuid4()
    rows = {
        "located": (uuid.uuid4(), 52.0406, -0.7594, None),
        "addressed": (uuid.uuid4(), None, None, "12 High Street, Olney, MK46 4AA"),
        "nowhere": (uuid.uuid4(), None, None, "The park"),
    }
    insert = (
        "INSERT INTO service_request (id, service_id, service_code, status, description, lat, "
        "long, address, citizen_id, contact_consent, public, version, created_at, updated_at) "
        "VALUES (:id, :service, 'fly', 'open', '', :lat, :long, :address, NULL, false, true, 1, "
        ":now, :now)"
    )
    await _run(
        database_url,
        "upgrade",
        "0008",
        [
            (
                "INSERT INTO catalogue_service (id, name, description, slug, service_code, status, "
                "version, created_at, updated_at) VALUES (:id, 'Fly', '', 'fly', 'fly', "
                "'published', 1, :now, :now)",
                {"id": service.hex, "now": now},
            ),
            *(
                (
                    insert,
                    {
                        "id": id_.hex,
                        "service": service.hex,
                        "lat": lat,
                        "long": long,
                        "address": address,
                        "now": now,
                    },
                )
                for id_, lat, long, address in rows.values()
            ),
        ],
    )
    select = "SELECT address, area FROM service_request ORDER BY area"
    got = await _run(database_url, "upgrade", "head", [(select, {})])
    assert sorted(got, key=str) == sorted(
        [(None, "MK9"), ("12 High Street, Olney, MK46 4AA", "MK46"), ("The park", None)], key=str
    )
    await _run(database_url, "downgrade", "0008", [])
    got = await _run(
        database_url,
        "upgrade",
        "head",
        [("SELECT count(*) FROM service_request WHERE area IS NOT NULL", {})],
    )
    assert got == [(2,)]
