"""Tables of inclusion (model naming: XBase / X(table=True); API schemas live in api/)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.types import UtcDateTime


def _ts(nullable: bool = False) -> Any:
    return sa.Column(UtcDateTime(), nullable=nullable)


def _unique_where(name: str, *columns: str, where: str) -> sa.Index:
    """A partial unique index, with the same condition on PostgreSQL and SQLite."""
    return sa.Index(
        name,
        *columns,
        unique=True,
        postgresql_where=sa.text(where),
        sqlite_where=sa.text(where),
    )


class Programme(SQLModel, table=True):
    __tablename__ = "programme"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    title: str = Field(max_length=200)
    kind: str = Field(max_length=40, index=True)
    delivered_by: str = Field(max_length=200)
    description: str = Field(default="", max_length=4000)
    status: str = Field(default="draft", max_length=20, index=True)
    #: EligibilityRules as JSON (see domain/programmes.py).
    eligibility: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON))
    version: int = 1
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())
    published_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Venue(SQLModel, table=True):
    __tablename__ = "venue"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    address: str = Field(max_length=400)
    postcode: str = Field(max_length=10)
    ward: str = Field(max_length=80, index=True)
    latitude: float
    longitude: float
    accessibility_notes: str = Field(default="", max_length=2000)
    #: [{"day": "monday", "opens": "09:00", "closes": "17:00"}, ...]
    opening_times: list[dict[str, str]] = Field(default_factory=list, sa_column=sa.Column(sa.JSON))
    created_at: datetime = Field(sa_column=_ts())
    #: Bumped by each change (the ETag); when it last changed and by whom (a staff member's
    #: subject id, not a name). Migration 0008.
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    updated_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    updated_by: str | None = Field(default=None, max_length=200)


class ProgrammeSession(SQLModel, table=True):
    __tablename__ = "programme_session"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    programme_id: uuid.UUID = Field(foreign_key="programme.id", index=True)
    venue_id: uuid.UUID = Field(foreign_key="venue.id", index=True)
    starts_at: datetime = Field(sa_column=_ts())
    ends_at: datetime = Field(sa_column=_ts())
    capacity: int
    status: str = Field(default="scheduled", max_length=20)
    #: How many enrolments the session has accepted; the next one's arrival sequence.
    enrolment_count: int = 0
    created_at: datetime = Field(sa_column=_ts())
    cancelled_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    #: What staff told the participants; the staff member's subject id (not a name).
    cancellation_reason: str | None = Field(default=None, max_length=500)
    cancelled_by: str | None = Field(default=None, max_length=200)


class Participant(SQLModel, table=True):
    """Minimal personal data. ``subject`` is the citizen's principal subject; erasure sets it
    and every personal field to null and keeps the row (and so the counts)."""

    __tablename__ = "participant"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    subject: str | None = Field(default=None, max_length=200, unique=True)
    preferred_name: str | None = Field(default=None, max_length=100)
    postcode: str | None = Field(default=None, max_length=10)
    #: Kept after erasure: not personal on its own, and reports count by ward/district.
    postcode_district: str | None = Field(default=None, max_length=4)
    year_of_birth: int | None = None
    receives_benefits: bool | None = None
    has_device_at_home: bool | None = None
    has_connection_at_home: bool | None = None
    consent_given_at: datetime = Field(sa_column=_ts())
    consent_version: str = Field(max_length=40)
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())
    erased_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Enrolment(SQLModel, table=True):
    __tablename__ = "enrolment"
    __table_args__ = (
        # One active enrolment per participant and session (a cancelled one may be redone).
        _unique_where(
            "ux_enrolment_active", "session_id", "participant_id", where="status <> 'cancelled'"
        ),
        sa.UniqueConstraint("session_id", "sequence", name="uq_enrolment_sequence"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    session_id: uuid.UUID = Field(foreign_key="programme_session.id", index=True)
    participant_id: uuid.UUID = Field(foreign_key="participant.id", index=True)
    status: str = Field(max_length=20)
    #: Arrival order within the session (1, 2, ...), assigned under the session's lock.
    sequence: int
    created_at: datetime = Field(sa_column=_ts())
    confirmed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    promoted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    cancelled_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    attended: bool | None = None
    attendance_recorded_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class SchedulerClaim(SQLModel, table=True):
    """One row per (kind, key) a scheduled job has done, e.g. ("session-reminder",
    session id): the primary key makes a job fire once however many instances run."""

    __tablename__ = "scheduler_claim"

    kind: str = Field(max_length=40, primary_key=True)
    key: str = Field(max_length=100, primary_key=True)
    claimed_at: datetime = Field(sa_column=_ts())


class Device(SQLModel, table=True):
    __tablename__ = "device"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    programme_id: uuid.UUID | None = Field(default=None, foreign_key="programme.id")
    make: str = Field(max_length=100)
    model: str = Field(max_length=100)
    serial: str = Field(max_length=100, unique=True)
    condition: str = Field(max_length=20)
    wiped_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(sa_column=_ts())


class DeviceLoan(SQLModel, table=True):
    __tablename__ = "device_loan"
    __table_args__ = (
        # A device is never on two loans: at most one open loan per device.
        _unique_where("ux_device_loan_open", "device_id", where="returned_at IS NULL"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    device_id: uuid.UUID = Field(foreign_key="device.id", index=True)
    participant_id: uuid.UUID = Field(foreign_key="participant.id", index=True)
    loaned_at: datetime = Field(sa_column=_ts())
    due_at: datetime = Field(sa_column=_ts())
    returned_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    return_condition: str | None = Field(default=None, max_length=20)


class Voucher(SQLModel, table=True):
    __tablename__ = "voucher"
    __table_args__ = (
        # Never twice: at most one voucher per participant and programme.
        _unique_where(
            "ux_voucher_participant",
            "programme_id",
            "participant_id",
            where="participant_id IS NOT NULL",
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    programme_id: uuid.UUID = Field(foreign_key="programme.id", index=True)
    provider: str = Field(max_length=100)
    code: str = Field(max_length=100, unique=True)
    added_at: datetime = Field(sa_column=_ts())
    participant_id: uuid.UUID | None = Field(default=None, foreign_key="participant.id")
    allocated_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class OutcomeAssessment(SQLModel, table=True):
    """One EDS self-assessment; at most one per participant, programme and stage."""

    __tablename__ = "outcome_assessment"
    __table_args__ = (
        sa.UniqueConstraint("participant_id", "programme_id", "stage", name="uq_outcome_stage"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    participant_id: uuid.UUID = Field(foreign_key="participant.id", index=True)
    programme_id: uuid.UUID = Field(foreign_key="programme.id", index=True)
    stage: str = Field(max_length=20)
    scores: dict[str, int] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON))
    recorded_at: datetime = Field(sa_column=_ts())
