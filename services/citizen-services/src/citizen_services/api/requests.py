"""Service requests: ``/api/v1/service-requests``.

Citizens report against a published, reportable service and see only their own requests
(another's is 404); staff work the queue: filter, assign, change status with a note. Every
change is an update row; a status change emits ServiceRequestStatusChanged.

A citizen's report is private unless they send ``public: true`` (then Open311 shows it).
A staff note is ``internal`` unless sent with ``note_visibility: public``; a citizen's own
view shows public notes only, and nothing of the council's internal working (assignments,
internal-note-only updates).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from citizen_services.api.schemas import ONE_LINE, TEXT
from citizen_services.application import requests
from citizen_services.domain.requests import (
    MAX_DESCRIPTION,
    InvalidRequest,
    NoteVisibility,
    RequestStatus,
    is_public_note,
    shown_outside,
)
from citizen_services.persistence.tables import ServiceRequest, ServiceRequestUpdate
from servicekit.deps import ReadDbDep, UowDep
from servicekit.identity import Principal, Role, StaffPrincipal, require_roles
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/service-requests", tags=["service requests"])

CitizenOrStaff = Annotated[Principal, require_roles(Role.CITIZEN, Role.STAFF, Role.ADMIN)]
Citizen = Annotated[Principal, require_roles(Role.CITIZEN)]
AttributeValue = (Annotated[str, Field(max_length=4000, pattern=TEXT)] | float
                  | list[Annotated[str, Field(max_length=100, pattern=ONE_LINE)]])


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=254,
                              pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$")
    first_name: str | None = Field(default=None, max_length=100, pattern=ONE_LINE)
    last_name: str | None = Field(default=None, max_length=100, pattern=ONE_LINE)
    phone: str | None = Field(default=None, max_length=40, pattern=r"^\+?[0-9 ()\-]{3,40}$")


class RequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = Field(default="", max_length=MAX_DESCRIPTION, pattern=TEXT)
    lat: float | None = Field(default=None, ge=-90, le=90)
    long: float | None = Field(default=None, ge=-180, le=180)
    address: str | None = Field(default=None, min_length=1, max_length=500, pattern=ONE_LINE)
    attributes: dict[Annotated[str, Field(max_length=64)], AttributeValue] = Field(
        default_factory=dict, max_length=50)
    contact: Contact | None = None
    contact_consent: bool = False
    public: bool = Field(default=False, description=(
        "Publish this report on Open311 (description, address and location included; "
        "never who reported it). Default: only you and council staff see it."))


class RequestChange(BaseModel):
    """A staff update: any of status, assignment, note (at least one)."""

    model_config = ConfigDict(extra="forbid")

    status: RequestStatus | None = None
    assigned_to: str | None = Field(default=None, max_length=200, pattern=ONE_LINE,
                                    description="Staff subject id; empty to unassign")
    note: str | None = Field(default=None, min_length=1, max_length=4000, pattern=TEXT)
    note_visibility: NoteVisibility = Field(default=NoteVisibility.INTERNAL, description=(
        "internal (default): staff only. public: shown to the reporter and, if the request "
        "is public, on Open311."))


class RequestUpdatePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    status: str
    previous_status: str | None
    note: str | None
    note_visibility: str | None = None
    assigned_to: str | None
    occurred_at: datetime

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class RequestPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    service_code: str
    status: str
    description: str
    lat: float | None
    long: float | None
    address: str | None
    attributes: dict[str, Any]
    public: bool = False
    assigned_to: str | None
    created_at: datetime
    updated_at: datetime
    updates: list[RequestUpdatePublic] = Field(default_factory=list)

    @field_validator("created_at", "updated_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value

    @field_validator("attributes", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


class RequestPage(BaseModel):
    items: list[RequestPublic]
    page: int
    size: int
    total: int


def _is_staff(principal: Principal) -> bool:
    return principal.has_role(Role.STAFF, Role.ADMIN)


def _view(request: ServiceRequest, principal: Principal) -> RequestPublic:
    """The request as staff see it, or as its citizen does (no assignment)."""
    out = RequestPublic.model_validate(request)
    if not _is_staff(principal):
        out.assigned_to = None
    return out


def _timeline(updates: list[ServiceRequestUpdate],
              principal: Principal) -> list[RequestUpdatePublic]:
    """Staff: every update. The citizen: the submission, status changes and public notes,
    never an internal note or an assignment."""
    if _is_staff(principal):
        return [RequestUpdatePublic.model_validate(u) for u in updates]
    return [RequestUpdatePublic(
        status=u.status, previous_status=u.previous_status,
        note=u.note if is_public_note(u.note, u.note_visibility) else None,
        note_visibility=NoteVisibility.PUBLIC.value if is_public_note(
            u.note, u.note_visibility) else None,
        assigned_to=None, occurred_at=u.occurred_at)
        for u in updates if u.previous_status is None or shown_outside(
            status=u.status, previous_status=u.previous_status, note=u.note,
            note_visibility=u.note_visibility)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RequestPublic,
             summary="Report a problem against a published service (citizens)",
             responses={201: {"headers": {"Location": {
                 "description": "Where the request is", "required": True,
                 "schema": {"type": "string"}}}}})
async def submit_request(body: RequestCreate, uow: UowDep, response: Response,
                         citizen: Citizen) -> RequestPublic:
    data = body.model_dump()
    request = await requests.submit_request(uow=uow, command=requests.SubmitRequest(
        **data, citizen_id=citizen.subject))
    response.headers["Location"] = f"/api/v1/service-requests/{request.id}"
    return _view(request, citizen)


@router.get("", response_model=RequestPage,
            summary="Citizens: their own requests. Staff: the queue, filtered")
async def list_requests(
        session: ReadDbDep, principal: CitizenOrStaff,
        status_: Annotated[RequestStatus | None, Query(alias="status")] = None,
        service_code: Annotated[str | None, Query(max_length=64)] = None,
        assigned_to: Annotated[str | None, Query(max_length=200)] = None,
        page: Annotated[int, Query(ge=1, le=10000)] = 1,
        size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> RequestPage:
    rows, total = await requests.list_requests(
        session=session, citizen_id=None if _is_staff(principal) else principal.subject or "",
        status=status_.value if status_ else None, service_code=service_code,
        assigned_to=assigned_to, page=page, size=size)
    return RequestPage(items=[_view(r, principal) for r in rows], page=page,
                       size=size, total=total)


@router.get("/{request_id}", response_model=RequestPublic,
            summary="One request with its updates (citizens: only their own)")
async def read_request(request_id: uuid.UUID, session: ReadDbDep,
                       principal: CitizenOrStaff) -> RequestPublic:
    request = await requests.find_request(
        session=session, request_id=request_id,
        citizen_id=None if _is_staff(principal) else principal.subject or "")
    out = _view(request, principal)
    out.updates = _timeline(
        await requests.request_updates(session=session, request_id=request_id), principal)
    return out


@router.post("/{request_id}/updates", response_model=RequestPublic,
             summary="Staff: change status, assign, add a note (emits StatusChanged)",
             responses=problem_responses((422, "Nothing to change")))
async def update_request(request_id: uuid.UUID, body: RequestChange, uow: UowDep,
                         staff: StaffPrincipal) -> RequestPublic:
    if body.status is None and body.assigned_to is None and body.note is None:
        raise InvalidRequest("Send a status, an assignment or a note.",
                             errors=[{"field": "status", "message": "nothing to change"}])
    request = await requests.update_request(uow=uow, command=requests.UpdateRequest(
        request_id=request_id, status=body.status, note=body.note,
        note_visibility=body.note_visibility, assigned_to=body.assigned_to, actor=staff.subject))
    return RequestPublic.model_validate(request)
