"""Help near me: venues, with their programmes' upcoming sessions, nearest first."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from inclusion.domain import geo
from inclusion.domain.programmes import ProgrammeKind
from inclusion.persistence.repositories import Repositories
from inclusion.persistence.sessions import UpcomingSession
from inclusion.persistence.tables import Venue
from servicekit.errors import DomainError


class WhereFrom(DomainError):
    status, code, title = 422, "location-required", "Say where you are"


@dataclass(frozen=True)
class Origin:
    latitude: float
    longitude: float
    postcode_district: str | None = None
    area: str | None = None


@dataclass(frozen=True)
class NearbyVenue:
    venue: Venue
    distance_km: float
    sessions: list[UpcomingSession]


def origin_of(*, postcode: str | None, lat: float | None, long: float | None) -> Origin:
    if postcode:
        district = geo.lookup(postcode)
        return Origin(district.latitude, district.longitude, district.code, district.area)
    if lat is not None and long is not None:
        return Origin(lat, long)
    raise WhereFrom("Give a postcode (e.g. MK9) or both lat and long.", rule="location")


async def help_near_me(
    *,
    repos: Repositories,
    origin: Origin,
    kind: ProgrammeKind | None = None,
    limit: int = 10,
) -> list[NearbyVenue]:
    """Venues sorted by distance from ``origin``, each with the upcoming sessions of published
    programmes held there (of ``kind`` if given). Venues with nothing on are left out when a
    ``kind`` is asked for; otherwise they are listed too (they may offer drop-in help).

    The nearest ``limit`` venues are chosen first (venues are few and their distance is a
    sum), then only their sessions are read: the answer costs the same whatever the number of
    sessions elsewhere."""
    now = datetime.now(UTC)
    venues = await repos.venues.matching()
    if kind is not None:
        holding = await repos.sessions.venues_with_upcoming(after=now, kind=kind.value)
        venues = [v for v in venues if v.id in holding]
    ranked = sorted(
        (
            (geo.distance_km(origin.latitude, origin.longitude, v.latitude, v.longitude), v)
            for v in venues
        ),
        key=lambda pair: (pair[0], pair[1].name),
    )[:limit]
    sessions = await repos.sessions.upcoming_at(
        [v.id for _, v in ranked], after=now, kind=kind.value if kind else None
    )
    by_venue: dict[uuid.UUID, list[UpcomingSession]] = defaultdict(list)
    for session in sessions:
        by_venue[session.venue_id].append(session)
    return [NearbyVenue(venue, distance, by_venue.get(venue.id, [])) for distance, venue in ranked]
