"""``/api/v1/venues``: staff add venues; anyone reads them."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from inclusion.api import presenters
from inclusion.api.deps import InclusionUowDep, ReadDep
from inclusion.api.openapi import created_responses
from inclusion.api.schemas import VenueCreate, VenuePublic
from inclusion.application import venues
from inclusion.domain.geo import Ward
from servicekit.identity import StaffPrincipal

router = APIRouter(prefix="/api/v1/venues", tags=["venues"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=VenuePublic,
    summary="Add a venue",
    responses=created_responses("venue"),
)
async def create_venue(
    body: VenueCreate, uow: InclusionUowDep, response: Response, staff: StaffPrincipal
) -> VenuePublic:
    venue = await venues.create_venue(
        uow=uow,
        command=venues.CreateVenue(
            **body.model_dump(exclude={"opening_times"}),
            opening_times=[t.model_dump() for t in body.opening_times],
        ),
    )
    response.headers["Location"] = f"/api/v1/venues/{venue.id}"
    return presenters.venue(venue)


@router.get("", response_model=list[VenuePublic], summary="List venues")
async def list_venues(repos: ReadDep, ward: Ward | None = None) -> list[VenuePublic]:
    return [presenters.venue(v) for v in await venues.list_venues(repos=repos, ward=ward)]


@router.get("/{venue_id}", response_model=VenuePublic, summary="Read a venue")
async def read_venue(venue_id: uuid.UUID, repos: ReadDep) -> VenuePublic:
    return presenters.venue(await venues.find_venue(repos=repos, venue_id=venue_id))
