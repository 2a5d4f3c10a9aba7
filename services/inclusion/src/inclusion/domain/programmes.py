"""Programmes: their four kinds, their lifecycle and their eligibility rules.

Lifecycle: draft -> published -> closed (no new enrolments) -> archived; a closed programme
may be published again. Eligibility rules are data on the programme, evaluated against what a
participant told us; each unmet rule comes back with its name and a reason in plain English.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from servicekit.errors import Conflict, DomainError


class ProgrammeKind(StrEnum):
    DIGITAL_SKILLS_COURSE = "digital-skills-course"
    DEVICE_LENDING = "device-lending"
    CONNECTIVITY = "connectivity"
    DROP_IN_HELP = "drop-in-help"


class ProgrammeStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    CLOSED = "closed"
    ARCHIVED = "archived"


#: target -> the statuses it may be reached from.
TRANSITIONS: dict[ProgrammeStatus, frozenset[ProgrammeStatus]] = {
    ProgrammeStatus.PUBLISHED: frozenset({ProgrammeStatus.DRAFT, ProgrammeStatus.CLOSED}),
    ProgrammeStatus.CLOSED: frozenset({ProgrammeStatus.PUBLISHED}),
    ProgrammeStatus.ARCHIVED: frozenset({ProgrammeStatus.DRAFT, ProgrammeStatus.CLOSED}),
}


class InvalidProgrammeTransition(Conflict):
    code, title = "invalid-status-transition", "Status change not allowed"


class ProgrammeNotOpen(Conflict):
    code, title = "programme-not-open", "Programme is not open for enrolment"


class NotEligible(DomainError):
    status, code, title = 422, "not-eligible", "Not eligible for this programme"


def check_transition(current: str, target: ProgrammeStatus) -> None:
    if ProgrammeStatus(current) not in TRANSITIONS.get(target, frozenset()):
        raise InvalidProgrammeTransition(
            f"A {current} programme cannot become {target.value}.",
            current_status=current,
            requested_status=target.value,
        )


@dataclass(frozen=True)
class EligibilityRules:
    """What a programme asks of its participants; ``None``/``False`` = no such rule."""

    min_age: int | None = None
    max_age: int | None = None
    lives_in_milton_keynes: bool = False
    receives_benefits: bool = False
    no_device_at_home: bool = False
    no_connection_at_home: bool = False


@dataclass(frozen=True)
class ParticipantFacts:
    """What a participant told us about themselves (each may be unknown)."""

    year_of_birth: int | None = None
    lives_in_milton_keynes: bool | None = None  # from the postcode district
    receives_benefits: bool | None = None
    has_device_at_home: bool | None = None
    has_connection_at_home: bool | None = None


@dataclass(frozen=True)
class UnmetRule:
    rule: str
    reason: str


def evaluate(rules: EligibilityRules, facts: ParticipantFacts, *, today: date) -> list[UnmetRule]:
    """Every rule of ``rules`` that ``facts`` do not meet (empty: eligible). A rule whose fact
    is unknown is unmet, with a reason that says what we need to know."""
    unmet: list[UnmetRule] = []
    if rules.min_age is not None or rules.max_age is not None:
        if facts.year_of_birth is None:
            unmet.append(
                UnmetRule("age", "Tell us your year of birth: this programme has an age limit.")
            )
        else:
            # Only the year is kept (minimal data): the age is the one reached this year.
            age = today.year - facts.year_of_birth
            if rules.min_age is not None and age < rules.min_age:
                unmet.append(
                    UnmetRule(
                        "min_age", f"This programme is for people aged {rules.min_age} or over."
                    )
                )
            if rules.max_age is not None and age > rules.max_age:
                unmet.append(
                    UnmetRule(
                        "max_age", f"This programme is for people aged {rules.max_age} or under."
                    )
                )
    if rules.lives_in_milton_keynes and facts.lives_in_milton_keynes is not True:
        unmet.append(
            UnmetRule(
                "lives_in_milton_keynes",
                "Tell us your postcode: this programme is for Milton Keynes residents."
                if facts.lives_in_milton_keynes is None
                else "This programme is for people living in Milton Keynes.",
            )
        )
    if rules.receives_benefits and facts.receives_benefits is not True:
        unmet.append(
            UnmetRule(
                "receives_benefits",
                "This programme is for people receiving benefits (e.g. Universal Credit).",
            )
        )
    if rules.no_device_at_home and facts.has_device_at_home is not False:
        unmet.append(
            UnmetRule(
                "no_device_at_home",
                "This programme is for people without a suitable device at home.",
            )
        )
    if rules.no_connection_at_home and facts.has_connection_at_home is not False:
        unmet.append(
            UnmetRule(
                "no_connection_at_home",
                "This programme is for people without an internet connection at home.",
            )
        )
    return unmet


def check_eligible(rules: EligibilityRules, facts: ParticipantFacts, *, today: date) -> None:
    unmet = evaluate(rules, facts, today=today)
    if unmet:
        raise NotEligible(
            " ".join(u.reason for u in unmet),
            unmet_rules=[{"rule": u.rule, "reason": u.reason} for u in unmet],
        )
