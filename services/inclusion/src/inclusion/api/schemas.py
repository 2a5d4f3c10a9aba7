"""Request and response bodies of the inclusion API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)

from inclusion.domain.devices import Condition
from inclusion.domain.geo import Ward
from inclusion.domain.outcomes import Stage
from inclusion.domain.programmes import ProgrammeKind, ProgrammeStatus
from inclusion.domain.sessions import EnrolmentStatus

#: No control characters (PostgreSQL cannot store NUL); also refuses unpaired surrogates.
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
#: As ONE_LINE, but tabs and line breaks are allowed.
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
POSTCODE = r"^\s*[A-Za-z]{1,2}\d[A-Za-z\d]?(\s*\d[A-Za-z]{2})?\s*$"

Day = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
Time = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["09:00"])]


def _no_text(value: Any) -> Any:
    if isinstance(value, str | bytes):
        raise ValueError("must be a number, not text")
    if isinstance(value, bool):  # an int in Python, not a number in JSON Schema
        raise ValueError("must be a number, not true or false")
    return value


def _text_only(value: Any) -> Any:
    if not isinstance(value, str | datetime):
        raise ValueError("must be an RFC 3339 date-time string")
    return value


#: Body types that take only what the JSON Schema says: pydantic's lax mode would also turn
#: "3" into 3, true into 1, "yes" into True and 916 into a date, which the published schema forbids.
Int = Annotated[int, BeforeValidator(_no_text)]
Float = Annotated[float, BeforeValidator(_no_text)]
Bool = StrictBool
Timestamp = Annotated[AwareDatetime, BeforeValidator(_text_only)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- programmes ------------------------------------------------------------------------------


class Eligibility(Strict):
    """Rules a participant must meet; leave out (or false) what does not apply."""

    min_age: Int | None = Field(default=None, ge=0, le=130)
    max_age: Int | None = Field(default=None, ge=0, le=130)
    lives_in_milton_keynes: Bool = False
    receives_benefits: Bool = False
    no_device_at_home: Bool = False
    no_connection_at_home: Bool = False


class ProgrammeCreate(Strict):
    title: str = Field(min_length=1, max_length=200, pattern=ONE_LINE)
    kind: ProgrammeKind
    delivered_by: str = Field(
        min_length=1, max_length=200, pattern=ONE_LINE, description="The delivering organisation."
    )
    description: str = Field(default="", max_length=4000, pattern=TEXT)
    eligibility: Eligibility = Field(default_factory=Eligibility)


class ProgrammeStatusChange(Strict):
    status: Literal["published", "closed", "archived"]


class ProgrammePublic(BaseModel):
    id: uuid.UUID
    title: str
    kind: ProgrammeKind
    delivered_by: str
    description: str
    status: ProgrammeStatus
    eligibility: Eligibility
    version: int
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None


class UnmetRulePublic(BaseModel):
    rule: str
    reason: str


class EligibilityCheck(BaseModel):
    eligible: bool
    unmet_rules: list[UnmetRulePublic]


# -- venues ----------------------------------------------------------------------------------


class OpeningTime(Strict):
    day: Day
    opens: Time
    closes: Time


class VenueCreate(Strict):
    name: str = Field(min_length=1, max_length=200, pattern=ONE_LINE)
    address: str = Field(min_length=1, max_length=400, pattern=ONE_LINE)
    postcode: str = Field(max_length=10, pattern=POSTCODE)
    ward: Ward
    latitude: Float = Field(ge=51.9, le=52.25, description="WGS84; the MK area.")
    longitude: Float = Field(ge=-1.0, le=-0.4, description="WGS84; the MK area.")
    accessibility_notes: str = Field(default="", max_length=2000, pattern=TEXT)
    opening_times: list[OpeningTime] = Field(default_factory=list, max_length=21)


def _left_out_not_null(schema: dict[str, Any]) -> None:
    """Each optional field's schema as its value's: it may be left out, never sent null."""
    for field_schema in schema.get("properties", {}).values():
        field_schema.pop("default", None)
        branches = field_schema.pop("anyOf", None)
        if branches:
            field_schema.update(next(b for b in branches if b.get("type") != "null"))


class VenueUpdate(Strict):
    """Only the fields to change (at least one; none null); as in VenueCreate.
    ``opening_times`` replaces the whole list."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_left_out_not_null)

    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=ONE_LINE)
    address: str | None = Field(default=None, min_length=1, max_length=400, pattern=ONE_LINE)
    postcode: str | None = Field(default=None, max_length=10, pattern=POSTCODE)
    ward: Ward | None = None
    latitude: Float | None = Field(default=None, ge=51.9, le=52.25, description="WGS84.")
    longitude: Float | None = Field(default=None, ge=-1.0, le=-0.4, description="WGS84.")
    accessibility_notes: str | None = Field(default=None, max_length=2000, pattern=TEXT)
    opening_times: list[OpeningTime] | None = Field(default=None, max_length=21)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null: leave the field out instead")
        return value


