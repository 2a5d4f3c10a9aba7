"""``/api/v1/vouchers``: data-SIM voucher stock (staff), allocation (staff), and a citizen's
own vouchers."""

from __future__ import annotations

from fastapi import APIRouter, status

from inclusion.api.deps import InclusionUowDep, ReadDep
from inclusion.api.schemas import (
    AllocationCreate,
    VoucherPublic,
    VouchersAdd,
    VouchersAdded,
    VoucherStock,
)
from inclusion.application import vouchers
from servicekit.identity import CitizenPrincipal, StaffPrincipal
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/vouchers", tags=["vouchers"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=VouchersAdded,
    summary="Add voucher codes to a connectivity programme's stock",
    responses=problem_responses(
        (409, "A code is already in stock"), (422, "Unknown or not a connectivity programme")
    ),
)
async def add_vouchers(
    body: VouchersAdd, uow: InclusionUowDep, staff: StaffPrincipal
) -> VouchersAdded:
    added = await vouchers.add_vouchers(
        uow=uow,
        command=vouchers.AddVouchers(
            programme_id=body.programme_id, provider=body.provider, codes=list(body.codes)
        ),
    )
    return VouchersAdded(added=added)


@router.get("/stock", response_model=list[VoucherStock], summary="Voucher stock per programme")
async def voucher_stock(repos: ReadDep, staff: StaffPrincipal) -> list[VoucherStock]:
    return [
        VoucherStock.model_validate(s, from_attributes=True)
        for s in await vouchers.stock(repos=repos)
    ]


@router.post(
    "/allocations",
    status_code=status.HTTP_201_CREATED,
    response_model=VoucherPublic,
    summary="Allocate a voucher to a participant (emits VoucherAllocated)",
    responses=problem_responses(
        (409, "Stock empty, already allocated, or programme not open"),
        (422, "Not eligible, unknown participant or programme"),
    ),
)
async def allocate_voucher(
    body: AllocationCreate, uow: InclusionUowDep, staff: StaffPrincipal
) -> VoucherPublic:
    voucher = await vouchers.allocate(
        uow=uow,
        command=vouchers.AllocateVoucher(
            programme_id=body.programme_id, participant_id=body.participant_id
        ),
    )
    return VoucherPublic.model_validate(voucher.model_dump())


@router.get("/mine", response_model=list[VoucherPublic], summary="My vouchers and their codes")
async def my_vouchers(repos: ReadDep, citizen: CitizenPrincipal) -> list[VoucherPublic]:
    assert citizen.subject is not None
    return [
        VoucherPublic.model_validate(v.model_dump())
        for v in await vouchers.vouchers_of(repos=repos, subject=citizen.subject)
    ]
