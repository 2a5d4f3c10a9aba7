"""Essential Digital Skills outcomes on SQLite and PostgreSQL: baseline then follow-up, once
each; figures per programme."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from servicekit.errors import TYPE_BASE

from ..conftest import citizen, make_programme, make_session, outbox_types

AREAS = (
    "foundation",
    "communicating",
    "handling_information",
    "transacting",
    "problem_solving",
    "being_safe_and_legal",
)


def scores(level: int, **overrides: int) -> dict[str, int]:
    return {**dict.fromkeys(AREAS, level), **overrides}


def problem(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["type"] == TYPE_BASE + code


def test_baseline_follow_up_and_figures(client: TestClient) -> None:
    course = make_programme(client)
    session = make_session(client, programme=course, capacity=5)
    enrolled = [
        client.post(
            f"/api/v1/sessions/{session['id']}/enrolments",
            json={"consent": True},
            headers=citizen(n),
        ).json()
        for n in (1, 2)
    ]
    outcomes = f"/api/v1/programmes/{course['id']}/outcomes"
    # A citizen records their own; a follow-up needs a baseline first.
    problem(
        client.post(outcomes, json={"stage": "follow-up", "scores": scores(3)}, headers=citizen(1)),
        422,
        "baseline-required",
    )
    r = client.post(outcomes, json={"stage": "baseline", "scores": scores(1)}, headers=citizen(1))
    assert r.status_code == 201, r.text
    assert r.json()["participant_id"] == enrolled[0]["participant_id"]
    problem(
        client.post(outcomes, json={"stage": "baseline", "scores": scores(2)}, headers=citizen(1)),
        409,
        "outcome-already-recorded",
    )
    assert (
        client.post(
            outcomes,
            json={"stage": "follow-up", "scores": scores(3, transacting=1)},
            headers=citizen(1),
        ).status_code
        == 201
    )
    # Staff record for a participant they name.
    problem(
        client.post(outcomes, json={"stage": "baseline", "scores": scores(2)}),
        422,
        "unknown-reference",
    )
    assert (
        client.post(
            outcomes,
            json={
                "stage": "baseline",
                "scores": scores(2),
                "participant_id": enrolled[1]["participant_id"],
            },
        ).status_code
        == 201
    )
    bad = client.post(outcomes, json={"stage": "baseline", "scores": scores(5)}, headers=citizen(3))
    problem(bad, 422, "validation-error")
    problem(
        client.post(outcomes, json={"stage": "baseline", "scores": scores(2)}, headers=citizen(3)),
        422,
        "unknown-reference",
    )  # never enrolled

    figures = client.get(outcomes).json()
    assert (figures["baselines"], figures["follow_ups"]) == (2, 1)
    by_area = {a["area"]: a for a in figures["areas"]}
    assert by_area["communicating"] == {
        "area": "communicating",
        "baseline_average": 1.5,
        "follow_up_average": 3.0,
        "improved": 1,
    }
    assert by_area["transacting"]["improved"] == 0
    assert client.get(outcomes, headers=citizen(1)).status_code == 403
    assert outbox_types(client).count("OutcomeRecorded") == 3
