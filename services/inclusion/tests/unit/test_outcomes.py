"""EDS outcomes (application/outcomes.py) on in-memory repositories."""

from __future__ import annotations

import uuid

import pytest

from inclusion.application import outcomes
from inclusion.application.programmes import ProgrammeNotFound, UnknownReference
from inclusion.domain.outcomes import (
    SKILL_AREAS,
    BaselineRequired,
    OutcomeAlreadyRecorded,
    Stage,
)

from .fakes import FakeUnitOfWork, a_participant, a_programme


def scores(value: int) -> dict[str, int]:
    return dict.fromkeys(SKILL_AREAS, value)


async def test_baseline_then_follow_up_and_the_figures() -> None:
    uow = FakeUnitOfWork()
    course = a_programme(uow.store)
    me = a_participant(uow.store, "c1")
    other = a_participant(uow.store, "c2")
    with pytest.raises(BaselineRequired):
        await outcomes.record(
            uow=uow,
            command=outcomes.RecordOutcome(course.id, Stage.FOLLOW_UP, scores(3), subject="c1"),
        )
    await outcomes.record(
        uow=uow, command=outcomes.RecordOutcome(course.id, Stage.BASELINE, scores(1), subject="c1")
    )
    await outcomes.record(
        uow=uow,
        command=outcomes.RecordOutcome(
            course.id, Stage.BASELINE, scores(3), participant_id=other.id
        ),
    )
    await outcomes.record(
        uow=uow,
        command=outcomes.RecordOutcome(course.id, Stage.FOLLOW_UP, scores(3), participant_id=me.id),
    )
    assert uow.types() == ["OutcomeRecorded"] * 3
    with pytest.raises(OutcomeAlreadyRecorded):
        await outcomes.record(
            uow=uow,
            command=outcomes.RecordOutcome(course.id, Stage.BASELINE, scores(2), subject="c1"),
        )

    found = await outcomes.figures(repos=uow, programme_id=course.id)
    assert (found.baselines, found.follow_ups) == (2, 1)
    first = found.areas[0]
    assert (first.area, first.baseline_average, first.follow_up_average, first.improved) == (
        SKILL_AREAS[0],
        2.0,
        3.0,
        1,
    )


async def test_refusals() -> None:
    uow = FakeUnitOfWork()
    course = a_programme(uow.store)
    with pytest.raises(UnknownReference, match="Name the participant"):  # staff name one
        await outcomes.record(
            uow=uow, command=outcomes.RecordOutcome(course.id, Stage.BASELINE, scores(1))
        )
    with pytest.raises(ProgrammeNotFound):
        await outcomes.record(
            uow=uow,
            command=outcomes.RecordOutcome(uuid.uuid4(), Stage.BASELINE, scores(1), subject="c1"),
        )
    with pytest.raises(UnknownReference, match="enrol first"):
        await outcomes.record(
            uow=uow,
            command=outcomes.RecordOutcome(course.id, Stage.BASELINE, scores(1), subject="nobody"),
        )
    a_participant(uow.store, "c1")
    uow.conflict_on_flush = True  # the same stage at the same time
    with pytest.raises(OutcomeAlreadyRecorded):
        await outcomes.record(
            uow=uow,
            command=outcomes.RecordOutcome(course.id, Stage.BASELINE, scores(1), subject="c1"),
        )
    with pytest.raises(ProgrammeNotFound):
        await outcomes.figures(repos=uow, programme_id=uuid.uuid4())
