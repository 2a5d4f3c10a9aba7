"""The catalogue lifecycle and slugs: plain Python, no HTTP, no database."""

from __future__ import annotations

import itertools
import re

import pytest

from citizen_services.domain.catalogue import (
    InvalidTransition,
    ServiceStatus,
    check_transition,
    slugify,
)
from servicekit.errors import Conflict

S = ServiceStatus
ALLOWED = {
    (S.DRAFT, S.PUBLISHED),
    (S.SUSPENDED, S.PUBLISHED),
    (S.PUBLISHED, S.SUSPENDED),
    (S.DRAFT, S.RETIRED),
    (S.PUBLISHED, S.RETIRED),
    (S.SUSPENDED, S.RETIRED),
}


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_allowed_transitions(current: ServiceStatus, target: ServiceStatus) -> None:
    check_transition(current.value, target)  # does not raise


@pytest.mark.parametrize(
    ("current", "target"), sorted(set(itertools.product(ServiceStatus, ServiceStatus)) - ALLOWED)
)
def test_every_other_transition_is_a_conflict(
    current: ServiceStatus, target: ServiceStatus
) -> None:
    with pytest.raises(InvalidTransition) as caught:
        check_transition(current.value, target)
    err = caught.value
    assert isinstance(err, Conflict)
    assert err.status == 409
    assert err.code == "invalid-status-transition"
    assert err.extensions == {"current_status": current.value, "requested_status": target.value}
    assert current.value in err.detail and target.value in err.detail


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Report a pothole", "report-a-pothole"),
        ("Report a Pothole!", "report-a-pothole"),
        ("  Council Tax — Single Person Discount  ", "council-tax-single-person-discount"),
        ("Blue Badge (renewal) / replacement", "blue-badge-renewal-replacement"),
        ("Apply for a 2nd bin", "apply-for-a-2nd-bin"),
        ("Café and Crèche bookings", "cafe-and-creche-bookings"),
        ("already-a-slug", "already-a-slug"),
        ("!!!", "service"),
        ("", "service"),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_slugify_is_at_most_120_chars_and_never_ends_with_a_dash() -> None:
    for name in ("a" * 119 + " b", "a" * 300, "word " * 60, "ab " * 70):
        slug = slugify(name)
        assert len(slug) <= 120
        assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", slug), slug
