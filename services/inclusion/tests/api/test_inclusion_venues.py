"""A venue changed by staff: only what is sent changes, the ETag names the version, a stale
or missing If-Match is refused, who changed it is kept (and shown to staff only), bad input
is a 4xx naming each field; migration 0008 leaves existing venues at version 1."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from servicekit.testing import identity_headers

from ..conftest import citizen, make_venue, outbox_types
from .test_inclusion_api import assert_problem

ANONYMOUS = {"X-MK-Identity": ""}


def test_staff_change_a_venue_with_if_match(client: TestClient) -> None:
    venue = make_venue(client, accessibility_notes="Lift to all floors")
    url = f"/api/v1/venues/{venue['id']}"
    read = client.get(url)
    assert read.status_code == 200 and read.headers["etag"] == '"1"'
    assert read.json()["version"] == 1 and read.json()["updated_by"] is None

    changed = client.patch(
        url,
        json={
            "name": "Central Library (ground floor)",
            "postcode": "mk9 3hl",
            "accessibility_notes": "Lift to all floors; hearing loop at the desk",
            "opening_times": [{"day": "monday", "opens": "09:00", "closes": "17:00"}],
        },
        headers={"if-match": '"1"'},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert changed.headers["etag"] == '"2"' and body["version"] == 2
    assert body["name"] == "Central Library (ground floor)" and body["postcode"] == "MK9 3HL"
    assert body["address"] == venue["address"] and body["ward"] == venue["ward"]
    assert body["opening_times"] == [{"day": "monday", "opens": "09:00", "closes": "17:00"}]
    assert body["updated_by"] == "staff-test-1"
    assert datetime.fromisoformat(body["updated_at"]) <= datetime.now(UTC)

    # anyone reads it back; only staff see who changed it
    public = client.get(url, headers=ANONYMOUS)
    assert public.status_code == 200 and public.json()["name"] == body["name"]
    assert public.json()["updated_by"] is None
    assert client.get(url).json()["updated_by"] == "staff-test-1"
    listed = client.get("/api/v1/venues", headers=citizen()).json()
    assert [(v["name"], v["updated_by"]) for v in listed] == [(body["name"], None)]

    # an edit made on the old version loses: 412, nothing changes
    stale = client.patch(url, json={"ward": "Bradwell"}, headers={"if-match": '"1"'})
    assert assert_problem(stale, 412, "venue-changed")["current_version"] == 2
    assert_problem(client.patch(url, json={"ward": "Bradwell"}), 428, "precondition-required")
    assert_problem(
        client.patch(url, json={"ward": "Bradwell"}, headers={"if-match": "*"}),
        412,
        "venue-changed",
    )
    assert client.get(url).json()["ward"] == "Central Milton Keynes"

    # sending what it already is changes nothing (same version)
    same = client.patch(url, json={"ward": "Central Milton Keynes"}, headers={"if-match": '"2"'})
    assert same.status_code == 200 and same.headers["etag"] == '"2"'
    other = identity_headers("staff-9", "staff")
    moved = client.patch(
        url,
        json={"ward": "Bradwell", "latitude": 52.05, "longitude": -0.79},
        headers={"if-match": 'W/"2"', **other},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["version"] == 3 and moved.json()["updated_by"] == "staff-9"
    assert outbox_types(client) == []  # venues publish no events


def test_bad_venue_changes_are_named_4xx(client: TestClient) -> None:
    venue = make_venue(client)
    url = f"/api/v1/venues/{venue['id']}"
    match = {"if-match": '"1"'}
    for body, fields in [
        ({"postcode": "nowhere", "ward": "Hogsmeade"}, {"postcode", "ward"}),
        ({"latitude": 48.85}, {"latitude"}),
        ({"name": ""}, {"name"}),
        ({"name": "Two\nlines"}, {"name"}),
        ({"colour": "red"}, {"colour"}),
        ({"opening_times": [{"day": "someday", "opens": "9", "closes": "5"}]}, None),
    ]:
        answer = client.patch(url, json=body, headers=match)
        problem = assert_problem(answer, 422, "validation-error")
        got = {e["field"].split(".")[0] for e in problem["errors"]}
        assert fields is None or got >= fields, (body, problem)
    assert_problem(client.patch(url, json={}, headers=match), 422, "nothing-to-change")
    nulls = client.patch(url, json={"name": None}, headers=match)
    assert [e["field"] for e in assert_problem(nulls, 422, "validation-error")["errors"]] == [
        "name"
    ]
    assert_problem(
        client.patch(f"/api/v1/venues/{uuid.uuid4()}", json={"name": "x"}, headers=match),
        404,
        "venue-not-found",
    )
    assert_problem(client.patch(url, json={"name": "x"}, headers=citizen()), 403, "forbidden")
    assert_problem(client.patch(url, json={"name": "x"}, headers=ANONYMOUS), 401, "unauthorized")
    assert client.get(url).json()["version"] == 1
