"""``/api/v1/devices``: the lending inventory, loans, returns and history (staff only)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from inclusion.api import presenters
from inclusion.api.deps import InclusionUowDep, ReadDep
from inclusion.api.openapi import created_responses
from inclusion.api.schemas import (
    DeviceCreate,
    DevicePublic,
    DeviceReturnRequest,
    LoanCreate,
    LoanPublic,
)
from inclusion.application import devices
from servicekit.identity import StaffPrincipal
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DevicePublic,
    summary="Add a device to the inventory",
    responses=created_responses("device", (409, "A device with this serial exists")),
)
async def add_device(
    body: DeviceCreate, uow: InclusionUowDep, response: Response, staff: StaffPrincipal
) -> DevicePublic:
    device = await devices.add_device(uow=uow, command=devices.AddDevice(**body.model_dump()))
    response.headers["Location"] = f"/api/v1/devices/{device.id}"
    return presenters.device(await devices.find_device(repos=uow, device_id=device.id))


@router.get("", response_model=list[DevicePublic], summary="The inventory, with loans")
async def list_devices(
    repos: ReadDep, staff: StaffPrincipal, on_loan: bool | None = None, overdue: bool | None = None
) -> list[DevicePublic]:
    return [
        presenters.device(v)
        for v in await devices.device_views(repos=repos, on_loan=on_loan, overdue=overdue)
    ]


@router.get(
    "/{device_id}",
    response_model=DevicePublic,
    summary="A device, its current loan and its loan history",
)
async def read_device(device_id: uuid.UUID, repos: ReadDep, staff: StaffPrincipal) -> DevicePublic:
    return presenters.device(await devices.find_device(repos=repos, device_id=device_id))


@router.post(
    "/{device_id}/wipe",
    response_model=DevicePublic,
    summary="Record that the device was wiped (needed before each loan)",
    responses=problem_responses((409, "The device is on loan")),
)
async def wipe_device(
    device_id: uuid.UUID, uow: InclusionUowDep, staff: StaffPrincipal
) -> DevicePublic:
    await devices.record_wipe(uow=uow, device_id=device_id)
    return presenters.device(await devices.find_device(repos=uow, device_id=device_id))


@router.post(
    "/{device_id}/loans",
    status_code=status.HTTP_201_CREATED,
    response_model=LoanPublic,
    summary="Lend the device (emits DeviceLoaned)",
    responses=problem_responses(
        (409, "Already on loan, not wiped since its last loan, or broken"),
        (422, "Participant not eligible or unknown, due date in the past"),
    ),
)
async def lend_device(
    device_id: uuid.UUID, body: LoanCreate, uow: InclusionUowDep, staff: StaffPrincipal
) -> LoanPublic:
    loan = await devices.lend(
        uow=uow,
        command=devices.LendDevice(
            device_id=device_id, participant_id=body.participant_id, due_at=body.due_at
        ),
    )
    return presenters.loan(loan)


@router.post(
    "/{device_id}/return",
    response_model=LoanPublic,
    summary="Record the device's return (emits DeviceReturned)",
    responses=problem_responses((409, "The device is not on loan")),
)
async def return_device(
    device_id: uuid.UUID, body: DeviceReturnRequest, uow: InclusionUowDep, staff: StaffPrincipal
) -> LoanPublic:
    loan = await devices.return_device(
        uow=uow, command=devices.ReturnDevice(device_id=device_id, condition=body.condition)
    )
    return presenters.loan(loan)
