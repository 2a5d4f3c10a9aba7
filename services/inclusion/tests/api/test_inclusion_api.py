"""The inclusion API over HTTP, on SQLite and PostgreSQL: roles, problem+json naming the
broken rule, the waitlist and promotion, ownership, attendance, the outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from inclusion.persistence.tables import ProgrammeSession
from servicekit.errors import PROBLEM_JSON, TYPE_BASE
from servicekit.testing import identity_headers

from ..conftest import (
    citizen,
    make_programme,
    make_session,
    make_venue,
    outbox_types,
    run,
    soon,
)


def assert_problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = r.json()
    assert body["type"] == TYPE_BASE + code, body
    return body


def enrol(client: TestClient, session_id: str, n: int = 1, **body: Any) -> Any:
    return client.post(
        f"/api/v1/sessions/{session_id}/enrolments",
        json={"consent": True, **body},
        headers=citizen(n),
    )


# -- programmes and venues -------------------------------------------------------------------


def test_programme_lifecycle_and_visibility(client: TestClient) -> None:
    draft = make_programme(
        client,
        publish=False,
        title="Device lending library",
        kind="device-lending",
        eligibility={"min_age": 18, "no_device_at_home": True},
    )
    assert draft["status"] == "draft"
    assert draft["eligibility"]["min_age"] == 18
    anon = {"X-MK-Identity": ""}
    assert client.get("/api/v1/programmes", headers=anon).json() == []
    assert_problem(
        client.get(f"/api/v1/programmes/{draft['id']}", headers=anon), 404, "programme-not-found"
    )
    assert outbox_types(client) == []

    published = client.post(
        f"/api/v1/programmes/{draft['id']}/status", json={"status": "published"}
    )
    assert published.status_code == 200 and published.json()["status"] == "published"
    assert [p["id"] for p in client.get("/api/v1/programmes", headers=anon).json()] == [draft["id"]]
    assert outbox_types(client) == ["ProgrammePublished"]
    again = client.post(f"/api/v1/programmes/{draft['id']}/status", json={"status": "published"})
    assert_problem(again, 409, "invalid-status-transition")
    assert outbox_types(client) == ["ProgrammePublished"]


def test_staff_only_operations(client: TestClient) -> None:
    for path, body in [
        ("/api/v1/programmes", {"title": "x", "kind": "drop-in-help", "delivered_by": "y"}),
        ("/api/v1/venues", {}),
        ("/api/v1/sessions", {}),
    ]:
        assert_problem(client.post(path, json=body, headers=citizen()), 403, "forbidden")
        assert_problem(
            client.post(path, json=body, headers={"X-MK-Identity": ""}), 401, "unauthorized"
        )


def test_bad_input_names_each_field(client: TestClient) -> None:
    r = client.post(
        "/api/v1/venues",
        json={
            "name": "Hub",
            "address": "1 Street",
            "postcode": "not a postcode",
            "ward": "Hogsmeade",
            "latitude": 51.5,
            "longitude": -0.7,
        },
    )
    body = assert_problem(r, 422, "validation-error")
    assert {e["field"] for e in body["errors"]} >= {"postcode", "ward", "latitude"}
    # Only what the published JSON Schema allows: no "3" for 3, "yes" for true, 916 for a date.
    for path, bad, field in [
        (
            "/api/v1/devices",
            {"make": "a", "model": "b", "serial": "c", "wiped_at": 916},
            "wiped_at",
        ),
        (
            "/api/v1/sessions",
            {
                "programme_id": "00000000-0000-0000-0000-000000000000",
                "venue_id": "00000000-0000-0000-0000-000000000000",
                "starts_at": soon().isoformat(),
                "ends_at": soon(25).isoformat(),
                "capacity": "3",
            },
            "capacity",
        ),
        (
            "/api/v1/programmes",
            {
                "title": "t",
                "kind": "drop-in-help",
                "delivered_by": "d",
                "eligibility": {"receives_benefits": "yes"},
            },
            "eligibility.receives_benefits",
        ),
    ]:
        body = assert_problem(client.post(path, json=bad), 422, "validation-error")
        assert [e["field"] for e in body["errors"]] == [field], body


def test_sessions_are_scheduled_in_the_future(client: TestClient) -> None:
    programme, venue = make_programme(client), make_venue(client)
    past = datetime.now(UTC) - timedelta(hours=1)
    r = client.post(
        "/api/v1/sessions",
        json={
            "programme_id": programme["id"],
            "venue_id": venue["id"],
            "starts_at": past.isoformat(),
            "ends_at": (past + timedelta(hours=1)).isoformat(),
            "capacity": 5,
        },
    )
    assert_problem(r, 422, "session-in-the-past")
    r = client.post(
        "/api/v1/sessions",
        json={
            "programme_id": programme["id"],
            "venue_id": venue["id"],
            "starts_at": soon().isoformat(),
            "ends_at": soon(-1).isoformat(),
            "capacity": 5,
        },
    )
    assert_problem(r, 422, "invalid-session-times")
    nowhere = "00000000-0000-0000-0000-000000000000"
    r = client.post(
        "/api/v1/sessions",
        json={
            "programme_id": nowhere,
            "venue_id": venue["id"],
            "starts_at": soon().isoformat(),
            "ends_at": soon(25).isoformat(),
            "capacity": 5,
        },
    )
    assert assert_problem(r, 422, "unknown-reference")["rule"] == "programme-exists"
    r = client.post(
        "/api/v1/sessions",
        json={
            "programme_id": programme["id"],
            "venue_id": nowhere,
            "starts_at": soon().isoformat(),
            "ends_at": soon(25).isoformat(),
            "capacity": 5,
        },
    )
    assert assert_problem(r, 422, "unknown-reference")["rule"] == "venue-exists"
    session = make_session(client, programme=programme, venue=venue, capacity=5)
    assert session["places_left"] == 5 and session["venue_name"] == venue["name"]
    assert outbox_types(client) == ["ProgrammePublished", "SessionScheduled"]


# -- enrolment -------------------------------------------------------------------------------


def test_confirmed_then_waitlisted_then_promoted_on_cancel(client: TestClient) -> None:
    session = make_session(client, capacity=2)
    results = [enrol(client, session["id"], n) for n in range(1, 6)]
    assert [r.status_code for r in results] == [201] * 5
    bodies = [r.json() for r in results]
    assert [b["status"] for b in bodies] == ["confirmed"] * 2 + ["waitlisted"] * 3
    assert [b["waitlist_position"] for b in bodies] == [None, None, 1, 2, 3]
    assert [b["sequence"] for b in bodies] == [1, 2, 3, 4, 5]
    read = client.get(f"/api/v1/sessions/{session['id']}").json()
    assert (read["places_left"], read["waitlisted"]) == (0, 3)

    # Citizen 2 cancels their confirmed place: citizen 3 (first waitlisted) gets it.
    cancelled = client.post(f"/api/v1/enrolments/{bodies[1]['id']}/cancel", headers=citizen(2))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    mine = client.get("/api/v1/enrolments", headers=citizen(3)).json()
    assert [(e["status"], e["waitlist_position"]) for e in mine] == [("confirmed", None)]
    assert mine[0]["promoted_at"] is not None
    assert client.get("/api/v1/enrolments", headers=citizen(5)).json()[0]["waitlist_position"] == 2
    # Cancelling a waitlisted enrolment promotes nobody.
    client.post(f"/api/v1/enrolments/{bodies[3]['id']}/cancel", headers=citizen(4))
    listed = client.get(f"/api/v1/sessions/{session['id']}/enrolments").json()
    assert [(e["sequence"], e["status"], e["waitlist_position"]) for e in listed] == [
        (1, "confirmed", None),
        (2, "cancelled", None),
        (3, "confirmed", None),
        (4, "cancelled", None),
        (5, "waitlisted", 1),
    ]
    again = client.post(f"/api/v1/enrolments/{bodies[1]['id']}/cancel", headers=citizen(2))
    assert_problem(again, 409, "enrolment-not-active")

    assert outbox_types(client) == [
        "ProgrammePublished",
        "SessionScheduled",
        "EnrolmentConfirmed",
        "EnrolmentConfirmed",
        "EnrolmentWaitlisted",
        "EnrolmentWaitlisted",
        "EnrolmentWaitlisted",
        "EnrolmentCancelled",
        "WaitlistPromoted",
        "EnrolmentCancelled",
    ]


def test_citizens_see_and_cancel_only_their_own(client: TestClient) -> None:
    session = make_session(client)
    mine = enrol(client, session["id"], 1).json()
    assert (mine["programme_title"], mine["venue_name"], mine["session_starts_at"]) == (
        session["programme_title"],
        session["venue_name"],
        session["starts_at"],
    )
    assert client.get(f"/api/v1/enrolments/{mine['id']}", headers=citizen(1)).status_code == 200
    assert_problem(
        client.get(f"/api/v1/enrolments/{mine['id']}", headers=citizen(2)),
        404,
        "enrolment-not-found",
    )
    assert_problem(
        client.post(f"/api/v1/enrolments/{mine['id']}/cancel", headers=citizen(2)),
        404,
        "enrolment-not-found",
    )
    assert client.get("/api/v1/enrolments", headers=citizen(2)).json() == []
    # Staff see everyone's, and may cancel.
    assert [e["id"] for e in client.get("/api/v1/enrolments").json()] == [mine["id"]]
    assert client.post(f"/api/v1/enrolments/{mine['id']}/cancel").status_code == 200


def test_enrolment_rules_are_named(client: TestClient) -> None:
    course = make_programme(client, eligibility={"min_age": 18, "lives_in_milton_keynes": True})
    session = make_session(client, programme=course)
    assert_problem(enrol(client, session["id"], consent=False), 422, "consent-required")
    body = assert_problem(enrol(client, session["id"]), 422, "not-eligible")
    assert [u["rule"] for u in body["unmet_rules"]] == ["age", "lives_in_milton_keynes"]
    body = assert_problem(
        enrol(client, session["id"], postcode="MK40 1AA", year_of_birth=2015), 422, "not-eligible"
    )
    assert [u["rule"] for u in body["unmet_rules"]] == ["min_age", "lives_in_milton_keynes"]
    assert_problem(
        enrol(client, session["id"], postcode="SW1A 1AA"), 422, "postcode-not-in-milton-keynes-area"
    )
    ok = enrol(client, session["id"], postcode="MK6 2LP", year_of_birth=1958)
    assert ok.status_code == 201 and ok.json()["status"] == "confirmed"
    assert_problem(enrol(client, session["id"]), 409, "already-enrolled")
    # What was kept about the citizen: minimal, with consent.
    me = client.get("/api/v1/participants/me", headers=citizen()).json()
    assert me["postcode"] == "MK6 2LP" and me["year_of_birth"] == 1958
    assert me["consent_given_at"] and me["consent_version"]
    check = client.get(f"/api/v1/programmes/{course['id']}/eligibility", headers=citizen())
    assert check.json() == {"eligible": True, "unmet_rules": []}

    closed = client.post(f"/api/v1/programmes/{course['id']}/status", json={"status": "closed"})
    assert closed.status_code == 200
    assert_problem(enrol(client, session["id"], 2), 409, "programme-not-open")
    assert_problem(enrol(client, "00000000-0000-0000-0000-000000000000"), 404, "session-not-found")


def test_session_in_the_past_and_attendance(client: TestClient) -> None:
    session = make_session(client, capacity=1)
    first = enrol(client, session["id"], 1).json()
    second = enrol(client, session["id"], 2).json()
    early = client.post(f"/api/v1/enrolments/{first['id']}/attendance", json={"attended": True})
    assert_problem(early, 409, "attendance-not-allowed")

    async def start_it(s: Any) -> None:
        await s.execute(
            sa.update(ProgrammeSession)
            .where(ProgrammeSession.id == __import__("uuid").UUID(session["id"]))
            .values(starts_at=datetime.now(UTC) - timedelta(minutes=5))
        )

    run(client, start_it)

    assert_problem(enrol(client, session["id"], 3), 422, "session-in-the-past")
    assert_problem(
        client.post(f"/api/v1/enrolments/{first['id']}/cancel", headers=citizen(1)),
        422,
        "session-in-the-past",
    )
    r = client.post(f"/api/v1/enrolments/{first['id']}/attendance", json={"attended": True})
    assert r.status_code == 200 and r.json()["attended"] is True
    waitlisted = client.post(
        f"/api/v1/enrolments/{second['id']}/attendance", json={"attended": True}
    )
    assert_problem(waitlisted, 409, "attendance-not-allowed")
    assert_problem(
        client.post(
            f"/api/v1/enrolments/{first['id']}/attendance",
            json={"attended": True},
            headers=citizen(1),
        ),
        403,
        "forbidden",
    )


# -- help near me ----------------------------------------------------------------------------


def test_help_near_me_nearest_first(client: TestClient) -> None:
    olney = make_venue(
        client,
        name="Olney Library",
        postcode="MK46 4EF",
        ward="Olney",
        latitude=52.1530,
        longitude=-0.7015,
    )
    cmk = make_venue(client)
    bletchley = make_venue(
        client,
        name="Lakes Estate Community Hub",
        postcode="MK2 3QL",
        ward="Bletchley East",
        latitude=51.9875,
        longitude=-0.7335,
    )
    course = make_programme(client)
    make_session(client, programme=course, venue=olney)
    make_session(client, programme=course, venue=bletchley)

    near = client.get("/api/v1/help-near-me", params={"postcode": "MK9"}).json()
    assert near["origin"]["postcode_district"] == "MK9"
    assert [v["venue"]["id"] for v in near["venues"]] == [cmk["id"], bletchley["id"], olney["id"]]
    assert near["venues"][0]["distance_km"] < 1
    assert [len(v["sessions"]) for v in near["venues"]] == [0, 1, 1]
    from_olney = client.get("/api/v1/help-near-me", params={"postcode": "MK46 4EF"}).json()
    assert from_olney["venues"][0]["venue"]["id"] == olney["id"]
    point = client.get("/api/v1/help-near-me", params={"lat": 51.99, "long": -0.73}).json()
    assert point["venues"][0]["venue"]["id"] == bletchley["id"]
    only = client.get(
        "/api/v1/help-near-me", params={"postcode": "MK9", "kind": "digital-skills-course"}
    ).json()
    assert [v["venue"]["id"] for v in only["venues"]] == [bletchley["id"], olney["id"]]

    one_venue = client.get("/api/v1/help-near-me", params={"postcode": "MK9", "limit": 1}).json()
    assert [v["venue"]["id"] for v in one_venue["venues"]] == [cmk["id"]]

    assert_problem(client.get("/api/v1/help-near-me"), 422, "location-required")
    assert_problem(
        client.get("/api/v1/help-near-me", params={"postcode": "EC1A"}),
        422,
        "postcode-not-in-milton-keynes-area",
    )
    anonymous = client.get(
        "/api/v1/help-near-me", params={"postcode": "MK9"}, headers=identity_headers(None)
    )
    assert anonymous.status_code == 200


def test_help_near_me_lists_places_left_of_published_programmes_only(
    client: TestClient,
) -> None:
    """A venue's sessions: scheduled, upcoming, of published programmes (not closed, draft or
    cancelled), by start time, places left counting confirmed enrolments only."""
    cmk = make_venue(client)
    course = make_programme(client)
    later = make_session(
        client,
        programme=course,
        venue=cmk,
        capacity=1,
        starts_at=soon(48).isoformat(),
        ends_at=soon(50).isoformat(),
    )
    first = make_session(client, programme=course, venue=cmk, capacity=3)
    closed = make_programme(client, title="Closed course")
    make_session(client, programme=closed, venue=cmk)
    r = client.post(f"/api/v1/programmes/{closed['id']}/status", json={"status": "closed"})
    assert r.status_code == 200, r.text
    make_session(client, programme=make_programme(client, publish=False), venue=cmk)
    cancelled = make_session(client, programme=course, venue=cmk)
    r = client.post(f"/api/v1/sessions/{cancelled['id']}/cancel", json={"reason": "Room closed"})
    assert r.status_code == 200, r.text
    assert enrol(client, first["id"], 1).json()["status"] == "confirmed"
    gone = enrol(client, first["id"], 2).json()
    r = client.post(f"/api/v1/enrolments/{gone['id']}/cancel", headers=citizen(2))
    assert r.status_code == 200, r.text
    assert enrol(client, later["id"], 1).json()["status"] == "confirmed"
    assert enrol(client, later["id"], 2).json()["status"] == "waitlisted"

    near = client.get("/api/v1/help-near-me", params={"postcode": "MK9"}).json()["venues"]
    assert [(s["id"], s["places_left"]) for s in near[0]["sessions"]] == [
        (first["id"], 2),
        (later["id"], 0),
    ]
    assert near[0]["sessions"][0]["programme_title"] == course["title"]
    kinds = {"kind": "drop-in-help", "postcode": "MK9"}
    assert client.get("/api/v1/help-near-me", params=kinds).json()["venues"] == []
