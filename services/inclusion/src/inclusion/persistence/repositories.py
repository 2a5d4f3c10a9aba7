"""All of inclusion's repositories over one database session (a unit of work's, or a read
session's). ``application/`` talks to these, never to SQLAlchemy; unit tests pass in-memory
fakes with the same attributes (``tests/unit/fakes.py``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from inclusion.persistence.claims import ClaimRepository
from inclusion.persistence.devices import DeviceRepository
from inclusion.persistence.enrolments import EnrolmentRepository, ParticipantRepository
from inclusion.persistence.outbox import OutboxRepository
from inclusion.persistence.outcomes import OutcomeRepository
from inclusion.persistence.programmes import ProgrammeRepository, VenueRepository
from inclusion.persistence.reports import ReportRepository
from inclusion.persistence.sessions import SessionRepository
from inclusion.persistence.vouchers import VoucherRepository


class Repositories:
    def __init__(self, db: AsyncSession) -> None:
        self.programmes = ProgrammeRepository(db)
        self.venues = VenueRepository(db)
        self.sessions = SessionRepository(db)
        self.participants = ParticipantRepository(db)
        self.enrolments = EnrolmentRepository(db)
        self.devices = DeviceRepository(db)
        self.vouchers = VoucherRepository(db)
        self.outcomes = OutcomeRepository(db)
        self.claims = ClaimRepository(db)
        self.outbox = OutboxRepository(db)
        self.reports = ReportRepository(db)
