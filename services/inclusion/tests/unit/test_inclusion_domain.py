"""The inclusion domain without I/O: eligibility, places, postcode districts, distances."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from inclusion.domain import geo
from inclusion.domain.programmes import (
    EligibilityRules,
    InvalidProgrammeTransition,
    NotEligible,
    ParticipantFacts,
    ProgrammeStatus,
    check_eligible,
    check_transition,
    evaluate,
)
from inclusion.domain.sessions import (
    EnrolmentStatus,
    SessionAlreadyCancelled,
    SessionInThePast,
    check_open_for_enrolment,
    place_for,
)

TODAY = date(2026, 11, 26)


def test_no_rules_means_everyone_is_eligible() -> None:
    assert evaluate(EligibilityRules(), ParticipantFacts(), today=TODAY) == []


def test_each_unmet_rule_is_named_with_a_reason() -> None:
    rules = EligibilityRules(
        min_age=18,
        lives_in_milton_keynes=True,
        receives_benefits=True,
        no_device_at_home=True,
        no_connection_at_home=True,
    )
    facts = ParticipantFacts(
        year_of_birth=2012,
        lives_in_milton_keynes=False,
        receives_benefits=False,
        has_device_at_home=True,
        has_connection_at_home=True,
    )
    unmet = evaluate(rules, facts, today=TODAY)
    assert [u.rule for u in unmet] == [
        "min_age",
        "lives_in_milton_keynes",
        "receives_benefits",
        "no_device_at_home",
        "no_connection_at_home",
    ]
    assert "18 or over" in unmet[0].reason
    with pytest.raises(NotEligible) as raised:
        check_eligible(rules, facts, today=TODAY)
    assert [u["rule"] for u in raised.value.extensions["unmet_rules"]] == [u.rule for u in unmet]


def test_unknown_facts_ask_for_what_is_needed() -> None:
    rules = EligibilityRules(min_age=16, max_age=24, lives_in_milton_keynes=True)
    unmet = evaluate(rules, ParticipantFacts(), today=TODAY)
    assert [u.rule for u in unmet] == ["age", "lives_in_milton_keynes"]
    assert "year of birth" in unmet[0].reason and "postcode" in unmet[1].reason


def test_facts_that_meet_every_rule() -> None:
    rules = EligibilityRules(
        min_age=18,
        max_age=80,
        lives_in_milton_keynes=True,
        receives_benefits=True,
        no_device_at_home=True,
        no_connection_at_home=True,
    )
    facts = ParticipantFacts(
        year_of_birth=1960,
        lives_in_milton_keynes=True,
        receives_benefits=True,
        has_device_at_home=False,
        has_connection_at_home=False,
    )
    assert evaluate(rules, facts, today=TODAY) == []
    assert [
        u.rule
        for u in evaluate(
            rules,
            ParticipantFacts(
                year_of_birth=1930,
                lives_in_milton_keynes=True,
                receives_benefits=True,
                has_device_at_home=False,
                has_connection_at_home=False,
            ),
            today=TODAY,
        )
    ] == ["max_age"]


def test_programme_lifecycle() -> None:
    check_transition("draft", ProgrammeStatus.PUBLISHED)
    check_transition("published", ProgrammeStatus.CLOSED)
    check_transition("closed", ProgrammeStatus.PUBLISHED)
    check_transition("closed", ProgrammeStatus.ARCHIVED)
    for current, target in [
        ("published", ProgrammeStatus.PUBLISHED),
        ("archived", ProgrammeStatus.PUBLISHED),
        ("draft", ProgrammeStatus.CLOSED),
    ]:
        with pytest.raises(InvalidProgrammeTransition):
            check_transition(current, target)


def test_places_then_waitlist() -> None:
    assert place_for(confirmed=0, capacity=1) is EnrolmentStatus.CONFIRMED
    assert place_for(confirmed=9, capacity=10) is EnrolmentStatus.CONFIRMED
    assert place_for(confirmed=10, capacity=10) is EnrolmentStatus.WAITLISTED


def test_no_enrolment_once_started_or_cancelled() -> None:
    now = datetime.now(UTC)
    check_open_for_enrolment(
        session_status="scheduled", starts_at=now + timedelta(minutes=1), now=now
    )
    with pytest.raises(SessionInThePast):
        check_open_for_enrolment(session_status="scheduled", starts_at=now, now=now)
    with pytest.raises(SessionAlreadyCancelled):
        check_open_for_enrolment(
            session_status="cancelled", starts_at=now + timedelta(days=1), now=now
        )


def test_postcode_districts_shipped_as_data() -> None:
    codes = set(geo.districts())
    assert codes == {f"MK{n}" for n in [*range(1, 20), *range(40, 47)]}
    assert geo.lookup("mk9").code == "MK9"
    assert geo.lookup("MK9 3EP").code == "MK9"
    assert geo.lookup(" mk93ep ").code == "MK9"
    assert geo.lookup("MK46 4EF").in_milton_keynes
    assert not geo.lookup("MK40").in_milton_keynes
    for bad in ("MK20", "SW1A 1AA", "MK", ""):
        assert geo.district_of(bad) is None
        with pytest.raises(geo.UnknownPostcode):
            geo.lookup(bad)


def test_distances() -> None:
    cmk, olney = geo.lookup("MK9"), geo.lookup("MK46")
    d = geo.distance_km(cmk.latitude, cmk.longitude, olney.latitude, olney.longitude)
    assert 12 < d < 14  # CMK to Olney is about 13 km as the crow flies
    assert geo.distance_km(52.0, -0.7, 52.0, -0.7) == 0
