"""``/api/v1/enrolments``: a citizen's own enrolments (staff: everyone's); cancelling one;
attendance (staff). Another citizen's enrolment answers 404, as if it did not exist."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from inclusion.api import presenters
from inclusion.api.deps import CitizenOrStaff
from inclusion.api.schemas import AttendanceRequest, EnrolmentPublic
from inclusion.application import catalogue, enrolments
from inclusion.domain.sessions import EnrolmentStatus
from inclusion.persistence.tables import Enrolment
from servicekit.deps import ReadDbDep, UowDep
from servicekit.identity import Principal, Role, StaffPrincipal
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/enrolments", tags=["enrolments"])


def _staff(principal: Principal) -> bool:
    return principal.has_role(Role.STAFF)


async def present(session: AsyncSession, found: list[Enrolment],
                  positions: dict[uuid.UUID, int] | None = None) -> list[EnrolmentPublic]:
    """Response bodies for ``found``, with their sessions; current waitlist positions unless
    ``positions`` are given."""
    if positions is None:
        positions = await enrolments.waitlist_positions(session=session, enrolments=found)
    views = {v.session.id: v for v in await catalogue.session_views(
        session=session, staff=True, session_ids=list({e.session_id for e in found}))}
    return [presenters.enrolment(e, positions.get(e.id), views[e.session_id]) for e in found]


@router.get("", response_model=list[EnrolmentPublic],
            summary="My enrolments (staff: everyone's, filtered by session)")
async def list_enrolments(session: ReadDbDep, principal: CitizenOrStaff,
                          session_id: uuid.UUID | None = None,
                          status: EnrolmentStatus | None = None) -> list[EnrolmentPublic]:
    found = await enrolments.list_enrolments(
        session=session, subject=None if _staff(principal) else principal.subject,
        session_id=session_id, status=status)
    return await present(session, found)


@router.get("/{enrolment_id}", response_model=EnrolmentPublic, summary="Read an enrolment")
async def read_enrolment(enrolment_id: uuid.UUID, session: ReadDbDep,
                         principal: CitizenOrStaff) -> EnrolmentPublic:
    found = await enrolments.get_enrolment(session=session, enrolment_id=enrolment_id,
                                           subject=principal.subject, staff=_staff(principal))
    return (await present(session, [found]))[0]


@router.post("/{enrolment_id}/cancel", response_model=EnrolmentPublic,
             summary="Cancel an enrolment (a freed place goes to the first on the waitlist)",
             responses=problem_responses((409, "Already cancelled"),
                                         (422, "The session has already started")))
async def cancel_enrolment(enrolment_id: uuid.UUID, uow: UowDep, session: ReadDbDep,
                           principal: CitizenOrStaff) -> EnrolmentPublic:
    cancelled = await enrolments.cancel(uow=uow, command=enrolments.CancelEnrolment(
        enrolment_id=enrolment_id, subject=principal.subject, by_staff=_staff(principal)))
    return (await present(session, [cancelled]))[0]


@router.post("/{enrolment_id}/attendance", response_model=EnrolmentPublic,
             summary="Record whether the participant attended (staff)",
             responses=problem_responses(
                 (409, "Not a confirmed enrolment, or the session has not started")))
async def record_attendance(enrolment_id: uuid.UUID, body: AttendanceRequest, uow: UowDep,
                            session: ReadDbDep, staff: StaffPrincipal
                            ) -> EnrolmentPublic:
    recorded = await enrolments.record_attendance(uow=uow, command=enrolments.RecordAttendance(
        enrolment_id=enrolment_id, attended=body.attended))
    return (await present(session, [recorded], {}))[0]
