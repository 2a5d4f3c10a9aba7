"""Service request commands (submit, update by staff) and queries (one, a queue)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from citizen_services.domain import geo
from citizen_services.domain.catalogue import ServiceStatus
from citizen_services.domain.media import check_media, media_path
from citizen_services.domain.requests import (
    InvalidRequest,
    NoteVisibility,
    RequestStatus,
    ServiceNotReportable,
    check_attributes,
    check_extra_attributes,
    check_location,
    is_public_note,
    shown_outside,
    split_attributes,
)
from citizen_services.persistence.catalogue import CatalogueRepository
from citizen_services.persistence.requests import RequestRepository
from citizen_services.persistence.tables import (
    ServiceRequest,
    ServiceRequestMedia,
    ServiceRequestUpdate,
)
from contracts.citizen_services import ServiceRequestStatusChanged, ServiceRequestSubmitted
from servicekit.errors import NotFound
from servicekit.uow import UnitOfWork


class RequestNotFound(NotFound):
    code, title = "service-request-not-found", "Service request not found"


@dataclass(frozen=True)
class Photo:
    """A file uploaded with a report (multipart/form-data), by the form field it came in."""

    field: str
    data: bytes


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
    #: Keep attributes the service does not define (Open311: FixMyStreet always sends some)
    #: instead of refusing them.
    keep_undefined_attributes: bool = False
    #: Photos uploaded with the report: stored, the first one the request's ``media_url``
    #: when the client sent none.
    photos: tuple[Photo, ...] = ()


@dataclass(frozen=True)
class UpdateRequest:
    request_id: uuid.UUID
    status: RequestStatus | None = None
    note: str | None = None
    note_visibility: NoteVisibility = NoteVisibility.INTERNAL
    assigned_to: str | None = None
    actor: str | None = None


def _about(request: ServiceRequest, now: datetime) -> dict[str, Any]:
    """The fields every service request event carries about the request it is about."""
    return {
        "request_id": request.id,
        "service_code": request.service_code,
        "status": request.status,
        "occurred_at": now,
    }


async def submit_request(
    *,
    uow: UnitOfWork,
    entries: CatalogueRepository,
    service_requests: RequestRepository,
    command: SubmitRequest,
) -> ServiceRequest:
    service = await entries.by_code(command.service_code)
    if service is None or service.status != ServiceStatus.PUBLISHED.value:
        raise InvalidRequest(
            f"No published service with code '{command.service_code}'.",
            errors=[{"field": "service_code", "message": "unknown service"}],
        )
    if not service.attributes:
        raise ServiceNotReportable(
            f"'{service.name}' takes no reports.",
            errors=[{"field": "service_code", "message": "not a reportable service"}],
        )
    check_location(lat=command.lat, long=command.long, address=command.address)
    values: dict[str, Any] = command.attributes
    extra: dict[str, Any] = {}
    if command.keep_undefined_attributes:
        values, extra = split_attributes(service.attributes, command.attributes)
        extra = check_extra_attributes(extra)
    attributes = check_attributes(service.attributes, values)
    if command.contact and not command.contact_consent:
        raise InvalidRequest(
            "Contact details need the reporter's consent.",
            errors=[
                {"field": "contact_consent", "message": "must be true to keep contact details"}
            ],
        )
    media = _media(command.photos)
    now = datetime.now(UTC)
    request = ServiceRequest(
        service_id=service.id,
        service_code=service.service_code,
        status=RequestStatus.OPEN.value,
        description=command.description,
        lat=command.lat,
        long=command.long,
        address=command.address,
        area=geo.area_of(lat=command.lat, long=command.long, address=command.address),
        attributes=attributes,
        extra_attributes=extra or None,
        citizen_id=command.citizen_id,
        contact=command.contact or None,
        contact_consent=command.contact_consent,
        media_url=command.media_url,
        public=command.public,
        created_at=now,
        updated_at=now,
    )
    service_requests.add(request)
    for row in media:
        row.request_id, row.created_at = request.id, now
        service_requests.add(row)
    if media and request.media_url is None:
        request.media_url = media_path(media[0].id, media[0].extension)
    service_requests.add_update(
        ServiceRequestUpdate(
            request_id=request.id,
            status=request.status,
            actor=command.citizen_id or command.submitted_by,
            occurred_at=now,
        )
    )
    uow.publish(
        ServiceRequestSubmitted(
            **_about(request, now),
            service_id=service.id,
            citizen_id=command.citizen_id,
            lat=command.lat,
            long=command.long,
            address=command.address,
        )
    )
    return request


#: The ``source`` of an update an Open311 client (FixMyStreet) posted.
OPEN311_SOURCE = "open311"


@dataclass(frozen=True)
class PostClientUpdate:
    """A citizen's update to a public request, as an Open311 client relays it
    (FixMyStreet's ``post_service_request_update``)."""

    request_id: uuid.UUID
    description: str = ""
    #: The status the client reports (FixMyStreet's: ``fixed``, ``reopen``...): kept with
    #: the update; the council's own status does not change.
    reported_status: str | None = None
    #: The client's own id for the update: posting it again answers the same update.
    external_id: str | None = None
    media_url: str | None = None
    contact: dict[str, Any] | None = None
    photos: tuple[Photo, ...] = ()
    submitted_by: str | None = None


async def post_client_update(
    *, uow: UnitOfWork, service_requests: RequestRepository, command: PostClientUpdate
) -> ServiceRequestUpdate:
    """Adds the update to the request's timeline, its text a public note (a citizen wrote
    it for the public report), its author's contact details private. Only a public request
    takes one (another is not found, as on Open311's reads)."""
    request = await service_requests.get(command.request_id, for_update=True)
    if request is None or not request.public:
        raise RequestNotFound(
            f"No service request with id {command.request_id}.",
            errors=[{"field": "service_request_id", "message": "no such service request"}],
        )
    if command.external_id:
        known = await service_requests.client_update(
            request.id, OPEN311_SOURCE, command.external_id
        )
        if known is not None:
            return known
    media = _media(command.photos)
    if not command.description and not media and not command.media_url:
        raise InvalidRequest(
            "An update needs a description or a photo.",
            errors=[{"field": "description", "message": "required"}],
        )
    now = datetime.now(UTC)
    for row in media:
        row.request_id, row.created_at = request.id, now
        service_requests.add(row)
    update_ = ServiceRequestUpdate(
        request_id=request.id,
        status=request.status,
        previous_status=request.status,
        note=command.description or None,
        note_visibility=NoteVisibility.PUBLIC.value if command.description else None,
        actor=command.submitted_by,
        occurred_at=now,
        source=OPEN311_SOURCE,
        external_id=command.external_id,
        reported_status=command.reported_status,
        media_url=command.media_url
        or (media_path(media[0].id, media[0].extension) if media else None),
        contact=command.contact or None,
    )
    service_requests.add_update(update_)
    request.version += 1
    request.updated_at = now
    await uow.flush()  # the update's id is the answer
    return update_


def _media(photos: tuple[Photo, ...]) -> list[ServiceRequestMedia]:
    """Rows for the uploaded photos (each checked by its first bytes), not yet attached."""
    rows = []
    for photo in photos:
        kind = check_media(photo.field, photo.data)
        rows.append(
            ServiceRequestMedia(
                request_id=uuid.UUID(int=0),
                content_type=kind.content_type,
                extension=kind.extension,
                size=len(photo.data),
                data=photo.data,
                created_at=datetime.now(UTC),
            )
        )
    return rows


async def update_request(
    *, uow: UnitOfWork, service_requests: RequestRepository, command: UpdateRequest
) -> ServiceRequest:
    request = await service_requests.get(command.request_id, for_update=True)
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
    service_requests.add_update(
        ServiceRequestUpdate(
            request_id=request.id,
            status=request.status,
            previous_status=previous,
            note=command.note,
            note_visibility=visibility,
            assigned_to=request.assigned_to,
            actor=command.actor,
            occurred_at=now,
        )
    )
    if request.status != previous:
        uow.publish(
            ServiceRequestStatusChanged(
                **_about(request, now),
                previous_status=previous,
                citizen_id=request.citizen_id,
                note=command.note,
                note_visibility="public" if visibility == NoteVisibility.PUBLIC else "internal",
            )
        )
    return request


@dataclass(frozen=True)
class Viewer:
    """Who reads: staff see every request and all of it; a citizen only their own, without
    the council's internal working (assignments, internal notes)."""

    staff: bool
    subject: str | None = None

    @property
    def citizen_id(self) -> str | None:
        """The citizen whose requests this viewer may read (None: staff, any)."""
        return None if self.staff else self.subject or ""


async def find_request(
    *, service_requests: RequestRepository, request_id: uuid.UUID, viewer: Viewer
) -> ServiceRequest:
    """One request, as ``viewer`` may see it: a citizen only their own (others are not
    found)."""
    request = await service_requests.get(request_id)
    if request is None or (
        viewer.citizen_id is not None and request.citizen_id != viewer.citizen_id
    ):
        raise RequestNotFound(f"No service request with id {request_id}.")
    return seen_by(request, viewer)


def seen_by(request: ServiceRequest, viewer: Viewer) -> ServiceRequest:
    """The request as ``viewer`` sees it: a citizen not its assignment (a copy, never the
    row itself)."""
    if viewer.staff or request.assigned_to is None:
        return request
    return ServiceRequest(**{**request.model_dump(), "assigned_to": None})


async def request_updates(
    *, service_requests: RequestRepository, request_id: uuid.UUID, viewer: Viewer
) -> list[ServiceRequestUpdate]:
    """The request's timeline, oldest first. Staff: every update. A citizen: the
    submission, status changes and public notes, never an internal note or an
    assignment."""
    updates = await service_requests.updates(request_id)
    if viewer.staff:
        return updates
    return [
        ServiceRequestUpdate(
            id=u.id,
            request_id=u.request_id,
            status=u.status,
            previous_status=u.previous_status,
            note=u.note if is_public_note(u.note, u.note_visibility) else None,
            note_visibility=NoteVisibility.PUBLIC.value
            if is_public_note(u.note, u.note_visibility)
            else None,
            assigned_to=None,
            occurred_at=u.occurred_at,
        )
        for u in updates
        if u.previous_status is None
        or shown_outside(
            status=u.status,
            previous_status=u.previous_status,
            note=u.note,
            note_visibility=u.note_visibility,
        )
    ]


async def list_requests(
    *,
    service_requests: RequestRepository,
    viewer: Viewer,
    status: str | None = None,
    service_code: str | None = None,
    assigned_to: str | None = None,
    area: str | None = None,
    page: int = 1,
    size: int = 20,
) -> tuple[list[ServiceRequest], int]:
    """Staff: the queue, filtered. A citizen: their own requests."""
    rows, total = await service_requests.page(
        citizen_id=viewer.citizen_id,
        status=status,
        service_code=service_code,
        assigned_to=assigned_to,
        area=area,
        page=page,
        size=size,
    )
    return [seen_by(r, viewer) for r in rows], total
