"""Table rows -> response bodies."""

from __future__ import annotations

from dataclasses import asdict

from inclusion.api.schemas import (
    EnrolmentPublic,
    NearbySession,
    ParticipantPublic,
    ProgrammePublic,
    SessionPublic,
    VenuePublic,
)
from inclusion.application.catalogue import SessionView, eligibility_rules
from inclusion.domain.sessions import SessionStatus
from inclusion.persistence.tables import Enrolment, Participant, Programme, Venue


def programme(p: Programme) -> ProgrammePublic:
    return ProgrammePublic.model_validate({
        **p.model_dump(exclude={"eligibility"}), "eligibility": asdict(eligibility_rules(p))})


def venue(v: Venue) -> VenuePublic:
    return VenuePublic.model_validate(v.model_dump())


def session(view: SessionView) -> SessionPublic:
    s = view.session
    return SessionPublic(
        id=s.id, programme_id=s.programme_id, programme_title=view.programme.title,
        programme_kind=view.programme.kind,
        venue_id=s.venue_id, venue_name=view.venue.name, ward=view.venue.ward,
        starts_at=s.starts_at, ends_at=s.ends_at, capacity=s.capacity, status=s.status,
        places_left=0 if s.status == SessionStatus.CANCELLED
        else max(0, s.capacity - view.confirmed), waitlisted=view.waitlisted,
        cancelled_at=s.cancelled_at, cancellation_reason=s.cancellation_reason)


def nearby_session(view: SessionView) -> NearbySession:
    s = view.session
    return NearbySession(
        id=s.id, programme_id=s.programme_id, programme_title=view.programme.title,
        programme_kind=view.programme.kind,
        starts_at=s.starts_at, ends_at=s.ends_at,
        places_left=max(0, s.capacity - view.confirmed))


def enrolment(e: Enrolment, position: int | None, view: SessionView) -> EnrolmentPublic:
    return EnrolmentPublic.model_validate({
        **e.model_dump(), "waitlist_position": position,
        "session_starts_at": view.session.starts_at, "programme_id": view.programme.id,
        "programme_title": view.programme.title, "venue_name": view.venue.name})


def participant(p: Participant) -> ParticipantPublic:
    return ParticipantPublic.model_validate(p.model_dump())
