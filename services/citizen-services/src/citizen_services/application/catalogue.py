"""Catalogue commands: create, update (optimistic concurrency), publish, suspend, retire.

Every change bumps the entry's ``version`` and writes a ``catalogue_service_history`` row
(who, when, why, which fields, a snapshot) in the same transaction as the outbox event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, bindparam, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from citizen_services.domain.catalogue import (
    DuplicateService,
    InvalidTransition,
    ServiceStatus,
    check_transition,
    slugify,
)
from citizen_services.persistence.tables import CatalogueService, CatalogueServiceHistory
from contracts.citizen_services import (
    ServicePublished,
    ServiceRetired,
    ServiceSuspended,
    ServiceUpdated,
)
from servicekit.errors import DomainError, NotFound, PreconditionFailed
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


async def create_service(*, uow: UnitOfWork, command: CreateService) -> CatalogueService:
    slug = command.slug or slugify(command.name)
    # service_code is at most 64 characters (Open311 and the column); a slug may be 120.
    code = command.service_code or slug[:64].rstrip("-")
    clash = await uow.session.execute(
        select(col(CatalogueService.id)).where(
            or_(col(CatalogueService.slug) == slug, col(CatalogueService.service_code) == code)))
    if clash.first() is not None:
        raise _duplicate(slug, code)
    now = datetime.now(UTC)
    service = CatalogueService(
        name=command.name, description=command.description, slug=slug, service_code=code,
        keywords=list(command.keywords), groups=list(command.groups),
        department=command.department, status=ServiceStatus.DRAFT.value,
        created_at=now, updated_at=now, **command.details,
    )
    uow.session.add(service)
    _record(uow, service, action="created", actor=command.actor, now=now)
    try:
        await uow.commit()
    except IntegrityError:  # a concurrent create took the slug or code after our check
        await uow.rollback()
        raise _duplicate(slug, code) from None
    return service


def _duplicate(slug: str, code: str) -> DuplicateService:
    return DuplicateService(f"A service with slug '{slug}' or service_code '{code}' exists.",
                            slug=slug, service_code=code)


_ENTRY = CatalogueService.__table__  # type: ignore[attr-defined]
#: One entry by id, as a row (Core, not an ORM object: a read needs no identity map, and
#: loading an ORM instance cost twice the whole query).
_ENTRY_BY_ID = select(_ENTRY).where(_ENTRY.c.id == bindparam("service_id"))


async def find_service(*, session: AsyncSession, service_id: uuid.UUID) -> Row[Any]:
    """Read one entry (a query: no unit of work needed); its columns as attributes."""
    service = (await session.execute(_ENTRY_BY_ID, {"service_id": service_id})).first()
    if service is None:
        raise ServiceNotFound(f"No service with id {service_id}.")
    return service


async def get_service(*, uow: UnitOfWork, service_id: uuid.UUID,
                      for_update: bool = False) -> CatalogueService:
    # for_update: lock the row (PostgreSQL) so concurrent status changes queue instead of
    # each reading the old status and publishing their own event; SQLite's BEGIN IMMEDIATE
    # already serialises writers.
    service = await uow.session.get(CatalogueService, service_id, with_for_update=for_update)
    if service is None:
        raise ServiceNotFound(f"No service with id {service_id}.")
    return service


async def publish_service(*, uow: UnitOfWork, command: PublishService) -> CatalogueService:
    service = await get_service(uow=uow, service_id=command.service_id, for_update=True)
    check_transition(service.status, ServiceStatus.PUBLISHED)
    now = datetime.now(UTC)
    service.status = ServiceStatus.PUBLISHED.value
    service.version += 1
    service.published_at = now
    service.updated_at = now
    service.status_changed_by = command.actor
    service.status_changed_at = now
    service.status_reason = None
    _record(uow, service, action="published", actor=command.actor, now=now)
    uow.publish(ServicePublished(
        service_id=service.id, service_code=service.service_code, slug=service.slug,
        name=service.name, entry_version=service.version, occurred_at=now,
        published_by=command.actor,
    ))
    await uow.commit()
    return service


#: Fields a PATCH may change; an explicit null on a list clears it.
_LIST_FIELDS = {"keywords", "groups", "lgsl_codes", "audience", "attributes"}
_SNAPSHOT_FIELDS = ("name", "description", "keywords", "groups", "department", "lgsl_codes",
                    "channels", "eligibility", "fees", "audience", "opening_hours",
                    "accessibility_statement_url", "last_reviewed_on", "attributes", "status")


class VersionMismatch(PreconditionFailed):
    code, title = "version-mismatch", "The entry changed since it was read"


def _snapshot(service: CatalogueService) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _SNAPSHOT_FIELDS:
        value = getattr(service, name)
        out[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def _record(uow: UnitOfWork, service: CatalogueService, *, action: str, actor: str | None,
            now: datetime, reason: str | None = None,
            changed_fields: list[str] | None = None) -> None:
    uow.session.add(CatalogueServiceHistory(
        service_id=service.id, version=service.version, action=action, actor=actor,
        reason=reason, changed_fields=changed_fields or [], snapshot=_snapshot(service),
        occurred_at=now))


async def update_service(*, uow: UnitOfWork, command: UpdateService) -> CatalogueService:
    service = await get_service(uow=uow, service_id=command.service_id, for_update=True)
    if service.version != command.expected_version:
        raise VersionMismatch(
            f"The entry is at version {service.version}, not {command.expected_version}: "
            "read it again and reapply the change.", current_version=service.version)
    if service.status == ServiceStatus.RETIRED.value:
        raise InvalidTransition("A retired service cannot be changed.",
                                current_status=service.status)
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
    _record(uow, service, action="updated", actor=command.actor, now=now,
            changed_fields=changed)
    uow.publish(ServiceUpdated(
        service_id=service.id, service_code=service.service_code, slug=service.slug,
        name=service.name, entry_version=service.version, occurred_at=now,
        changed_fields=changed, updated_by=command.actor,
    ))
    await uow.commit()
    return service


async def _change_status(*, uow: UnitOfWork, command: ChangeStatus,
                         target: ServiceStatus) -> tuple[CatalogueService, datetime]:
    service = await get_service(uow=uow, service_id=command.service_id, for_update=True)
    check_transition(service.status, target)
    now = datetime.now(UTC)
    service.status = target.value
    service.version += 1
    service.updated_at = now
    service.status_changed_at = now
    service.status_changed_by = command.actor
    service.status_reason = command.reason
    _record(uow, service, action=target.value, actor=command.actor, now=now,
            reason=command.reason)
    return service, now


async def suspend_service(*, uow: UnitOfWork, command: ChangeStatus) -> CatalogueService:
    service, now = await _change_status(uow=uow, command=command,
                                        target=ServiceStatus.SUSPENDED)
    uow.publish(ServiceSuspended(
        service_id=service.id, service_code=service.service_code, slug=service.slug,
        name=service.name, entry_version=service.version, occurred_at=now,
        reason=command.reason, suspended_by=command.actor,
    ))
    await uow.commit()
    return service


async def retire_service(*, uow: UnitOfWork, command: ChangeStatus) -> CatalogueService:
    service, now = await _change_status(uow=uow, command=command, target=ServiceStatus.RETIRED)
    uow.publish(ServiceRetired(
        service_id=service.id, service_code=service.service_code, slug=service.slug,
        name=service.name, entry_version=service.version, occurred_at=now,
        reason=command.reason, retired_by=command.actor,
    ))
    await uow.commit()
    return service


async def service_history(*, session: AsyncSession,
                          service_id: uuid.UUID) -> list[CatalogueServiceHistory]:
    await find_service(session=session, service_id=service_id)
    result = await session.execute(
        select(CatalogueServiceHistory)
        .where(col(CatalogueServiceHistory.service_id) == service_id)
        .order_by(col(CatalogueServiceHistory.version)))
    return list(result.scalars().all())


class ImportConflict(DomainError):
    status, code, title = 422, "import-rejected", "Import rejected: nothing was imported"


async def import_services(*, uow: UnitOfWork,
                          commands: list[CreateService]) -> list[CatalogueService]:
    """Create every entry as a draft in one transaction, or none: a slug or service_code
    taken (in the database or earlier in the batch) names its record."""
    planned = []
    for command in commands:
        slug = command.slug or slugify(command.name)
        planned.append((slug, command.service_code or slug[:64].rstrip("-")))
    taken = await uow.session.execute(select(
        col(CatalogueService.slug), col(CatalogueService.service_code)))
    slugs, codes = set(), set()
    for slug, code in taken.all():
        slugs.add(slug)
        codes.add(code)
    errors: list[dict[str, Any]] = []
    for row, (slug, code) in enumerate(planned, start=1):
        if slug in slugs:
            errors.append({"row": row, "field": "slug", "message": f"'{slug}' is taken"})
        if code in codes:
            errors.append({"row": row, "field": "service_code",
                           "message": f"'{code}' is taken"})
        slugs.add(slug)
        codes.add(code)
    if errors:
        raise ImportConflict(f"{len({e['row'] for e in errors})} bad record(s).",
                             errors=errors)
    now = datetime.now(UTC)
    services = []
    for command, (slug, code) in zip(commands, planned, strict=True):
        service = CatalogueService(
            name=command.name, description=command.description, slug=slug,
            service_code=code, keywords=list(command.keywords), groups=list(command.groups),
            department=command.department, status=ServiceStatus.DRAFT.value,
            created_at=now, updated_at=now, **command.details)
        uow.session.add(service)
        _record(uow, service, action="created", actor=command.actor, now=now)
        services.append(service)
    try:
        await uow.commit()
    except IntegrityError:  # a concurrent create took a slug or code after our check
        await uow.rollback()
        raise ImportConflict("A slug or service_code was taken meanwhile: retry.",
                             errors=[]) from None
    return services


async def all_services(*, session: AsyncSession) -> list[CatalogueService]:
    result = await session.execute(select(CatalogueService).order_by(
        col(CatalogueService.name), col(CatalogueService.id)))
    return list(result.scalars().all())
