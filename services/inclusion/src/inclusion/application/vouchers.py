"""Data-SIM vouchers: stock per connectivity programme, allocation to eligible participants,
never twice.

Allocation locks the programme's row, so allocations from one programme's stock queue; the
partial unique index ``ux_voucher_participant`` backs "never twice" up in the database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from contracts.inclusion import VoucherAllocated
from inclusion.application.participants import facts_of
from inclusion.application.programmes import UnknownReference, eligibility_rules
from inclusion.application.unit_of_work import InclusionUnitOfWork
from inclusion.domain.programmes import (
    ProgrammeKind,
    ProgrammeNotOpen,
    ProgrammeStatus,
    check_eligible,
)
from inclusion.persistence.repositories import Repositories
from inclusion.persistence.tables import Programme, Voucher
from servicekit.errors import Conflict, DomainError


class NotAConnectivityProgramme(DomainError):
    status, code, title = 422, "not-a-connectivity-programme", "Not a connectivity programme"


class DuplicateVoucherCode(Conflict):
    code, title = "duplicate-voucher-code", "Voucher code already in stock"


class VoucherStockEmpty(Conflict):
    code, title = "voucher-stock-empty", "No vouchers left"


class VoucherAlreadyAllocated(Conflict):
    code, title = "voucher-already-allocated", "Participant already has a voucher"


@dataclass(frozen=True)
class AddVouchers:
    programme_id: uuid.UUID
    provider: str
    codes: list[str]


@dataclass(frozen=True)
class AllocateVoucher:
    programme_id: uuid.UUID
    participant_id: uuid.UUID


@dataclass(frozen=True)
class Stock:
    programme_id: uuid.UUID
    programme_title: str
    total: int
    allocated: int

    @property
    def in_stock(self) -> int:
        return self.total - self.allocated


async def _programme(uow: InclusionUnitOfWork, programme_id: uuid.UUID, *, lock: bool) -> Programme:
    programme = await (
        uow.programmes.lock(programme_id) if lock else uow.programmes.get(programme_id)
    )
    if programme is None:
        raise UnknownReference(f"No programme with id {programme_id}.", rule="programme-exists")
    if programme.kind != ProgrammeKind.CONNECTIVITY:
        raise NotAConnectivityProgramme(
            "Vouchers belong to connectivity programmes.", rule="connectivity-programme"
        )
    return programme


async def add_vouchers(*, uow: InclusionUnitOfWork, command: AddVouchers) -> int:
    await _programme(uow, command.programme_id, lock=False)
    now = datetime.now(UTC)
    for code in dict.fromkeys(command.codes):
        uow.vouchers.add(
            Voucher(
                programme_id=command.programme_id,
                provider=command.provider,
                code=code,
                added_at=now,
            )
        )
    try:
        await uow.flush()
    except IntegrityError:
        raise DuplicateVoucherCode("One of these voucher codes is already in stock.") from None
    return len(dict.fromkeys(command.codes))


async def allocate(*, uow: InclusionUnitOfWork, command: AllocateVoucher) -> Voucher:
    now = datetime.now(UTC)
    programme = await _programme(uow, command.programme_id, lock=True)
    if programme.status != ProgrammeStatus.PUBLISHED:
        raise ProgrammeNotOpen("This programme is not open.", current_status=programme.status)
    participant = await uow.participants.get(command.participant_id)
    if participant is None or participant.erased_at is not None:
        raise UnknownReference(
            f"No participant with id {command.participant_id}.", rule="participant-exists"
        )
    held = await uow.vouchers.held(programme.id, participant.id)
    if held is not None:
        raise VoucherAlreadyAllocated(
            "This participant already has a voucher from this programme.", voucher_id=str(held)
        )
    check_eligible(eligibility_rules(programme), facts_of(participant), today=now.date())
    voucher = await uow.vouchers.next_free(programme.id)
    if voucher is None:
        raise VoucherStockEmpty(
            "This programme has no vouchers left; more are on order.", rule="stock"
        )
    voucher.participant_id = participant.id
    voucher.allocated_at = now
    uow.publish(
        VoucherAllocated(
            voucher_id=voucher.id,
            programme_id=programme.id,
            participant_id=participant.id,
            citizen_id=participant.subject,
            provider=voucher.provider,
            occurred_at=now,
        )
    )
    try:
        await uow.flush()
    except IntegrityError:
        raise VoucherAlreadyAllocated(
            "This participant already has a voucher from this programme."
        ) from None
    return voucher


async def stock(*, repos: Repositories) -> list[Stock]:
    return [
        Stock(pid, title, total, allocated)
        for pid, title, total, allocated in await repos.vouchers.stock()
    ]


async def vouchers_of(*, repos: Repositories, subject: str) -> list[Voucher]:
    return await repos.vouchers.of_subject(subject)
