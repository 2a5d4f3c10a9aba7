"""In-memory fakes of inclusion's repositories and unit of work (cosmicpython's
FakeRepository, async): the application modules run on these in unit tests, without a
database. One :class:`Store` holds the rows; every fake repository reads and writes it, so
"joins" are lookups in its dicts. The fakes keep the real repositories' orderings and
filters (``persistence/*.py``); the API tests cover the SQL itself on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from contracts import Event
from inclusion.domain.sessions import EnrolmentStatus, SessionStatus
from inclusion.persistence.sessions import UpcomingSession
from inclusion.persistence.tables import (
    Device,
    DeviceLoan,
    Enrolment,
    OutcomeAssessment,
    Participant,
    Programme,
    ProgrammeSession,
    Venue,
    Voucher,
)

PUBLIC = ("published", "closed")


@dataclass
class Store:
    programmes: dict[uuid.UUID, Programme] = field(default_factory=dict)
    venues: dict[uuid.UUID, Venue] = field(default_factory=dict)
    sessions: dict[uuid.UUID, ProgrammeSession] = field(default_factory=dict)
    participants: dict[uuid.UUID, Participant] = field(default_factory=dict)
    enrolments: dict[uuid.UUID, Enrolment] = field(default_factory=dict)
    devices: dict[uuid.UUID, Device] = field(default_factory=dict)
    loans: dict[uuid.UUID, DeviceLoan] = field(default_factory=dict)
    vouchers: dict[uuid.UUID, Voucher] = field(default_factory=dict)
    outcomes: dict[uuid.UUID, OutcomeAssessment] = field(default_factory=dict)
    claims: set[tuple[str, str]] = field(default_factory=set)
    outbox: dict[int, str] = field(default_factory=dict)  # row id -> JSON payload


class _Repo:
    def __init__(self, store: Store) -> None:
        self.store = store


class FakeProgrammes(_Repo):
    def add(self, programme: Programme) -> None:
        self.store.programmes[programme.id] = programme

    async def get(self, programme_id: uuid.UUID) -> Programme | None:
        return self.store.programmes.get(programme_id)

    lock = get

    async def matching(
        self, *, public_only: bool, kind: str | None = None, status: str | None = None
    ) -> list[Programme]:
        return sorted(
            (
                p
                for p in self.store.programmes.values()
                if (not public_only or p.status in PUBLIC)
                and kind in (None, p.kind)
                and status in (None, p.status)
            ),
            key=lambda p: (p.title, str(p.id)),
        )

    async def count(self) -> int:
        return len(self.store.programmes)

    async def titles(self) -> dict[uuid.UUID, str]:
        return {p.id: p.title for p in self.store.programmes.values()}


class FakeVenues(_Repo):
    def add(self, venue: Venue) -> None:
        self.store.venues[venue.id] = venue

    async def get(self, venue_id: uuid.UUID) -> Venue | None:
        return self.store.venues.get(venue_id)

    async def matching(self, *, ward: str | None = None) -> list[Venue]:
        return sorted(
            (v for v in self.store.venues.values() if ward in (None, v.ward)),
            key=lambda v: (v.name, str(v.id)),
        )


class FakeSessions(_Repo):
    def add(self, session: ProgrammeSession) -> None:
        self.store.sessions[session.id] = session

    async def lock(self, session_id: uuid.UUID) -> ProgrammeSession | None:
        return self.store.sessions.get(session_id)

    async def with_programme_and_venue(
        self,
        *,
        public_only: bool,
        session_ids: list[uuid.UUID] | None = None,
        programme_id: uuid.UUID | None = None,
        venue_id: uuid.UUID | None = None,
        scheduled_after: datetime | None = None,
    ) -> list[tuple[ProgrammeSession, Programme, Venue]]:
        rows = []
        for s in sorted(self.store.sessions.values(), key=lambda s: (s.starts_at, str(s.id))):
            p, v = self.store.programmes[s.programme_id], self.store.venues[s.venue_id]
            if (
                (public_only and p.status not in PUBLIC)
                or (session_ids is not None and s.id not in session_ids)
                or programme_id not in (None, s.programme_id)
                or venue_id not in (None, s.venue_id)
                or (
                    scheduled_after is not None
                    and not (s.starts_at > scheduled_after and s.status == SessionStatus.SCHEDULED)
                )
            ):
                continue
            rows.append((s, p, v))
        return rows

    def _upcoming(self, after: datetime, kind: str | None) -> list[ProgrammeSession]:
        return [
            s
            for s in sorted(self.store.sessions.values(), key=lambda s: (s.starts_at, str(s.id)))
            if self.store.programmes[s.programme_id].status == "published"
            and s.status == SessionStatus.SCHEDULED
            and s.starts_at > after
            and kind in (None, self.store.programmes[s.programme_id].kind)
        ]

    async def venues_with_upcoming(self, *, after: datetime, kind: str) -> set[uuid.UUID]:
        return {s.venue_id for s in self._upcoming(after, kind)}

    async def upcoming_at(
        self, venue_ids: Collection[uuid.UUID], *, after: datetime, kind: str | None = None
    ) -> list[UpcomingSession]:
        return [
            UpcomingSession(
                id=s.id,
                programme_id=s.programme_id,
                programme_title=self.store.programmes[s.programme_id].title,
                programme_kind=self.store.programmes[s.programme_id].kind,
                venue_id=s.venue_id,
                starts_at=s.starts_at,
                ends_at=s.ends_at,
                capacity=s.capacity,
                confirmed=sum(
                    1
                    for e in self.store.enrolments.values()
                    if e.session_id == s.id and e.status == EnrolmentStatus.CONFIRMED
                ),
            )
            for s in self._upcoming(after, kind)
            if s.venue_id in venue_ids
        ]

    async def enrolment_counts(
        self, session_ids: list[uuid.UUID]
    ) -> dict[tuple[uuid.UUID, str], int]:
        counts: dict[tuple[uuid.UUID, str], int] = {}
        for e in self.store.enrolments.values():
            if e.session_id in session_ids:
                counts[(e.session_id, e.status)] = counts.get((e.session_id, e.status), 0) + 1
        return counts

    async def scheduled_between(self, after: datetime, until: datetime) -> list[ProgrammeSession]:
        return [
            s
            for s in self.store.sessions.values()
            if s.status == SessionStatus.SCHEDULED and after < s.starts_at <= until
        ]


class FakeParticipants(_Repo):
    def add(self, participant: Participant) -> None:
        self.store.participants[participant.id] = participant

    async def get(self, participant_id: uuid.UUID) -> Participant | None:
        return self.store.participants.get(participant_id)

    async def by_subject(self, subject: str) -> Participant | None:
        return next((p for p in self.store.participants.values() if p.subject == subject), None)

    async def find(
        self, *, participant_id: uuid.UUID | None, subject: str | None, erased: bool = True
    ) -> Participant | None:
        return next(
            (
                p
                for p in self.store.participants.values()
                if (erased or p.erased_at is None)
                and (p.id == participant_id if participant_id else p.subject == subject)
            ),
            None,
        )

    async def lock(self, participant: Participant) -> None:
        pass


class FakeEnrolments(_Repo):
    def add(self, enrolment: Enrolment) -> None:
        self.store.enrolments[enrolment.id] = enrolment

    async def reload(self, enrolment: Enrolment) -> None:
        pass  # the store holds the object itself

    async def with_participant(
        self, enrolment_id: uuid.UUID
    ) -> tuple[Enrolment, Participant] | None:
        e = self.store.enrolments.get(enrolment_id)
        return None if e is None else (e, self.store.participants[e.participant_id])

    async def active_id(self, session_id: uuid.UUID, participant_id: uuid.UUID) -> uuid.UUID | None:
        return next(
            (
                e.id
                for e in self.store.enrolments.values()
                if e.session_id == session_id
                and e.participant_id == participant_id
                and e.status != EnrolmentStatus.CANCELLED
            ),
            None,
        )

    async def count(self, session_id: uuid.UUID, status: EnrolmentStatus) -> int:
        return sum(
            1
            for e in self.store.enrolments.values()
            if e.session_id == session_id and e.status == status
        )

    async def in_session(
        self,
        session_id: uuid.UUID,
        *,
        status: EnrolmentStatus | None = None,
        limit: int | None = None,
    ) -> list[tuple[Enrolment, Participant]]:
        found = sorted(
            (
                e
                for e in self.store.enrolments.values()
                if e.session_id == session_id
                and (
                    e.status != EnrolmentStatus.CANCELLED if status is None else e.status == status
                )
            ),
            key=lambda e: e.sequence,
        )
        return [(e, self.store.participants[e.participant_id]) for e in found][:limit]

    async def matching(
        self,
        *,
        subject: str | None = None,
        session_id: uuid.UUID | None = None,
        status: EnrolmentStatus | None = None,
    ) -> list[Enrolment]:
        return sorted(
            (
                e
                for e in self.store.enrolments.values()
                if (subject is None or self.store.participants[e.participant_id].subject == subject)
                and session_id in (None, e.session_id)
                and status in (None, e.status)
            ),
            key=lambda e: (e.created_at, e.sequence),
        )

    async def waitlists(self, session_ids: set[uuid.UUID]) -> list[tuple[uuid.UUID, uuid.UUID]]:
        found = sorted(
            (
                e
                for e in self.store.enrolments.values()
                if e.session_id in session_ids and e.status == EnrolmentStatus.WAITLISTED
            ),
            key=lambda e: (str(e.session_id), e.sequence),
        )
        return [(e.id, e.session_id) for e in found]

    async def upcoming_of(self, participant_id: uuid.UUID, *, after: datetime) -> list[Enrolment]:
        return sorted(
            (
                e
                for e in self.store.enrolments.values()
                if e.participant_id == participant_id
                and e.status != EnrolmentStatus.CANCELLED
                and self.store.sessions[e.session_id].starts_at > after
            ),
            key=lambda e: str(e.session_id),
        )


class FakeDevices(_Repo):
    def add(self, device: Device) -> None:
        self.store.devices[device.id] = device

    def add_loan(self, loan: DeviceLoan) -> None:
        self.store.loans[loan.id] = loan

    async def lock(self, device_id: uuid.UUID) -> Device | None:
        return self.store.devices.get(device_id)

    async def open_loan(self, device_id: uuid.UUID) -> DeviceLoan | None:
        return next(
            (
                loan
                for loan in self.store.loans.values()
                if loan.device_id == device_id and loan.returned_at is None
            ),
            None,
        )

    async def last_returned_at(self, device_id: uuid.UUID) -> datetime | None:
        returns = [
            loan.returned_at
            for loan in self.store.loans.values()
            if loan.device_id == device_id and loan.returned_at is not None
        ]
        return max(returns, default=None)

    async def matching(self, device_ids: list[uuid.UUID] | None = None) -> list[Device]:
        return sorted(
            (d for d in self.store.devices.values() if device_ids is None or d.id in device_ids),
            key=lambda d: (d.make, d.model, d.serial),
        )

    async def loans_of(self, device_ids: list[uuid.UUID]) -> list[DeviceLoan]:
        return sorted(
            (loan for loan in self.store.loans.values() if loan.device_id in device_ids),
            key=lambda loan: loan.loaned_at,
            reverse=True,
        )

    async def overdue_loans(self, now: datetime) -> list[DeviceLoan]:
        return [
            loan
            for loan in self.store.loans.values()
            if loan.returned_at is None and loan.due_at < now
        ]


class FakeVouchers(_Repo):
    def add(self, voucher: Voucher) -> None:
        self.store.vouchers[voucher.id] = voucher

    async def held(self, programme_id: uuid.UUID, participant_id: uuid.UUID) -> uuid.UUID | None:
        return next(
            (
                v.id
                for v in self.store.vouchers.values()
                if v.programme_id == programme_id and v.participant_id == participant_id
            ),
            None,
        )

    async def next_free(self, programme_id: uuid.UUID) -> Voucher | None:
        free = [
            v
            for v in self.store.vouchers.values()
            if v.programme_id == programme_id and v.participant_id is None
        ]
        return min(free, key=lambda v: (v.added_at, v.code), default=None)

    async def stock(self) -> list[tuple[uuid.UUID, str, int, int]]:
        rows = []
        for p in sorted(self.store.programmes.values(), key=lambda p: p.title):
            mine = [v for v in self.store.vouchers.values() if v.programme_id == p.id]
            if mine:
                rows.append(
                    (p.id, p.title, len(mine), sum(v.participant_id is not None for v in mine))
                )
        return rows

    async def of_subject(self, subject: str) -> list[Voucher]:
        return sorted(
            (
                v
                for v in self.store.vouchers.values()
                if v.participant_id is not None
                and self.store.participants[v.participant_id].subject == subject
            ),
            key=lambda v: v.allocated_at or datetime.min,
        )


class FakeOutcomes(_Repo):
    def add(self, assessment: OutcomeAssessment) -> None:
        self.store.outcomes[assessment.id] = assessment

    async def stages(self, participant_id: uuid.UUID, programme_id: uuid.UUID) -> set[str]:
        return {
            a.stage
            for a in self.store.outcomes.values()
            if a.participant_id == participant_id and a.programme_id == programme_id
        }

    async def of_programme(self, programme_id: uuid.UUID) -> list[OutcomeAssessment]:
        return [a for a in self.store.outcomes.values() if a.programme_id == programme_id]


class FakeClaims(_Repo):
    async def claim(self, kind: str, key: str, now: datetime) -> bool:
        if (kind, key) in self.store.claims:
            return False
        self.store.claims.add((kind, key))
        return True

    async def claimed(self, kind: str) -> set[str]:
        return {key for k, key in self.store.claims if k == kind}


class FakeOutbox(_Repo):
    async def payloads_containing(self, text: str) -> list[tuple[int, str]]:
        return [(i, p) for i, p in self.store.outbox.items() if text in p]

    async def set_payload(self, row_id: int, payload: str) -> None:
        self.store.outbox[row_id] = payload


class FakeReports(_Repo):
    async def confirmed_enrolments(self) -> list[tuple[Any, ...]]:
        rows = []
        for e in self.store.enrolments.values():
            if e.status == EnrolmentStatus.CONFIRMED:
                s = self.store.sessions[e.session_id]
                rows.append(
                    (
                        s.programme_id,
                        self.store.venues[s.venue_id].ward,
                        s.starts_at,
                        e.participant_id,
                        e.attended,
                    )
                )
        return rows

    async def programme_loans(self) -> list[tuple[Any, ...]]:
        return [
            (
                self.store.devices[loan.device_id].programme_id,
                loan.loaned_at,
                loan.returned_at,
                loan.participant_id,
            )
            for loan in self.store.loans.values()
            if self.store.devices[loan.device_id].programme_id is not None
        ]

    async def allocated_vouchers(self) -> list[tuple[Any, ...]]:
        return [
            (v.programme_id, v.allocated_at, v.participant_id)
            for v in self.store.vouchers.values()
            if v.participant_id is not None
        ]


class FakeRepositories:
    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store()
        self.programmes = FakeProgrammes(self.store)
        self.venues = FakeVenues(self.store)
        self.sessions = FakeSessions(self.store)
        self.participants = FakeParticipants(self.store)
        self.enrolments = FakeEnrolments(self.store)
        self.devices = FakeDevices(self.store)
        self.vouchers = FakeVouchers(self.store)
        self.outcomes = FakeOutcomes(self.store)
        self.claims = FakeClaims(self.store)
        self.outbox = FakeOutbox(self.store)
        self.reports = FakeReports(self.store)


class FakeUnitOfWork(FakeRepositories):
    """``published``: the events recorded, in order. ``conflict_on_flush``: the next flush
    raises IntegrityError, as the database does when a concurrent transaction won a unique
    index."""

    def __init__(self, store: Store | None = None) -> None:
        super().__init__(store)
        self.published: list[Event] = []
        self.flushes = 0
        self.conflict_on_flush = False

    def publish(self, event: Event) -> None:
        self.published.append(event)

    async def flush(self) -> None:
        self.flushes += 1
        if self.conflict_on_flush:
            raise IntegrityError("INSERT", {}, Exception("unique index"))

    def types(self) -> list[str]:
        return [type(e).__name__ for e in self.published]


class FakeTransactions:
    """What background jobs open (``application.unit_of_work.Transactions``): every unit of
    work shares the store; ``committed`` lists those whose block ended without an
    exception, ``rolled_back`` the others."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store()
        self.committed: list[FakeUnitOfWork] = []
        self.rolled_back: list[FakeUnitOfWork] = []
        self.conflict_on_flush = False

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[FakeUnitOfWork]:
        uow = FakeUnitOfWork(self.store)
        uow.conflict_on_flush = self.conflict_on_flush
        try:
            yield uow
        except BaseException:
            self.rolled_back.append(uow)
            raise
        self.committed.append(uow)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[FakeRepositories]:
        yield FakeRepositories(self.store)

    def published(self) -> list[Event]:
        return [e for uow in self.committed for e in uow.published]


