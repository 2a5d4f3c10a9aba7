"""Recording EDS assessments, and outcome figures per programme."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from contracts.inclusion import EdsScores, OutcomeRecorded
from inclusion.application.programmes import ProgrammeNotFound, UnknownReference
from inclusion.application.unit_of_work import InclusionUnitOfWork
from inclusion.domain.outcomes import (
    SKILL_AREAS,
    OutcomeAlreadyRecorded,
    Stage,
    check_stage,
)
from inclusion.persistence.repositories import Repositories
from inclusion.persistence.tables import OutcomeAssessment


@dataclass(frozen=True)
class RecordOutcome:
    programme_id: uuid.UUID
    stage: Stage
    scores: dict[str, int]
    participant_id: uuid.UUID | None = None  # staff name the participant
    subject: str | None = None  # a citizen records their own (one of the two is needed)


async def record(*, uow: InclusionUnitOfWork, command: RecordOutcome) -> OutcomeAssessment:
    if command.participant_id is None and command.subject is None:  # staff name one
        raise UnknownReference("Name the participant.", rule="participant-exists")
    now = datetime.now(UTC)
    if await uow.programmes.get(command.programme_id) is None:
        raise ProgrammeNotFound(f"No programme with id {command.programme_id}.")
    participant = await uow.participants.find(
        participant_id=command.participant_id, subject=command.subject, erased=False
    )
    if participant is None:
        raise UnknownReference(
            "No such participant (citizens: enrol first).", rule="participant-exists"
        )
    stages = await uow.outcomes.stages(participant.id, command.programme_id)
    check_stage(
        command.stage, has_baseline=Stage.BASELINE in stages, has_stage=command.stage in stages
    )
    assessment = OutcomeAssessment(
        participant_id=participant.id,
        programme_id=command.programme_id,
        stage=command.stage.value,
        scores=dict(command.scores),
        recorded_at=now,
    )
    uow.outcomes.add(assessment)
    uow.publish(
        OutcomeRecorded(
            outcome_id=assessment.id,
            programme_id=command.programme_id,
            participant_id=participant.id,
            stage=command.stage.value,
            scores=EdsScores(**command.scores),
            occurred_at=now,
        )
    )
    try:
        await uow.flush()
    except IntegrityError:  # the same stage recorded twice at once
        raise OutcomeAlreadyRecorded(
            f"The {command.stage.value} assessment is already recorded."
        ) from None
    return assessment


@dataclass(frozen=True)
class AreaFigures:
    area: str
    baseline_average: float | None
    follow_up_average: float | None
    improved: int  # participants with both stages whose score went up


@dataclass(frozen=True)
class OutcomeFigures:
    programme_id: uuid.UUID
    baselines: int
    follow_ups: int
    areas: list[AreaFigures]


async def figures(*, repos: Repositories, programme_id: uuid.UUID) -> OutcomeFigures:
    if await repos.programmes.get(programme_id) is None:
        raise ProgrammeNotFound(f"No programme with id {programme_id}.")
    rows = await repos.outcomes.of_programme(programme_id)
    by_stage: dict[str, dict[uuid.UUID, dict[str, int]]] = {s.value: {} for s in Stage}
    for row in rows:
        by_stage[row.stage][row.participant_id] = row.scores
    baseline, follow_up = by_stage[Stage.BASELINE], by_stage[Stage.FOLLOW_UP]

    def average(scores: dict[uuid.UUID, dict[str, int]], area: str) -> float | None:
        values = [s[area] for s in scores.values() if area in s]
        return round(sum(values) / len(values), 2) if values else None

    areas = [
        AreaFigures(
            area,
            average(baseline, area),
            average(follow_up, area),
            sum(
                1
                for pid, s in follow_up.items()
                if pid in baseline and s.get(area, 0) > baseline[pid].get(area, 0)
            ),
        )
        for area in SKILL_AREAS
    ]
    return OutcomeFigures(programme_id, len(baseline), len(follow_up), areas)
