"""``/api/v1/participants/me``: what the service keeps about the calling citizen."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from inclusion.api import presenters
from inclusion.api.deps import InclusionUowDep, ReadDep
from inclusion.api.schemas import ParticipantPublic, ParticipantUpdate
from inclusion.application import erasure, participants
from servicekit.identity import CitizenPrincipal, StaffPrincipal
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/participants", tags=["participants"])


@router.get(
    "/me",
    response_model=ParticipantPublic,
    summary="My participant record",
    responses=problem_responses((404, "Nothing kept about you yet")),
)
async def read_me(repos: ReadDep, citizen: CitizenPrincipal) -> ParticipantPublic:
    assert citizen.subject is not None
    return presenters.participant(
        await participants.find_participant(repos=repos, subject=citizen.subject)
    )


@router.put(
    "/me",
    response_model=ParticipantPublic,
    summary="Create or update my participant record (consent needed to create it)",
    responses=problem_responses((422, "Consent missing or not an MK postcode")),
)
async def update_me(
    body: ParticipantUpdate, uow: InclusionUowDep, citizen: CitizenPrincipal
) -> ParticipantPublic:
    assert citizen.subject is not None
    participant = await participants.save_profile(
        uow=uow,
        subject=citizen.subject,
        consent=body.consent,
        profile=participants.Profile(**body.model_dump(exclude={"consent"})),
    )
    return presenters.participant(participant)


@router.delete(
    "/me",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase my data (UK GDPR) across the platform: pseudonymised here, my "
    "upcoming enrolments cancelled, and every service told to forget me",
)
async def erase_me(uow: InclusionUowDep, citizen: CitizenPrincipal) -> Response:
    assert citizen.subject is not None
    await erasure.erase(uow=uow, subject=citizen.subject, requested_by="citizen")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{participant_id}/erasure",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase a participant's data on their request, across the platform (staff)",
    responses=problem_responses((404, "No such participant")),
)
async def erase_participant(
    participant_id: uuid.UUID, uow: InclusionUowDep, staff: StaffPrincipal
) -> Response:
    await erasure.erase(uow=uow, participant_id=participant_id, requested_by="staff")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
