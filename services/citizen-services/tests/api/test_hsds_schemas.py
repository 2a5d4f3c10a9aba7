"""Every ``/hsds`` answer validates against HSDS 3.0 and Open Referral UK 3.0 (the schemas
vendored in ``tests/data/openreferral``) with zero errors, over a realistic catalogue: the
seed data (240-odd published services) and a few entries with the shapes the seed lacks
(email, text message, no department, no venue, no opening hours); lists a page of 200 at a
time, plain and ``full``; every record of every kind. SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from citizen_services.application import hsds
from citizen_services.application.seed import seed_records
from citizen_services.config import Settings
from citizen_services.main import create_app
from servicekit.testing import STAFF, identity_headers

from .openreferral import DATA, Checker, errors
from .test_catalogue_search import published

#: list path -> (shape of a list item, shape of a record)
KINDS = {
    "services": ("service_list", "service"),
    "organizations": ("organization_list", "organization"),
    "locations": ("location_list", "location"),
    "service_at_locations": ("service_at_location_list", "service_at_location"),
    "taxonomies": ("taxonomy", "taxonomy"),
    "taxonomy_terms": ("taxonomy_term", "taxonomy_term"),
}


@pytest.fixture
def seeded(settings: Settings) -> Iterator[TestClient]:
    with TestClient(
        create_app(settings.model_copy(update={"seed_data": True})),
        headers=identity_headers(*STAFF),
    ) as client:
        yield client


def _odd_shapes(client: TestClient) -> None:
    published(
        client,
        name="Ask the contact centre by email",
        description="",
        channels={"email": "contact@milton-keynes.gov.uk", "sms": "07781 000111"},
    )
    published(
        client,
        name="Text us about a missed bin",
        groups=["Bins, recycling and waste", "Streets and public spaces"],
        lgsl_codes=[524, 525],
        department="Environment and Waste",
        fees="Free",
        channels={"sms": "07781 000222", "venue": "Depot without a postcode"},
    )


def _get(client: TestClient, url: str, **params: Any) -> dict[str, Any]:
    r = client.get(url, params=params)
    assert r.status_code == 200, (url, params, r.text)
    return r.json()  # type: ignore[no-any-return]


def _walk_list(
    client: TestClient, checker: Checker, kind: str, **params: Any
) -> list[dict[str, Any]]:
    """Every page of one list (200 a page), each checked; the records seen. Nested lists
    (``full``, ``full_service``) are checked against the record's schema."""
    nested = params.get("full") or params.get("full_service")
    shape = KINDS[kind][1] if nested else KINDS[kind][0]
    seen: list[dict[str, Any]] = []
    page = 1
    while True:
        body = _get(client, f"/hsds/{kind}", per_page=200, page=page, **params)
        checker.page(shape, body, where=f"/hsds/{kind}?page={page}&{params}")
        seen += body["contents"]
        if body["last_page"] or body["empty"]:
            return seen
        page += 1


def test_every_answer_validates_against_hsds_and_open_referral_uk(
    seeded: TestClient, anonymous_client: TestClient
) -> None:
    _odd_shapes(seeded)
    client, checker = anonymous_client, Checker()
    checker.check("about", _get(client, "/hsds"), where="/hsds")

    services = _walk_list(client, checker, "services")
    assert len(services) == len(seed_records()) + 2 >= 200
    full = _walk_list(client, checker, "services", full="true")
    assert [s["id"] for s in full] == [s["id"] for s in services]
    assert _walk_list(client, checker, "service_at_locations", full="true")
    for filters in (
        {"minimal": "true"},
        {"taxonomy_id": str(hsds.LGSL_TAXONOMY_ID)},
        {"organization_id": str(hsds.organization_id("Libraries and Culture"))},
        {"modified_after": "2000-01-01T00:00:00Z"},
        {"postcode": "MK9 3EP", "proximity": "5000"},
        {"day": "MO", "start_time": "09:00", "end_time": "17:00"},
        {"minimum_age": "11", "maximum_age": "19"},
    ):
        assert _walk_list(client, checker, "services", **filters), filters
        if "minimal" not in filters:  # a filter of /services only
            assert _walk_list(client, checker, "service_at_locations", **filters), filters
    for nesting in ("full", "full_service"):
        for org in _walk_list(client, checker, "organizations", **{nesting: "true"}):
            assert org["services"]
            if nesting == "full_service":
                url = f"/hsds/organizations/{org['id']}"
                checker.check("organization", _get(client, url, full_service="true"), where=url)
    assert _walk_list(client, checker, "taxonomy_terms", top_only="true")
    for kind, (_, record_shape) in KINDS.items():
        records = services if kind == "services" else _walk_list(client, checker, kind)
        assert records, kind
        for record in records:
            url = f"/hsds/{kind}/{record['id']}"
            checker.check(record_shape, _get(client, url), where=url)

    print(checker.report())
    assert checker.checked > 1000
    assert sum(checker.counts.values()) == 0, (checker.report(), checker.examples)


def test_the_checker_finds_what_the_schemas_refuse() -> None:
    """The validation is not vacuous: a null where a string is due, a relative URI, a missing
    required field and a bad uuid are errors against both standards."""
    service = {
        "id": "6f4a4c88-0d62-4d0a-9d4e-2d0f5f8a8d7b",
        "name": "A service",
        "status": "active",
        "description": "Something useful",
    }
    for standard in ("hsds-3.0", "oruk-3.0"):
        assert errors(standard, "service", service) == []
        assert errors(standard, "service", {**service, "email": None})
        assert errors(standard, "service", {**service, "url": "/relative"})
        assert errors(standard, "service", {**service, "id": "not-a-uuid"})
        assert errors(standard, "service_list", {"id": service["id"], "status": "active"})
        assert errors(standard, "about", {"openapi_url": "/openapi.json"})
        assert errors(standard, "page", {"total_items": None})


def test_the_vendored_schemas_are_the_upstream_files() -> None:
    """Each file (gunzipped) has the SHA-256 its README records for the upstream file."""
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    listed = 0
    for section in readme.split("\n## `")[1:]:
        folder = section.split("/`", 1)[0]
        for name, digest in re.findall(r"^\| (\S+) \| \S+ \| ([0-9a-f]{64}) \|$", section, re.M):
            raw = (DATA / folder / name).read_bytes()
            if name.endswith(".gz"):
                raw = gzip.decompress(raw)
            assert hashlib.sha256(raw).hexdigest() == digest, (folder, name)
            listed += 1
    assert listed == 18
