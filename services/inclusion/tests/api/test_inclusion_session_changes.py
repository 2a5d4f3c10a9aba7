"""Staff cancel a session, or change its capacity, on SQLite and PostgreSQL: every active
enrolment is cancelled, one SessionCancelled names the affected citizens, nothing more is
accepted, cancelling again changes nothing; more places promote from the waitlist in order."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from inclusion.persistence.tables import ProgrammeSession
from servicekit.messaging.tables import OutboxMessage

from ..conftest import citizen, make_session, make_venue, outbox_types, run
from .test_inclusion_api import assert_problem, enrol

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
REASON = "The tutor is unwell."


def payloads(client: TestClient, name: str) -> list[tuple[str, dict[str, Any]]]:
    """(message key, payload) of the outbox rows of event ``name``, in order."""

    async def read(s: Any) -> list[tuple[str, dict[str, Any]]]:
        rows = await s.execute(
            sa.select(OUTBOX.c.message_key, OUTBOX.c.payload)
            .where(OUTBOX.c.event_type.like(f"%.{name}.%"))
            .order_by(OUTBOX.c.id)
        )
        return [(k, json.loads(p)) for k, p in rows.all()]

    return run(client, read)  # type: ignore[no-any-return]


def cancel(client: TestClient, session_id: str, reason: str = REASON, **kw: Any) -> Any:
    return client.post(f"/api/v1/sessions/{session_id}/cancel", json={"reason": reason}, **kw)


def test_cancelling_a_session_cancels_its_enrolments_and_tells_once(client: TestClient) -> None:
    session = make_session(client, capacity=2)
    bodies = [enrol(client, session["id"], n).json() for n in range(1, 5)]
    assert [b["status"] for b in bodies] == ["confirmed"] * 2 + ["waitlisted"] * 2
    # Citizen 4 already cancelled their own: not affected again.
    client.post(f"/api/v1/enrolments/{bodies[3]['id']}/cancel", headers=citizen(4))
    before = len(outbox_types(client))

    # Staff only; the reason is required and short.
    assert_problem(cancel(client, session["id"], headers=citizen(1)), 403, "forbidden")
    assert_problem(
        cancel(client, session["id"], headers={"X-MK-Identity": ""}), 401, "unauthorized"
    )
    for bad in ({}, {"reason": "  "}, {"reason": "x" * 301}, {"reason": "a\nb"}):
        r = client.post(f"/api/v1/sessions/{session['id']}/cancel", json=bad)
        assert_problem(r, 422, "validation-error")
    assert len(outbox_types(client)) == before

    r = cancel(client, session["id"], f"  {REASON} ")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["cancellation_reason"], body["places_left"]) == (
        "cancelled",
        REASON,
        0,
    )
    assert body["cancelled_at"]
    listed = client.get(f"/api/v1/sessions/{session['id']}/enrolments").json()
    assert [(e["sequence"], e["status"]) for e in listed] == [
        (1, "cancelled"),
        (2, "cancelled"),
        (3, "cancelled"),
        (4, "cancelled"),
    ]
    # Nobody was promoted; one SessionCancelled after one EnrolmentCancelled per enrolment.
    assert outbox_types(client)[before:] == ["EnrolmentCancelled"] * 3 + ["SessionCancelled"]
    [(key, event)] = payloads(client, "SessionCancelled")
    assert key == session["id"]
    assert event["reason"] == REASON
    assert event["citizen_ids"] == ["citizen-1", "citizen-2", "citizen-3"]
    assert event["cancelled_enrolment_ids"] == [b["id"] for b in bodies[:3]]
    assert len(event["participant_ids"]) == 3
    assert (event["programme_title"], event["venue_name"]) == (
        session["programme_title"],
        session["venue_name"],
    )
    assert (event["starts_at"], event["ends_at"]) == (session["starts_at"], session["ends_at"])
    assert event["cancelled_by"]  # the staff member's subject id
    by_session = [
        e
        for _, e in payloads(client, "EnrolmentCancelled")
        if e["cancelled_by"] == "session-cancelled"
    ]
    assert [(e["enrolment_id"], e["previous_status"]) for e in by_session] == [
        (bodies[0]["id"], "confirmed"),
        (bodies[1]["id"], "confirmed"),
        (bodies[2]["id"], "waitlisted"),
    ]

    # No more enrolments; hidden from upcoming listings and help near me, marked when read.
    body = assert_problem(enrol(client, session["id"], 5), 409, "session-cancelled")
    assert "cancelled" in body["detail"]
    assert_problem(enrol(client, session["id"], 1), 409, "session-cancelled")
    anon = {"X-MK-Identity": ""}
    assert session["id"] not in [
        s["id"] for s in client.get("/api/v1/sessions", headers=anon).json()
    ]
    assert session["id"] in [
        s["id"] for s in client.get("/api/v1/sessions?upcoming=false", headers=anon).json()
    ]
    read = client.get(f"/api/v1/sessions/{session['id']}", headers=anon).json()
    assert (read["status"], read["cancellation_reason"]) == ("cancelled", REASON)
    near = client.get("/api/v1/help-near-me?postcode=MK9", headers=anon).json()["venues"]
    assert near and all(s["id"] != session["id"] for v in near for s in v["sessions"])
    assert_problem(
        client.post(f"/api/v1/enrolments/{bodies[0]['id']}/cancel", headers=citizen(1)),
        409,
        "enrolment-not-active",
    )
    assert_problem(
        client.patch(f"/api/v1/sessions/{session['id']}", json={"capacity": 5}),
        409,
        "session-cancelled",
    )

    # Idempotent: 200, the same session, the first reason, no second event.
    count = len(outbox_types(client))
    again = cancel(client, session["id"], "Something else.")
    assert again.status_code == 200
    assert (again.json()["status"], again.json()["cancellation_reason"]) == ("cancelled", REASON)
    assert len(outbox_types(client)) == count


def test_a_session_that_has_started_cannot_be_cancelled(client: TestClient) -> None:
    session = make_session(client)
    enrol(client, session["id"], 1)

    async def start_it(s: Any) -> None:
        await s.execute(
            sa.update(ProgrammeSession)
            .where(ProgrammeSession.id == uuid.UUID(session["id"]))
            .values(starts_at=datetime.now(UTC) - timedelta(minutes=5))
        )

    run(client, start_it)
    count = len(outbox_types(client))
    body = assert_problem(cancel(client, session["id"]), 409, "session-already-started")
    assert body["rule"] == "cancel-before-start"
    assert client.get(f"/api/v1/sessions/{session['id']}").json()["status"] == "scheduled"
    assert len(outbox_types(client)) == count
    assert_problem(cancel(client, "00000000-0000-0000-0000-000000000000"), 404, "session-not-found")


def test_an_empty_session_is_cancelled_with_nobody_to_tell(client: TestClient) -> None:
    session = make_session(client, venue=make_venue(client, name="Olney Library"))
    assert cancel(client, session["id"]).status_code == 200
    [(_, event)] = payloads(client, "SessionCancelled")
    assert event["citizen_ids"] == [] and event["cancelled_enrolment_ids"] == []


def test_more_places_promote_from_the_waitlist_in_order(client: TestClient) -> None:
    session = make_session(client, capacity=1)
    bodies = [enrol(client, session["id"], n).json() for n in range(1, 5)]
    path = f"/api/v1/sessions/{session['id']}"
    assert_problem(client.patch(path, json={"capacity": 3}, headers=citizen(1)), 403, "forbidden")
    before = len(outbox_types(client))
    r = client.patch(path, json={"capacity": 3})
    assert r.status_code == 200, r.text
    assert (r.json()["capacity"], r.json()["places_left"], r.json()["waitlisted"]) == (3, 0, 1)
    listed = client.get(f"{path}/enrolments").json()
    assert [(e["sequence"], e["status"], e["waitlist_position"]) for e in listed] == [
        (1, "confirmed", None),
        (2, "confirmed", None),
        (3, "confirmed", None),
        (4, "waitlisted", 1),
    ]
    assert outbox_types(client)[before:] == ["WaitlistPromoted"] * 2
    promoted = [e for _, e in payloads(client, "WaitlistPromoted")]
    assert [e["enrolment_id"] for e in promoted] == [bodies[1]["id"], bodies[2]["id"]]

    # Fewer places than confirmed: refused; the same again, or fewer but enough: no event.
    body = assert_problem(client.patch(path, json={"capacity": 2}), 409, "capacity-below-confirmed")
    assert body["confirmed"] == 3
    assert client.patch(path, json={"capacity": 3}).status_code == 200
    assert_problem(client.patch(path, json={"capacity": 0}), 422, "validation-error")
    client.post(f"/api/v1/enrolments/{bodies[0]['id']}/cancel", headers=citizen(1))
    # Citizen 1's cancellation promoted citizen 4; now 3 confirmed, none waiting.
    r = client.patch(path, json={"capacity": 10})
    assert (r.json()["places_left"], r.json()["waitlisted"]) == (7, 0)
    assert outbox_types(client)[before:] == ["WaitlistPromoted"] * 2 + [
        "EnrolmentCancelled",
        "WaitlistPromoted",
    ]
    assert enrol(client, session["id"], 9).json()["status"] == "confirmed"


def test_bad_cancel_and_capacity_input_is_a_problem_naming_the_field(client: TestClient) -> None:
    """Never a 500, never half-written: the problem names the field; nothing changes."""
    session = make_session(client, capacity=2)
    enrol(client, session["id"], 1)
    path = f"/api/v1/sessions/{session['id']}"
    before = len(outbox_types(client))
    for reason in ("", " \t ", "x" * 500, "line one\nline two", "a\rb", "nul\x00byte"):
        body = assert_problem(cancel(client, session["id"], reason), 422, "validation-error")
        assert [e["field"] for e in body["errors"]] == ["reason"], body
    for bad in (0, -1, 10**6, 10**30, "3", "three", 2.5, True, None):
        body = assert_problem(client.patch(path, json={"capacity": bad}), 422, "validation-error")
        assert [e["field"] for e in body["errors"]] == ["capacity"], (bad, body)
    assert_problem(client.patch(path, json={}), 422, "validation-error")
    assert_problem(
        client.patch(path, json={"capacity": 3, "status": "cancelled"}), 422, "validation-error"
    )
    assert_problem(
        client.patch(path, content=b"not json", headers={"content-type": "application/json"}),
        422,
        "validation-error",
    )
    unknown = "/api/v1/sessions/00000000-0000-0000-0000-000000000000"
    assert_problem(client.patch(unknown, json={"capacity": 3}), 404, "session-not-found")
    for malformed in ("not-a-uuid", "1", "00000000-0000-0000-0000-00000000000g"):
        body = assert_problem(cancel(client, malformed), 422, "validation-error")
        assert [e["field"] for e in body["errors"]] == ["path.session_id"], body
        body = assert_problem(
            client.patch(f"/api/v1/sessions/{malformed}", json={"capacity": 3}),
            422,
            "validation-error",
        )
        assert "path.session_id" in [e["field"] for e in body["errors"]], body
    after = client.get(path).json()
    assert (after["status"], after["capacity"]) == ("scheduled", 2)
    assert len(outbox_types(client)) == before

    # a cancelled session's places cannot change
    assert cancel(client, session["id"]).status_code == 200
    assert_problem(client.patch(path, json={"capacity": 5}), 409, "session-cancelled")
