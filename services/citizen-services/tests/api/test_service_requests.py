"""Service requests: reporting against a published service, attribute and location checks,
citizens' privacy, the staff queue and its events."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from citizen_services.config import Settings
from servicekit.errors import PROBLEM_JSON, TYPE_BASE
from servicekit.testing import CITIZEN, STAFF, identity_headers

from .test_catalogue_api import outbox_rows

FLY_TIPPING: dict[str, Any] = {
    "name": "Report fly-tipping",
    "service_code": "fly-tipping",
    "keywords": ["dumping"],
    "attributes": [
        {
            "code": "waste_type",
            "datatype": "multivaluelist",
            "required": True,
            "order": 1,
            "description": "What was dumped?",
            "values": [
                {"key": "furniture", "name": "Furniture"},
                {"key": "tyres", "name": "Tyres"},
            ],
        },
        {"code": "bags", "datatype": "number", "order": 2, "description": "How many bags?"},
        {"code": "seen_at", "datatype": "datetime", "order": 3, "description": "When?"},
    ],
}
CMK = {"lat": 52.0406, "long": -0.7594}


class As:
    """The same app (one lifespan, one loop) called with another identity."""

    def __init__(self, client: TestClient, who: tuple[str, str]) -> None:
        self.client, self.headers = client, identity_headers(*who)

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, headers=self.headers, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.client.post(url, headers=self.headers, **kw)


def test_report_track_and_work_a_request(client: TestClient, settings: Settings) -> None:
    service = client.post("/api/v1/services", json=FLY_TIPPING).json()
    assert client.post(f"/api/v1/services/{service['id']}/publish").status_code == 200
    report = {
        "service_code": "fly-tipping",
        "description": "A sofa by the redway",
        **CMK,
        "attributes": {"waste_type": ["furniture"], "bags": "3", "seen_at": "2026-11-25T18:00:00Z"},
        "contact": {"email": "resident@example.com"},
        "contact_consent": True,
    }
    citizen, other = As(client, CITIZEN), As(client, ("citizen-other", "citizen"))
    r = citizen.post("/api/v1/service-requests", json=report)
    assert r.status_code == 201, r.text
    request = r.json()
    assert request["status"] == "open" and request["attributes"]["bags"] == 3.0
    assert "contact" not in request
    url = f"/api/v1/service-requests/{request['id']}"
    assert citizen.get(url).status_code == 200
    assert other.get(url).status_code == 404
    assert other.get("/api/v1/service-requests").json()["total"] == 0
    assert citizen.get("/api/v1/service-requests").json()["total"] == 1

    r = client.post(f"{url}/updates", json={"status": "investigating", "assigned_to": "staff-42"})
    assert r.status_code == 200, r.text
    r = client.post(
        f"{url}/updates",
        json={"status": "fixed", "note": "Cleared today", "note_visibility": "public"},
    )
    assert r.json()["status"] == "fixed"
    queue = client.get(
        "/api/v1/service-requests", params={"status": "fixed", "assigned_to": "staff-42"}
    ).json()
    assert [i["id"] for i in queue["items"]] == [request["id"]]
    updates = citizen.get(url).json()["updates"]
    assert [(u["previous_status"], u["status"]) for u in updates] == [
        (None, "open"),
        ("open", "investigating"),
        ("investigating", "fixed"),
    ]
    assert updates[-1]["note"] == "Cleared today"
    assert citizen.post(f"{url}/updates", json={"status": "closed"}).status_code == 403
    events = [row["event_type"].split(".")[-2] for row in outbox_rows(client)]
    assert events == [
        "ServicePublished",
        "ServiceRequestSubmitted",
        "ServiceRequestStatusChanged",
        "ServiceRequestStatusChanged",
    ]


def test_bad_reports_are_named_4xx_and_write_nothing(client: TestClient) -> None:
    service = client.post("/api/v1/services", json=FLY_TIPPING).json()
    client.post(f"/api/v1/services/{service['id']}/publish")
    plain = client.post("/api/v1/services", json={"name": "Pay council tax"}).json()
    client.post(f"/api/v1/services/{plain['id']}/publish")
    good = {"service_code": "fly-tipping", **CMK, "attributes": {"waste_type": ["tyres"]}}
    cases = [
        ({**good, "description": "x" * 4001}, "description"),
        ({**good, "service_code": "nope"}, "service_code"),
        ({**good, "service_code": "pay-council-tax"}, "service_code"),
        ({**good, "attributes": {"waste_type": ["tyres"], "colour": "red"}}, "attributes.colour"),
        ({**good, "attributes": {}}, "attributes.waste_type"),
        ({**good, "attributes": {"waste_type": ["gold"]}}, "attributes.waste_type"),
        ({**good, "attributes": {"waste_type": ["tyres"], "bags": "many"}}, "attributes.bags"),
        ({**good, "lat": 51.5074, "long": -0.1278}, "lat"),
        ({"service_code": "fly-tipping", "attributes": {"waste_type": ["tyres"]}}, "lat"),
        ({**good, "contact": {"email": "a@example.com"}}, "contact_consent"),
    ]
    citizen = As(client, CITIZEN)
    for body, field in cases:
        r = citizen.post("/api/v1/service-requests", json=body)
        assert r.status_code == 422, (field, r.text)
        assert r.headers["content-type"] == PROBLEM_JSON
        fields = [e["field"] for e in r.json().get("errors", [])]
        assert any(f.startswith(field) for f in fields), (field, r.json())
    r = citizen.post(
        "/api/v1/service-requests",
        json={**good, "lat": None, "long": None, "address": "Civic, MK9 3EJ"},
    )
    assert r.status_code == 201, r.text
    assert client.get("/api/v1/service-requests").json()["total"] == 1
    r = client.post(
        "/api/v1/service-requests/00000000-0000-0000-0000-000000000000/updates",
        json={"status": "fixed"},
    )
    assert r.status_code == 404 and r.json()["type"] == TYPE_BASE + "service-request-not-found"
    assert client.post("/api/v1/service-requests", json=good).status_code == 403


def test_a_nul_character_is_a_4xx_on_every_database(client: TestClient, settings: Settings) -> None:
    """PostgreSQL cannot store or compare U+0000 (SQLite can): a NUL that reaches the
    database in a filter is the caller's bad input (servicekit's handler: 400), never a
    500. Bodies refuse control characters before that (422)."""
    staff = identity_headers(*STAFF)
    listed = client.get(
        "/api/v1/service-requests", params={"service_code": "a\x00b"}, headers=staff
    )
    if settings.database_url.startswith("postgresql"):
        assert listed.status_code == 400, listed.text
        assert listed.headers["content-type"] == PROBLEM_JSON
        assert listed.json()["type"] == TYPE_BASE + "unstorable-text"
    else:
        assert listed.status_code == 200 and listed.json()["items"] == []
    created = client.post(
        "/api/v1/services", headers=staff, json={"name": "Nul\x00name", "description": "x\x00y"}
    )
    assert created.status_code == 422, created.text


def test_staff_notes_are_internal_unless_public(client: TestClient) -> None:
    """A note is internal by default: the citizen's own timeline shows only public notes,
    never an internal one, an internal-note-only update or an assignment; staff see every
    note with its visibility; the event says which note is internal."""
    service = client.post("/api/v1/services", json=FLY_TIPPING).json()
    client.post(f"/api/v1/services/{service['id']}/publish")
    citizen = As(client, CITIZEN)
    r = citizen.post(
        "/api/v1/service-requests",
        json={"service_code": "fly-tipping", **CMK, "attributes": {"waste_type": ["tyres"]}},
    )
    assert r.status_code == 201, r.text
    assert r.json()["public"] is False
    url = f"/api/v1/service-requests/{r.json()['id']}"
    for body in (
        {
            "status": "investigating",
            "note": "Safeguarding: see case 123",
            "assigned_to": "staff-42",
        },
        {"note": "Neighbour dispute, do not contact"},
        {"assigned_to": "staff-7"},
        {"note": "Crew booked", "note_visibility": "public"},
        {"status": "fixed", "note": "Cleared", "note_visibility": "public"},
    ):
        assert client.post(f"{url}/updates", json=body).status_code == 200, body
    assert (
        client.post(f"{url}/updates", json={"note": "x", "note_visibility": "secret"}).status_code
        == 422
    )

    mine = citizen.get(url).json()
    assert mine["assigned_to"] is None
    assert [(u["status"], u["note"], u["note_visibility"]) for u in mine["updates"]] == [
        ("open", None, None),
        ("investigating", None, None),
        ("investigating", "Crew booked", "public"),
        ("fixed", "Cleared", "public"),
    ]
    assert "staff-" not in str(mine) and "Safeguarding" not in str(mine)
    listed = citizen.get("/api/v1/service-requests").json()["items"]
    assert [i["assigned_to"] for i in listed] == [None]

    worked = client.get(url).json()
    assert worked["assigned_to"] == "staff-7"
    assert [(u["note"], u["note_visibility"]) for u in worked["updates"] if u["note"]] == [
        ("Safeguarding: see case 123", "internal"),
        ("Neighbour dispute, do not contact", "internal"),
        ("Crew booked", "public"),
        ("Cleared", "public"),
    ]

    changes = [
        json.loads(row["payload"])
        for row in outbox_rows(client)
        if row["event_type"].split(".")[-2] == "ServiceRequestStatusChanged"
    ]
    assert [(c["note"], c["note_visibility"]) for c in changes] == [
        ("Safeguarding: see case 123", "internal"),
        ("Cleared", "public"),
    ]
