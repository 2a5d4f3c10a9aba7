"""``/api/v1/sessions``: staff schedule sessions, cancel them and change their capacity;
anyone reads them; citizens enrol.

``POST /api/v1/sessions/{id}/enrolments`` answers 201 with a *confirmed* enrolment while
places remain and a *waitlisted* one after: a full session is not an error.
``POST /api/v1/sessions/{id}/cancel`` is idempotent: cancelling a cancelled session answers
200 with the session as it is, and emits nothing.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from inclusion.api import presenters
from inclusion.api.enrolments import present
from inclusion.api.schemas import (
    EnrolmentPublic,
    EnrolmentRequest,
    SessionCancel,
    SessionCreate,
    SessionPublic,
    SessionUpdate,
)
from inclusion.application import catalogue, enrolments
from inclusion.domain.sessions import EnrolmentStatus
from servicekit.deps import ReadDbDep, UowDep
from servicekit.identity import CitizenPrincipal, CurrentPrincipal, Role, StaffPrincipal
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])


def _location(what: str) -> dict[str, object]:
    return {"Location": {"description": f"Where the new {what} is.", "required": True,
                         "schema": {"type": "string"}}}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SessionPublic,
             summary="Schedule a session (emits SessionScheduled)",
             responses={201: {"headers": _location("session")}, **problem_responses(
                 (409, "The programme is archived"))})
async def schedule_session(body: SessionCreate, uow: UowDep, response: Response,
                           session: ReadDbDep, staff: StaffPrincipal) -> SessionPublic:
    created = await catalogue.schedule_session(uow=uow, command=catalogue.ScheduleSession(
        **body.model_dump()))
    response.headers["Location"] = f"/api/v1/sessions/{created.id}"
    return presenters.session(await catalogue.find_session_view(
        session=session, session_id=created.id, staff=True))


@router.get("", response_model=list[SessionPublic],
            summary="List sessions (of published programmes; staff see all)")
async def list_sessions(session: ReadDbDep, principal: CurrentPrincipal,
                        programme_id: uuid.UUID | None = None,
                        venue_id: uuid.UUID | None = None,
                        upcoming: bool = True) -> list[SessionPublic]:
    views = await catalogue.session_views(
        session=session, staff=principal.has_role(Role.STAFF), programme_id=programme_id,
        venue_id=venue_id, upcoming_only=upcoming)
    return [presenters.session(v) for v in views]


@router.get("/{session_id}", response_model=SessionPublic, summary="Read a session")
async def read_session(session_id: uuid.UUID, session: ReadDbDep,
                       principal: CurrentPrincipal) -> SessionPublic:
    return presenters.session(await catalogue.find_session_view(
        session=session, session_id=session_id, staff=principal.has_role(Role.STAFF)))


@router.post("/{session_id}/cancel", response_model=SessionPublic,
             summary="Cancel a session and its enrolments (staff; emits SessionCancelled)",
             responses=problem_responses((409, "The session has already started")))
async def cancel_session(session_id: uuid.UUID, body: SessionCancel, uow: UowDep,
                         session: ReadDbDep, staff: StaffPrincipal) -> SessionPublic:
    await enrolments.cancel_session(uow=uow, command=enrolments.CancelSession(
        session_id=session_id, reason=body.reason, actor=staff.subject))
    return presenters.session(await catalogue.find_session_view(
        session=session, session_id=session_id, staff=True))


@router.patch("/{session_id}", response_model=SessionPublic,
              summary="Change a session's capacity (staff; more places promote from the "
                      "waitlist)",
              responses=problem_responses(
                  (409, "Fewer places than confirmed enrolments, session cancelled or "
                        "started")))
async def update_session(session_id: uuid.UUID, body: SessionUpdate, uow: UowDep,
                         session: ReadDbDep, staff: StaffPrincipal) -> SessionPublic:
    await enrolments.change_capacity(uow=uow, command=enrolments.ChangeCapacity(
        session_id=session_id, capacity=body.capacity))
    return presenters.session(await catalogue.find_session_view(
        session=session, session_id=session_id, staff=True))


@router.post("/{session_id}/enrolments", status_code=status.HTTP_201_CREATED,
             response_model=EnrolmentPublic,
             summary="Enrol yourself: confirmed while places remain, waitlisted after",
             responses={201: {"headers": _location("enrolment")}, **problem_responses(
                 (409, "Already enrolled, session cancelled or programme not open"),
                 (422, "Not eligible, session in the past, consent missing, bad postcode"))})
async def enrol(session_id: uuid.UUID, body: EnrolmentRequest, uow: UowDep,
                session: ReadDbDep, response: Response,
                citizen: CitizenPrincipal) -> EnrolmentPublic:
    assert citizen.subject is not None
    result = await enrolments.enrol(uow=uow, command=enrolments.Enrol(
        session_id=session_id, subject=citizen.subject, consent=body.consent,
        profile=enrolments.Profile(**body.model_dump(exclude={"consent"}))))
    response.headers["Location"] = f"/api/v1/enrolments/{result.enrolment.id}"
    position = {result.enrolment.id: result.waitlist_position} \
        if result.waitlist_position else {}
    return (await present(session, [result.enrolment], position))[0]


@router.get("/{session_id}/enrolments", response_model=list[EnrolmentPublic],
            summary="The session's enrolments, in arrival order (staff)")
async def session_enrolments(session_id: uuid.UUID, session: ReadDbDep,
                             staff: StaffPrincipal,
                             status: EnrolmentStatus | None = None) -> list[EnrolmentPublic]:
    await catalogue.find_session_view(session=session, session_id=session_id, staff=True)
    found = await enrolments.list_enrolments(session=session, subject=None,
                                             session_id=session_id, status=status)
    found.sort(key=lambda e: e.sequence)
    return await present(session, found)
