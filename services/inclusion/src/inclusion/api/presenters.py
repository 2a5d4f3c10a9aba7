"""Application views -> response bodies."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from inclusion.api.schemas import (
    DevicePublic,
    EnrolmentPublic,
    LoanPublic,
    NearbySession,
    ParticipantPublic,
    ProgrammePublic,
    SessionPublic,
    VenuePublic,
)
from inclusion.application.devices import DeviceView, is_overdue
from inclusion.application.enrolments import EnrolmentView
from inclusion.application.programmes import eligibility_rules
from inclusion.application.sessions import SessionView
from inclusion.domain.programmes import ProgrammeKind
from inclusion.persistence.sessions import UpcomingSession
from inclusion.persistence.tables import DeviceLoan, Participant, Programme, Venue


def programme(p: Programme) -> ProgrammePublic:
    return ProgrammePublic.model_validate(
        {**p.model_dump(exclude={"eligibility"}), "eligibility": asdict(eligibility_rules(p))}
    )


def venue(v: Venue, *, staff: bool = False) -> VenuePublic:
    """The venue as anyone reads it; ``staff`` also see who last changed it."""
    return VenuePublic.model_validate(
        v.model_dump() if staff else v.model_dump(exclude={"updated_by"})
    )


def session(view: SessionView) -> SessionPublic:
    s = view.session
    return SessionPublic(
        id=s.id,
        programme_id=s.programme_id,
        programme_title=view.programme.title,
        programme_kind=view.programme.kind,
        venue_id=s.venue_id,
        venue_name=view.venue.name,
        ward=view.venue.ward,
        starts_at=s.starts_at,
        ends_at=s.ends_at,
        capacity=s.capacity,
        status=s.status,
        places_left=view.places_left,
        waitlisted=view.waitlisted,
        cancelled_at=s.cancelled_at,
        cancellation_reason=s.cancellation_reason,
    )


def nearby_session(s: UpcomingSession) -> NearbySession:
    """An upcoming session as a "help near me" answer shows it."""
    return NearbySession(
        id=s.id,
        programme_id=s.programme_id,
        programme_title=s.programme_title,
        programme_kind=ProgrammeKind(s.programme_kind),
        starts_at=s.starts_at,
        ends_at=s.ends_at,
        places_left=s.places_left,
    )


def enrolment(view: EnrolmentView) -> EnrolmentPublic:
    return EnrolmentPublic.model_validate(
        {
            **view.enrolment.model_dump(),
            "waitlist_position": view.waitlist_position,
            "session_starts_at": view.session.session.starts_at,
            "programme_id": view.session.programme.id,
            "programme_title": view.session.programme.title,
            "venue_name": view.session.venue.name,
        }
    )


def enrolments(views: list[EnrolmentView]) -> list[EnrolmentPublic]:
    return [enrolment(v) for v in views]


def participant(p: Participant) -> ParticipantPublic:
    return ParticipantPublic.model_validate(p.model_dump())


def loan(found: DeviceLoan, now: datetime | None = None) -> LoanPublic:
    return LoanPublic.model_validate(
        {**found.model_dump(), "overdue": is_overdue(found, now or datetime.now(UTC))}
    )


def device(view: DeviceView) -> DevicePublic:
    current = view.current_loan
    return DevicePublic.model_validate(
        {
            **view.device.model_dump(),
            "on_loan": view.on_loan,
            "current_loan": loan(current, view.now) if current else None,
            "history": [loan(one, view.now) for one in view.loans],
        }
    )
