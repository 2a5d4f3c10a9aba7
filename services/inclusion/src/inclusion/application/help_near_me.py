"""Help near me: venues, with their programmes' upcoming sessions, nearest first."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from inclusion.application.sessions import SessionView, session_views
from inclusion.domain import geo
from inclusion.domain.programmes import ProgrammeKind, ProgrammeStatus
from inclusion.persistence.repositories import Repositories
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
    sessions: list[SessionView]


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
    ``kind`` is asked for; otherwise they are listed too (they may offer drop-in help)."""
    views = await session_views(repos=repos, staff=False, upcoming_only=True)
    by_venue: dict[object, list[SessionView]] = defaultdict(list)
    for view in views:
        if view.programme.status != ProgrammeStatus.PUBLISHED:
            continue
        if kind is not None and view.programme.kind != kind.value:
            continue
        by_venue[view.venue.id].append(view)
    nearby = [
        NearbyVenue(
            venue,
            geo.distance_km(origin.latitude, origin.longitude, venue.latitude, venue.longitude),
            by_venue.get(venue.id, []),
        )
        for venue in await repos.venues.matching()
        if kind is None or by_venue.get(venue.id)
    ]
    nearby.sort(key=lambda n: (n.distance_km, n.venue.name))
    return nearby[:limit]
