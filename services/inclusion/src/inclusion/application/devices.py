"""Device lending: inventory, loans, returns, history.

Lending locks the device's row (``FOR UPDATE`` on PostgreSQL; SQLite serialises writers),
and the partial unique index ``ux_device_loan_open`` backs the rule up in the database: a
device is never on two loans, whatever the interleaving.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts.inclusion import DeviceLoaned, DeviceReturned
from inclusion.application.catalogue import UnknownReference, eligibility_rules
from inclusion.application.enrolments import facts_of
from inclusion.domain.devices import (
    Condition,
    DeviceNotOnLoan,
    DeviceOnLoan,
    DuplicateSerial,
    check_lendable,
)
from inclusion.domain.programmes import check_eligible
from inclusion.persistence.tables import Device, DeviceLoan, Participant, Programme
from servicekit.errors import NotFound
from servicekit.uow import UnitOfWork


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

    @property
    def current_loan(self) -> DeviceLoan | None:
        return next((loan for loan in self.loans if loan.returned_at is None), None)


async def add_device(*, uow: UnitOfWork, command: AddDevice) -> Device:
    if command.programme_id is not None and \
            await uow.session.get(Programme, command.programme_id) is None:
        raise UnknownReference(f"No programme with id {command.programme_id}.",
                               rule="programme-exists")
    device = Device(make=command.make, model=command.model, serial=command.serial,
                    condition=command.condition.value, programme_id=command.programme_id,
                    wiped_at=command.wiped_at, created_at=datetime.now(UTC))
    uow.session.add(device)
    try:
        await uow.commit()
    except IntegrityError:
        await uow.rollback()
        raise DuplicateSerial(f"Serial '{command.serial}' is already in the inventory.") \
            from None
    return device


async def _locked(uow: UnitOfWork, device_id: uuid.UUID) -> Device:
    device = (await uow.session.execute(
        select(Device).where(col(Device.id) == device_id).with_for_update()
        .execution_options(populate_existing=True))).scalars().first()
    if device is None:
        raise DeviceNotFound(f"No device with id {device_id}.")
    return device


async def _open_loan(uow: UnitOfWork, device_id: uuid.UUID) -> DeviceLoan | None:
    return (await uow.session.execute(select(DeviceLoan).where(
        col(DeviceLoan.device_id) == device_id,
        col(DeviceLoan.returned_at).is_(None)))).scalars().first()


async def record_wipe(*, uow: UnitOfWork, device_id: uuid.UUID) -> Device:
    device = await _locked(uow, device_id)
    if await _open_loan(uow, device_id) is not None:
        raise DeviceOnLoan("A device on loan cannot be wiped.")
    device.wiped_at = datetime.now(UTC)
    await uow.commit()
    return device


async def lend(*, uow: UnitOfWork, command: LendDevice) -> DeviceLoan:
    now = datetime.now(UTC)
    device = await _locked(uow, command.device_id)
    participant = await uow.session.get(Participant, command.participant_id)
    if participant is None or participant.erased_at is not None:
        raise UnknownReference(f"No participant with id {command.participant_id}.",
                               rule="participant-exists")
    last_return = (await uow.session.execute(
        select(col(DeviceLoan.returned_at)).where(col(DeviceLoan.device_id) == device.id)
        .order_by(col(DeviceLoan.returned_at).desc()).limit(1))).scalars().first()
    check_lendable(condition=device.condition, wiped_at=device.wiped_at,
                   last_returned_at=last_return,
                   on_loan=await _open_loan(uow, device.id) is not None,
                   due_at=command.due_at, now=now)
    if device.programme_id is not None:
        programme = await uow.session.get(Programme, device.programme_id)
        assert programme is not None
        check_eligible(eligibility_rules(programme), facts_of(participant), today=now.date())
    loan = DeviceLoan(device_id=device.id, participant_id=participant.id, loaned_at=now,
                      due_at=command.due_at)
    uow.session.add(loan)
    uow.publish(DeviceLoaned(device_id=device.id, loan_id=loan.id,
                             participant_id=participant.id, citizen_id=participant.subject,
                             due_at=loan.due_at, programme_id=device.programme_id,
                             occurred_at=now))
    try:
        await uow.commit()
    except IntegrityError:  # ux_device_loan_open: a concurrent loan of the same device won
        await uow.rollback()
        raise DeviceOnLoan("This device is on another loan; it must be returned first.") \
            from None
    return loan


async def return_device(*, uow: UnitOfWork, command: ReturnDevice) -> DeviceLoan:
    now = datetime.now(UTC)
    device = await _locked(uow, command.device_id)
    loan = await _open_loan(uow, device.id)
    if loan is None:
        raise DeviceNotOnLoan("This device is not on loan.")
    participant = await uow.session.get(Participant, loan.participant_id)
    assert participant is not None
    loan.returned_at = now
    loan.return_condition = command.condition.value
    device.condition = command.condition.value
    uow.publish(DeviceReturned(device_id=device.id, loan_id=loan.id,
                               participant_id=participant.id, citizen_id=participant.subject,
                               due_at=loan.due_at, condition=command.condition.value,
                               was_overdue=loan.due_at < now, occurred_at=now))
    await uow.commit()
    return loan


async def device_views(*, session: AsyncSession, device_ids: list[uuid.UUID] | None = None
                       ) -> list[DeviceView]:
    query = select(Device).order_by(col(Device.make), col(Device.model), col(Device.serial))
    if device_ids is not None:
        query = query.where(col(Device.id).in_(device_ids))
    devices = list((await session.execute(query)).scalars())
    loans: dict[uuid.UUID, list[DeviceLoan]] = {d.id: [] for d in devices}
    if devices:
        for loan in (await session.execute(
                select(DeviceLoan).where(col(DeviceLoan.device_id).in_(list(loans)))
                .order_by(col(DeviceLoan.loaned_at).desc()))).scalars():
            loans[loan.device_id].append(loan)
    return [DeviceView(d, loans[d.id]) for d in devices]


async def find_device(*, session: AsyncSession, device_id: uuid.UUID) -> DeviceView:
    views = await device_views(session=session, device_ids=[device_id])
    if not views:
        raise DeviceNotFound(f"No device with id {device_id}.")
    return views[0]
