"""Events of the inclusion context: programmes, sessions, enrolments, device loans,
vouchers and outcomes.

No personal data: participants appear only as opaque ids (``participant_id``, the service's
own id, and ``citizen_id``, the citizen's subject id at the identity provider).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from contracts.events import Event
from contracts.topics import DEVICE_LOAN, ENROLMENT, OUTCOME, PROGRAMME, SESSION, VOUCHER


class _InclusionEvent(Event):
    context: ClassVar[str] = "inclusion"

    occurred_at: datetime = Field(description="When the fact happened (UTC).")


# -- programmes ------------------------------------------------------------------------------


class ProgrammePublished(_InclusionEvent):
    """A digital-inclusion programme opened to citizens."""

    topic: ClassVar[str] = PROGRAMME.name
    aggregate_field: ClassVar[str] = "programme_id"

    programme_id: uuid.UUID = Field(description="Programme id (the aggregate id).")
    kind: str = Field(
        description="digital-skills-course, device-lending, connectivity or drop-in-help."
    )
    title: str
    delivered_by: str = Field(description="The organisation delivering the programme.")
    published_by: str | None = Field(default=None, description="Staff subject id, not a name.")


# -- sessions --------------------------------------------------------------------------------


class SessionScheduled(_InclusionEvent):
    """Staff scheduled a session of a programme at a venue."""

    topic: ClassVar[str] = SESSION.name
    aggregate_field: ClassVar[str] = "session_id"

    session_id: uuid.UUID = Field(description="Session id (the aggregate id).")
    programme_id: uuid.UUID
    venue_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    capacity: int = Field(description="Places; enrolments beyond it are waitlisted.")


class SessionReminderDue(_InclusionEvent):
    """A session starts within a day: remind its confirmed participants. Emitted once per
    session, however many scheduler instances run."""

    topic: ClassVar[str] = SESSION.name
    aggregate_field: ClassVar[str] = "session_id"

    session_id: uuid.UUID = Field(description="Session id (the aggregate id).")
    programme_id: uuid.UUID
    venue_id: uuid.UUID
    starts_at: datetime
    participant_ids: list[uuid.UUID] = Field(
        default_factory=list, description="Participants with a confirmed place."
    )
    citizen_ids: list[str] = Field(
        default_factory=list, description="Their subject ids (opaque), erased ones left out."
    )
    ends_at: datetime | None = Field(default=None, description="When the session ends.")
    programme_title: str | None = Field(
        default=None, description="The programme's title, for messages to participants."
    )
    venue_name: str | None = Field(default=None, description="Where the session is held.")
    venue_address: str | None = None
    venue_postcode: str | None = None


class SessionCancelled(_InclusionEvent):
    """Staff cancelled a session before it started: every confirmed and waitlisted enrolment
    in it was cancelled too (nobody is promoted). This is the event that tells the affected
    citizens; each cancelled enrolment is also announced as ``EnrolmentCancelled`` with
    ``cancelled_by`` = ``session-cancelled``, for bookkeeping only. Emitted once per
    session."""

    topic: ClassVar[str] = SESSION.name
    aggregate_field: ClassVar[str] = "session_id"

    session_id: uuid.UUID = Field(description="Session id (the aggregate id).")
    programme_id: uuid.UUID
    venue_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    reason: str = Field(description="Why it was cancelled, as staff wrote it for citizens.")
    participant_ids: list[uuid.UUID] = Field(
        default_factory=list,
        description="Participants whose confirmed or waitlisted enrolment was cancelled.",
    )
    citizen_ids: list[str] = Field(
        default_factory=list, description="Their subject ids (opaque), erased ones left out."
    )
    cancelled_enrolment_ids: list[uuid.UUID] = Field(
        default_factory=list, description="The enrolments cancelled with the session."
    )
    cancelled_by: str | None = Field(default=None, description="Staff subject id, not a name.")
    programme_title: str | None = Field(
        default=None, description="The programme's title, for messages to participants."
    )
    venue_name: str | None = Field(default=None, description="Where the session was to be held.")
    venue_address: str | None = None
    venue_postcode: str | None = None


# -- enrolments ------------------------------------------------------------------------------


class _EnrolmentEvent(_InclusionEvent):
    topic: ClassVar[str] = ENROLMENT.name
    aggregate_field: ClassVar[str] = "enrolment_id"

    enrolment_id: uuid.UUID = Field(description="Enrolment id (the aggregate id).")
    session_id: uuid.UUID
    programme_id: uuid.UUID
    participant_id: uuid.UUID = Field(description="The inclusion service's participant id.")
    citizen_id: str | None = Field(
        default=None, description="Subject id of the citizen (opaque); null once erased."
    )
    session_starts_at: datetime
    # Added in 1.x (optional): what a message to the participant needs, no personal data.
    session_ends_at: datetime | None = None
    programme_title: str | None = Field(
        default=None, description="The programme's title, for messages to participants."
    )
    venue_name: str | None = Field(default=None, description="Where the session is held.")
    venue_address: str | None = None
    venue_postcode: str | None = None


class EnrolmentConfirmed(_EnrolmentEvent):
    """A participant got a place in a session."""


class EnrolmentWaitlisted(_EnrolmentEvent):
    """The session was full: the participant is on its waitlist, in arrival order."""

    waitlist_position: int = Field(description="1 = next to be offered a place.")


class WaitlistPromoted(_EnrolmentEvent):
    """A place came free and the first participant on the waitlist got it."""

    freed_by_enrolment_id: uuid.UUID | None = Field(
        default=None, description="The cancelled enrolment whose place this is."
    )


class EnrolmentCancelled(_EnrolmentEvent):
    """A confirmed or waitlisted enrolment was cancelled (by the citizen or by staff)."""

    previous_status: str = Field(description="confirmed or waitlisted.")
    cancelled_by: str = Field(
        description="citizen, staff, erasure (the participant asked "
        "for their data to be erased) or session-cancelled "
        "(staff cancelled the whole session: SessionCancelled "
        "tells the citizen)."
    )


# -- device lending --------------------------------------------------------------------------


class _DeviceLoanEvent(_InclusionEvent):
    topic: ClassVar[str] = DEVICE_LOAN.name
    aggregate_field: ClassVar[str] = "device_id"

    device_id: uuid.UUID = Field(
        description="Device id (the aggregate id: one device's loans stay in order)."
    )
    loan_id: uuid.UUID
    participant_id: uuid.UUID = Field(description="The inclusion service's participant id.")
    citizen_id: str | None = Field(
        default=None, description="Subject id of the citizen (opaque); null once erased."
    )
    due_at: datetime


class DeviceLoaned(_DeviceLoanEvent):
    """A device was lent to a participant until ``due_at``."""

    programme_id: uuid.UUID | None = None


class DeviceReturned(_DeviceLoanEvent):
    """A lent device came back."""

    condition: str = Field(description="good, fair, poor or broken.")
    was_overdue: bool


class DeviceReturnOverdue(_DeviceLoanEvent):
    """A lent device was not back by its due date (emitted once per loan)."""


# -- data-SIM vouchers -----------------------------------------------------------------------


class VoucherAllocated(_InclusionEvent):
    """A data-SIM voucher from a programme's stock went to a participant (never twice: one
    voucher per participant and programme). The voucher code itself is not in the event."""

    topic: ClassVar[str] = VOUCHER.name
    aggregate_field: ClassVar[str] = "voucher_id"

    voucher_id: uuid.UUID = Field(description="Voucher id (the aggregate id).")
    programme_id: uuid.UUID
    participant_id: uuid.UUID = Field(description="The inclusion service's participant id.")
    citizen_id: str | None = Field(
        default=None, description="Subject id of the citizen (opaque); null once erased."
    )
    provider: str = Field(description="The network or scheme the voucher is for.")


# -- outcomes --------------------------------------------------------------------------------


class EdsScores(BaseModel):
    """Confidence from 1 (I can't do this yet) to 4 (I can do this confidently) in the
    foundation skills and each of the five Essential Digital Skills areas."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    foundation: int
    communicating: int
    handling_information: int
    transacting: int
    problem_solving: int
    being_safe_and_legal: int


class OutcomeRecorded(_InclusionEvent):
    """An Essential Digital Skills self-assessment was recorded for a participant, at the
    start of a programme (baseline) or after it (follow-up)."""

    topic: ClassVar[str] = OUTCOME.name
    aggregate_field: ClassVar[str] = "outcome_id"

    outcome_id: uuid.UUID = Field(description="Assessment id (the aggregate id).")
    programme_id: uuid.UUID
    participant_id: uuid.UUID = Field(description="The inclusion service's participant id.")
    stage: str = Field(description="baseline or follow-up.")
    scores: EdsScores


#: Every event this context publishes (``contracts.all_events()`` combines the contexts).
EVENTS: tuple[type[Event], ...] = (
    ProgrammePublished,
    SessionScheduled,
    SessionReminderDue,
    SessionCancelled,
    EnrolmentConfirmed,
    EnrolmentWaitlisted,
    WaitlistPromoted,
    EnrolmentCancelled,
    DeviceLoaned,
    DeviceReturned,
    DeviceReturnOverdue,
    VoucherAllocated,
    OutcomeRecorded,
)
