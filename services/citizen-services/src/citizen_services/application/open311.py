"""Open311 GeoReport v2 queries: what a partner (FixMyStreet) may read.

Submissions go through :func:`citizen_services.application.requests.submit_request`, the
same command the JSON API uses; this module only reads. Nothing here returns contact
details: callers get :class:`ServiceRequest` rows and must not render ``contact``.

Open311 is a public surface: every query here returns public requests only
(``ServiceRequest.public``: those that arrived through Open311 or that the citizen chose to
make public), and only their public notes (``note_visibility == 'public'``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from citizen_services.domain.catalogue import ServiceStatus
from citizen_services.domain.requests import NoteVisibility, statuses_for
from citizen_services.persistence.tables import (
    CatalogueService,
    ServiceRequest,
    ServiceRequestUpdate,
)

#: The spec's defaults: without dates, the last 90 days; at most 1,000 results.
DEFAULT_WINDOW = timedelta(days=90)
MAX_RESULTS = 1000
MAX_IDS = 200


@dataclass(frozen=True)
class RequestQuery:
    ids: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: tuple[str, ...] = ()  # Open311's: open, closed


async def reportable_services(*, session: AsyncSession) -> list[CatalogueService]:
    """Published services that take reports (have attribute definitions), by name."""
    rows = await session.execute(select(CatalogueService).where(
        col(CatalogueService.status) == ServiceStatus.PUBLISHED.value).order_by(
        col(CatalogueService.name), col(CatalogueService.id)))
    return [s for s in rows.scalars().all() if s.attributes]


async def reportable_service(*, session: AsyncSession, code: str) -> CatalogueService | None:
    row = await session.execute(select(CatalogueService).where(
        col(CatalogueService.service_code) == code,
        col(CatalogueService.status) == ServiceStatus.PUBLISHED.value))
    service = row.scalar_one_or_none()
    return service if service is not None and service.attributes else None


async def service_names(*, session: AsyncSession, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = await session.execute(select(col(CatalogueService.service_code),
                                        col(CatalogueService.name)).where(
        col(CatalogueService.service_code).in_(codes)))
    return {code: name for code, name in rows.all()}


def _uuids(values: tuple[str, ...]) -> list[uuid.UUID]:
    out = []
    for value in values:
        try:
            out.append(uuid.UUID(value))
        except ValueError:
            continue  # not one of ours: it matches nothing
    return out


async def find_requests(*, session: AsyncSession, query: RequestQuery,
                        now: datetime | None = None) -> list[ServiceRequest]:
    """The spec's GET requests: ``ids`` override every other filter; otherwise the date
    range (default: the 90 days up to ``end`` or now), service codes and open/closed.
    Newest first, at most :data:`MAX_RESULTS`."""
    statement = select(ServiceRequest).where(col(ServiceRequest.public).is_(True))
    if query.ids:
        statement = statement.where(col(ServiceRequest.id).in_(_uuids(query.ids)))
    else:
        end = query.end
        start = query.start
        if start is None and end is None:
            start = (now or datetime.now(UTC)) - DEFAULT_WINDOW
        if start is not None:
            statement = statement.where(col(ServiceRequest.created_at) >= start)
        if end is not None:
            statement = statement.where(col(ServiceRequest.created_at) <= end)
        if query.service_codes:
            statement = statement.where(
                col(ServiceRequest.service_code).in_(query.service_codes))
        if query.statuses:
            internal = [s for o in set(query.statuses) for s in statuses_for(o)]
            statement = statement.where(col(ServiceRequest.status).in_(internal))
    rows = await session.execute(statement.order_by(
        col(ServiceRequest.created_at).desc(), col(ServiceRequest.id)).limit(MAX_RESULTS))
    return list(rows.scalars().all())


async def latest_notes(*, session: AsyncSession,
                       request_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The newest public staff note of each request (Open311 ``status_notes``); internal
    notes are never among them."""
    if not request_ids:
        return {}
    rows = await session.execute(select(ServiceRequestUpdate).where(
        col(ServiceRequestUpdate.request_id).in_(request_ids),
        col(ServiceRequestUpdate.note).is_not(None),
        col(ServiceRequestUpdate.note_visibility) == NoteVisibility.PUBLIC.value)
        .order_by(col(ServiceRequestUpdate.id)))
    return {u.request_id: u.note for u in rows.scalars().all() if u.note}


async def find_updates(*, session: AsyncSession, start: datetime | None,
                       end: datetime | None,
                       now: datetime | None = None) -> list[ServiceRequestUpdate]:
    """mySociety's ``servicerequestupdates`` extension: status changes and public notes of
    public requests (not the submission itself, nor assignment-only or internal-note-only
    changes) between ``start`` and ``end`` (default: the last 90 days), oldest first, at
    most :data:`MAX_RESULTS`. The caller shows a note only if it is public
    (``domain.requests.is_public_note``): a status change may carry an internal one."""
    if start is None and end is None:
        start = (now or datetime.now(UTC)) - DEFAULT_WINDOW
    statement = select(ServiceRequestUpdate).join(
        ServiceRequest, col(ServiceRequest.id) == col(ServiceRequestUpdate.request_id)).where(
        col(ServiceRequest.public).is_(True),
        col(ServiceRequestUpdate.previous_status).is_not(None),
        or_(col(ServiceRequestUpdate.status) != col(ServiceRequestUpdate.previous_status),
            (col(ServiceRequestUpdate.note).is_not(None))
            & (col(ServiceRequestUpdate.note_visibility) == NoteVisibility.PUBLIC.value)))
    if start is not None:
        statement = statement.where(col(ServiceRequestUpdate.occurred_at) >= start)
    if end is not None:
        statement = statement.where(col(ServiceRequestUpdate.occurred_at) <= end)
    rows = await session.execute(statement.order_by(
        col(ServiceRequestUpdate.occurred_at), col(ServiceRequestUpdate.id)).limit(MAX_RESULTS))
    return list(rows.scalars().all())
