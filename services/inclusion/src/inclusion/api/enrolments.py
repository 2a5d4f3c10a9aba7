"""``/api/v1/enrolments``: a citizen's own enrolments (staff: everyone's); cancelling one;
attendance (staff). Another citizen's enrolment answers 404, as if it did not exist."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from inclusion.api import presenters
from inclusion.api.deps import CitizenOrStaff, InclusionUowDep, ReadDep
from inclusion.api.schemas import AttendanceRequest, EnrolmentPublic
from inclusion.application import enrolments
from inclusion.domain.sessions import EnrolmentStatus
from servicekit.identity import Principal, Role, StaffPrincipal
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/enrolments", tags=["enrolments"])


def _staff(principal: Principal) -> bool:
    return principal.has_role(Role.STAFF)


@router.get(
    "",
    response_model=list[EnrolmentPublic],
    summary="My enrolments (staff: everyone's, filtered by session)",
)
async def list_enrolments(
    repos: ReadDep,
    principal: CitizenOrStaff,
    session_id: uuid.UUID | None = None,
    status: EnrolmentStatus | None = None,
) -> list[EnrolmentPublic]:
    found = await enrolments.list_enrolments(
        repos=repos,
        subject=None if _staff(principal) else principal.subject,
        session_id=session_id,
        status=status,
    )
    return presenters.enrolments(await enrolments.enrolment_views(repos=repos, enrolments=found))


@router.get("/{enrolment_id}", response_model=EnrolmentPublic, summary="Read an enrolment")
async def read_enrolment(
    enrolment_id: uuid.UUID, repos: ReadDep, principal: CitizenOrStaff
) -> EnrolmentPublic:
    found = await enrolments.get_enrolment(
        repos=repos, enrolment_id=enrolment_id, subject=principal.subject, staff=_staff(principal)
    )
    return presenters.enrolment(await enrolments.enrolment_view(repos=repos, enrolment=found))


@router.post(
    "/{enrolment_id}/cancel",
    response_model=EnrolmentPublic,
    summary="Cancel an enrolment (a freed place goes to the first on the waitlist)",
    responses=problem_responses(
        (409, "Already cancelled"), (422, "The session has already started")
    ),
)
async def cancel_enrolment(
    enrolment_id: uuid.UUID, uow: InclusionUowDep, principal: CitizenOrStaff
) -> EnrolmentPublic:
    cancelled = await enrolments.cancel(
        uow=uow,
        command=enrolments.CancelEnrolment(
            enrolment_id=enrolment_id, subject=principal.subject, by_staff=_staff(principal)
        ),
    )
    return presenters.enrolment(await enrolments.enrolment_view(repos=uow, enrolment=cancelled))


@router.post(
    "/{enrolment_id}/attendance",
    response_model=EnrolmentPublic,
    summary="Record whether the participant attended (staff)",
    responses=problem_responses((409, "Not a confirmed enrolment, or the session has not started")),
)
async def record_attendance(
    enrolment_id: uuid.UUID, body: AttendanceRequest, uow: InclusionUowDep, staff: StaffPrincipal
) -> EnrolmentPublic:
    recorded = await enrolments.record_attendance(
        uow=uow,
        command=enrolments.RecordAttendance(enrolment_id=enrolment_id, attended=body.attended),
    )
    return presenters.enrolment(
        await enrolments.enrolment_view(repos=uow, enrolment=recorded, positions={})
    )
