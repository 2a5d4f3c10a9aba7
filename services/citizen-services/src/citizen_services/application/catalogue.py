"""Catalogue commands: create, update (optimistic concurrency), publish, suspend, retire.

Every change bumps the entry's ``version`` and writes a ``catalogue_service_history`` row
(who, when, why, which fields, a snapshot) in the same transaction as the outbox event.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError

from citizen_services.domain.catalogue import (
    DuplicateService,
    InvalidTransition,
    ServiceStatus,
    check_transition,
    slugify,
)
from citizen_services.persistence.catalogue import CatalogueRepository
from citizen_services.persistence.tables import CatalogueService, CatalogueServiceHistory
from contracts.citizen_services import (
    ServicePublished,
    ServiceRetired,
    ServiceSuspended,
    ServiceUpdated,
)
from servicekit.db import Database
from servicekit.errors import DomainError, NotFound, PreconditionFailed
from servicekit.readcache import ReadCache
from servicekit.uow import UnitOfWork


@dataclass(frozen=True)
class CreateService:
    name: str
    description: str = ""
    service_code: str | None = None
    slug: str | None = None
    keywords: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    department: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    actor: str | None = None


@dataclass(frozen=True)
class UpdateService:
    service_id: uuid.UUID
    expected_version: int
    changes: dict[str, Any]
    actor: str | None = None


@dataclass(frozen=True)
class ChangeStatus:
    service_id: uuid.UUID
    reason: str
    actor: str | None = None


@dataclass(frozen=True)
class PublishService:
    service_id: uuid.UUID
    actor: str | None = None


class ServiceNotFound(NotFound):
    code, title = "service-not-found", "Service not found"


def _slug_and_code(command: CreateService) -> tuple[str, str]:
    """The new entry's slug and service_code: as sent, or made from its name."""
    slug = command.slug or slugify(command.name)
    # service_code is at most 64 characters (Open311 and the column); a slug may be 120.
    return slug, command.service_code or slug[:64].rstrip("-")


def _add_draft(
    entries: CatalogueRepository, command: CreateService, *, slug: str, code: str, now: datetime
) -> CatalogueService:
    """A new draft entry, added with its "created" history row (the caller flushes)."""
    service = CatalogueService(
        name=command.name,
        description=command.description,
        slug=slug,
        service_code=code,
        keywords=list(command.keywords),
        groups=list(command.groups),
        department=command.department,
        status=ServiceStatus.DRAFT.value,
        created_at=now,
        updated_at=now,
        **command.details,
    )
    entries.add(service)
    _record(entries, service, action="created", actor=command.actor, now=now)
    return service


async def create_service(
    *, uow: UnitOfWork, entries: CatalogueRepository, command: CreateService
) -> CatalogueService:
    slug, code = _slug_and_code(command)
    if await entries.slug_or_code_taken(slug, code):
        raise _duplicate(slug, code)
    service = _add_draft(entries, command, slug=slug, code=code, now=datetime.now(UTC))
    try:
        await uow.flush()
    except IntegrityError:  # a concurrent create took the slug or code after our check
        raise _duplicate(slug, code) from None
    return service


def _duplicate(slug: str, code: str) -> DuplicateService:
    return DuplicateService(
        f"A service with slug '{slug}' or service_code '{code}' exists.",
        slug=slug,
        service_code=code,
    )


async def find_service(*, entries: CatalogueRepository, service_id: uuid.UUID) -> Row[Any]:
    """Read one entry (a query: no unit of work needed); its columns as attributes."""
    service = await entries.entry(service_id)
    if service is None:
        raise ServiceNotFound(f"No service with id {service_id}.")
    return service


async def get_service(
    *, entries: CatalogueRepository, service_id: uuid.UUID, for_update: bool = False
) -> CatalogueService:
    """The entry to change (``for_update``: locked until the unit of work ends)."""
    service = await entries.get(service_id, for_update=for_update)
    if service is None:
        raise ServiceNotFound(f"No service with id {service_id}.")
    return service


async def publish_service(
    *, uow: UnitOfWork, entries: CatalogueRepository, command: PublishService
) -> CatalogueService:
    service = await get_service(entries=entries, service_id=command.service_id, for_update=True)
    check_transition(service.status, ServiceStatus.PUBLISHED)
    now = datetime.now(UTC)
    service.status = ServiceStatus.PUBLISHED.value
    service.version += 1
    service.published_at = now
    service.updated_at = now
    service.status_changed_by = command.actor
    service.status_changed_at = now
    service.status_reason = None
    _record(entries, service, action="published", actor=command.actor, now=now)
    uow.publish(
        ServicePublished(
            **_entry(service, now),
            published_by=command.actor,
        )
    )
    return service


