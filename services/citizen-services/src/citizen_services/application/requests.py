"""Service request commands (submit, update by staff) and queries (one, a queue)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from citizen_services.domain.catalogue import ServiceStatus
from citizen_services.domain.requests import (
    InvalidRequest,
    NoteVisibility,
    RequestStatus,
    ServiceNotReportable,
    check_attributes,
    check_location,
)
from citizen_services.persistence.tables import (
    CatalogueService,
    ServiceRequest,
    ServiceRequestUpdate,
)
from contracts.citizen_services import ServiceRequestStatusChanged, ServiceRequestSubmitted
from servicekit.errors import NotFound
from servicekit.uow import UnitOfWork


class RequestNotFound(NotFound):
    code, title = "service-request-not-found", "Service request not found"


@dataclass(frozen=True)
class SubmitRequest:
    service_code: str
    description: str = ""
    lat: float | None = None
    long: float | None = None
    address: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    contact: dict[str, Any] | None = None
    contact_consent: bool = False
    citizen_id: str | None = None
    media_url: str | None = None
    #: Shown on Open311: Open311 submissions are; a citizen's report only if they chose so.
    public: bool = False
    #: Who submitted it when that is not the citizen (an Open311 partner's key, staff).
    submitted_by: str | None = None


@dataclass(frozen=True)
class UpdateRequest:
    request_id: uuid.UUID
    status: RequestStatus | None = None
    note: str | None = None
    note_visibility: NoteVisibility = NoteVisibility.INTERNAL
    assigned_to: str | None = None
    actor: str | None = None


async def submit_request(*, uow: UnitOfWork, command: SubmitRequest) -> ServiceRequest:
    service = (await uow.session.execute(select(CatalogueService).where(
        col(CatalogueService.service_code) == command.service_code))).scalar_one_or_none()
    if service is None or service.status != ServiceStatus.PUBLISHED.value:
        raise InvalidRequest(f"No published service with code '{command.service_code}'.",
                             errors=[{"field": "service_code", "message": "unknown service"}])
    if not service.attributes:
        raise ServiceNotReportable(f"'{service.name}' takes no reports.",
                                   errors=[{"field": "service_code",
                                            "message": "not a reportable service"}])
    check_location(lat=command.lat, long=command.long, address=command.address)
    attributes = check_attributes(service.attributes, command.attributes)
    if command.contact and not command.contact_consent:
        raise InvalidRequest("Contact details need the reporter's consent.", errors=[
            {"field": "contact_consent", "message": "must be true to keep contact details"}])
    now = datetime.now(UTC)
    request = ServiceRequest(
        service_id=service.id, service_code=service.service_code,
        status=RequestStatus.OPEN.value, description=command.description, lat=command.lat,
        long=command.long, address=command.address, attributes=attributes,
        citizen_id=command.citizen_id, contact=command.contact or None,
        contact_consent=command.contact_consent, media_url=command.media_url,
        public=command.public, created_at=now, updated_at=now)
    uow.session.add(request)
    uow.session.add(ServiceRequestUpdate(request_id=request.id, status=request.status,
                                         actor=command.citizen_id or command.submitted_by,
                                         occurred_at=now))
    uow.publish(ServiceRequestSubmitted(
        request_id=request.id, service_code=request.service_code, status=request.status,
        occurred_at=now, service_id=service.id, citizen_id=command.citizen_id,
        lat=command.lat, long=command.long, address=command.address))
    await uow.commit()
    return request


async def update_request(*, uow: UnitOfWork, command: UpdateRequest) -> ServiceRequest:
    request = await uow.session.get(ServiceRequest, command.request_id, with_for_update=True)
    if request is None:
        raise RequestNotFound(f"No service request with id {command.request_id}.")
    now = datetime.now(UTC)
    previous = request.status
    visibility = command.note_visibility.value if command.note else None
    if command.status is not None:
        request.status = command.status.value
    if command.assigned_to is not None:
        request.assigned_to = command.assigned_to or None
    request.version += 1
    request.updated_at = now
    uow.session.add(ServiceRequestUpdate(
        request_id=request.id, status=request.status, previous_status=previous,
        note=command.note, note_visibility=visibility, assigned_to=request.assigned_to,
        actor=command.actor, occurred_at=now))
    if request.status != previous:
        uow.publish(ServiceRequestStatusChanged(
            request_id=request.id, service_code=request.service_code, status=request.status,
            occurred_at=now, previous_status=previous, citizen_id=request.citizen_id,
            note=command.note,
            note_visibility="public" if visibility == NoteVisibility.PUBLIC else "internal"))
    await uow.commit()
    return request


async def find_request(*, session: AsyncSession, request_id: uuid.UUID,
                       citizen_id: str | None = None) -> ServiceRequest:
    """One request; with ``citizen_id``, only if it is theirs (others are not found)."""
    request = await session.get(ServiceRequest, request_id)
    if request is None or (citizen_id is not None and request.citizen_id != citizen_id):
        raise RequestNotFound(f"No service request with id {request_id}.")
    return request


async def request_updates(*, session: AsyncSession,
                          request_id: uuid.UUID) -> list[ServiceRequestUpdate]:
    rows = await session.execute(select(ServiceRequestUpdate).where(
        col(ServiceRequestUpdate.request_id) == request_id).order_by(
        col(ServiceRequestUpdate.id)))
    return list(rows.scalars().all())


async def list_requests(*, session: AsyncSession, citizen_id: str | None = None,
                        status: str | None = None, service_code: str | None = None,
                        assigned_to: str | None = None, page: int = 1,
                        size: int = 20) -> tuple[list[ServiceRequest], int]:
    conditions: list[Any] = []
    if citizen_id is not None:
        conditions.append(col(ServiceRequest.citizen_id) == citizen_id)
    if status:
        conditions.append(col(ServiceRequest.status) == status)
    if service_code:
        conditions.append(col(ServiceRequest.service_code) == service_code)
    if assigned_to:
        conditions.append(col(ServiceRequest.assigned_to) == assigned_to)
    total = (await session.execute(select(func.count()).select_from(ServiceRequest)
                                   .where(*conditions))).scalar_one()
    rows = await session.execute(select(ServiceRequest).where(*conditions).order_by(
        col(ServiceRequest.created_at).desc(), col(ServiceRequest.id))
        .offset((page - 1) * size).limit(size))
    return list(rows.scalars().all()), int(total)
