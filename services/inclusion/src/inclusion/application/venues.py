"""Venues: where sessions happen; staff add and change them, everyone may read them.

A change names the version it was made on (the ETag the editor read): a venue changed since
is refused (412), so one editor never silently undoes another's change. Each change that
alters something bumps the version and records when and by whom. Venues publish no events
(nothing consumes them; sessions' events carry the venue's name and address as they were).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from inclusion.application.unit_of_work import InclusionUnitOfWork
from inclusion.persistence.repositories import Repositories
from inclusion.persistence.tables import Venue
from servicekit.errors import NotFound, PreconditionFailed


class VenueNotFound(NotFound):
    code, title = "venue-not-found", "Venue not found"


class VenueChanged(PreconditionFailed):
    code, title = "venue-changed", "The venue has changed"


#: What a change may set (the venue's own details; not its id or history).
CHANGEABLE = (
    "name",
    "address",
    "postcode",
    "ward",
    "latitude",
    "longitude",
    "accessibility_notes",
    "opening_times",
)


@dataclass(frozen=True)
class CreateVenue:
    name: str
    address: str
    postcode: str
    ward: str
    latitude: float
    longitude: float
    accessibility_notes: str = ""
    opening_times: list[dict[str, str]] = field(default_factory=list)
    id: uuid.UUID | None = None


async def create_venue(*, uow: InclusionUnitOfWork, command: CreateVenue) -> Venue:
    venue = Venue(
        id=command.id or uuid.uuid4(),
        name=command.name,
        address=command.address,
        postcode=command.postcode.upper(),
        ward=command.ward,
        latitude=command.latitude,
        longitude=command.longitude,
        accessibility_notes=command.accessibility_notes,
        opening_times=list(command.opening_times),
        created_at=datetime.now(UTC),
    )
    uow.venues.add(venue)
    return venue


async def find_venue(*, repos: Repositories, venue_id: uuid.UUID) -> Venue:
    venue = await repos.venues.get(venue_id)
    if venue is None:
        raise VenueNotFound(f"No venue with id {venue_id}.")
    return venue


async def list_venues(*, repos: Repositories, ward: str | None = None) -> list[Venue]:
    return await repos.venues.matching(ward=ward)


@dataclass(frozen=True)
class UpdateVenue:
    venue_id: uuid.UUID
    #: The version the editor read (the ETag they send as If-Match).
    expected_version: int
    #: Only the fields to change (names from CHANGEABLE).
    changes: dict[str, Any]
    actor: str | None


async def update_venue(*, uow: InclusionUnitOfWork, command: UpdateVenue) -> Venue:
    venue = await uow.venues.lock(command.venue_id)
    if venue is None:
        raise VenueNotFound(f"No venue with id {command.venue_id}.")
    if venue.version != command.expected_version:
        raise VenueChanged(
            "Someone changed this venue since you read it: read it again and redo your change.",
            current_version=venue.version,
        )
    changed = False
    for name, value in command.changes.items():
        if name not in CHANGEABLE:
            raise ValueError(f"not a venue field: {name}")
        if name == "postcode":
            value = str(value).strip().upper()
        if getattr(venue, name) != value:
            setattr(venue, name, value)
            changed = True
    if changed:
        venue.version += 1
        venue.updated_at = datetime.now(UTC)
        venue.updated_by = command.actor
    return venue
