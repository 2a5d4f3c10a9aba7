"""Data-SIM vouchers: stock per connectivity programme, allocation to eligible participants,
never twice.

Allocation locks the programme's row, so allocations from one programme's stock queue; the
partial unique index ``ux_voucher_participant`` backs "never twice" up in the database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts.inclusion import VoucherAllocated
from inclusion.application.catalogue import UnknownReference, eligibility_rules
from inclusion.application.enrolments import facts_of
from inclusion.domain.programmes import (
    ProgrammeKind,
    ProgrammeNotOpen,
    ProgrammeStatus,
    check_eligible,
)
from inclusion.persistence.tables import Participant, Programme, Voucher
from servicekit.errors import Conflict, DomainError
from servicekit.uow import UnitOfWork


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


async def _programme(uow: UnitOfWork, programme_id: uuid.UUID, *, lock: bool) -> Programme:
    query = select(Programme).where(col(Programme.id) == programme_id)
    if lock:  # FOR UPDATE on PostgreSQL; SQLite serialises writers anyway
        query = query.with_for_update().execution_options(populate_existing=True)
    programme = (await uow.session.execute(query)).scalars().first()
    if programme is None:
        raise UnknownReference(f"No programme with id {programme_id}.", rule="programme-exists")
    if programme.kind != ProgrammeKind.CONNECTIVITY:
        raise NotAConnectivityProgramme("Vouchers belong to connectivity programmes.",
                                        rule="connectivity-programme")
    return programme


async def add_vouchers(*, uow: UnitOfWork, command: AddVouchers) -> int:
    await _programme(uow, command.programme_id, lock=False)
    now = datetime.now(UTC)
    for code in dict.fromkeys(command.codes):
        uow.session.add(Voucher(programme_id=command.programme_id, provider=command.provider,
                                code=code, added_at=now))
    try:
        await uow.commit()
    except IntegrityError:
        await uow.rollback()
        raise DuplicateVoucherCode("One of these voucher codes is already in stock.") \
            from None
    return len(dict.fromkeys(command.codes))


async def allocate(*, uow: UnitOfWork, command: AllocateVoucher) -> Voucher:
    now = datetime.now(UTC)
    programme = await _programme(uow, command.programme_id, lock=True)
    if programme.status != ProgrammeStatus.PUBLISHED:
        raise ProgrammeNotOpen("This programme is not open.", current_status=programme.status)
    participant = await uow.session.get(Participant, command.participant_id)
    if participant is None or participant.erased_at is not None:
        raise UnknownReference(f"No participant with id {command.participant_id}.",
                               rule="participant-exists")
    held = (await uow.session.execute(select(col(Voucher.id)).where(
        col(Voucher.programme_id) == programme.id,
        col(Voucher.participant_id) == participant.id))).scalars().first()
    if held is not None:
        raise VoucherAlreadyAllocated("This participant already has a voucher from this "
                                      "programme.", voucher_id=str(held))
    check_eligible(eligibility_rules(programme), facts_of(participant), today=now.date())
    voucher = (await uow.session.execute(
        select(Voucher).where(col(Voucher.programme_id) == programme.id,
                              col(Voucher.participant_id).is_(None))
        .order_by(col(Voucher.added_at), col(Voucher.code)).limit(1))).scalars().first()
    if voucher is None:
        raise VoucherStockEmpty("This programme has no vouchers left; more are on order.",
                                rule="stock")
    voucher.participant_id = participant.id
    voucher.allocated_at = now
    uow.publish(VoucherAllocated(voucher_id=voucher.id, programme_id=programme.id,
                                 participant_id=participant.id, citizen_id=participant.subject,
                                 provider=voucher.provider, occurred_at=now))
    try:
        await uow.commit()
    except IntegrityError:
        await uow.rollback()
        raise VoucherAlreadyAllocated("This participant already has a voucher from this "
                                      "programme.") from None
    return voucher


async def stock(*, session: AsyncSession) -> list[Stock]:
    rows = (await session.execute(
        select(col(Programme.id), col(Programme.title), func.count(col(Voucher.id)),
               func.count(col(Voucher.participant_id)))
        .join(Voucher, col(Voucher.programme_id) == col(Programme.id))
        .group_by(col(Programme.id), col(Programme.title))
        .order_by(col(Programme.title)))).all()
    return [Stock(pid, title, total, allocated) for pid, title, total, allocated in rows]


async def vouchers_of(*, session: AsyncSession, subject: str) -> list[Voucher]:
    return list((await session.execute(
        select(Voucher).join(Participant, col(Participant.id) == col(Voucher.participant_id))
        .where(col(Participant.subject) == subject)
        .order_by(col(Voucher.allocated_at)))).scalars())
