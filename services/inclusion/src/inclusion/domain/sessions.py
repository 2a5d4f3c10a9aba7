"""Sessions and enrolments: places, the waitlist, cancellation and attendance.

A session has ``capacity`` places. An enrolment is *confirmed* while places remain and
*waitlisted* after, in the order the service accepted them; cancelling a confirmed enrolment
promotes the first waitlisted one. Session full is never an error: it is a waitlist place.

Staff may cancel a whole session before it starts: it takes no more enrolments and its
confirmed and waitlisted enrolments are cancelled (nobody is promoted). Cancelling it again
changes nothing. Staff may change its capacity: more places promote from the waitlist in
order; fewer than the confirmed enrolments is refused.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from servicekit.errors import Conflict, DomainError


class EnrolmentStatus(StrEnum):
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class SessionInThePast(DomainError):
    status, code, title = 422, "session-in-the-past", "Session has already started"


class SessionAlreadyCancelled(Conflict):
    code, title = "session-cancelled", "Session is cancelled"


class SessionAlreadyStarted(Conflict):
    code, title = "session-already-started", "Session has already started"


class CapacityBelowConfirmed(Conflict):
    code, title = "capacity-below-confirmed", "Fewer places than confirmed enrolments"


class AlreadyEnrolled(Conflict):
    code, title = "already-enrolled", "Already enrolled in this session"


class EnrolmentNotActive(Conflict):
    code, title = "enrolment-not-active", "Enrolment is already cancelled"


class AttendanceNotAllowed(Conflict):
    code, title = "attendance-not-allowed", "Attendance cannot be recorded"


class ConsentRequired(DomainError):
    status, code, title = 422, "consent-required", "Consent is required"


class InvalidSessionTimes(DomainError):
    status, code, title = 422, "invalid-session-times", "Invalid session times"


def check_times(starts_at: datetime, ends_at: datetime, *, now: datetime) -> None:
    if starts_at <= now:
        raise SessionInThePast("A session must start in the future.", rule="session-in-the-past")
    if ends_at <= starts_at:
        raise InvalidSessionTimes("A session must end after it starts.", rule="ends-after-start")


def check_open_for_enrolment(*, session_status: str, starts_at: datetime, now: datetime) -> None:
    if session_status == SessionStatus.CANCELLED:
        raise SessionAlreadyCancelled("This session has been cancelled.")
    if starts_at <= now:
        raise SessionInThePast(
            "This session has already started; choose a later one.", starts_at=starts_at.isoformat()
        )


def place_for(*, confirmed: int, capacity: int) -> EnrolmentStatus:
    """Where a new enrolment goes: a place while any remain, else the waitlist."""
    return EnrolmentStatus.CONFIRMED if confirmed < capacity else EnrolmentStatus.WAITLISTED


def check_cancellable(*, starts_at: datetime, now: datetime) -> None:
    """A session that has started (or is over) cannot be cancelled."""
    if starts_at <= now:
        raise SessionAlreadyStarted(
            "This session has already started, so it cannot be cancelled.",
            rule="cancel-before-start",
            starts_at=starts_at.isoformat(),
        )


def check_capacity(
    *, session_status: str, starts_at: datetime, capacity: int, confirmed: int, now: datetime
) -> None:
    if session_status == SessionStatus.CANCELLED:
        raise SessionAlreadyCancelled("This session has been cancelled.")
    if starts_at <= now:
        raise SessionAlreadyStarted(
            "This session has already started, so its places cannot change.",
            rule="change-before-start",
            starts_at=starts_at.isoformat(),
        )
    if capacity < confirmed:
        raise CapacityBelowConfirmed(
            f"{confirmed} places are confirmed; the capacity cannot go below that. Cancel "
            "enrolments first.",
            rule="capacity-at-least-confirmed",
            confirmed=confirmed,
        )
