"""Scheduled jobs: the reminder the day before each session; overdue device loans.

Every instance of the service runs the scheduler. A job fires once whatever the number of
instances: in the same transaction as its event, it inserts a claim row whose primary key is
(kind, key), with ``INSERT … ON CONFLICT DO NOTHING`` (``persistence/claims.py``); only the
instance whose insert took effect publishes. On PostgreSQL a second instance inserting the
same key waits for the first to commit and then inserts nothing; on SQLite writers are
serialised anyway. Each job is its own unit of work, committed when its block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from contracts.inclusion import DeviceReturnOverdue, SessionReminderDue
from inclusion.application.sessions import session_details
from inclusion.application.unit_of_work import Transactions
from inclusion.domain.sessions import EnrolmentStatus
from servicekit.db import Database

log = logging.getLogger(__name__)
REMINDER = "session-reminder"
REMINDER_AHEAD = timedelta(days=1)
OVERDUE = "loan-overdue"


async def send_due_reminders(
    database: Database,
    *,
    source: str,
    now: datetime | None = None,
    ahead: timedelta = REMINDER_AHEAD,
) -> int:
    return await remind(Transactions(database, source=source), now=now, ahead=ahead)


async def report_overdue_loans(
    database: Database, *, source: str, now: datetime | None = None
) -> int:
    return await report_overdue(Transactions(database, source=source), now=now)


async def remind(
    tx: Transactions, *, now: datetime | None = None, ahead: timedelta = REMINDER_AHEAD
) -> int:
    """Emit SessionReminderDue for each scheduled session starting within ``ahead`` that has
    not had one; returns how many this call emitted."""
    now = now or datetime.now(UTC)
    async with tx.reading() as reader:
        due = await reader.sessions.scheduled_between(now, now + ahead)
        claimed = await reader.claims.claimed(REMINDER)
    emitted = 0
    for session in due:
        if str(session.id) in claimed:
            continue
        async with tx.unit_of_work() as uow:
            if not await uow.claims.claim(REMINDER, str(session.id), now):
                continue  # another instance did it
            rows = await uow.enrolments.in_session(session.id, status=EnrolmentStatus.CONFIRMED)
            uow.publish(
                SessionReminderDue(
                    session_id=session.id,
                    programme_id=session.programme_id,
                    venue_id=session.venue_id,
                    starts_at=session.starts_at,
                    participant_ids=[p.id for _, p in rows],
                    citizen_ids=[p.subject for _, p in rows if p.subject],
                    occurred_at=now,
                    ends_at=session.ends_at,
                    **await session_details(uow, session),
                )
            )
            emitted += 1
    return emitted


async def report_overdue(tx: Transactions, *, now: datetime | None = None) -> int:
    """Emit DeviceReturnOverdue once for each open loan past its due date; returns how many
    this call emitted."""
    now = now or datetime.now(UTC)
    async with tx.reading() as reader:
        overdue = await reader.devices.overdue_loans(now)
        claimed = await reader.claims.claimed(OVERDUE)
    emitted = 0
    for loan in overdue:
        if str(loan.id) in claimed:
            continue
        async with tx.unit_of_work() as uow:
            if not await uow.claims.claim(OVERDUE, str(loan.id), now):
                continue
            participant = await uow.participants.get(loan.participant_id)
            uow.publish(
                DeviceReturnOverdue(
                    device_id=loan.device_id,
                    loan_id=loan.id,
                    participant_id=loan.participant_id,
                    citizen_id=participant.subject if participant else None,
                    due_at=loan.due_at,
                    occurred_at=now,
                )
            )
            emitted += 1
    return emitted


class Scheduler:
    """Runs the scheduled jobs every ``interval`` seconds (a servicekit worker)."""

    def __init__(self, database: Database, *, source: str, interval: float) -> None:
        self.transactions = Transactions(database, source=source)
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inclusion-scheduler")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def tick(self) -> int:
        return await remind(self.transactions) + await report_overdue(self.transactions)

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("scheduled jobs failed; retrying at the next tick")
            await asyncio.sleep(self.interval)