class VenuePublic(BaseModel):
    id: uuid.UUID
    name: str
    address: str
    postcode: str
    ward: str
    latitude: float
    longitude: float
    accessibility_notes: str
    opening_times: list[OpeningTime]
    version: int = Field(default=1, description="Bumped by each change; the ETag.")
    updated_at: datetime | None = Field(default=None, description="When it last changed.")
    updated_by: str | None = Field(
        default=None, description="Staff only: who last changed it (a staff subject id)."
    )


# -- sessions --------------------------------------------------------------------------------


class SessionCreate(Strict):
    programme_id: uuid.UUID
    venue_id: uuid.UUID
    starts_at: Timestamp
    ends_at: Timestamp
    capacity: Int = Field(ge=1, le=1000)


class SessionCancel(Strict):
    reason: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=300, pattern=ONE_LINE),
    ] = Field(
        description="Why, in a sentence written for the participants: it is in the message "
        "they get.",
        examples=["The tutor is unwell."],
    )


class SessionUpdate(Strict):
    capacity: Int = Field(
        ge=1,
        le=1000,
        description="Places. More promote from the "
        "waitlist; fewer than the confirmed "
        "enrolments is refused.",
    )


class SessionPublic(BaseModel):
    id: uuid.UUID
    programme_id: uuid.UUID
    programme_title: str
    programme_kind: ProgrammeKind
    venue_id: uuid.UUID
    venue_name: str
    ward: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    status: str
    places_left: int
    waitlisted: int
    cancelled_at: datetime | None = None
    cancellation_reason: str | None = Field(
        default=None, description="What staff told the participants, once cancelled."
    )


# -- participants and enrolments -------------------------------------------------------------


class ProfileFields(Strict):
    preferred_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=ONE_LINE,
        description="What staff call you at the session.",
    )
    postcode: str | None = Field(
        default=None,
        max_length=10,
        pattern=POSTCODE,
        description="An MK postcode or district (MK9 or MK9 3EP).",
    )
    year_of_birth: Int | None = Field(default=None, ge=1900, le=2100)
    receives_benefits: Bool | None = None
    has_device_at_home: Bool | None = None
    has_connection_at_home: Bool | None = None


class EnrolmentRequest(ProfileFields):
    consent: Bool = Field(
        default=False,
        description="You agree that we keep these details to run the "
        "programme (needed the first time you enrol).",
    )


class ParticipantUpdate(ProfileFields):
    consent: Bool = False


class ParticipantPublic(BaseModel):
    id: uuid.UUID
    preferred_name: str | None
    postcode: str | None
    year_of_birth: int | None
    receives_benefits: bool | None
    has_device_at_home: bool | None
    has_connection_at_home: bool | None
    consent_given_at: datetime
    consent_version: str


class EnrolmentPublic(BaseModel):
    id: uuid.UUID
    session_id: uuid.UUID
    session_starts_at: datetime
    programme_id: uuid.UUID
    programme_title: str
    venue_name: str
    participant_id: uuid.UUID
    status: EnrolmentStatus
    waitlist_position: int | None = Field(
        description="For a waitlisted enrolment, its place in the queue (1 = next)."
    )
    sequence: int = Field(description="Arrival order within the session (1 = first).")
    created_at: datetime
    confirmed_at: datetime | None
    promoted_at: datetime | None
    cancelled_at: datetime | None
    attended: bool | None


class AttendanceRequest(Strict):
    attended: Bool


# -- help near me ----------------------------------------------------------------------------


class OriginPublic(BaseModel):
    latitude: float
    longitude: float
    postcode_district: str | None
    area: str | None


class NearbySession(BaseModel):
    id: uuid.UUID
    programme_id: uuid.UUID
    programme_title: str
    programme_kind: ProgrammeKind
    starts_at: datetime
    ends_at: datetime
    places_left: int


