"""``/api/v1/venues``: staff add and change venues; anyone reads them.

A venue's ETag is its version. A change (``PATCH``) names the version it was made on in
``If-Match``: 428 without it, 412 when someone changed the venue since.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from inclusion.api import presenters
from inclusion.api.deps import InclusionUowDep, ReadDep
from inclusion.api.openapi import created_responses
from inclusion.api.schemas import VenueCreate, VenuePublic, VenueUpdate
from inclusion.application import venues
from inclusion.domain.geo import Ward
from servicekit.errors import DomainError
from servicekit.identity import CurrentPrincipal, Role, StaffPrincipal
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/venues", tags=["venues"])

ETAG = {"ETag": {"description": "The venue's version, for If-Match.", "schema": {"type": "string"}}}


class PreconditionRequired(DomainError):
    status, code, title = 428, "precondition-required", "If-Match required"


class NothingToChange(DomainError):
    status, code, title = 422, "nothing-to-change", "Nothing to change"


_ETAG = re.compile(r'^\s*(?:W/)?"(\d{1,9})"\s*$')


def _expected_version(if_match: str | None) -> int:
    if not if_match:
        raise PreconditionRequired("Send If-Match with the ETag of the venue you read.")
    match = _ETAG.match(if_match)
    if match is None:  # not an ETag this service issued: it cannot match
        raise venues.VenueChanged("If-Match does not match the venue's ETag.")
    return int(match.group(1))


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
    response.headers["ETag"] = f'"{venue.version}"'
    return presenters.venue(venue, staff=True)


@router.get("", response_model=list[VenuePublic], summary="List venues")
async def list_venues(
    repos: ReadDep, principal: CurrentPrincipal, ward: Ward | None = None
) -> list[VenuePublic]:
    staff = principal.has_role(Role.STAFF, Role.ADMIN)
    return [
        presenters.venue(v, staff=staff) for v in await venues.list_venues(repos=repos, ward=ward)
    ]


@router.get(
    "/{venue_id}",
    response_model=VenuePublic,
    summary="Read a venue",
    responses={200: {"headers": ETAG}},
)
async def read_venue(
    venue_id: uuid.UUID, repos: ReadDep, principal: CurrentPrincipal, response: Response
) -> VenuePublic:
    venue = await venues.find_venue(repos=repos, venue_id=venue_id)
    response.headers["ETag"] = f'"{venue.version}"'
    return presenters.venue(venue, staff=principal.has_role(Role.STAFF, Role.ADMIN))


@router.patch(
    "/{venue_id}",
    response_model=VenuePublic,
    summary="Change a venue (If-Match required)",
    responses={
        200: {"headers": ETAG},
        **problem_responses(
            (404, "No such venue"),
            (412, "Changed since read"),
            (422, "Invalid or nothing to change"),
            (428, "If-Match missing"),
        ),
    },
)
async def update_venue(
    venue_id: uuid.UUID,
    body: VenueUpdate,
    uow: InclusionUowDep,
    response: Response,
    staff: StaffPrincipal,
    if_match: Annotated[str | None, Header(description="The ETag of the venue as read.")] = None,
) -> VenuePublic:
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise NothingToChange(
            "Send at least one field to change.",
            errors=[{"field": "name", "message": "nothing to change"}],
        )
    venue = await venues.update_venue(
        uow=uow,
        command=venues.UpdateVenue(
            venue_id=venue_id,
            expected_version=_expected_version(if_match),
            changes=changes,
            actor=staff.subject,
        ),
    )
    response.headers["ETag"] = f'"{venue.version}"'
    return presenters.venue(venue, staff=True)