def _entry(service: CatalogueService, now: datetime) -> dict[str, Any]:
    """The fields every catalogue event carries about the entry it is about."""
    return {
        "service_id": service.id,
        "service_code": service.service_code,
        "slug": service.slug,
        "name": service.name,
        "entry_version": service.version,
        "occurred_at": now,
    }


#: Fields a PATCH may change; an explicit null on a list clears it.
_LIST_FIELDS = {"keywords", "groups", "lgsl_codes", "audience", "attributes"}
_SNAPSHOT_FIELDS = (
    "name",
    "description",
    "keywords",
    "groups",
    "department",
    "lgsl_codes",
    "channels",
    "eligibility",
    "fees",
    "audience",
    "opening_hours",
    "accessibility_statement_url",
    "last_reviewed_on",
    "attributes",
    "status",
)


class VersionMismatch(PreconditionFailed):
    code, title = "version-mismatch", "The entry changed since it was read"


def _snapshot(service: CatalogueService) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _SNAPSHOT_FIELDS:
        value = getattr(service, name)
        out[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def _record(
    entries: CatalogueRepository,
    service: CatalogueService,
    *,
    action: str,
    actor: str | None,
    now: datetime,
    reason: str | None = None,
    changed_fields: list[str] | None = None,
) -> None:
    entries.add_history(
        CatalogueServiceHistory(
            service_id=service.id,
            version=service.version,
            action=action,
            actor=actor,
            reason=reason,
            changed_fields=changed_fields or [],
            snapshot=_snapshot(service),
            occurred_at=now,
        )
    )


async def update_service(
    *, uow: UnitOfWork, entries: CatalogueRepository, command: UpdateService
) -> CatalogueService:
    service = await get_service(entries=entries, service_id=command.service_id, for_update=True)
    if service.version != command.expected_version:
        raise VersionMismatch(
            f"The entry is at version {service.version}, not {command.expected_version}: "
            "read it again and reapply the change.",
            current_version=service.version,
        )
    if service.status == ServiceStatus.RETIRED.value:
        raise InvalidTransition(
            "A retired service cannot be changed.", current_status=service.status
        )
    changed: list[str] = []
    for name, value in command.changes.items():
        if value is None and name in _LIST_FIELDS:
            value = []
        elif value is None and name == "channels":
            value = {}
        elif value is None and name in ("name", "description"):
            continue  # not nullable: an explicit null leaves it as it is
        if getattr(service, name) != value:
            setattr(service, name, value)
            changed.append(name)
    if not changed:
        return service
    now = datetime.now(UTC)
    service.version += 1
    service.updated_at = now
    _record(
        entries, service, action="updated", actor=command.actor, now=now, changed_fields=changed
    )
    uow.publish(
        ServiceUpdated(
            **_entry(service, now),
            changed_fields=changed,
            updated_by=command.actor,
        )
    )
    return service


async def _change_status(
    *, entries: CatalogueRepository, command: ChangeStatus, target: ServiceStatus
) -> tuple[CatalogueService, datetime]:
    service = await get_service(entries=entries, service_id=command.service_id, for_update=True)
    check_transition(service.status, target)
    now = datetime.now(UTC)
    service.status = target.value
    service.version += 1
    service.updated_at = now
    service.status_changed_at = now
    service.status_changed_by = command.actor
    service.status_reason = command.reason
    _record(
        entries, service, action=target.value, actor=command.actor, now=now, reason=command.reason
    )
    return service, now


async def suspend_service(
    *, uow: UnitOfWork, entries: CatalogueRepository, command: ChangeStatus
) -> CatalogueService:
    service, now = await _change_status(
        entries=entries, command=command, target=ServiceStatus.SUSPENDED
    )
    uow.publish(
        ServiceSuspended(
            **_entry(service, now),
            reason=command.reason,
            suspended_by=command.actor,
        )
    )
    return service


async def retire_service(
    *, uow: UnitOfWork, entries: CatalogueRepository, command: ChangeStatus
) -> CatalogueService:
    service, now = await _change_status(
        entries=entries, command=command, target=ServiceStatus.RETIRED
    )
    uow.publish(
        ServiceRetired(
            **_entry(service, now),
            reason=command.reason,
            retired_by=command.actor,
        )
    )
    return service


async def service_history(
    *, entries: CatalogueRepository, service_id: uuid.UUID
) -> list[CatalogueServiceHistory]:
    await find_service(entries=entries, service_id=service_id)
    return await entries.history(service_id)


class ImportRejected(DomainError):
    status, code, title = 422, "import-rejected", "Import rejected: nothing was imported"


async def import_services(
    *, uow: UnitOfWork, entries: CatalogueRepository, commands: list[CreateService]
) -> list[CatalogueService]:
    """Create every entry as a draft in one transaction, or none: a slug or service_code
    taken (in the database or earlier in the batch) names its record."""
    planned = await check_import(entries=entries, commands=commands)
    now = datetime.now(UTC)
    services = [
        _add_draft(entries, command, slug=slug, code=code, now=now)
        for command, (slug, code) in zip(commands, planned, strict=True)
    ]
    try:
        await uow.flush()
    except IntegrityError:  # a concurrent create took a slug or code after our check
        raise ImportRejected(
            "A slug or service_code was taken meanwhile: retry.", errors=[]
        ) from None
    return services


async def check_import(
    *, entries: CatalogueRepository, commands: list[CreateService]
) -> list[tuple[str, str]]:
    """The (slug, service_code) each command will take; ``ImportRejected`` naming every
    record whose slug or code is taken, in the catalogue or by an earlier record."""
    planned = [_slug_and_code(command) for command in commands]
    slugs, codes = set(), set()
    for slug, code in await entries.slugs_and_codes():
        slugs.add(slug)
        codes.add(code)
    errors: list[dict[str, Any]] = []
    for row, (slug, code) in enumerate(planned, start=1):
        errors += taken_errors(row, slug, code, slugs=slugs, codes=codes)
        slugs.add(slug)
        codes.add(code)
    if errors:
        raise ImportRejected(f"{len({e['row'] for e in errors})} bad record(s).", errors=errors)
    return planned


def taken_errors(
    row: int, slug: str, code: str, *, slugs: set[str], codes: set[str]
) -> list[dict[str, Any]]:
    """A record's errors when its slug or service_code is among those taken."""
    errors = []
    if slug in slugs:
        errors.append({"row": row, "field": "slug", "message": f"'{slug}' is taken"})
    if code in codes:
        errors.append({"row": row, "field": "service_code", "message": f"'{code}' is taken"})
    return errors


def draft_row(command: CreateService, *, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new draft entry's columns (a fresh id; slug and code as sent or made from the
    name) and the snapshot its "created" history row keeps: what an import stages."""
    slug, code = _slug_and_code(command)
    service = CatalogueService(
        id=uuid.uuid4(),
        name=command.name,
        description=command.description,
        slug=slug,
        service_code=code,
        keywords=list(command.keywords),
        groups=list(command.groups),
        department=command.department,
        status=ServiceStatus.DRAFT.value,
        created_at=now,
        updated_at=now,
        **command.details,
    )
    columns = {
        name: getattr(service, name)
        for name in (
            "id",
            "slug",
            "service_code",
            "version",
            "created_at",
            "updated_at",
            *_SNAPSHOT_FIELDS,
        )
    }
    return columns, _snapshot(service)


async def all_services(*, entries: CatalogueRepository) -> list[CatalogueService]:
    """Every entry, by name (the staff's export)."""
    return await entries.all()


# -- reading one entry, as its caller may see it ---------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryView:
    """One entry as a read answers it: rendered once, kept in the entry read cache."""

    published: bool
    version: int
    #: The rendered representation (the API's ``render`` function made it).
    body: bytes


class EntryReads:
    """Reads of one entry. Entries are read far more often than they change: the rendered
    entry is kept until the database next changes (``servicekit.readcache``), so a read
    is a lookup. Anyone may read a published entry; the others are staff's only (anyone
    else: not found, not a hint that it exists). Built once per process, in ``create_app``
    (``main.CitizenServicesRuntime``)."""

    def __init__(
        self,
        *,
        cache: ReadCache[uuid.UUID, EntryView],
        load: Callable[[uuid.UUID], Awaitable[Row[Any]]],
        render: Callable[[Row[Any]], bytes],
    ) -> None:
        self._cache = cache
        self._load = load
        self._render = render

    @classmethod
    def of(cls, database: Database, *, render: Callable[[Row[Any]], bytes]) -> EntryReads:
        async def load(service_id: uuid.UUID) -> Row[Any]:
            async with database.read_session() as db:
                return await find_service(entries=CatalogueRepository(db), service_id=service_id)

        return cls(cache=database.read_cache("catalogue-entry"), load=load, render=render)

    async def read(
        self, service_id: uuid.UUID, *, is_staff: Callable[[], Awaitable[bool]]
    ) -> EntryView:
        """The entry's view; ``is_staff`` is asked only when the entry is not published."""
        view = self._cache.get(service_id)
        if view is None:
            generation = self._cache.generation()
            service = await self._load(service_id)
            view = EntryView(
                published=service.status == ServiceStatus.PUBLISHED.value,
                version=service.version,
                body=self._render(service),
            )
            self._cache.put(service_id, view, generation)
        if not view.published and not await is_staff():
            raise ServiceNotFound(f"No service with id {service_id}.")
        return view
