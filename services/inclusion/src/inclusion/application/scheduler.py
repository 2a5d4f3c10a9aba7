"""Scheduled jobs: the reminder the day before each session; overdue device loans.

Every instance of the service runs the scheduler. A job fires once whatever the number of
instances: in the same transaction as its event, it inserts a claim row whose primary key is
(kind, key), with ``INSERT … ON CONFLICT DO NOTHING``; only the instance whose insert took
effect publishes. On PostgreSQL a second instance inserting the same key waits for the first
to commit and then inserts nothing; on SQLite writers are serialised anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from contracts.inclusion import DeviceReturnOverdue, SessionReminderDue
from inclusion.application.enrolments import session_details
from inclusion.domain.sessions import EnrolmentStatus, SessionStatus
from inclusion.persistence.tables import (
    DeviceLoan,
    Enrolment,
    Participant,
    ProgrammeSession,
    SchedulerClaim,
)
from servicekit.db import Database
from servicekit.uow import UnitOfWork

log = logging.getLogger(__name__)
REMINDER = "session-reminder"
REMINDER_AHEAD = timedelta(days=1)


async def claim(uow: UnitOfWork, kind: str, key: str, now: datetime) -> bool:
    """Insert the claim (kind, key) unless it exists; True when this transaction made it."""
    dialect = postgresql if uow.session.bind.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(SchedulerClaim).values(
        kind=kind, key=key, claimed_at=now).on_conflict_do_nothing()
    result = await uow.session.execute(statement)
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def send_due_reminders(db: Database, *, source: str, now: datetime | None = None,
                             ahead: timedelta = REMINDER_AHEAD) -> int:
    """Emit SessionReminderDue for each scheduled session starting within ``ahead`` that has
    not had one; returns how many this call emitted."""
    now = now or datetime.now(UTC)
    async with db.read_session() as reader:
        due = list((await reader.execute(select(ProgrammeSession).where(
            col(ProgrammeSession.status) == SessionStatus.SCHEDULED.value,
            col(ProgrammeSession.starts_at) > now,
            col(ProgrammeSession.starts_at) <= now + ahead))).scalars())
        claimed = set((await reader.execute(select(col(SchedulerClaim.key)).where(
            col(SchedulerClaim.kind) == REMINDER))).scalars())
    emitted = 0
    for session in due:
        if str(session.id) in claimed:
            continue
        async with UnitOfWork(db, source=source) as uow:
            if not await claim(uow, REMINDER, str(session.id), now):
                continue  # another instance did it
            rows = (await uow.session.execute(
                select(col(Participant.id), col(Participant.subject))
                .join(Enrolment, col(Enrolment.participant_id) == col(Participant.id))
                .where(col(Enrolment.session_id) == session.id,
                       col(Enrolment.status) == EnrolmentStatus.CONFIRMED.value)
                .order_by(col(Enrolment.sequence)))).all()
            uow.publish(SessionReminderDue(
                session_id=session.id, programme_id=session.programme_id,
                venue_id=session.venue_id, starts_at=session.starts_at,
                participant_ids=[pid for pid, _ in rows],
                citizen_ids=[subject for _, subject in rows if subject], occurred_at=now,
                ends_at=session.ends_at, **await session_details(uow.session, session)))
            await uow.commit()
            emitted += 1
    return emitted


class Scheduler:
    """Runs the scheduled jobs every ``interval`` seconds (a servicekit worker)."""

    def __init__(self, db: Database, *, source: str, interval: float) -> None:
        self.db, self.source, self.interval = db, source, interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inclusion-scheduler")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def tick(self) -> int:
        return (await send_due_reminders(self.db, source=self.source)
                + await report_overdue_loans(self.db, source=self.source))

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("scheduled jobs failed; retrying at the next tick")
            await asyncio.sleep(self.interval)


OVERDUE = "loan-overdue"


async def report_overdue_loans(db: Database, *, source: str,
                               now: datetime | None = None) -> int:
    """Emit DeviceReturnOverdue once for each open loan past its due date."""
    now = now or datetime.now(UTC)
    async with db.read_session() as reader:
        overdue = list((await reader.execute(select(DeviceLoan).where(
            col(DeviceLoan.returned_at).is_(None), col(DeviceLoan.due_at) < now))).scalars())
        claimed = set((await reader.execute(select(col(SchedulerClaim.key)).where(
            col(SchedulerClaim.kind) == OVERDUE))).scalars())
    emitted = 0
    for loan in overdue:
        if str(loan.id) in claimed:
            continue
        async with UnitOfWork(db, source=source) as uow:
            if not await claim(uow, OVERDUE, str(loan.id), now):
                continue
            participant = await uow.session.get(Participant, loan.participant_id)
            uow.publish(DeviceReturnOverdue(
                device_id=loan.device_id, loan_id=loan.id, participant_id=loan.participant_id,
                citizen_id=participant.subject if participant else None, due_at=loan.due_at,
                occurred_at=now))
            await uow.commit()
            emitted += 1
    return emitted
