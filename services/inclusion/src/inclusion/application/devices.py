"""Device lending: inventory, loans, returns, history.

Lending locks the device's row (``FOR UPDATE`` on PostgreSQL; SQLite serialises writers),
and the partial unique index ``ux_device_loan_open`` backs the rule up in the database: a
device is never on two loans, whatever the interleaving.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from contracts.inclusion import DeviceLoaned, DeviceReturned
from inclusion.application.participants import facts_of
from inclusion.application.programmes import UnknownReference, eligibility_rules
from inclusion.application.unit_of_work import InclusionUnitOfWork
from inclusion.domain.devices import (
    Condition,
    DeviceNotOnLoan,
    DeviceOnLoan,
    DuplicateSerial,
    check_lendable,
)
from inclusion.domain.programmes import check_eligible
from inclusion.persistence.repositories import Repositories
from inclusion.persistence.tables import Device, DeviceLoan, Participant
from servicekit.errors import NotFound


class DeviceNotFound(NotFound):
    code, title = "device-not-found", "Device not found"


@dataclass(frozen=True)
class AddDevice:
    make: str
    model: str
    serial: str
    condition: Condition
    programme_id: uuid.UUID | None = None
    wiped_at: datetime | None = None


@dataclass(frozen=True)
class LendDevice:
    device_id: uuid.UUID
    participant_id: uuid.UUID
    due_at: datetime


@dataclass(frozen=True)
class ReturnDevice:
    device_id: uuid.UUID
    condition: Condition


@dataclass(frozen=True)
class DeviceView:
    device: Device
    loans: list[DeviceLoan]  # newest first
    now: datetime  # as of when (for "overdue")

    @property
    def current_loan(self) -> DeviceLoan | None:
        return next((loan for loan in self.loans if loan.returned_at is None), None)

    @property
    def on_loan(self) -> bool:
        return self.current_loan is not None

    @property
    def overdue(self) -> bool:
        current = self.current_loan
        return current is not None and is_overdue(current, self.now)


async def add_device(*, uow: InclusionUnitOfWork, command: AddDevice) -> Device:
    if command.programme_id is not None and await uow.programmes.get(command.programme_id) is None:
        raise UnknownReference(
            f"No programme with id {command.programme_id}.", rule="programme-exists"
        )
    device = Device(
        make=command.make,
        model=command.model,
        serial=command.serial,
        condition=command.condition.value,
        programme_id=command.programme_id,
        wiped_at=command.wiped_at,
        created_at=datetime.now(UTC),
    )
    uow.devices.add(device)
    try:
        await uow.flush()
    except IntegrityError:
        raise DuplicateSerial(f"Serial '{command.serial}' is already in the inventory.") from None
    return device


async def _locked(uow: InclusionUnitOfWork, device_id: uuid.UUID) -> Device:
    device = await uow.devices.lock(device_id)
    if device is None:
        raise DeviceNotFound(f"No device with id {device_id}.")
    return device


async def record_wipe(*, uow: InclusionUnitOfWork, device_id: uuid.UUID) -> Device:
    device = await _locked(uow, device_id)
    if await uow.devices.open_loan(device_id) is not None:
        raise DeviceOnLoan("A device on loan cannot be wiped.")
    device.wiped_at = datetime.now(UTC)
    return device


def loan_event_fields(loan: DeviceLoan, participant: Participant | None) -> dict[str, object]:
    """The fields every device-loan event carries about its loan."""
    return {
        "device_id": loan.device_id,
        "loan_id": loan.id,
        "participant_id": loan.participant_id,
        "citizen_id": participant.subject if participant else None,
        "due_at": loan.due_at,
    }


async def lend(*, uow: InclusionUnitOfWork, command: LendDevice) -> DeviceLoan:
    now = datetime.now(UTC)
    device = await _locked(uow, command.device_id)
    participant = await uow.participants.get(command.participant_id)
    if participant is None or participant.erased_at is not None:
        raise UnknownReference(
            f"No participant with id {command.participant_id}.", rule="participant-exists"
        )
    last_return = await uow.devices.last_returned_at(device.id)
    check_lendable(
        condition=device.condition,
        wiped_at=device.wiped_at,
        last_returned_at=last_return,
        on_loan=await uow.devices.open_loan(device.id) is not None,
        due_at=command.due_at,
        now=now,
    )
    if device.programme_id is not None:
        programme = await uow.programmes.get(device.programme_id)
        assert programme is not None
        check_eligible(eligibility_rules(programme), facts_of(participant), today=now.date())
    loan = DeviceLoan(
        device_id=device.id, participant_id=participant.id, loaned_at=now, due_at=command.due_at
    )
    uow.devices.add_loan(loan)
    uow.publish(
        DeviceLoaned(
            **loan_event_fields(loan, participant),
            programme_id=device.programme_id,
            occurred_at=now,
        )
    )
    try:
        await uow.flush()
    except IntegrityError:  # ux_device_loan_open: a concurrent loan of the same device won
        raise DeviceOnLoan("This device is on another loan; it must be returned first.") from None
    return loan


async def return_device(*, uow: InclusionUnitOfWork, command: ReturnDevice) -> DeviceLoan:
    now = datetime.now(UTC)
    device = await _locked(uow, command.device_id)
    loan = await uow.devices.open_loan(device.id)
    if loan is None:
        raise DeviceNotOnLoan("This device is not on loan.")
    participant = await uow.participants.get(loan.participant_id)
    assert participant is not None
    loan.returned_at = now
    loan.return_condition = command.condition.value
    device.condition = command.condition.value
    uow.publish(
        DeviceReturned(
            **loan_event_fields(loan, participant),
            condition=command.condition.value,
            was_overdue=loan.due_at < now,
            occurred_at=now,
        )
    )
    return loan


def is_overdue(loan: DeviceLoan, now: datetime) -> bool:
    return loan.returned_at is None and loan.due_at < now


async def device_views(
    *,
    repos: Repositories,
    device_ids: list[uuid.UUID] | None = None,
    on_loan: bool | None = None,
    overdue: bool | None = None,
) -> list[DeviceView]:
    """The inventory (by make, model, serial) with each device's loans; ``on_loan`` and
    ``overdue`` keep only the devices that are (True) or are not (False)."""
    devices = await repos.devices.matching(device_ids)
    loans: dict[uuid.UUID, list[DeviceLoan]] = {d.id: [] for d in devices}
    for loan in await repos.devices.loans_of(list(loans)):
        loans[loan.device_id].append(loan)
    now = datetime.now(UTC)
    views = [DeviceView(d, loans[d.id], now) for d in devices]
    if on_loan is not None:
        views = [v for v in views if v.on_loan == on_loan]
    if overdue is not None:
        views = [v for v in views if v.overdue == overdue]
    return views


async def find_device(*, repos: Repositories, device_id: uuid.UUID) -> DeviceView:
    views = await device_views(repos=repos, device_ids=[device_id])
    if not views:
        raise DeviceNotFound(f"No device with id {device_id}.")
    return views[0]
