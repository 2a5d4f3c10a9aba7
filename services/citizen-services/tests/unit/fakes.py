"""In-memory fakes of citizen-services' repositories and unit of work, for unit tests of
``application/`` that run without a database (cosmicpython's ``FakeRepository``).

Each fake subclasses the repository it stands for and overrides every method, keeping
plain lists and dicts; the API and integration tests cover the real SQL."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from citizen_services.domain.catalogue import ServiceStatus
from citizen_services.domain.search import SearchResult, SearchServices
from citizen_services.persistence.catalogue import CatalogueRepository
from citizen_services.persistence.outbox import OutboxRepository
from citizen_services.persistence.requests import RequestRepository
from citizen_services.persistence.tables import (
    CatalogueService,
    CatalogueServiceHistory,
    ServiceRequest,
    ServiceRequestUpdate,
)
from contracts import Event

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class FakeUnitOfWork:
    """What commands use of ``servicekit.uow.UnitOfWork``: ``publish`` and ``flush``."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.flushes = 0
        #: Raised by the next flush (a constraint the database would check).
        self.flush_error: Exception | None = None

    def publish(self, event: Event) -> None:
        self.events.append(event)

    async def flush(self) -> None:
        self.flushes += 1
        if self.flush_error is not None:
            raise self.flush_error


class FakeCatalogue(CatalogueRepository):
    def __init__(self, services: Iterable[CatalogueService] = ()) -> None:
        self.services = {s.id: s for s in services}
        self.history_rows: list[CatalogueServiceHistory] = []
        self.locked: list[uuid.UUID] = []
        self.searches: list[SearchServices] = []
        self.catalogue_version = 7

    def add(self, service: CatalogueService) -> None:
        self.services[service.id] = service

    def add_history(self, entry: CatalogueServiceHistory) -> None:
        self.history_rows.append(entry)

    async def get(
        self, service_id: uuid.UUID, *, for_update: bool = False
    ) -> CatalogueService | None:
        if for_update:
            self.locked.append(service_id)
        return self.services.get(service_id)

    async def slug_or_code_taken(self, slug: str, code: str) -> bool:
        return any(s.slug == slug or s.service_code == code for s in self.services.values())

    async def slugs_and_codes(self) -> list[tuple[str, str]]:
        return [(s.slug, s.service_code) for s in self.services.values()]

    async def count(self) -> int:
        return len(self.services)

    async def entry(self, service_id: uuid.UUID) -> Any:
        return self.services.get(service_id)

    async def history(self, service_id: uuid.UUID) -> list[CatalogueServiceHistory]:
        return sorted(
            (h for h in self.history_rows if h.service_id == service_id), key=lambda h: h.version
        )

    async def all(self) -> list[CatalogueService]:
        return sorted(self.services.values(), key=lambda s: (s.name, str(s.id)))

    async def by_code(self, code: str) -> CatalogueService | None:
        return next((s for s in self.services.values() if s.service_code == code), None)

    async def published(self) -> list[CatalogueService]:
        return [s for s in await self.all() if s.status == ServiceStatus.PUBLISHED.value]

    async def published_by_code(self, code: str) -> CatalogueService | None:
        return next((s for s in await self.published() if s.service_code == code), None)

    async def names(self, codes: Iterable[str]) -> dict[str, str]:
        wanted = set(codes)
        return {s.service_code: s.name for s in self.services.values() if s.service_code in wanted}

    async def published_facets(
        self,
    ) -> list[tuple[str | None, list[int], list[str], dict[str, Any]]]:
        return [
            (s.department, s.lgsl_codes or [], s.groups or [], s.channels or {})
            for s in await self.published()
        ]

    async def published_channels(self) -> list[tuple[uuid.UUID, dict[str, Any]]]:
        return [(s.id, s.channels or {}) for s in await self.published()]

    async def search(self, query: SearchServices) -> SearchResult:
        """Name order, the status, group, lgsl and venue filters and every word somewhere
        in the name, keywords or description: enough for the application's rules."""
        self.searches.append(query)
        words = [w.lower() for w in query.words()]
        rows = [
            s
            for s in await self.all()
            if s.status == query.status.value
            and (query.group is None or query.group in (s.groups or []))
            and (query.lgsl is None or query.lgsl in (s.lgsl_codes or []))
            and (query.channel is None or (s.channels or {}).get(query.channel.value))
            and all(
                w in " ".join([s.name, s.description, *(s.keywords or [])]).lower() for w in words
            )
        ]
        start = (query.page - 1) * query.size
        return SearchResult(
            items=rows[start : start + query.size],
            total=len(rows),
            catalogue_version=self.catalogue_version,
        )

    async def version(self) -> int:
        return self.catalogue_version


