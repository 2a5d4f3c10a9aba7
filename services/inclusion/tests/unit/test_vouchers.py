"""Data-SIM vouchers (application/vouchers.py) on in-memory repositories."""

from __future__ import annotations

import uuid

import pytest

from inclusion.application import vouchers
from inclusion.application.programmes import UnknownReference
from inclusion.domain.programmes import NotEligible, ProgrammeNotOpen

from .fakes import FakeUnitOfWork, a_participant, a_programme

CONNECTIVITY = "connectivity"


async def test_vouchers_are_allocated_oldest_first_and_never_twice() -> None:
    uow = FakeUnitOfWork()
    data = a_programme(uow.store, kind=CONNECTIVITY, title="Free mobile data")
    added = await vouchers.add_vouchers(
        uow=uow, command=vouchers.AddVouchers(data.id, "Vodafone", ["B-2", "A-1", "B-2"])
    )
    assert added == 2
    person = a_participant(uow.store, "c1")
    voucher = await vouchers.allocate(uow=uow, command=vouchers.AllocateVoucher(data.id, person.id))
    assert voucher.participant_id == person.id and voucher.allocated_at is not None
    assert uow.types() == ["VoucherAllocated"]
    with pytest.raises(vouchers.VoucherAlreadyAllocated):
        await vouchers.allocate(uow=uow, command=vouchers.AllocateVoucher(data.id, person.id))
    [stock] = await vouchers.stock(repos=uow)
    assert (stock.total, stock.allocated, stock.in_stock) == (2, 1, 1)
    assert await vouchers.vouchers_of(repos=uow, subject="c1") == [voucher]

    await vouchers.allocate(
        uow=uow, command=vouchers.AllocateVoucher(data.id, a_participant(uow.store, "c2").id)
    )
    with pytest.raises(vouchers.VoucherStockEmpty):
        await vouchers.allocate(
            uow=uow, command=vouchers.AllocateVoucher(data.id, a_participant(uow.store, "c3").id)
        )


async def test_refusals() -> None:
    uow = FakeUnitOfWork()
    course = a_programme(uow.store)
    with pytest.raises(vouchers.NotAConnectivityProgramme):
        await vouchers.add_vouchers(
            uow=uow, command=vouchers.AddVouchers(course.id, "Vodafone", ["A"])
        )
    with pytest.raises(UnknownReference):
        await vouchers.add_vouchers(
            uow=uow, command=vouchers.AddVouchers(uuid.uuid4(), "Vodafone", ["A"])
        )
    closed = a_programme(uow.store, kind=CONNECTIVITY, status="closed")
    with pytest.raises(ProgrammeNotOpen):
        await vouchers.allocate(
            uow=uow, command=vouchers.AllocateVoucher(closed.id, a_participant(uow.store).id)
        )
    strict = a_programme(uow.store, kind=CONNECTIVITY, eligibility={"no_connection_at_home": True})
    await vouchers.add_vouchers(uow=uow, command=vouchers.AddVouchers(strict.id, "EE", ["A"]))
    with pytest.raises(UnknownReference):
        await vouchers.allocate(uow=uow, command=vouchers.AllocateVoucher(strict.id, uuid.uuid4()))
    connected = a_participant(uow.store, "c9", has_connection_at_home=True)
    with pytest.raises(NotEligible):
        await vouchers.allocate(uow=uow, command=vouchers.AllocateVoucher(strict.id, connected.id))
    uow.conflict_on_flush = True  # a code already in stock
    with pytest.raises(vouchers.DuplicateVoucherCode):
        await vouchers.add_vouchers(uow=uow, command=vouchers.AddVouchers(strict.id, "EE", ["A"]))
    assert uow.published == []
