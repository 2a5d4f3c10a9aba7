"""``/api/v1/devices``: the lending inventory, loans, returns and history (staff only)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Response, status

from inclusion.api.schemas import (
    DeviceCreate,
    DevicePublic,
    DeviceReturnRequest,
    LoanCreate,
    LoanPublic,
)
from inclusion.application import devices
from inclusion.persistence.tables import DeviceLoan
from servicekit.deps import ReadDbDep, UowDep
from servicekit.identity import StaffPrincipal
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
LOCATION = {"Location": {"description": "Where the new device is.", "required": True,
                         "schema": {"type": "string"}}}


def _loan(loan: DeviceLoan, now: datetime) -> LoanPublic:
    return LoanPublic.model_validate({**loan.model_dump(), "overdue": (
        loan.returned_at is None and loan.due_at < now)})


def _device(view: devices.DeviceView) -> DevicePublic:
    now = datetime.now(UTC)
    current = view.current_loan
    return DevicePublic.model_validate({
        **view.device.model_dump(), "on_loan": current is not None,
        "current_loan": _loan(current, now) if current else None,
        "history": [_loan(loan, now) for loan in view.loans]})


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DevicePublic,
             summary="Add a device to the inventory",
             responses={201: {"headers": LOCATION},
                        **problem_responses((409, "A device with this serial exists"))})
async def add_device(body: DeviceCreate, uow: UowDep, response: Response,
                     staff: StaffPrincipal) -> DevicePublic:
    device = await devices.add_device(uow=uow, command=devices.AddDevice(**body.model_dump()))
    response.headers["Location"] = f"/api/v1/devices/{device.id}"
    return _device(devices.DeviceView(device, []))


@router.get("", response_model=list[DevicePublic], summary="The inventory, with loans")
async def list_devices(session: ReadDbDep, staff: StaffPrincipal,
                       on_loan: bool | None = None,
                       overdue: bool | None = None) -> list[DevicePublic]:
    found = [_device(v) for v in await devices.device_views(session=session)]
    if on_loan is not None:
        found = [d for d in found if d.on_loan == on_loan]
    if overdue is not None:
        found = [d for d in found
                 if bool(d.current_loan and d.current_loan.overdue) == overdue]
    return found


@router.get("/{device_id}", response_model=DevicePublic,
            summary="A device, its current loan and its loan history")
async def read_device(device_id: uuid.UUID, session: ReadDbDep,
                      staff: StaffPrincipal) -> DevicePublic:
    return _device(await devices.find_device(session=session, device_id=device_id))


@router.post("/{device_id}/wipe", response_model=DevicePublic,
             summary="Record that the device was wiped (needed before each loan)",
             responses=problem_responses((409, "The device is on loan")))
async def wipe_device(device_id: uuid.UUID, uow: UowDep, session: ReadDbDep,
                      staff: StaffPrincipal) -> DevicePublic:
    await devices.record_wipe(uow=uow, device_id=device_id)
    return _device(await devices.find_device(session=session, device_id=device_id))


@router.post("/{device_id}/loans", status_code=status.HTTP_201_CREATED,
             response_model=LoanPublic, summary="Lend the device (emits DeviceLoaned)",
             responses=problem_responses(
                 (409, "Already on loan, not wiped since its last loan, or broken"),
                 (422, "Participant not eligible or unknown, due date in the past")))
async def lend_device(device_id: uuid.UUID, body: LoanCreate, uow: UowDep,
                      staff: StaffPrincipal) -> LoanPublic:
    loan = await devices.lend(uow=uow, command=devices.LendDevice(
        device_id=device_id, participant_id=body.participant_id, due_at=body.due_at))
    return _loan(loan, datetime.now(UTC))


@router.post("/{device_id}/return", response_model=LoanPublic,
             summary="Record the device's return (emits DeviceReturned)",
             responses=problem_responses((409, "The device is not on loan")))
async def return_device(device_id: uuid.UUID, body: DeviceReturnRequest, uow: UowDep,
                        staff: StaffPrincipal) -> LoanPublic:
    loan = await devices.return_device(uow=uow, command=devices.ReturnDevice(
        device_id=device_id, condition=body.condition))
    return _loan(loan, datetime.now(UTC))
