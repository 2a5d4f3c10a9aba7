"""The catalogue API: ``/api/v1/services``.

Staff create, update (``If-Match`` with the entry's ETag: 412 when stale, 428 when missing),
publish, suspend and retire entries and read their history; anyone may read a published
entry; drafts, suspended and retired entries are visible to staff only (others get 404, not
a hint that they exist), and only staff may list them (``?status=draft``; others get 403).

Reads are conditional: an entry's ETag is its version; a list's is the catalogue's change
counter and the query (``application/search.py: catalogue_version``), so ``If-None-Match``
answers 304 without building, or for lists even running, the search.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status

from citizen_services.api.conditional import conditional_responses, etag_matches
from citizen_services.api.deps import CatalogueInUow, CatalogueReads
from citizen_services.api.headers import header
from citizen_services.api.schemas import (
    ONE_LINE,
    HistoryEntry,
    ServiceCreate,
    ServicePage,
    ServicePublic,
    ServiceUpdate,
    StatusChange,
)
from citizen_services.application import catalogue, search
from citizen_services.domain.catalogue import ServiceStatus
from citizen_services.persistence.catalogue import CatalogueRepository
from citizen_services.persistence.tables import CatalogueService
from servicekit.deps import UowDep
from servicekit.errors import DomainError
from servicekit.identity import (
    CurrentPrincipal,
    Principal,
    Role,
    StaffPrincipal,
    get_principal,
)
from servicekit.problems import problem_responses
from servicekit.uow import UnitOfWork

if TYPE_CHECKING:
    from citizen_services.main import CitizenServicesRuntime

router = APIRouter(prefix="/api/v1/services", tags=["catalogue"])

ETAG = header("ETag", "The entry's version, for conditional requests.")
LOCATION = header("Location", "Where the new entry is.")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ServicePublic,
    summary="Create a catalogue entry (draft)",
    responses={
        201: {"headers": {**ETAG, **LOCATION}},
        **problem_responses((409, "A service with this slug or service_code already exists")),
    },
)
async def create_service(
    body: ServiceCreate,
    uow: UowDep,
    entries: CatalogueInUow,
    response: Response,
    staff: StaffPrincipal,
) -> ServicePublic:
    data = body.model_dump()
    core = {
        k: data.pop(k)
        for k in ("name", "description", "service_code", "slug", "keywords", "groups", "department")
    }
    service = await catalogue.create_service(
        uow=uow,
        entries=entries,
        command=catalogue.CreateService(**core, details=data, actor=staff.subject),
    )
    response.headers["Location"] = f"/api/v1/services/{service.id}"
    return _entry(service, response)


def _entry(service: CatalogueService, response: Response) -> ServicePublic:
    """A changed entry as the answer to its change, with its new ETag."""
    response.headers["ETag"] = f'"{service.version}"'
    return ServicePublic.model_validate(service)


#: Published pages: anyone's cache may keep them a minute. Other statuses are staff's only.
CACHE_CONTROL = "public, max-age=60"
PRIVATE = "private, no-cache"
#: Single entries: reusable, but revalidated (a cheap 304) so staff never edit from a stale
#: copy.
ENTRY_CACHE_CONTROL = "public, no-cache"
#: Bump when the list's representation changes, so old ETags stop matching.
LIST_FORMAT = "1"
READ_RESPONSES = conditional_responses(ETAG)


@router.get(
    "",
    response_model=ServicePage,
    summary="Search services (published; staff: any status)",
    responses={
        **READ_RESPONSES,
        **problem_responses((403, "Only staff may list entries that are not published")),
    },
)
async def list_services(
    request: Request,
    entries: CatalogueReads,
    principal: CurrentPrincipal,
    q: Annotated[
        str | None, Query(max_length=200, description="Words in name, description, keywords")
    ] = None,
    group: Annotated[str | None, Query(max_length=200, pattern=ONE_LINE)] = None,
    channel: search.Channel | None = None,
    lgsl: Annotated[int | None, Query(ge=1, le=99999, description="LGSL code")] = None,
    sort: search.Sort = search.Sort.RELEVANCE,
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 20,
    status_: Annotated[
        ServiceStatus, Query(alias="status", description="Staff only, unless published")
    ] = ServiceStatus.PUBLISHED,
) -> Response:
    staff = principal.has_role(Role.STAFF, Role.ADMIN)
    query = search.SearchServices(
        q=q,
        group=group,
        channel=channel,
        lgsl=lgsl,
        sort=sort,
        page=page,
        size=size,
        status=status_,
    )
    # The ETag is the catalogue's change counter and the query: a repeat read answers 304
    # after one primary-key lookup, without searching.
    cache = CACHE_CONTROL if status_ is ServiceStatus.PUBLISHED else PRIVATE
    if_none_match = request.headers.get("if-none-match")
    if if_none_match:
        etag = _list_etag(
            await search.catalogue_version(entries=entries, query=query, staff=staff), query
        )
        if etag_matches(if_none_match, etag):
            return Response(
                status_code=status.HTTP_304_NOT_MODIFIED,
                headers={"ETag": etag, "Cache-Control": cache},
            )
    found = await search.find_services(entries=entries, query=query, staff=staff)
    body = (
        ServicePage(
            items=[ServicePublic.model_validate(r) for r in found.items],
            page=page,
            size=size,
            total=found.total,
        )
        .model_dump_json()
        .encode()
    )
    return Response(
        body,
        media_type="application/json",
        headers={"ETag": _list_etag(found.catalogue_version, query), "Cache-Control": cache},
    )


def _list_etag(version: int, query: search.SearchServices) -> str:
    digest = hashlib.sha256(query.cache_key().encode()).hexdigest()[:16]
    return f'W/"{LIST_FORMAT}.{version}.{digest}"'


@router.get(
    "/{service_id}",
    response_model=ServicePublic,
    summary="Read a catalogue entry",
    responses=READ_RESPONSES,
)
async def read_service(service_id: uuid.UUID, request: Request) -> Response:
    # Read from the entry read cache (application/catalogue.py: EntryReads). No
    # dependencies: each costs more than the lookup; the caller is only asked about when
    # the entry is not published.
    runtime: CitizenServicesRuntime = request.app.state.runtime

    async def is_staff() -> bool:
        return (await get_principal(request)).has_role(Role.STAFF, Role.ADMIN)

    view = await runtime.entries.read(service_id, is_staff=is_staff)
    etag = f'"{view.version}"'
    headers = {"ETag": etag, "Cache-Control": ENTRY_CACHE_CONTROL if view.published else PRIVATE}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(view.body, media_type="application/json", headers=headers)


@router.post(
    "/{service_id}/publish",
    response_model=ServicePublic,
    summary="Publish a draft or suspended entry (emits ServicePublished)",
    responses={
        200: {"headers": ETAG},
        **problem_responses((409, "The entry's status does not allow publishing (e.g. retired)")),
    },
)
async def publish_service(
    service_id: uuid.UUID,
    uow: UowDep,
    entries: CatalogueInUow,
    response: Response,
    staff: StaffPrincipal,
) -> ServicePublic:
    service = await catalogue.publish_service(
        uow=uow,
        entries=entries,
        command=catalogue.PublishService(service_id=service_id, actor=staff.subject),
    )
    return _entry(service, response)


class PreconditionRequired(DomainError):
    status, code, title = 428, "precondition-required", "If-Match required"


_ETAG = re.compile(r'^\s*(?:W/)?"(\d{1,9})"\s*$')


def _expected_version(if_match: str | None) -> int:
    if not if_match:
        raise PreconditionRequired("Send If-Match with the ETag of the entry you read.")
    match = _ETAG.match(if_match)
    if match is None:
        # Not an ETag this service ever issued: it cannot match the current one.
        raise catalogue.VersionMismatch("If-Match does not match the entry's ETag.")
    return int(match.group(1))


def _updates(body: ServiceUpdate) -> dict[str, Any]:
    sent = body.model_dump(exclude_unset=True)
    return sent


@router.patch(
    "/{service_id}",
    response_model=ServicePublic,
    summary="Update a catalogue entry (If-Match required; emits ServiceUpdated)",
    responses={
        200: {"headers": ETAG},
        **problem_responses(
            (409, "A retired entry cannot be changed"),
            (412, "If-Match does not match the entry's current ETag"),
            (428, "If-Match is missing"),
        ),
    },
)
async def update_service(
    service_id: uuid.UUID,
    body: ServiceUpdate,
    uow: UowDep,
    entries: CatalogueInUow,
    response: Response,
    staff: StaffPrincipal,
    if_match: Annotated[str | None, Header(max_length=100)] = None,
) -> ServicePublic:
    service = await catalogue.update_service(
        uow=uow,
        entries=entries,
        command=catalogue.UpdateService(
            service_id=service_id,
            expected_version=_expected_version(if_match),
            changes=_updates(body),
            actor=staff.subject,
        ),
    )
    return _entry(service, response)


ChangeStatusHandler = Callable[..., Awaitable[CatalogueService]]


async def _change_status(
    handler: ChangeStatusHandler,
    *,
    service_id: uuid.UUID,
    body: StatusChange,
    uow: UnitOfWork,
    entries: CatalogueRepository,
    response: Response,
    staff: Principal,
) -> ServicePublic:
    """Suspend or retire (``handler``): the same command, a different rule and event."""
    service = await handler(
        uow=uow,
        entries=entries,
        command=catalogue.ChangeStatus(
            service_id=service_id, reason=body.reason, actor=staff.subject
        ),
    )
    return _entry(service, response)


@router.post(
    "/{service_id}/suspend",
    response_model=ServicePublic,
    summary="Suspend a published entry (emits ServiceSuspended)",
    responses={
        200: {"headers": ETAG},
        **problem_responses((409, "Only a published entry can be suspended")),
    },
)
async def suspend_service(
    service_id: uuid.UUID,
    body: StatusChange,
    uow: UowDep,
    entries: CatalogueInUow,
    response: Response,
    staff: StaffPrincipal,
) -> ServicePublic:
    return await _change_status(
        catalogue.suspend_service,
        service_id=service_id,
        body=body,
        uow=uow,
        entries=entries,
        response=response,
        staff=staff,
    )


@router.post(
    "/{service_id}/retire",
    response_model=ServicePublic,
    summary="Retire an entry for good (emits ServiceRetired)",
    responses={200: {"headers": ETAG}, **problem_responses((409, "The entry is already retired"))},
)
async def retire_service(
    service_id: uuid.UUID,
    body: StatusChange,
    uow: UowDep,
    entries: CatalogueInUow,
    response: Response,
    staff: StaffPrincipal,
) -> ServicePublic:
    return await _change_status(
        catalogue.retire_service,
        service_id=service_id,
        body=body,
        uow=uow,
        entries=entries,
        response=response,
        staff=staff,
    )


@router.get(
    "/{service_id}/history",
    response_model=list[HistoryEntry],
    summary="The entry's audit history, oldest first (staff)",
)
async def service_history(
    service_id: uuid.UUID, entries: CatalogueReads, staff: StaffPrincipal
) -> list[HistoryEntry]:
    rows = await catalogue.service_history(entries=entries, service_id=service_id)
    return [HistoryEntry.model_validate(row) for row in rows]
