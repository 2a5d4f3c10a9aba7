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
from inclusion.api.deps import InclusionUowDep, ReadDep
from inclusion.api.openapi import created_responses
from inclusion.api.schemas import (
    EnrolmentPublic,
    EnrolmentRequest,
    SessionCancel,
    SessionCreate,
    SessionPublic,
    SessionUpdate,
)
from inclusion.application import enrolments, participants, sessions
from inclusion.domain.sessions import EnrolmentStatus
from inclusion.persistence.repositories import Repositories
from servicekit.identity import CitizenPrincipal, CurrentPrincipal, Role, StaffPrincipal
from servicekit.problems import problem_responses

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])


async def _session_as_staff_see_it(repos: Repositories, session_id: uuid.UUID) -> SessionPublic:
    """The answer of every staff change to a session: the session as it now is."""
    return presenters.session(
        await sessions.find_session_view(repos=repos, session_id=session_id, staff=True)
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionPublic,
    summary="Schedule a session (emits SessionScheduled)",
    responses=created_responses("session", (409, "The programme is archived")),
)
async def schedule_session(
    body: SessionCreate, uow: InclusionUowDep, response: Response, staff: StaffPrincipal
) -> SessionPublic:
    created = await sessions.schedule_session(
        uow=uow, command=sessions.ScheduleSession(**body.model_dump())
    )
    response.headers["Location"] = f"/api/v1/sessions/{created.id}"
    return await _session_as_staff_see_it(uow, created.id)


@router.get(
    "",
    response_model=list[SessionPublic],
    summary="List sessions (of published programmes; staff see all)",
)
async def list_sessions(
    repos: ReadDep,
    principal: CurrentPrincipal,
    programme_id: uuid.UUID | None = None,
    venue_id: uuid.UUID | None = None,
    upcoming: bool = True,
) -> list[SessionPublic]:
    views = await sessions.session_views(
        repos=repos,
        staff=principal.has_role(Role.STAFF),
        programme_id=programme_id,
        venue_id=venue_id,
        upcoming_only=upcoming,
    )
    return [presenters.session(v) for v in views]


@router.get("/{session_id}", response_model=SessionPublic, summary="Read a session")
async def read_session(
    session_id: uuid.UUID, repos: ReadDep, principal: CurrentPrincipal
) -> SessionPublic:
    return presenters.session(
        await sessions.find_session_view(
            repos=repos, session_id=session_id, staff=principal.has_role(Role.STAFF)
        )
    )


@router.post(
    "/{session_id}/cancel",
    response_model=SessionPublic,
    summary="Cancel a session and its enrolments (staff; emits SessionCancelled)",
    responses=problem_responses((409, "The session has already started")),
)
async def cancel_session(
    session_id: uuid.UUID, body: SessionCancel, uow: InclusionUowDep, staff: StaffPrincipal
) -> SessionPublic:
    await enrolments.cancel_session(
        uow=uow,
        command=enrolments.CancelSession(
            session_id=session_id, reason=body.reason, actor=staff.subject
        ),
    )
    return await _session_as_staff_see_it(uow, session_id)


@router.patch(
    "/{session_id}",
    response_model=SessionPublic,
    summary="Change a session's capacity (staff; more places promote from the waitlist)",
    responses=problem_responses(
        (409, "Fewer places than confirmed enrolments, session cancelled or started")
    ),
)
async def update_session(
    session_id: uuid.UUID, body: SessionUpdate, uow: InclusionUowDep, staff: StaffPrincipal
) -> SessionPublic:
    await enrolments.change_capacity(
        uow=uow, command=enrolments.ChangeCapacity(session_id=session_id, capacity=body.capacity)
    )
    return await _session_as_staff_see_it(uow, session_id)


@router.post(
    "/{session_id}/enrolments",
    status_code=status.HTTP_201_CREATED,
    response_model=EnrolmentPublic,
    summary="Enrol yourself: confirmed while places remain, waitlisted after",
    responses=created_responses(
        "enrolment",
        (409, "Already enrolled, session cancelled or programme not open"),
        (422, "Not eligible, session in the past, consent missing, bad postcode"),
    ),
)
async def enrol(
    session_id: uuid.UUID,
    body: EnrolmentRequest,
    uow: InclusionUowDep,
    response: Response,
    citizen: CitizenPrincipal,
) -> EnrolmentPublic:
    assert citizen.subject is not None
    result = await enrolments.enrol(
        uow=uow,
        command=enrolments.Enrol(
            session_id=session_id,
            subject=citizen.subject,
            consent=body.consent,
            profile=participants.Profile(**body.model_dump(exclude={"consent"})),
        ),
    )
    response.headers["Location"] = f"/api/v1/enrolments/{result.enrolment.id}"
    return presenters.enrolment(
        await enrolments.enrolment_view(
            repos=uow, enrolment=result.enrolment, positions=result.positions
        )
    )


@router.get(
    "/{session_id}/enrolments",
    response_model=list[EnrolmentPublic],
    summary="The session's enrolments, in arrival order (staff)",
)
async def session_enrolments(
    session_id: uuid.UUID,
    repos: ReadDep,
    staff: StaffPrincipal,
    status: EnrolmentStatus | None = None,
) -> list[EnrolmentPublic]:
    found = await enrolments.session_enrolments(repos=repos, session_id=session_id, status=status)
    return presenters.enrolments(await enrolments.enrolment_views(repos=repos, enrolments=found))
