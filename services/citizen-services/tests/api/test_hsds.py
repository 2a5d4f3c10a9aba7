"""The Open Referral UK / HSDS read API (``/hsds``): page wrapper, nested records, derived
organizations, locations and taxonomies, filters, caching, problems; SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from citizen_services.application import hsds

from .test_catalogue_search import published

VENUE = "Central Library, 555 Silbury Boulevard, Milton Keynes MK9 3HL"
PAGE_KEYS = {
    "total_items",
    "total_pages",
    "page_number",
    "size",
    "first_page",
    "last_page",
    "empty",
    "contents",
}


@pytest.fixture
def catalogue(client: TestClient) -> dict[str, dict[str, Any]]:
    pothole = published(
        client,
        name="Report a pothole",
        description="Holes in roads",
        keywords=["potholes"],
        groups=["Roads and transport"],
        lgsl_codes=[557],
        department="Highways and Transport",
        fees="Free",
        eligibility="Anyone",
        opening_hours="Online 24 hours a day",
        channels={
            "online_url": "https://www.milton-keynes.gov.uk/potholes",
            "phone": "01908 252570",
            "email": "highways@milton-keynes.gov.uk",
        },
    )
    library = published(
        client,
        name="Join the library",
        description="Borrow books for free",
        keywords=["books"],
        groups=["Libraries"],
        lgsl_codes=[438],
        department="Libraries and Culture",
        channels={"venue": VENUE, "phone": "01908 254050", "sms": "07781 123456"},
    )
    council_tax = published(
        client,
        name="Pay your council tax",
        description="Pay your bill",
        groups=["Council tax and benefits"],
        lgsl_codes=[57],
        channels={"online_url": "https://www.milton-keynes.gov.uk/council-tax"},
    )
    draft = client.post(
        "/api/v1/services",
        json={
            "name": "Secret draft pothole",
            "keywords": ["potholes"],
            "department": "Secret Unit",
            "lgsl_codes": [99],
            "groups": ["Hidden"],
            "channels": {"venue": "Hidden Hall, MK1 1AA"},
        },
    )
    assert draft.status_code == 201
    suspended = published(
        client, name="Suspended library service", groups=["Libraries"], channels={"venue": VENUE}
    )
    r = client.post(f"/api/v1/services/{suspended['id']}/suspend", json={"reason": "closed"})
    assert r.status_code == 200
    return {
        "pothole": pothole,
        "library": library,
        "council_tax": council_tax,
        "draft": draft.json(),
        "suspended": suspended,
    }


def ok(r: Any) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def names(body: dict[str, Any]) -> list[str]:
    return [item["name"] for item in body["contents"]]


def problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()  # type: ignore[no-any-return]


def test_services_page_filters_and_caching(
    catalogue: dict[str, dict[str, Any]], anonymous_client: TestClient
) -> None:
    url = "/hsds/services"
    body = ok(anonymous_client.get(url))
    assert set(body) == PAGE_KEYS
    assert names(body) == ["Join the library", "Pay your council tax", "Report a pothole"]
    assert body["total_items"] == 3 and body["total_pages"] == 1 and body["size"] == 3
    assert body["first_page"] and body["last_page"] and not body["empty"]
    assert all(s["status"] == "active" for s in body["contents"])

    first = anonymous_client.get(url, params={"per_page": 2})
    assert ok(first)["total_pages"] == 2 and not first.json()["last_page"]
    second = ok(anonymous_client.get(url, params={"per_page": 2, "page": 2}))
    assert names(second) == ["Report a pothole"]
    assert second["last_page"] and not second["first_page"] and second["page_number"] == 2
    beyond = ok(anonymous_client.get(url, params={"page": 9}))
    assert beyond["empty"] and beyond["contents"] == [] and beyond["total_items"] == 3

    assert first.headers["cache-control"] == "public, max-age=60"
    etag = first.headers["etag"]
    again = anonymous_client.get(url, params={"per_page": 2}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag

    assert names(ok(anonymous_client.get(url, params={"text": "pothole"}))) == ["Report a pothole"]
    assert names(ok(anonymous_client.get(url, params={"search": "books"}))) == ["Join the library"]
    lgsl = str(hsds.lgsl_term_id(438))
    assert names(ok(anonymous_client.get(url, params={"taxonomy_term_id": lgsl}))) == [
        "Join the library"
    ]
    group = str(hsds.group_term_id("Council tax and benefits"))
    assert names(ok(anonymous_client.get(url, params={"taxonomy_term_id": group}))) == [
        "Pay your council tax"
    ]
    hidden = str(hsds.lgsl_term_id(99))  # only a draft has it
    assert ok(anonymous_client.get(url, params={"taxonomy_term_id": hidden}))["empty"]
    assert ok(anonymous_client.get(url, params={"taxonomy_term_id": "nonsense"}))["empty"]

    full = ok(anonymous_client.get(url, params={"full": "true", "text": "pothole"}))
    assert full["contents"][0]["organization"]["name"] == "Highways and Transport"


@pytest.mark.parametrize(
    "params",
    [
        {"page": 0},
        {"page": "x"},
        {"per_page": 0},
        {"per_page": 201},
        {"page": 10**12},
        {"per_page": "1.5"},
    ],
)
def test_bad_paging_is_a_422_problem(
    catalogue: dict[str, dict[str, Any]], anonymous_client: TestClient, params: dict[str, Any]
) -> None:
    for url in (
        "/hsds/services",
        "/hsds/organizations",
        "/hsds/locations",
        "/hsds/service_at_locations",
        "/hsds/taxonomies",
        "/hsds/taxonomy_terms",
    ):
        problem(anonymous_client.get(url, params=params), 422)


def test_odd_filters_match_nothing_rather_than_fail(
    catalogue: dict[str, dict[str, Any]], anonymous_client: TestClient
) -> None:
    for url in ("/hsds/services", "/hsds/service_at_locations"):
        for term in ("' OR 1=1 --", "1; DROP TABLE catalogue_service", "\x00", "%"):
            body = ok(anonymous_client.get(url, params={"taxonomy_term_id": term}))
            assert body["total_items"] == 0 and body["contents"] == []
        problem(anonymous_client.get(url, params={"taxonomy_term_id": "x" * 101}), 422)
        problem(anonymous_client.get(url, params={"text": "x" * 201}), 422)
    everything = ok(anonymous_client.get("/hsds/services"))
    for text in ("!!! ???", "\x00", "'\""):  # no words: no text filter
        assert ok(anonymous_client.get("/hsds/services", params={"text": text})) == everything
    for garbage in ("garbage", '"", W/, ,,', "x" * 4000):
        r = anonymous_client.get("/hsds/services", headers={"If-None-Match": garbage})
        assert r.status_code == 200 and r.json() == everything


def test_full_service(catalogue: dict[str, dict[str, Any]], anonymous_client: TestClient) -> None:
    pothole = ok(anonymous_client.get(f"/hsds/services/{catalogue['pothole']['id']}"))
    assert pothole["name"] == "Report a pothole" and pothole["status"] == "active"
    assert pothole["url"] == "https://www.milton-keynes.gov.uk/potholes"
    assert pothole["email"] == "highways@milton-keynes.gov.uk"
    assert pothole["fees_description"] == "Free"
    assert pothole["eligibility_description"] == "Anyone"
    org = pothole["organization"]
    assert (
        org["id"]
        == pothole["organization_id"]
        == str(uuid.uuid5(hsds.NAMESPACE, "organization:Highways and Transport"))
    )
    assert org["parent_organization_id"] == str(hsds.COUNCIL_ID)
    [contact] = pothole["contacts"]
    assert contact["email"] == "highways@milton-keynes.gov.uk"
    assert [p["number"] for p in contact["phones"]] == ["01908 252570"]
    assert pothole["schedules"][0]["description"] == "Online 24 hours a day"
    assert pothole["service_at_locations"] == []
    terms = {a["taxonomy_term"]["name"]: a for a in pothole["attributes"]}
    assert set(terms) == {"LGSL 557", "Roads and transport"}
    lgsl = terms["LGSL 557"]["taxonomy_term"]
    assert lgsl["code"] == "557" and lgsl["taxonomy"] == "esdStandards LGSL"
    assert lgsl["term_uri"] == "http://id.esd.org.uk/service/557"
    assert terms["LGSL 557"]["link_id"] == pothole["id"]

    library = ok(anonymous_client.get(f"/hsds/services/{catalogue['library']['id']}"))
    assert "url" not in library and "email" not in library  # absent, never null
    assert {(p["type"], p["number"]) for p in library["contacts"][0]["phones"]} == {
        ("voice", "01908 254050"),
        ("text", "07781 123456"),
    }
    [at] = library["service_at_locations"]
    location = at["location"]
    assert at["location_id"] == location["id"] == str(hsds.location_id(VENUE))
    assert location["name"] == "Central Library" and location["location_type"] == "physical"
    [address] = location["addresses"]
    assert (address["address_1"], address["city"], address["postal_code"], address["country"]) == (
        "555 Silbury Boulevard",
        "Milton Keynes",
        "MK9 3HL",
        "GB",
    )

    council_tax = ok(anonymous_client.get(f"/hsds/services/{catalogue['council_tax']['id']}"))
    assert council_tax["organization_id"] == str(hsds.COUNCIL_ID)
    assert council_tax["organization"]["name"] == "Milton Keynes City Council"
    assert council_tax["contacts"] == []


def test_unknown_and_unpublished_ids_are_404_problems(
    catalogue: dict[str, dict[str, Any]], anonymous_client: TestClient
) -> None:
    for path in (
        f"/hsds/services/{uuid.uuid4()}",
        "/hsds/services/not-a-uuid",
        f"/hsds/services/{catalogue['draft']['id']}",
        f"/hsds/services/{catalogue['suspended']['id']}",
        f"/hsds/organizations/{uuid.uuid4()}",
        "/hsds/organizations/x",
        f"/hsds/organizations/{hsds.organization_id('Secret Unit')}",
        f"/hsds/locations/{uuid.uuid4()}",
        f"/hsds/locations/{hsds.location_id('Hidden Hall, MK1 1AA')}",
        f"/hsds/service_at_locations/{uuid.uuid4()}",
        "/hsds/service_at_locations/zzz",
        f"/hsds/taxonomies/{uuid.uuid4()}",
        "/hsds/taxonomies/lgsl",
        f"/hsds/taxonomy_terms/{uuid.uuid4()}",
        f"/hsds/taxonomy_terms/{hsds.lgsl_term_id(99)}",
    ):
        body = problem(anonymous_client.get(path), 404)
        assert body["status"] == 404, path


def test_organizations_locations_and_services_at_locations(
    catalogue: dict[str, dict[str, Any]], anonymous_client: TestClient
) -> None:
    orgs = ok(anonymous_client.get("/hsds/organizations"))
    assert names(orgs) == [
        "Milton Keynes City Council",
        "Highways and Transport",
        "Libraries and Culture",
    ]
    assert orgs["contents"][0]["id"] == str(hsds.COUNCIL_ID)
    assert names(ok(anonymous_client.get("/hsds/organizations", params={"text": "librar"}))) == [
        "Libraries and Culture"
    ]
    dept = ok(
        anonymous_client.get(f"/hsds/organizations/{hsds.organization_id('Libraries and Culture')}")
    )
    assert dept["parent_organization_id"] == str(hsds.COUNCIL_ID)
    assert "parent_organization_id" not in ok(
        anonymous_client.get(f"/hsds/organizations/{hsds.COUNCIL_ID}")
    )

    locations = ok(anonymous_client.get("/hsds/locations"))
    assert names(locations) == ["Central Library"]  # not the draft's hall
    loc_id = locations["contents"][0]["id"]
    assert ok(anonymous_client.get(f"/hsds/locations/{loc_id}"))["name"] == "Central Library"

    sals = ok(anonymous_client.get("/hsds/service_at_locations"))
    assert sals["total_items"] == 1
    [sal] = sals["contents"]
    assert sal["service_id"] == catalogue["library"]["id"] and sal["location_id"] == loc_id
    assert sal["service"]["name"] == "Join the library"
    # a list item: the location, the service's one-to-one fields and its organization
    assert sal["location"]["id"] == loc_id
    assert sal["service"]["organization"]["name"] == "Libraries and Culture"
    assert "contacts" not in sal["service"] and "service_at_locations" not in sal["service"]
    # the record: a service at a location, fully nested (compiled/service_at_location.json)
    one = ok(anonymous_client.get(f"/hsds/service_at_locations/{sal['id']}"))
    assert (one["id"], one["service_id"], one["location_id"]) == (
        sal["id"],
        catalogue["library"]["id"],
        loc_id,
    )
    assert one["location"]["addresses"][0]["postal_code"] == "MK9 3HL"
    assert one["service"]["name"] == "Join the library" and "status" not in one
    assert [p["type"] for p in one["service"]["contacts"][0]["phones"]] == ["voice", "text"]
    assert {a["taxonomy_term"]["name"] for a in one["service"]["attributes"]} == {
        "LGSL 438",
        "Libraries",
    }
    assert "service_at_locations" not in one["service"]
    assert (one["contacts"], one["phones"], one["schedules"]) == ([], [], [])
    full = ok(anonymous_client.get("/hsds/service_at_locations", params={"full": "true"}))
    assert full["contents"] == [one]
    assert ok(anonymous_client.get("/hsds/service_at_locations", params={"text": "pothole"}))[
        "empty"
    ]


def test_taxonomies_and_terms(
    catalogue: dict[str, dict[str, Any]], anonymous_client: TestClient
) -> None:
    taxonomies = ok(anonymous_client.get("/hsds/taxonomies"))
    assert names(taxonomies) == ["esdStandards LGSL", "Milton Keynes service groups"]
    lgsl_taxonomy = taxonomies["contents"][0]
    assert ok(anonymous_client.get(f"/hsds/taxonomies/{lgsl_taxonomy['id']}")) == lgsl_taxonomy

    terms = ok(anonymous_client.get("/hsds/taxonomy_terms"))
    assert names(terms) == [
        "LGSL 57",
        "LGSL 438",
        "LGSL 557",
        "Council tax and benefits",
        "Libraries",
        "Roads and transport",
    ]  # not the draft's
    only_lgsl = ok(
        anonymous_client.get("/hsds/taxonomy_terms", params={"taxonomy_id": lgsl_taxonomy["id"]})
    )
    assert [t["code"] for t in only_lgsl["contents"]] == ["57", "438", "557"]
    assert names(ok(anonymous_client.get("/hsds/taxonomy_terms", params={"text": "roads"}))) == [
        "Roads and transport"
    ]
    term = ok(anonymous_client.get(f"/hsds/taxonomy_terms/{hsds.group_term_id('Libraries')}"))
    assert term["taxonomy_id"] == str(hsds.GROUP_TAXONOMY_ID)
    assert ok(anonymous_client.get("/hsds"))["version"] == "3.0"


@pytest.fixture
def statements(anonymous_client: TestClient) -> Iterator[list[str]]:
    runtime = anonymous_client.app.state.runtime  # type: ignore[attr-defined]
    seen: list[str] = []
    engines = {runtime.database.engine.sync_engine, runtime.database.read_engine.sync_engine}

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", count)
    yield seen
    for engine in engines:
        sa.event.remove(engine, "before_cursor_execute", count)


def test_no_query_per_record(
    client: TestClient, anonymous_client: TestClient, statements: list[str]
) -> None:
    for i in range(12):
        published(
            client,
            name=f"Service {i:02d}",
            groups=["Libraries"],
            lgsl_codes=[438],
            department=f"Department {i % 3}",
            channels={"venue": VENUE},
        )
    term = str(hsds.lgsl_term_id(438))
    for url in (
        "/hsds/services?full=true",
        f"/hsds/services?taxonomy_term_id={term}",
        "/hsds/service_at_locations",
        "/hsds/organizations",
        "/hsds/taxonomy_terms",
    ):
        statements.clear()
        assert ok(anonymous_client.get(url))["total_items"] >= 2
        assert len(statements) <= 3, (url, statements)


def test_about_names_an_absolute_openapi_url(anonymous_client: TestClient) -> None:
    assert ok(anonymous_client.get("/hsds"))["openapi_url"] == "http://testserver/openapi.json"
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.gov.uk"}
    about = ok(anonymous_client.get("/hsds", headers=forwarded))
    assert about["openapi_url"] == "https://api.example.gov.uk/openapi.json"
    odd = {"X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "x/<y>"}
    assert ok(anonymous_client.get("/hsds", headers=odd))["openapi_url"] == (
        "http://testserver/openapi.json"
    )


def test_any_origin_may_read_hsds(
    catalogue: dict[str, dict[str, Any]], anonymous_client: TestClient
) -> None:
    origin = {"Origin": "https://directory.example.org"}
    for path in ("/hsds", "/hsds/services", f"/hsds/services/{uuid.uuid4()}"):
        r = anonymous_client.get(path, headers=origin)
        assert r.headers["access-control-allow-origin"] == "*", path
        assert "ETag" in r.headers["access-control-expose-headers"]
        assert "access-control-allow-credentials" not in r.headers
    preflight = anonymous_client.options(
        "/hsds/services",
        headers={
            **origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "if-none-match, x-request-id",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-methods"] == "GET, HEAD, OPTIONS"
    assert preflight.headers["access-control-allow-headers"] == "if-none-match, x-request-id"
    # only /hsds: the rest of the service is not opened to every origin
    r = anonymous_client.get("/api/v1/services", headers=origin)
    assert "access-control-allow-origin" not in r.headers
    r = anonymous_client.get("/hsdsx", headers=origin)
    assert "access-control-allow-origin" not in r.headers
