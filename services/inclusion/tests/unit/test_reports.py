"""Staff figures (application/reports.py) on in-memory repositories."""

from __future__ import annotations

from datetime import UTC, datetime

from inclusion.application import reports
from inclusion.persistence.tables import Device, DeviceLoan, Voucher

from .fakes import FakeUnitOfWork, a_participant, a_programme, a_session, a_venue, an_enrolment


async def test_figures_by_programme_ward_and_month() -> None:
    uow = FakeUnitOfWork()
    store = uow.store
    course = a_programme(store, title="B course")
    olney = a_venue(store, name="Olney Library", ward="Olney")
    session = a_session(store, programme=course, venue=olney)
    month = session.starts_at.strftime("%Y-%m")
    me, you = a_participant(store, "c1"), a_participant(store, "c2")
    an_enrolment(store, session, me).attended = True
    an_enrolment(store, session, you)
    an_enrolment(store, session, a_participant(store, "c3"), status="waitlisted")

    data = a_programme(store, kind="connectivity", title="A data")
    now = datetime(2026, 11, 3, tzinfo=UTC)
    uow.vouchers.add(
        Voucher(
            programme_id=data.id,
            provider="EE",
            code="X",
            added_at=now,
            participant_id=me.id,
            allocated_at=now,
        )
    )
    lending = a_programme(store, kind="device-lending", title="C devices")
    device = Device(
        programme_id=lending.id, make="m", model="m", serial="s", condition="good", created_at=now
    )
    uow.devices.add(device)
    uow.devices.add_loan(
        DeviceLoan(device_id=device.id, participant_id=you.id, loaned_at=now, due_at=now)
    )

    rows = await reports.figures(repos=uow)
    assert [(r["programme_title"], r["ward"], r["month"]) for r in rows] == [
        ("A data", "", "2026-11"),
        ("B course", "Olney", month),
        ("C devices", "", "2026-11"),
    ]
    data_row, course_row, devices_row = rows
    assert (course_row["participants"], course_row["enrolments"], course_row["completions"]) == (
        2,
        2,
        1,
    )
    assert data_row["vouchers_allocated"] == 1 and data_row["participants"] == 1
    assert (devices_row["devices_loaned"], devices_row["devices_on_loan"]) == (1, 1)
    assert await reports.figures(repos=uow, programme_id=lending.id) == [devices_row]
