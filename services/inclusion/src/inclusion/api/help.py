"""``/api/v1/help-near-me``: venues and their upcoming sessions, nearest first, from an MK
postcode district (``?postcode=MK9``) or a point (``?lat=&long=``). Public."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from inclusion.api import presenters
from inclusion.api.deps import ReadDep
from inclusion.api.schemas import HelpNearMe, NearbyVenuePublic, OriginPublic
from inclusion.application.help_near_me import help_near_me, origin_of
from inclusion.domain.programmes import ProgrammeKind
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/help-near-me", tags=["help near me"])


@router.get(
    "",
    response_model=HelpNearMe,
    summary="Help near me, nearest first",
    responses=problem_responses(
        (422, "No location given, or a postcode outside MK1-MK19, MK40-MK46")
    ),
)
async def near_me(
    repos: ReadDep,
    postcode: Annotated[str | None, Query(max_length=10, examples=["MK9"])] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    long: Annotated[float | None, Query(ge=-180, le=180)] = None,
    kind: ProgrammeKind | None = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> HelpNearMe:
    origin = origin_of(postcode=postcode, lat=lat, long=long)
    nearby = await help_near_me(repos=repos, origin=origin, kind=kind, limit=limit)
    return HelpNearMe(
        origin=OriginPublic.model_validate(origin, from_attributes=True),
        venues=[
            NearbyVenuePublic(
                venue=presenters.venue(n.venue),
                distance_km=round(n.distance_km, 2),
                sessions=[presenters.nearby_session(s) for s in n.sessions],
            )
            for n in nearby
        ],
    )
