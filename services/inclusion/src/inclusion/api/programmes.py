"""``/api/v1/programmes``: staff create and publish programmes; anyone reads published ones
(drafts and archived programmes are staff-only: others get 404)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from inclusion.api import presenters
from inclusion.api.deps import CitizenOrStaff, InclusionUowDep, ReadDep
from inclusion.api.openapi import created_responses
from inclusion.api.schemas import (
    EligibilityCheck,
    OutcomeCreate,
    OutcomeFiguresPublic,
    OutcomePublic,
    ProgrammeCreate,
    ProgrammePublic,
    ProgrammeStatusChange,
    UnmetRulePublic,
)
from inclusion.application import outcomes, programmes
from inclusion.domain.programmes import EligibilityRules, ProgrammeKind, ProgrammeStatus
from servicekit.identity import CitizenPrincipal, CurrentPrincipal, Role, StaffPrincipal
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/programmes", tags=["programmes"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProgrammePublic,
    summary="Create a programme (draft)",
    responses=created_responses("programme"),
)
async def create_programme(
    body: ProgrammeCreate, uow: InclusionUowDep, response: Response, staff: StaffPrincipal
) -> ProgrammePublic:
    programme = await programmes.create_programme(
        uow=uow,
        command=programmes.CreateProgramme(
            title=body.title,
            kind=body.kind,
            delivered_by=body.delivered_by,
            description=body.description,
            eligibility=EligibilityRules(**body.eligibility.model_dump()),
        ),
    )
    response.headers["Location"] = f"/api/v1/programmes/{programme.id}"
    return presenters.programme(programme)


@router.get(
    "",
    response_model=list[ProgrammePublic],
    summary="List programmes (published and closed ones; staff see all)",
)
async def list_programmes(
    repos: ReadDep,
    principal: CurrentPrincipal,
    kind: ProgrammeKind | None = None,
    status: ProgrammeStatus | None = None,
) -> list[ProgrammePublic]:
    found = await programmes.list_programmes(
        repos=repos, staff=principal.has_role(Role.STAFF), kind=kind, status=status
    )
    return [presenters.programme(p) for p in found]


@router.get("/{programme_id}", response_model=ProgrammePublic, summary="Read a programme")
async def read_programme(
    programme_id: uuid.UUID, repos: ReadDep, principal: CurrentPrincipal
) -> ProgrammePublic:
    return presenters.programme(
        await programmes.find_programme(
            repos=repos, programme_id=programme_id, staff=principal.has_role(Role.STAFF)
        )
    )


@router.post(
    "/{programme_id}/status",
    response_model=ProgrammePublic,
    summary="Publish, close or archive a programme (publishing emits ProgrammePublished)",
    responses=problem_responses((409, "The programme's status does not allow it")),
)
async def change_status(
    programme_id: uuid.UUID,
    body: ProgrammeStatusChange,
    uow: InclusionUowDep,
    staff: StaffPrincipal,
) -> ProgrammePublic:
    programme = await programmes.change_programme_status(
        uow=uow,
        command=programmes.ChangeProgrammeStatus(
            programme_id=programme_id, status=ProgrammeStatus(body.status), actor=staff.subject
        ),
    )
    return presenters.programme(programme)


@router.get(
    "/{programme_id}/eligibility",
    response_model=EligibilityCheck,
    summary="Check the caller against the programme's eligibility rules",
)
async def check_eligibility(
    programme_id: uuid.UUID, repos: ReadDep, citizen: CitizenPrincipal
) -> EligibilityCheck:
    assert citizen.subject is not None
    unmet = await programmes.check_eligibility(
        repos=repos, programme_id=programme_id, subject=citizen.subject
    )
    return EligibilityCheck(
        eligible=not unmet,
        unmet_rules=[UnmetRulePublic(rule=u.rule, reason=u.reason) for u in unmet],
    )


@router.post(
    "/{programme_id}/outcomes",
    status_code=status.HTTP_201_CREATED,
    response_model=OutcomePublic,
    summary="Record an Essential Digital Skills assessment (baseline or follow-up; "
    "emits OutcomeRecorded). Citizens record their own; staff name the "
    "participant.",
    responses=problem_responses(
        (409, "Already recorded for this stage"),
        (422, "Follow-up before baseline, unknown participant"),
    ),
)
async def record_outcome(
    programme_id: uuid.UUID, body: OutcomeCreate, uow: InclusionUowDep, principal: CitizenOrStaff
) -> OutcomePublic:
    staff = principal.has_role(Role.STAFF)
    assessment = await outcomes.record(
        uow=uow,
        command=outcomes.RecordOutcome(
            programme_id=programme_id,
            stage=body.stage,
            scores=body.scores.model_dump(),
            participant_id=body.participant_id if staff else None,
            subject=None if staff else principal.subject,
        ),
    )
    return OutcomePublic.model_validate(assessment.model_dump())


@router.get(
    "/{programme_id}/outcomes",
    response_model=OutcomeFiguresPublic,
    summary="Outcome figures of a programme: averages per skill area at baseline and "
    "follow-up, and how many improved (staff)",
)
async def outcome_figures(
    programme_id: uuid.UUID, repos: ReadDep, staff: StaffPrincipal
) -> OutcomeFiguresPublic:
    found = await outcomes.figures(repos=repos, programme_id=programme_id)
    return OutcomeFiguresPublic.model_validate(found, from_attributes=True)
