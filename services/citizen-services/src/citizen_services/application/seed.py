"""Seed data for a first start: 240+ Milton Keynes council digital services, published, from
``persistence/seed_services.json``. Runs when the catalogue is empty
(``CITIZEN_SERVICES_SEED_DATA``, on by default; the service's own tests turn it off).

Seeding is the catalogue's initial state, not a change: it writes history rows (actor
``seed``) but no events, so consumers (notifications emails staff on ServicePublished) are not
flooded on a first start. Ids are stable (uuid5 of the slug), so two instances starting at
once insert the same rows and the second one's transaction fails harmlessly.

LGSL codes are only those confirmed in the esd standards pages or GOV.UK's LGSL list
(sources in docs/citizen-services.md); services without a confirmed code have none.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from citizen_services.domain.catalogue import ServiceStatus, slugify
from citizen_services.persistence.catalogue import CatalogueRepository
from citizen_services.persistence.tables import CatalogueService, CatalogueServiceHistory
from servicekit.db import Database
from servicekit.uow import UnitOfWork

log = logging.getLogger(__name__)
DATA = Path(__file__).parent.parent / "persistence" / "seed_services.json"
NAMESPACE = uuid.UUID("0b6e3c52-8f2a-4d8e-9a57-3c1f6c2d9e41")
ACTOR = "seed"


def seed_records() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(DATA.read_text(encoding="utf-8"))
    return records


async def seed_if_empty(database: Database, *, source: str) -> int:
    """Seed an empty catalogue in one unit of work; how many entries it wrote (0: the
    catalogue had entries, or another instance seeded it first)."""
    try:
        async with UnitOfWork(database, source=source) as uow:
            seeded = await seed(entries=CatalogueRepository(uow.db))
    except IntegrityError:  # another instance seeded first
        return 0
    if seeded:
        log.info("seeded the catalogue", extra={"services": seeded})
    return seeded


async def seed(
    *,
    entries: CatalogueRepository,
    records: list[dict[str, Any]] | None = None,
    now: datetime | None = None,
) -> int:
    """Add the seed entries (published, with their history) if the catalogue is empty."""
    if await entries.count():
        return 0
    now = now or datetime.now(UTC)
    records = seed_records() if records is None else records
    for record in records:
        data = dict(record)
        slug = slugify(data["name"])
        reviewed = data.pop("last_reviewed_on", None)
        service = CatalogueService(
            id=uuid.uuid5(NAMESPACE, slug),
            slug=slug,
            service_code=slug[:64].rstrip("-"),
            status=ServiceStatus.PUBLISHED.value,
            version=2,
            created_at=now,
            updated_at=now,
            published_at=now,
            status_changed_at=now,
            status_changed_by=ACTOR,
            last_reviewed_on=date.fromisoformat(reviewed) if reviewed else None,
            **data,
        )
        entries.add(service)
        for version, action in ((1, "created"), (2, "published")):
            entries.add_history(
                CatalogueServiceHistory(
                    service_id=service.id,
                    version=version,
                    action=action,
                    actor=ACTOR,
                    occurred_at=now,
                )
            )
    return len(records)
