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

from citizen_services.api.deps import CatalogueInUow, RequestReads, RequestsInUow
from citizen_services.api.headers import header
from citizen_services.api.schemas import ONE_LINE, TEXT, RequestCreate
from citizen_services.application import requests
from citizen_services.domain import geo
from citizen_services.domain.requests import InvalidRequest, NoteVisibility, RequestStatus
from servicekit.deps import UowDep
from servicekit.errors import DomainError
from servicekit.identity import Principal, Role, StaffPrincipal, require_roles
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/service-requests", tags=["service requests"])


class UnknownArea(DomainError):
    status, code, title = 400, "unknown-area", "Unknown area"


CitizenOrStaff = Annotated[Principal, require_roles(Role.CITIZEN, Role.STAFF, Role.ADMIN)]
Citizen = Annotated[Principal, require_roles(Role.CITIZEN)]


class RequestChange(BaseModel):
    """A staff update: any of status, assignment, note (at least one)."""

    model_config = ConfigDict(extra="forbid")

    status: RequestStatus | None = None
    assigned_to: str | None = Field(
        default=None,
        max_length=200,
        pattern=ONE_LINE,
        description="Staff subject id; empty to unassign",
    )
    note: str | None = Field(default=None, min_length=1, max_length=4000, pattern=TEXT)
    note_visibility: NoteVisibility = Field(
        default=NoteVisibility.INTERNAL,
        description=(
            "internal (default): staff only. public: shown to the reporter and, if the request "
            "is public, on Open311."
        ),
    )


class RequestUpdatePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    status: str
    previous_status: str | None
    note: str | None
    note_visibility: str | None = None
    assigned_to: str | None
    occurred_at: datetime
    source: str | None = Field(
        default=None, description="open311: a citizen's update an Open311 client posted"
    )
    reported_status: str | None = Field(
        default=None, description="The status that client reported (the request's is unchanged)"
    )

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
    area: str | None = Field(
        default=None,
        description="The MK postcode district it is in (MK9), from its location or the "
        "postcode in its address; see GET /api/v1/service-requests/areas",
    )
    attributes: dict[str, Any]
    extra_attributes: dict[str, Any] | None = Field(
        default=None,
        description="Attributes an Open311 client sent that the service does not define "
        "(FixMyStreet's uprn, easting, ...): kept as sent",
    )
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


class AreaPublic(BaseModel):
    code: str = Field(description="The postcode district: the value of the queue's area filter")
    name: str = Field(description="The places it covers")
    in_milton_keynes: bool = Field(description="Whether it lies (mostly) in the council's area")


class RequestPage(BaseModel):
    items: list[RequestPublic]
    page: int
    size: int
    total: int


def _viewer(principal: Principal) -> requests.Viewer:
    return requests.Viewer(
        staff=principal.has_role(Role.STAFF, Role.ADMIN), subject=principal.subject
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RequestPublic,
    summary="Report a problem against a published service (citizens)",
    responses={201: {"headers": header("Location", "Where the request is")}},
)
async def submit_request(
    body: RequestCreate,
    uow: UowDep,
    entries: CatalogueInUow,
    service_requests: RequestsInUow,
    response: Response,
    citizen: Citizen,
) -> RequestPublic:
    data = body.model_dump()
    request = await requests.submit_request(
        uow=uow,
        entries=entries,
        service_requests=service_requests,
        command=requests.SubmitRequest(**data, citizen_id=citizen.subject),
    )
    response.headers["Location"] = f"/api/v1/service-requests/{request.id}"
    return RequestPublic.model_validate(requests.seen_by(request, _viewer(citizen)))


@router.get(
    "",
    response_model=RequestPage,
    summary="Citizens: their own requests. Staff: the queue, filtered",
    responses=problem_responses((400, "Unknown area")),
)
async def list_requests(
    service_requests: RequestReads,
    principal: CitizenOrStaff,
    status_: Annotated[RequestStatus | None, Query(alias="status")] = None,
    service_code: Annotated[str | None, Query(max_length=64)] = None,
    assigned_to: Annotated[str | None, Query(max_length=200)] = None,
    area: Annotated[
        str | None,
        Query(max_length=40, description="A postcode district (MK9): see /areas"),
    ] = None,
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> RequestPage:
    rows, total = await requests.list_requests(
        service_requests=service_requests,
        viewer=_viewer(principal),
        status=status_.value if status_ else None,
        service_code=service_code,
        assigned_to=assigned_to,
        area=_area(area),
        page=page,
        size=size,
    )
    return RequestPage(
        items=[RequestPublic.model_validate(r) for r in rows], page=page, size=size, total=total
    )


def _area(value: str | None) -> str | None:
    """The district code of the area filter (any case, spaces around ignored)."""
    if value is None or not value.strip():
        return None
    code = value.strip().upper()
    if code not in geo.districts():
        raise UnknownArea(
            f"'{value[:40]}' is not an area: use a postcode district such as MK9 "
            "(GET /api/v1/service-requests/areas lists them).",
            errors=[{"field": "area", "message": "not a known postcode district"}],
        )
    return code


@router.get(
    "/areas",
    response_model=list[AreaPublic],
    summary="The areas of the queue's filter: MK postcode districts, in order",
)
async def list_areas(staff: StaffPrincipal) -> list[AreaPublic]:
    return [
        AreaPublic(code=d.code, name=d.area, in_milton_keynes=d.in_milton_keynes)
        for d in geo.districts().values()
    ]


@router.get(
    "/{request_id}",
    response_model=RequestPublic,
    summary="One request with its updates (citizens: only their own)",
)
async def read_request(
    request_id: uuid.UUID, service_requests: RequestReads, principal: CitizenOrStaff
) -> RequestPublic:
    viewer = _viewer(principal)
    request = await requests.find_request(
        service_requests=service_requests, request_id=request_id, viewer=viewer
    )
    out = RequestPublic.model_validate(request)
    out.updates = [
        RequestUpdatePublic.model_validate(u)
        for u in await requests.request_updates(
            service_requests=service_requests, request_id=request_id, viewer=viewer
        )
    ]
    return out


@router.post(
    "/{request_id}/updates",
    response_model=RequestPublic,
    summary="Staff: change status, assign, add a note (emits StatusChanged)",
    responses=problem_responses((422, "Nothing to change")),
)
async def update_request(
    request_id: uuid.UUID,
    body: RequestChange,
    uow: UowDep,
    service_requests: RequestsInUow,
    staff: StaffPrincipal,
) -> RequestPublic:
    if body.status is None and body.assigned_to is None and body.note is None:
        raise InvalidRequest(
            "Send a status, an assignment or a note.",
            errors=[{"field": "status", "message": "nothing to change"}],
        )
    request = await requests.update_request(
        uow=uow,
        service_requests=service_requests,
        command=requests.UpdateRequest(
            request_id=request_id,
            status=body.status,
            note=body.note,
            note_visibility=body.note_visibility,
            assigned_to=body.assigned_to,
            actor=staff.subject,
        ),
    )
    return RequestPublic.model_validate(request)
