"""Scheduled jobs (application/scheduler.py) on in-memory units of work: each job fires once,
in its own unit of work, whatever the number of runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inclusion.application.scheduler import remind, report_overdue
from inclusion.persistence.tables import Device, DeviceLoan

from .fakes import FakeTransactions, a_participant, a_session, an_enrolment


async def test_one_reminder_per_session_due_within_a_day() -> None:
    tx = FakeTransactions()
    tomorrow = a_session(tx.store, starts_in=timedelta(hours=20))
    a_session(tx.store, starts_in=timedelta(days=3))  # not yet
    a_session(tx.store, starts_in=timedelta(hours=2), status="cancelled")
    an_enrolment(tx.store, tomorrow, me := a_participant(tx.store, "c1"))
    an_enrolment(tx.store, tomorrow, a_participant(tx.store, "c2"), status="waitlisted")
    an_enrolment(tx.store, tomorrow, erased := a_participant(tx.store, None))

    assert await remind(tx) == 1
    [event] = tx.published()
    assert event.session_id == tomorrow.id  # type: ignore[attr-defined]
    assert event.participant_ids == [me.id, erased.id]  # type: ignore[attr-defined]
    assert event.citizen_ids == ["c1"]  # type: ignore[attr-defined]
    assert event.venue_name == "Milton Keynes Central Library"  # type: ignore[attr-defined]
    assert len(tx.committed) == 1

    assert await remind(tx) == 0  # claimed: nothing again
    assert len(tx.published()) == 1


async def test_a_claim_taken_by_another_instance_in_between_publishes_nothing() -> None:
    tx = FakeTransactions()
    session = a_session(tx.store, starts_in=timedelta(hours=3))
    original = tx.unit_of_work

    def racing():  # type: ignore[no-untyped-def]
        tx.store.claims.add(("session-reminder", str(session.id)))  # the other one won
        return original()

    tx.unit_of_work = racing  # type: ignore[method-assign]
    assert await remind(tx) == 0
    assert tx.published() == []


async def test_overdue_loans_are_reported_once() -> None:
    tx = FakeTransactions()
    now = datetime.now(UTC)
    device = Device(make="m", model="m", serial="s", condition="good", created_at=now)
    tx.store.devices[device.id] = device
    person = a_participant(tx.store)
    late = DeviceLoan(
        device_id=device.id, participant_id=person.id, loaned_at=now, due_at=now - timedelta(days=1)
    )
    on_time = DeviceLoan(
        device_id=device.id, participant_id=person.id, loaned_at=now, due_at=now + timedelta(days=1)
    )
    tx.store.loans.update({late.id: late, on_time.id: on_time})

    assert await report_overdue(tx) == 1
    [event] = tx.published()
    assert event.loan_id == late.id  # type: ignore[attr-defined]
    assert event.citizen_id == "citizen-1"  # type: ignore[attr-defined]
    assert await report_overdue(tx) == 0
