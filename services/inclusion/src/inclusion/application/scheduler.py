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
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from contracts.inclusion import DeviceReturnOverdue, SessionReminderDue
from inclusion.application.devices import loan_event_fields
from inclusion.application.sessions import session_details
from inclusion.application.unit_of_work import InclusionUnitOfWork, Transactions
from inclusion.domain.sessions import EnrolmentStatus
from inclusion.persistence.repositories import Repositories
from inclusion.persistence.tables import DeviceLoan, ProgrammeSession
from servicekit.db import Database
from servicekit.metrics import ServiceMetrics

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


class _Claimable(Protocol):
    id: uuid.UUID


T = TypeVar("T", bound=_Claimable)


async def _once_each(
    tx: Transactions,
    kind: str,
    *,
    due: Callable[[Repositories], Awaitable[Sequence[T]]],
    emit: Callable[[InclusionUnitOfWork, T], Awaitable[None]],
    now: datetime,
) -> int:
    """Call ``emit`` for each ``due`` row not yet claimed under ``kind``, in the unit of work
    that claims it (skipping it when another instance's claim won); returns how many this call
    emitted."""
    async with tx.reading() as reader:
        rows = await due(reader)
        claimed = await reader.claims.claimed(kind)
    emitted = 0
    for row in rows:
        if str(row.id) in claimed:
            continue
        async with tx.unit_of_work() as uow:
            if not await uow.claims.claim(kind, str(row.id), now):
                continue  # another instance did it
            await emit(uow, row)
            emitted += 1
    return emitted


async def remind(
    tx: Transactions, *, now: datetime | None = None, ahead: timedelta = REMINDER_AHEAD
) -> int:
    """Emit SessionReminderDue for each scheduled session starting within ``ahead`` that has
    not had one; returns how many this call emitted."""
    now = now or datetime.now(UTC)

    async def emit(uow: InclusionUnitOfWork, session: ProgrammeSession) -> None:
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

    return await _once_each(
        tx,
        REMINDER,
        due=lambda reader: reader.sessions.scheduled_between(now, now + ahead),
        emit=emit,
        now=now,
    )


async def report_overdue(tx: Transactions, *, now: datetime | None = None) -> int:
    """Emit DeviceReturnOverdue once for each open loan past its due date; returns how many
    this call emitted."""
    now = now or datetime.now(UTC)

    async def emit(uow: InclusionUnitOfWork, loan: DeviceLoan) -> None:
        participant = await uow.participants.get(loan.participant_id)
        uow.publish(DeviceReturnOverdue(**loan_event_fields(loan, participant), occurred_at=now))

    return await _once_each(
        tx, OVERDUE, due=lambda reader: reader.devices.overdue_loans(now), emit=emit, now=now
    )


class Scheduler:
    """Runs the scheduled jobs every ``interval`` seconds (a servicekit worker)."""

    def __init__(
        self,
        database: Database,
        *,
        source: str,
        interval: float,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.transactions = Transactions(database, source=source)
        self.interval = interval
        #: ``scheduler_last_success_timestamp_seconds{scheduler="inclusion"}`` after each pass
        #: (the "scheduler not running" alert).
        self.last_success = metrics.scheduler_last_success.labels("inclusion") if metrics else None
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
                if self.last_success is not None:
                    self.last_success.set_to_current_time()
            except Exception:
                log.exception("scheduled jobs failed; retrying at the next tick")
            await asyncio.sleep(self.interval)
