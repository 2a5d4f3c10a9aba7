"""The filters HSDS 3.0 and Open Referral UK list for ``/hsds``, each asserted on the set it
returns; parameters a route does not implement are a 400 problem, never ignored. SQLite and
PostgreSQL."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from citizen_services.application import hsds

from .test_catalogue_search import published

LEISURE = "Bletchley Leisure Centre, Princes Way, Bletchley MK2 2HQ"
LIBRARY = "Central Library, 555 Silbury Boulevard, Milton Keynes MK9 3HL"
OLNEY = "Olney Centre, High Street, Olney MK46 4EF"


@pytest.fixture
def catalogue(client: TestClient) -> dict[str, Any]:
    swim = published(
        client,
        name="Book a swim",
        eligibility="Anyone aged 8 or over; children under 8 with an adult.",
        department="Community Facilities",
        groups=["Leisure"],
        lgsl_codes=[1088],
        opening_hours="Monday to Friday 7am to 10pm; Saturday 8am to 6pm",
        channels={"venue": LEISURE},
    )
    card = published(
        client,
        name="Get a library card",
        eligibility="Residents of Milton Keynes.",
        department="Libraries and Culture",
        groups=["Libraries"],
        opening_hours="Tuesday to Saturday 9:30am to 5pm",
        channels={"venue": LIBRARY},
    )
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    tax = published(
        client,
        name="Pay council tax online",
        lgsl_codes=[57],
        opening_hours="Online 24 hours a day",
        channels={"online_url": "https://www.milton-keynes.gov.uk/council-tax"},
    )
    market = published(
        client,
        name="Apply for a market stall",
        eligibility="Traders aged 18 to 99.",
        department="Licensing",
        groups=["Licensing"],
        channels={"venue": OLNEY},
    )
    return {"swim": swim, "card": card, "tax": tax, "market": market, "between": between}


def names(client: TestClient, url: str, **params: Any) -> list[str]:
    r = client.get(url, params=params)
    assert r.status_code == 200, (params, r.text)
    body = r.json()
    assert body["total_items"] == len(body["contents"])
    return [(item.get("service") or item)["name"] for item in body["contents"]]


ALL = ["Apply for a market stall", "Book a swim", "Get a library card", "Pay council tax online"]
AT_VENUES = ["Apply for a market stall", "Book a swim", "Get a library card"]


def test_taxonomy_and_organization(catalogue: dict[str, Any], anonymous_client: TestClient) -> None:
    c = anonymous_client
    for url in ("/hsds/services", "/hsds/service_at_locations"):
        venues_only = url.endswith("locations")
        lgsl = names(c, url, taxonomy_id=str(hsds.LGSL_TAXONOMY_ID))
        assert lgsl == (
            ["Book a swim"] if venues_only else ["Book a swim", "Pay council tax online"]
        )
        assert names(c, url, taxonomy_id=str(hsds.GROUP_TAXONOMY_ID)) == AT_VENUES
        assert names(c, url, taxonomy_id=str(uuid.uuid4())) == []
        assert names(c, url, taxonomy_id="nonsense") == []
        libraries = str(hsds.organization_id("Libraries and Culture"))
        assert names(c, url, organization_id=libraries) == ["Get a library card"]
        council = names(c, url, organization_id=str(hsds.COUNCIL_ID))
        assert council == ([] if venues_only else ["Pay council tax online"])
        assert names(c, url, organization_id=str(uuid.uuid4())) == []
        both = names(c, url, organization_id=libraries, taxonomy_id=str(hsds.LGSL_TAXONOMY_ID))
        assert both == []
    assert names(c, "/hsds/services", taxonomy_term_id=str(hsds.lgsl_term_id(57))) == [
        "Pay council tax online"
    ]


def test_modified_after_and_minimal(
    catalogue: dict[str, Any], anonymous_client: TestClient
) -> None:
    c = anonymous_client
    after = catalogue["between"].isoformat()
    assert names(c, "/hsds/services", modified_after=after) == [
        "Apply for a market stall",
        "Pay council tax online",
    ]
    assert names(c, "/hsds/service_at_locations", modified_after=after) == [
        "Apply for a market stall"
    ]
    assert names(c, "/hsds/services", modified_after="2000-01-01T00:00:00Z") == ALL
    assert names(c, "/hsds/services", modified_after="2999-01-01") == []
    minimal = c.get("/hsds/services", params={"minimal": "true", "per_page": 2}).json()
    assert minimal["total_items"] == 4 and minimal["total_pages"] == 2
    assert [set(s) for s in minimal["contents"]] == [{"id", "name", "status", "last_modified"}] * 2


def test_postcode_and_proximity(catalogue: dict[str, Any], anonymous_client: TestClient) -> None:
    c = anonymous_client
    for url in ("/hsds/services", "/hsds/service_at_locations"):
        everything = AT_VENUES if url.endswith("locations") else ALL
        # the council's services cover Milton Keynes: a postcode there finds them all
        assert names(c, url, postcode="MK9 3EP") == everything
        assert names(c, url, postcode="mk46") == everything
        # outside the council's area (Cranfield; London): none
        assert names(c, url, postcode="MK43 0AL") == []
        assert names(c, url, postcode="SW1A 1AA") == []
        # with proximity (metres from the district's centre): venues that near
        assert names(c, url, postcode="MK9 3EP", proximity=2000) == ["Get a library card"]
        assert names(c, url, postcode="MK93EP", proximity=8000) == [
            "Book a swim",
            "Get a library card",
        ]
        assert names(c, url, postcode="MK9", proximity=20000) == AT_VENUES
        assert names(c, url, postcode="MK46 4EF", proximity=2000) == ["Apply for a market stall"]
    location = c.get(f"/hsds/locations/{hsds.location_id(LIBRARY)}").json()
    assert (location["latitude"], location["longitude"]) == (52.0406, -0.7594)  # MK9's centre


def test_day_and_times(catalogue: dict[str, Any], anonymous_client: TestClient) -> None:
    c = anonymous_client
    url = "/hsds/services"
    assert names(c, url, day="SA") == [
        "Book a swim",
        "Get a library card",
        "Pay council tax online",
    ]
    assert names(c, url, day="monday") == ["Book a swim", "Pay council tax online"]
    assert names(c, url, day="SU") == ["Pay council tax online"]
    # start_time: opens at or after; end_time: closes at or before (on the same schedule)
    assert names(c, url, start_time="09:00") == ["Get a library card"]
    assert names(c, url, end_time="18:00") == ["Book a swim", "Get a library card"]
    assert names(c, url, day="SA", end_time="18:00") == ["Book a swim", "Get a library card"]
    assert names(c, url, day="MO", end_time="18:00") == []
    assert names(c, url, day="TU", start_time="09:00", end_time="17:00") == ["Get a library card"]
    assert names(c, url, start_time="09:00:00+01:00", end_time="17:00Z") == ["Get a library card"]
    assert names(c, "/hsds/service_at_locations", day="SU") == []
    swim = c.get(f"/hsds/services/{catalogue['swim']['id']}").json()
    assert [(s["byday"], s["opens_at"], s["closes_at"]) for s in swim["schedules"]] == [
        ("MO,TU,WE,TH,FR", "07:00", "22:00"),
        ("SA", "08:00", "18:00"),
    ]


def test_organizations_full_and_terms(
    catalogue: dict[str, Any], anonymous_client: TestClient
) -> None:
    c = anonymous_client
    plain = c.get("/hsds/organizations").json()["contents"]
    assert all("services" not in org for org in plain)
    full = {
        o["name"]: o
        for o in c.get("/hsds/organizations", params={"full": "true"}).json()["contents"]
    }
    assert [s["name"] for s in full["Milton Keynes City Council"]["services"]] == [
        "Pay council tax online"
    ]
    [card] = full["Libraries and Culture"]["services"]
    assert card["name"] == "Get a library card" and "contacts" not in card
    nested = c.get("/hsds/organizations", params={"full_service": "true"}).json()["contents"]
    by_name = {o["name"]: o for o in nested}
    [card] = by_name["Libraries and Culture"]["services"]
    assert card["service_at_locations"][0]["location"]["name"] == "Central Library"
    one = c.get(f"/hsds/organizations/{hsds.organization_id('Community Facilities')}").json()
    assert [s["name"] for s in one["services"]] == ["Book a swim"]
    assert "schedules" not in one["services"][0]
    one = c.get(
        f"/hsds/organizations/{hsds.organization_id('Community Facilities')}",
        params={"full_service": "true"},
    ).json()
    assert one["services"][0]["schedules"][1]["byday"] == "SA"

    terms = c.get("/hsds/taxonomy_terms").json()["total_items"]
    assert terms == 5  # LGSL 57, LGSL 1088, Leisure, Libraries, Licensing
    assert c.get("/hsds/taxonomy_terms", params={"top_only": "true"}).json()["total_items"] == 5
    a_term = str(hsds.lgsl_term_id(57))
    assert c.get("/hsds/taxonomy_terms", params={"parent_id": a_term}).json()["contents"] == []
    assert [
        t["name"] for t in c.get("/hsds/taxonomies", params={"search": "LGSL"}).json()["contents"]
    ] == ["esdStandards LGSL"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/hsds/services", {"age": "5"}),
        ("/hsds/service_at_locations", {"minimal": "true"}),
        ("/hsds/services", {"format": "ndjson"}),
        ("/hsds/services", {"sort": "name"}),
        ("/hsds/services", {"full_service": "true"}),
        ("/hsds/organizations", {"taxonomy_id": "x"}),
        ("/hsds/locations", {"full": "true"}),
        ("/hsds/taxonomies", {"taxonomy_id": "x"}),
        ("/hsds/taxonomy_terms", {"organization_id": "x"}),
        ("/hsds/services/6f4a4c88-0d62-4d0a-9d4e-2d0f5f8a8d7b", {"full": "true"}),
        ("/hsds", {"x": "1"}),
    ],
)
def test_an_unsupported_parameter_is_a_400_problem(
    anonymous_client: TestClient, path: str, params: dict[str, str]
) -> None:
    r = anonymous_client.get(path, params=params)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 400 and next(iter(params)) in body["detail"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"day": "Funday"}, 400),
        ({"postcode": "ZZZ 999"}, 400),
        ({"postcode": "not a postcode at all"}, 422),
        ({"proximity": "1000"}, 400),
        ({"postcode": "MK9", "proximity": "-1"}, 422),
        ({"postcode": "MK9", "proximity": "far"}, 422),
        ({"modified_after": "yesterday"}, 400),
        ({"modified_after": "0.0"}, 400),  # a number is not a date-time (pydantic took it)
        ({"start_time": "25:00"}, 422),
        ({"minimal": "maybe"}, 422),
        ({"minimum_age": "-1"}, 422),
        ({"maximum_age": "old"}, 422),
    ],
)
def test_a_bad_filter_value_is_a_4xx_problem(
    anonymous_client: TestClient, params: dict[str, str], status: int
) -> None:
    r = anonymous_client.get("/hsds/services", params=params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_ages(client: TestClient, anonymous_client: TestClient) -> None:
    for name, eligibility in (
        ("Find a youth club", "Young people aged 11 to 19 (up to 25 with a disability)."),
        ("Apply for a primary school place", "Children aged 4 to 11."),
        ("Ask for a care assessment", "Adults aged 18 or over."),
        ("Book a short break", "Disabled children under 18, and their families."),
        ("Pay a parking fine", "Anyone with a penalty charge notice."),
    ):
        published(client, name=name, eligibility=eligibility, channels={"venue": LIBRARY})
    c = anonymous_client
    for url in ("/hsds/services", "/hsds/service_at_locations"):
        # minimum_age: minimum at least this; maximum_age: maximum at most this
        assert names(c, url, minimum_age=11) == ["Ask for a care assessment", "Find a youth club"]
        assert names(c, url, minimum_age=4.5) == [
            "Ask for a care assessment",
            "Find a youth club",
        ]
        assert names(c, url, minimum_age=0) == [
            "Apply for a primary school place",
            "Ask for a care assessment",
            "Find a youth club",
        ]
        assert names(c, url, maximum_age=17) == [
            "Apply for a primary school place",
            "Book a short break",
        ]
        assert names(c, url, minimum_age=4, maximum_age=11) == ["Apply for a primary school place"]
        assert names(c, url, maximum_age=3) == []
    youth = c.get("/hsds/services", params={"search": "youth club"}).json()["contents"][0]
    assert (youth["minimum_age"], youth["maximum_age"]) == (11, 19)
    fine = c.get("/hsds/services", params={"search": "parking fine"}).json()["contents"][0]
    assert "minimum_age" not in fine and "maximum_age" not in fine
