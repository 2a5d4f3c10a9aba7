"""Outcomes: the Essential Digital Skills (EDS) self-assessment, at baseline and follow-up.

The EDS framework (DfE, 2018) has foundation skills and five skill areas; participants rate
their confidence in each from 1 (I can't do this yet) to 4 (I can do this confidently).
"""

from __future__ import annotations

from enum import StrEnum

from servicekit.errors import Conflict, DomainError

SKILL_AREAS: tuple[str, ...] = (
    "foundation",
    "communicating",
    "handling_information",
    "transacting",
    "problem_solving",
    "being_safe_and_legal",
)


class Stage(StrEnum):
    BASELINE = "baseline"
    FOLLOW_UP = "follow-up"


class BaselineRequired(DomainError):
    status, code, title = 422, "baseline-required", "Record the baseline first"


class OutcomeAlreadyRecorded(Conflict):
    code, title = "outcome-already-recorded", "Already recorded for this stage"


def check_stage(stage: Stage, *, has_baseline: bool, has_stage: bool) -> None:
    if has_stage:
        raise OutcomeAlreadyRecorded(
            f"The {stage.value} assessment is already recorded.", stage=stage.value
        )
    if stage is Stage.FOLLOW_UP and not has_baseline:
        raise BaselineRequired(
            "A follow-up needs a baseline assessment first.", rule="baseline-before-follow-up"
        )
