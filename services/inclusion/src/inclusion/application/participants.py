"""Participants: what the service keeps about a citizen who enrols (with their consent), and
the facts eligibility is checked against."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from inclusion.application.unit_of_work import InclusionUnitOfWork
from inclusion.domain import geo
from inclusion.domain.programmes import ParticipantFacts
from inclusion.domain.sessions import ConsentRequired
from inclusion.persistence.repositories import Repositories
from inclusion.persistence.tables import Participant
from servicekit.errors import Conflict, NotFound

CONSENT_VERSION = "2026-11"


class ParticipantNotFound(NotFound):
    code, title = "participant-not-found", "Participant not found"


class TryAgain(Conflict):
    code, title = "concurrent-change", "Changed at the same time by another request"


@dataclass(frozen=True)
class Profile:
    """What a participant may tell us; None = not given (keeps what we had)."""

    preferred_name: str | None = None
    postcode: str | None = None
    year_of_birth: int | None = None
    receives_benefits: bool | None = None
    has_device_at_home: bool | None = None
    has_connection_at_home: bool | None = None


def facts_of(participant: Participant) -> ParticipantFacts:
    district = (
        geo.district_of(participant.postcode_district or "")
        if participant.postcode_district
        else None
    )
    return ParticipantFacts(
        year_of_birth=participant.year_of_birth,
        lives_in_milton_keynes=None
        if participant.postcode_district is None
        else bool(district and district.in_milton_keynes),
        receives_benefits=participant.receives_benefits,
        has_device_at_home=participant.has_device_at_home,
        has_connection_at_home=participant.has_connection_at_home,
    )


def _apply(participant: Participant, profile: Profile, now: datetime) -> None:
    if profile.postcode is not None:
        district = geo.lookup(profile.postcode)
        participant.postcode = profile.postcode.upper().strip()
        participant.postcode_district = district.code
    for name in (
        "preferred_name",
        "year_of_birth",
        "receives_benefits",
        "has_device_at_home",
        "has_connection_at_home",
    ):
        value = getattr(profile, name)
        if value is not None:
            setattr(participant, name, value)
    participant.updated_at = now


async def save_profile(
    *, uow: InclusionUnitOfWork, subject: str, consent: bool, profile: Profile
) -> Participant:
    """Create or update the caller's participant record (consent needed to create it)."""
    now = datetime.now(UTC)
    participant = await uow.participants.by_subject(subject)
    if participant is None:
        if not consent:
            raise ConsentRequired(
                "We need your consent to keep the details needed to enrol you.",
                rule="consent-required",
            )
        participant = Participant(
            subject=subject,
            consent_given_at=now,
            consent_version=CONSENT_VERSION,
            created_at=now,
            updated_at=now,
        )
        uow.participants.add(participant)
    elif consent:
        participant.consent_given_at = now
        participant.consent_version = CONSENT_VERSION
    _apply(participant, profile, now)
    try:
        await uow.flush()
    except IntegrityError:  # the same citizen, twice at once
        raise TryAgain("Your details changed at the same time; try again.") from None
    return participant


async def find_participant(*, repos: Repositories, subject: str) -> Participant:
    participant = await repos.participants.by_subject(subject)
    if participant is None:
        raise ParticipantNotFound("You have not enrolled in anything yet.")
    return participant