class FakeRequests(RequestRepository):
    def __init__(
        self, requests: Iterable[ServiceRequest] = (), updates: Iterable[ServiceRequestUpdate] = ()
    ) -> None:
        self.requests = {r.id: r for r in requests}
        self.update_rows: list[ServiceRequestUpdate] = []
        self._ids = itertools.count(1)
        self.locked: list[uuid.UUID] = []
        for update in updates:
            self.add_update(update)

    def add(self, request: ServiceRequest) -> None:
        self.requests[request.id] = request

    def add_update(self, update_: ServiceRequestUpdate) -> None:
        if update_.id is None:
            update_.id = next(self._ids)
        self.update_rows.append(update_)

    async def get(
        self, request_id: uuid.UUID, *, for_update: bool = False
    ) -> ServiceRequest | None:
        if for_update:
            self.locked.append(request_id)
        return self.requests.get(request_id)

    async def of_citizen(self, citizen_id: str) -> list[ServiceRequest]:
        return [r for r in self.requests.values() if r.citizen_id == citizen_id]

    async def clear_notes(self, request_ids: Sequence[uuid.UUID]) -> None:
        for update in self.update_rows:
            if update.request_id in request_ids:
                update.note = None

    async def forget_actor(self, actor: str) -> None:
        for update in self.update_rows:
            if update.actor == actor:
                update.actor = None

    async def updates(self, request_id: uuid.UUID) -> list[ServiceRequestUpdate]:
        return sorted(
            (u for u in self.update_rows if u.request_id == request_id), key=lambda u: u.id or 0
        )

    def _newest_first(self, rows: Iterable[ServiceRequest]) -> list[ServiceRequest]:
        return sorted(
            sorted(rows, key=lambda r: str(r.id)), key=lambda r: r.created_at, reverse=True
        )

    async def page(
        self,
        *,
        citizen_id: str | None,
        status: str | None,
        service_code: str | None,
        assigned_to: str | None,
        area: str | None = None,
        page: int,
        size: int,
    ) -> tuple[list[ServiceRequest], int]:
        rows = [
            r
            for r in self.requests.values()
            if (citizen_id is None or r.citizen_id == citizen_id)
            and (not status or r.status == status)
            and (not service_code or r.service_code == service_code)
            and (not assigned_to or r.assigned_to == assigned_to)
            and (not area or r.area == area)
        ]
        start = (page - 1) * size
        return self._newest_first(rows)[start : start + size], len(rows)

    async def public(
        self,
        *,
        ids: Sequence[uuid.UUID] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        service_codes: Sequence[str] = (),
        statuses: Sequence[str] | None = None,
        limit: int,
    ) -> list[ServiceRequest]:
        rows = [r for r in self.requests.values() if r.public]
        if ids is not None:
            rows = [r for r in rows if r.id in ids]
        else:
            rows = [
                r
                for r in rows
                if (start is None or r.created_at >= start)
                and (end is None or r.created_at <= end)
                and (not service_codes or r.service_code in service_codes)
                and (statuses is None or r.status in statuses)
            ]
        return self._newest_first(rows)[:limit]

    async def public_notes(self, request_ids: Sequence[uuid.UUID]) -> list[ServiceRequestUpdate]:
        return [
            u
            for u in sorted(self.update_rows, key=lambda u: u.id or 0)
            if u.request_id in request_ids and u.note is not None and u.note_visibility == "public"
        ]

    async def public_changes(
        self, *, start: datetime | None, end: datetime | None, limit: int
    ) -> list[ServiceRequestUpdate]:
        public = {r.id for r in self.requests.values() if r.public}
        rows = [
            u
            for u in self.update_rows
            if u.request_id in public
            and u.previous_status is not None
            and (
                u.status != u.previous_status
                or (u.note is not None and u.note_visibility == "public")
            )
            and (start is None or u.occurred_at >= start)
            and (end is None or u.occurred_at <= end)
        ]
        return sorted(rows, key=lambda u: (u.occurred_at, u.id or 0))[:limit]


class FakeOutbox(OutboxRepository):
    def __init__(self, payloads: dict[int, str] | None = None) -> None:
        self.payloads = dict(payloads or {})

    async def payloads_naming(self, subject: str) -> list[tuple[int, str]]:
        return [(i, p) for i, p in self.payloads.items() if f'"{subject}"' in p]

    async def set_payload(self, row_id: int, payload: str) -> None:
        self.payloads[row_id] = payload


def make_service(
    name: str = "Report fly-tipping", *, status: str = "published", **fields: Any
) -> CatalogueService:
    """A catalogue entry as the database would hold it."""
    slug = fields.pop("slug", name.lower().replace(" ", "-"))
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "name": name,
        "description": "",
        "slug": slug,
        "service_code": slug[:64],
        "status": status,
        "version": 1,
        "keywords": [],
        "groups": [],
        "lgsl_codes": [],
        "channels": {},
        "audience": [],
        "attributes": [],
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return CatalogueService(**values)


def make_request(*, service: CatalogueService | None = None, **fields: Any) -> ServiceRequest:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "service_id": service.id if service else uuid.uuid4(),
        "service_code": service.service_code if service else "fly-tipping",
        "status": "open",
        "description": "",
        "attributes": {},
        "public": False,
        "version": 1,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return ServiceRequest(**values)
