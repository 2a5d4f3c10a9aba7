"""Catalogue commands: create a service entry, publish it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from citizen_services.domain.catalogue import (
    DuplicateService,
    ServiceStatus,
    check_transition,
    slugify,
)
from citizen_services.persistence.tables import CatalogueService
from contracts.citizen_services import ServicePublished
from servicekit.errors import NotFound
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
        created_at=now, updated_at=now,
    )
    uow.session.add(service)
    try:
        await uow.commit()
    except IntegrityError:  # a concurrent create took the slug or code after our check
        await uow.rollback()
        raise _duplicate(slug, code) from None
    return service


def _duplicate(slug: str, code: str) -> DuplicateService:
    return DuplicateService(f"A service with slug '{slug}' or service_code '{code}' exists.",
                            slug=slug, service_code=code)


async def find_service(*, session: AsyncSession, service_id: uuid.UUID) -> CatalogueService:
    """Read one entry (a query: no unit of work needed)."""
    service = await session.get(CatalogueService, service_id)
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
    uow.publish(ServicePublished(
        service_id=service.id, service_code=service.service_code, slug=service.slug,
        name=service.name, entry_version=service.version, occurred_at=now,
        published_by=command.actor,
    ))
    await uow.commit()
    return service