# -- rows for tests ----------------------------------------------------------------------------


def a_programme(
    store: Store,
    *,
    status: str = "published",
    kind: str = "digital-skills-course",
    title: str = "Getting started online",
    eligibility: dict[str, Any] | None = None,
) -> Programme:
    now = datetime.now(UTC)
    p = Programme(
        title=title,
        kind=kind,
        delivered_by="MK Libraries",
        status=status,
        eligibility=eligibility or {},
        created_at=now,
        updated_at=now,
    )
    store.programmes[p.id] = p
    return p


def a_venue(
    store: Store,
    *,
    name: str = "Milton Keynes Central Library",
    ward: str = "Central Milton Keynes",
    latitude: float = 52.0431,
    longitude: float = -0.7563,
) -> Venue:
    v = Venue(
        name=name,
        address="555 Silbury Boulevard",
        postcode="MK9 3HL",
        ward=ward,
        latitude=latitude,
        longitude=longitude,
        created_at=datetime.now(UTC),
    )
    store.venues[v.id] = v
    return v


def a_session(
    store: Store,
    *,
    programme: Programme | None = None,
    venue: Venue | None = None,
    capacity: int = 2,
    starts_in: timedelta = timedelta(days=2),
    status: str = "scheduled",
) -> ProgrammeSession:
    programme = programme or a_programme(store)
    venue = venue or a_venue(store)
    starts = datetime.now(UTC) + starts_in
    s = ProgrammeSession(
        programme_id=programme.id,
        venue_id=venue.id,
        starts_at=starts,
        ends_at=starts + timedelta(hours=2),
        capacity=capacity,
        status=status,
        created_at=datetime.now(UTC),
    )
    store.sessions[s.id] = s
    return s


def a_participant(
    store: Store,
    subject: str | None = "citizen-1",
    *,
    postcode_district: str | None = "MK9",
    year_of_birth: int | None = 1970,
    **facts: Any,
) -> Participant:
    now = datetime.now(UTC)
    p = Participant(
        subject=subject,
        postcode="MK9 3HL" if postcode_district else None,
        postcode_district=postcode_district,
        year_of_birth=year_of_birth,
        consent_given_at=now,
        consent_version="2026-11",
        created_at=now,
        updated_at=now,
        **facts,
    )
    store.participants[p.id] = p
    return p


def an_enrolment(
    store: Store, session: ProgrammeSession, participant: Participant, *, status: str = "confirmed"
) -> Enrolment:
    session.enrolment_count += 1
    e = Enrolment(
        session_id=session.id,
        participant_id=participant.id,
        status=status,
        sequence=session.enrolment_count,
        created_at=datetime.now(UTC),
    )
    store.enrolments[e.id] = e
    return e
