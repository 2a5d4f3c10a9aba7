"""Device lending (application/devices.py) on in-memory repositories."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from inclusion.application import devices
from inclusion.application.programmes import UnknownReference
from inclusion.domain.devices import (
    Condition,
    DeviceNotOnLoan,
    DeviceNotWiped,
    DeviceOnLoan,
    DuplicateSerial,
)
from inclusion.domain.programmes import NotEligible

from .fakes import FakeUnitOfWork, a_participant, a_programme


def add(serial: str = "SN-1", **changes: object) -> devices.AddDevice:
    fields: dict[str, object] = {
        "make": "Lenovo",
        "model": "IdeaPad",
        "serial": serial,
        "condition": Condition.GOOD,
        "wiped_at": datetime.now(UTC),
    }
    return devices.AddDevice(**{**fields, **changes})  # type: ignore[arg-type]


def lend(
    device_id: uuid.UUID, participant_id: uuid.UUID, due_in: timedelta = timedelta(weeks=4)
) -> devices.LendDevice:
    return devices.LendDevice(
        device_id=device_id, participant_id=participant_id, due_at=datetime.now(UTC) + due_in
    )


async def test_a_device_is_lent_returned_and_wiped_before_its_next_loan() -> None:
    uow = FakeUnitOfWork()
    device = await devices.add_device(uow=uow, command=add())
    person = a_participant(uow.store)
    loan = await devices.lend(uow=uow, command=lend(device.id, person.id))
    assert uow.types() == ["DeviceLoaned"]
    with pytest.raises(DeviceOnLoan):
        await devices.lend(uow=uow, command=lend(device.id, person.id))
    with pytest.raises(DeviceOnLoan):
        await devices.record_wipe(uow=uow, device_id=device.id)

    await devices.return_device(uow=uow, command=devices.ReturnDevice(device.id, Condition.FAIR))
    assert loan.returned_at is not None and device.condition == "fair"
    assert uow.types() == ["DeviceLoaned", "DeviceReturned"]
    assert uow.published[-1].was_overdue is False  # type: ignore[attr-defined]
    with pytest.raises(DeviceNotOnLoan):
        await devices.return_device(
            uow=uow, command=devices.ReturnDevice(device.id, Condition.FAIR)
        )
    with pytest.raises(DeviceNotWiped):
        await devices.lend(uow=uow, command=lend(device.id, person.id))
    await devices.record_wipe(uow=uow, device_id=device.id)
    await devices.lend(uow=uow, command=lend(device.id, person.id))


async def test_refusals() -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(UnknownReference):
        await devices.add_device(uow=uow, command=add(programme_id=uuid.uuid4()))
    with pytest.raises(devices.DeviceNotFound):
        await devices.record_wipe(uow=uow, device_id=uuid.uuid4())
    device = await devices.add_device(uow=uow, command=add())
    with pytest.raises(UnknownReference):
        await devices.lend(uow=uow, command=lend(device.id, uuid.uuid4()))
    uow.conflict_on_flush = True  # the serial's unique index
    with pytest.raises(DuplicateSerial):
        await devices.add_device(uow=uow, command=add())


async def test_a_programmes_device_goes_to_eligible_participants_only() -> None:
    uow = FakeUnitOfWork()
    lending = a_programme(uow.store, kind="device-lending", eligibility={"no_device_at_home": True})
    device = await devices.add_device(uow=uow, command=add(programme_id=lending.id))
    has_one = a_participant(uow.store, "c1", has_device_at_home=True)
    with pytest.raises(NotEligible):
        await devices.lend(uow=uow, command=lend(device.id, has_one.id))
    needs_one = a_participant(uow.store, "c2", has_device_at_home=False)
    await devices.lend(uow=uow, command=lend(device.id, needs_one.id))


async def test_a_concurrent_loan_of_the_same_device_loses() -> None:
    uow = FakeUnitOfWork()
    device = await devices.add_device(uow=uow, command=add())
    uow.conflict_on_flush = True  # ux_device_loan_open
    with pytest.raises(DeviceOnLoan):
        await devices.lend(uow=uow, command=lend(device.id, a_participant(uow.store).id))


async def test_views_show_loans_newest_first_and_filter_overdue() -> None:
    uow = FakeUnitOfWork()
    late = await devices.add_device(uow=uow, command=add("SN-1"))
    idle = await devices.add_device(uow=uow, command=add("SN-2"))
    loan = await devices.lend(uow=uow, command=lend(late.id, a_participant(uow.store).id))
    loan.due_at = datetime.now(UTC) - timedelta(days=1)
    views = await devices.device_views(repos=uow)
    assert [v.device for v in views] == [late, idle]
    assert (views[0].on_loan, views[0].overdue, views[0].current_loan) == (True, True, loan)
    assert [v.device for v in await devices.device_views(repos=uow, overdue=True)] == [late]
    assert [v.device for v in await devices.device_views(repos=uow, on_loan=False)] == [idle]
    assert devices.is_overdue(loan, datetime.now(UTC))
    with pytest.raises(devices.DeviceNotFound):
        await devices.find_device(repos=uow, device_id=uuid.uuid4())
