"""Programmes: what staff create and publish and everyone may browse; who is eligible."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from contracts.inclusion import ProgrammePublished
from inclusion.application.participants import facts_of
from inclusion.application.unit_of_work import InclusionUnitOfWork
from inclusion.domain.programmes import (
    EligibilityRules,
    ParticipantFacts,
    ProgrammeKind,
    ProgrammeStatus,
    UnmetRule,
    check_transition,
    evaluate,
)
from inclusion.persistence.repositories import Repositories
from inclusion.persistence.tables import Programme
from servicekit.errors import DomainError, NotFound


class ProgrammeNotFound(NotFound):
    code, title = "programme-not-found", "Programme not found"


class UnknownReference(DomainError):
    """The request body names a programme, venue or participant that does not exist (not a
    404: the addressed resource, the collection, exists)."""

    status, code, title = 422, "unknown-reference", "Refers to something that does not exist"


@dataclass(frozen=True)
class CreateProgramme:
    title: str
    kind: ProgrammeKind
    delivered_by: str
    description: str = ""
    eligibility: EligibilityRules = field(default_factory=EligibilityRules)
    id: uuid.UUID | None = None  # seed data brings stable ids


@dataclass(frozen=True)
class ChangeProgrammeStatus:
    programme_id: uuid.UUID
    status: ProgrammeStatus
    actor: str | None = None


async def create_programme(*, uow: InclusionUnitOfWork, command: CreateProgramme) -> Programme:
    now = datetime.now(UTC)
    programme = Programme(
        id=command.id or uuid.uuid4(),
        title=command.title,
        kind=command.kind.value,
        delivered_by=command.delivered_by,
        description=command.description,
        status=ProgrammeStatus.DRAFT.value,
        eligibility=asdict(command.eligibility),
        created_at=now,
        updated_at=now,
    )
    uow.programmes.add(programme)
    return programme


async def change_programme_status(
    *, uow: InclusionUnitOfWork, command: ChangeProgrammeStatus
) -> Programme:
    """Publish, close or archive; publishing emits ProgrammePublished."""
    programme = await uow.programmes.lock(command.programme_id)
    if programme is None:
        raise ProgrammeNotFound(f"No programme with id {command.programme_id}.")
    check_transition(programme.status, command.status)
    now = datetime.now(UTC)
    programme.status = command.status.value
    programme.version += 1
    programme.updated_at = now
    if command.status is ProgrammeStatus.PUBLISHED:
        programme.published_at = now
        uow.publish(
            ProgrammePublished(
                programme_id=programme.id,
                kind=programme.kind,
                title=programme.title,
                delivered_by=programme.delivered_by,
                published_by=command.actor,
                occurred_at=now,
            )
        )
    return programme


def is_public(programme: Programme) -> bool:
    return programme.status in (ProgrammeStatus.PUBLISHED, ProgrammeStatus.CLOSED)


def eligibility_rules(programme: Programme) -> EligibilityRules:
    data: dict[str, Any] = programme.eligibility or {}
    known = EligibilityRules.__dataclass_fields__
    return EligibilityRules(**{k: v for k, v in data.items() if k in known})


async def find_programme(*, repos: Repositories, programme_id: uuid.UUID, staff: bool) -> Programme:
    """The programme; drafts and archived ones are staff-only (others: not found)."""
    programme = await repos.programmes.get(programme_id)
    if programme is None or not (staff or is_public(programme)):
        raise ProgrammeNotFound(f"No programme with id {programme_id}.")
    return programme


async def list_programmes(
    *,
    repos: Repositories,
    staff: bool,
    kind: ProgrammeKind | None = None,
    status: ProgrammeStatus | None = None,
) -> list[Programme]:
    return await repos.programmes.matching(
        public_only=not staff,
        kind=None if kind is None else kind.value,
        status=None if status is None else status.value,
    )


async def check_eligibility(
    *, repos: Repositories, programme_id: uuid.UUID, subject: str
) -> list[UnmetRule]:
    """The programme's rules the citizen ``subject`` does not meet (none: eligible); what
    we do not know about them yet counts as unmet."""
    programme = await find_programme(repos=repos, programme_id=programme_id, staff=False)
    participant = await repos.participants.by_subject(subject)
    facts = ParticipantFacts() if participant is None else facts_of(participant)
    return evaluate(eligibility_rules(programme), facts, today=datetime.now(UTC).date())