class NearbyVenuePublic(BaseModel):
    venue: VenuePublic
    distance_km: float
    sessions: list[NearbySession]


class HelpNearMe(BaseModel):
    origin: OriginPublic
    venues: list[NearbyVenuePublic]


# -- devices ---------------------------------------------------------------------------------


class DeviceCreate(Strict):
    make: str = Field(min_length=1, max_length=100, pattern=ONE_LINE)
    model: str = Field(min_length=1, max_length=100, pattern=ONE_LINE)
    serial: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-/]+$")
    condition: Condition = Condition.GOOD
    programme_id: uuid.UUID | None = Field(
        default=None,
        description="The device-lending programme it belongs to; its "
        "eligibility rules apply to loans.",
    )
    wiped_at: Timestamp | None = Field(default=None, description="When it was last wiped, if ever.")


class LoanCreate(Strict):
    participant_id: uuid.UUID
    due_at: Timestamp


class DeviceReturnRequest(Strict):
    condition: Condition


class LoanPublic(BaseModel):
    id: uuid.UUID
    device_id: uuid.UUID
    participant_id: uuid.UUID
    loaned_at: datetime
    due_at: datetime
    returned_at: datetime | None
    return_condition: str | None
    overdue: bool


class DevicePublic(BaseModel):
    id: uuid.UUID
    programme_id: uuid.UUID | None
    make: str
    model: str
    serial: str
    condition: Condition
    wiped_at: datetime | None
    on_loan: bool
    current_loan: LoanPublic | None
    history: list[LoanPublic] = Field(description="Every loan, newest first.")


# -- vouchers --------------------------------------------------------------------------------

VoucherCode = Annotated[str, Field(min_length=4, max_length=100, pattern=r"^[A-Za-z0-9\-]+$")]


class VouchersAdd(Strict):
    programme_id: uuid.UUID
    provider: str = Field(
        min_length=1, max_length=100, pattern=ONE_LINE, examples=["National Databank (Vodafone)"]
    )
    codes: list[VoucherCode] = Field(min_length=1, max_length=1000)


class VouchersAdded(BaseModel):
    added: int


class VoucherStock(BaseModel):
    programme_id: uuid.UUID
    programme_title: str
    total: int
    allocated: int
    in_stock: int


class AllocationCreate(Strict):
    programme_id: uuid.UUID
    participant_id: uuid.UUID


class VoucherPublic(BaseModel):
    id: uuid.UUID
    programme_id: uuid.UUID
    provider: str
    code: str
    participant_id: uuid.UUID | None
    allocated_at: datetime | None


# -- reports ---------------------------------------------------------------------------------


class FiguresRow(BaseModel):
    programme_id: uuid.UUID
    programme_title: str
    ward: str = Field(description="The venue's ward; empty for device and voucher figures.")
    month: str = Field(description="YYYY-MM", examples=["2026-12"])
    participants: int = Field(description="Distinct participants in this cell.")
    enrolments: int = Field(description="Confirmed enrolments.")
    completions: int = Field(description="Confirmed enrolments marked attended.")
    devices_loaned: int
    devices_on_loan: int
    vouchers_allocated: int


# -- outcomes --------------------------------------------------------------------------------

Confidence = Annotated[Int, Field(ge=1, le=4)]


class EdsScores(Strict):
    """Confidence from 1 (I can't do this yet) to 4 (I can do this confidently)."""

    foundation: Confidence
    communicating: Confidence
    handling_information: Confidence
    transacting: Confidence
    problem_solving: Confidence
    being_safe_and_legal: Confidence


class OutcomeCreate(Strict):
    stage: Stage
    scores: EdsScores
    participant_id: uuid.UUID | None = Field(
        default=None, description="Staff: whose assessment. Citizens leave it out (their own)."
    )


class OutcomePublic(BaseModel):
    id: uuid.UUID
    programme_id: uuid.UUID
    participant_id: uuid.UUID
    stage: Stage
    scores: EdsScores
    recorded_at: datetime


class AreaFiguresPublic(BaseModel):
    area: str
    baseline_average: float | None
    follow_up_average: float | None
    improved: int = Field(description="Participants with both stages who rated this higher.")


class OutcomeFiguresPublic(BaseModel):
    programme_id: uuid.UUID
    baselines: int
    follow_ups: int
    areas: list[AreaFiguresPublic]
