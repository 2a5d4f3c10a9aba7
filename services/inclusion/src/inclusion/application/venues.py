"""Venues: where sessions happen; staff add them, everyone may read them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from inclusion.application.unit_of_work import InclusionUnitOfWork
from inclusion.persistence.repositories import Repositories
from inclusion.persistence.tables import Venue
from servicekit.errors import NotFound


class VenueNotFound(NotFound):
    code, title = "venue-not-found", "Venue not found"


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
