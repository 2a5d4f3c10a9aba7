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

from citizen_services.domain.requests import is_public_note, statuses_for
from citizen_services.persistence.catalogue import CatalogueRepository
from citizen_services.persistence.requests import RequestRepository
from citizen_services.persistence.tables import (
    CatalogueService,
    ServiceRequest,
    ServiceRequestMedia,
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


async def reportable_services(*, entries: CatalogueRepository) -> list[CatalogueService]:
    """Published services that take reports (have attribute definitions), by name."""
    return [s for s in await entries.published() if s.attributes]


async def reportable_service(*, entries: CatalogueRepository, code: str) -> CatalogueService | None:
    service = await entries.published_by_code(code)
    return service if service is not None and service.attributes else None


async def service_names(*, entries: CatalogueRepository, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    return await entries.names(codes)


def _uuids(values: tuple[str, ...]) -> list[uuid.UUID]:
    out = []
    for value in values:
        try:
            out.append(uuid.UUID(value))
        except ValueError:
            continue  # not one of ours: it matches nothing
    return out


async def find_requests(
    *, service_requests: RequestRepository, query: RequestQuery, now: datetime | None = None
) -> list[ServiceRequest]:
    """The spec's GET requests: ``ids`` override every other filter; otherwise the date
    range (default: the 90 days up to ``end`` or now), service codes and open/closed.
    Newest first, at most :data:`MAX_RESULTS`."""
    if query.ids:
        return await service_requests.public(ids=_uuids(query.ids), limit=MAX_RESULTS)
    start, end = query.start, query.end
    if start is None and end is None:
        start = (now or datetime.now(UTC)) - DEFAULT_WINDOW
    internal = [s for o in set(query.statuses) for s in statuses_for(o)] if query.statuses else None
    return await service_requests.public(
        start=start,
        end=end,
        service_codes=query.service_codes,
        statuses=internal,
        limit=MAX_RESULTS,
    )


async def public_request(
    *, service_requests: RequestRepository, request_id: str
) -> ServiceRequest | None:
    """One request by its id (any string: one that is not a uuid is not found), if it is
    public: a private request is not Open311's to show."""
    try:
        key = uuid.UUID(request_id)
    except ValueError:
        return None
    row = await service_requests.get(key)
    return row if row is not None and row.public else None


async def public_media(
    *, service_requests: RequestRepository, media_id: str, extension: str
) -> ServiceRequestMedia | None:
    """A photo uploaded with a public request, by its id and extension (as its URL has
    them); a photo of a request that is not public is not found."""
    try:
        key = uuid.UUID(media_id)
    except ValueError:
        return None
    media = await service_requests.media(key)
    if media is None or media.extension != extension:
        return None
    request = await service_requests.get(media.request_id)
    return media if request is not None and request.public else None


async def latest_notes(
    *, service_requests: RequestRepository, request_ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The newest public staff note of each request (Open311 ``status_notes``); internal
    notes are never among them."""
    if not request_ids:
        return {}
    return {
        u.request_id: u.note
        for u in await service_requests.public_notes(request_ids)
        if u.note and is_public_note(u.note, u.note_visibility)
    }


async def find_updates(
    *,
    service_requests: RequestRepository,
    start: datetime | None,
    end: datetime | None,
    now: datetime | None = None,
) -> list[ServiceRequestUpdate]:
    """mySociety's ``servicerequestupdates`` extension: status changes and public notes of
    public requests (not the submission itself, nor assignment-only or internal-note-only
    changes) between ``start`` and ``end`` (default: the last 90 days), oldest first, at
    most :data:`MAX_RESULTS`. A status change may carry an internal note: it comes without
    it (``note`` None; copies, never the rows)."""
    if start is None and end is None:
        start = (now or datetime.now(UTC)) - DEFAULT_WINDOW
    updates = await service_requests.public_changes(start=start, end=end, limit=MAX_RESULTS)
    return [
        u
        if u.note is None or is_public_note(u.note, u.note_visibility)
        else ServiceRequestUpdate(**{**u.model_dump(), "note": None})
        for u in updates
    ]
