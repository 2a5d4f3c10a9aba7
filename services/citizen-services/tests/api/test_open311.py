"""Open311 GeoReport v2 (``/open311/v2``): every endpoint in XML and JSON, the filters, the
errors in Open311's shape (never problem+json), submissions through the same command as
the JSON API, and no personal data in anything it returns or logs."""

from __future__ import annotations

import json
import logging
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import col

from citizen_services.persistence.tables import ServiceRequest
from servicekit.testing import CITIZEN, identity_headers
from servicekit.uow import UnitOfWork

from .test_catalogue_api import outbox_rows

BASE = "/open311/v2"
XML = "text/xml; charset=utf-8"
#: The client's default identity is staff; an unverifiable assertion makes a call anonymous.
ANONYMOUS = {"x-mk-identity": "not-a-valid-assertion"}


def partner(scope: str = "open311") -> dict[str, str]:
    """An Open311 partner's assertion, as the gateway forwards it (fresh: they last 60 s)."""
    return identity_headers("apikey:fms", "partner", scopes=(scope,))


FLY_TIPPING: dict[str, Any] = {
    "name": "Report fly-tipping",
    "service_code": "fly-tipping",
    "description": "Dumped waste",
    "keywords": ["dumping", "rubbish"],
    "groups": ["Streets", "Environment"],
    "attributes": [
        {
            "code": "waste_type",
            "datatype": "multivaluelist",
            "required": True,
            "order": 2,
            "description": "What was dumped?",
            "values": [
                {"key": "furniture", "name": "Furniture"},
                {"key": "tyres", "name": "Tyres & wheels"},
            ],
        },
        {
            "code": "bags",
            "datatype": "number",
            "order": 3,
            "description": "How many bags?",
            "datatype_description": "A whole number",
        },
        {
            "code": "size",
            "datatype": "singlevaluelist",
            "order": 1,
            "description": "How big?",
            "values": [{"key": "small", "name": "Small"}, {"key": "large", "name": "Large"}],
        },
    ],
}
FMS_FORM: list[tuple[str, str]] = [
    ("api_key", "ignored-here"),
    ("jurisdiction_id", "milton-keynes"),
    ("service_code", "fly-tipping"),
    ("lat", "52.0406"),
    ("long", "-0.7594"),
    ("email", "resident@example.com"),
    ("first_name", "Ada"),
    ("last_name", "Lovelace"),
    ("phone", "01908 123456"),
    ("description", "A sofa <and> tyres & more by the redway"),
    ("media_url", "https://photos.example/p/1.jpeg"),
    ("attribute[waste_type][]", "furniture"),
    ("attribute[waste_type][]", "tyres"),
    ("attribute[bags]", "3"),
    ("attribute[size]", "large"),
]
PERSONAL = ("resident@example.com", "Ada", "Lovelace", "01908 123456")


def publish(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    service = client.post("/api/v1/services", json=body)
    assert service.status_code == 201, service.text
    assert client.post(f"/api/v1/services/{service.json()['id']}/publish").status_code == 200
    return dict(service.json())


@pytest.fixture
def catalogue(client: TestClient) -> TestClient:
    """fly-tipping (reportable), pay-council-tax (published, takes no reports) and a draft."""
    publish(client, FLY_TIPPING)
    publish(client, {"name": "Pay council tax"})
    draft = {**FLY_TIPPING, "name": "Draft thing", "service_code": "draft-thing"}
    assert client.post("/api/v1/services", json=draft).status_code == 201
    return client


def post(
    client: TestClient,
    form: list[tuple[str, str]],
    fmt: str = "xml",
    headers: dict[str, str] | None = None,
) -> Any:
    return client.post(
        f"{BASE}/requests.{fmt}",
        content=urlencode(form).encode(),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            **(partner() if headers is None else headers),
        },
    )


def xml_errors(response: Any) -> list[tuple[str, str]]:
    assert response.headers["content-type"] == XML, response.text
    root = ET.fromstring(response.content)
    assert root.tag == "errors"
    return [
        (e.findtext("code") or "", e.findtext("description") or "") for e in root.findall("error")
    ]


def json_errors(response: Any) -> list[dict[str, Any]]:
    assert response.headers["content-type"] == "application/json", response.text
    body = response.json()
    assert isinstance(body, list) and all(set(e) == {"code", "description"} for e in body)
    return body


def requests_in_db(client: TestClient) -> list[ServiceRequest]:
    database = client.app.state.runtime.database  # type: ignore[attr-defined]

    async def read() -> list[ServiceRequest]:
        async with database.session() as db:
            return list((await db.execute(sa.select(ServiceRequest))).scalars().all())

    return client.portal.call(read)  # type: ignore[union-attr]


def backdate(client: TestClient, request_id: str, days: int) -> None:
    database = client.app.state.runtime.database  # type: ignore[attr-defined]
    when = datetime.now(UTC) - timedelta(days=days)

    async def write() -> None:
        async with UnitOfWork(database, source="test") as uow:
            await uow.db.execute(
                sa.update(ServiceRequest)
                .where(col(ServiceRequest.id) == uuid.UUID(request_id))
                .values(created_at=when, updated_at=when)
            )

    client.portal.call(write)  # type: ignore[union-attr]


# -- discovery and services ---------------------------------------------------------------


def test_discovery_in_both_formats(anonymous_client: TestClient) -> None:
    r = anonymous_client.get(f"{BASE}/discovery.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    [endpoint] = r.json()["endpoints"]
    assert endpoint["url"].endswith("/open311/v2")
    assert endpoint["formats"] == ["text/xml", "application/json"]
    r = anonymous_client.get(
        f"{BASE}/discovery.xml",
        headers={"x-forwarded-host": "api.mk.example", "x-forwarded-proto": "https"},
    )
    assert r.status_code == 200 and r.headers["content-type"] == XML
    root = ET.fromstring(r.content)
    assert root.tag == "discovery"
    assert root.findtext("endpoints/endpoint/url") == "https://api.mk.example/open311/v2"
    assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == [
        "text/xml",
        "application/json",
    ]


def test_services_list_only_reportable_published(catalogue: TestClient) -> None:
    r = catalogue.get(f"{BASE}/services.json")
    assert r.status_code == 200, r.text
    assert r.json() == [
        {
            "service_code": "fly-tipping",
            "service_name": "Report fly-tipping",
            "description": "Dumped waste",
            "metadata": True,
            "type": "realtime",
            "keywords": "dumping,rubbish",
            "group": "Streets",
            "groups": ["Streets", "Environment"],
        }
    ]
    r = catalogue.get(f"{BASE}/services.xml")
    assert r.status_code == 200 and r.headers["content-type"] == XML
    root = ET.fromstring(r.content)
    [service] = root.findall("service")
    assert root.tag == "services" and service.findtext("service_code") == "fly-tipping"
    assert service.findtext("metadata") == "true" and service.findtext("type") == "realtime"


def test_service_definition(catalogue: TestClient) -> None:
    r = catalogue.get(f"{BASE}/services/fly-tipping.json")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["service_code"] == "fly-tipping"
    assert [a["code"] for a in body["attributes"]] == ["size", "waste_type", "bags"]
    waste = body["attributes"][1]
    assert waste == {
        "variable": True,
        "code": "waste_type",
        "datatype": "multivaluelist",
        "required": True,
        "datatype_description": None,
        "order": 2,
        "description": "What was dumped?",
        "values": [
            {"key": "furniture", "name": "Furniture"},
            {"key": "tyres", "name": "Tyres & wheels"},
        ],
    }
    assert body["attributes"][2]["datatype_description"] == "A whole number"

    r = catalogue.get(f"{BASE}/services/fly-tipping.xml")
    root = ET.fromstring(r.content)
    assert root.tag == "service_definition"
    attribute = root.findall("attributes/attribute")[1]
    assert attribute.findtext("required") == "true"
    assert attribute.findtext("datatype") == "multivaluelist"
    assert [v.findtext("name") for v in attribute.findall("values/value")] == [
        "Furniture",
        "Tyres & wheels",
    ]
    assert b"Tyres &amp; wheels" in r.content  # escaped on the wire


@pytest.mark.parametrize("code", ["nope", "pay-council-tax", "draft-thing", "fly%00tipping"])
def test_unknown_service_is_404_in_both_shapes(catalogue: TestClient, code: str) -> None:
    r = catalogue.get(f"{BASE}/services/{code}.xml")
    assert r.status_code == 404
    [(status, description)] = xml_errors(r)
    assert status == "404" and description.startswith("service_code")
    r = catalogue.get(f"{BASE}/services/{code}.json")
    assert r.status_code == 404
    assert json_errors(r)[0]["code"] == 404


def test_unknown_format_and_path_are_open311_404s(anonymous_client: TestClient) -> None:
    r = anonymous_client.get(f"{BASE}/services.yaml")
    assert r.status_code == 404 and json_errors(r)[0]["description"].startswith("format")
    r = anonymous_client.get(f"{BASE}/nothing-here.xml")
    assert r.status_code == 404 and xml_errors(r)[0][0] == "404"
    r = anonymous_client.get(f"{BASE}/requests/not-an-id.json")
    assert r.status_code == 404 and json_errors(r)[0]["code"] == 404


# -- submitting ---------------------------------------------------------------------------


def test_fixmystreet_form_post_reads_back(
    catalogue: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    r = post(catalogue, FMS_FORM)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == XML
    root = ET.fromstring(r.content)
    request_id = root.findtext("request/service_request_id")
    assert root.tag == "service_requests" and request_id

    r = catalogue.get(f"{BASE}/requests/{request_id}.xml")
    assert r.status_code == 200, r.text
    [request] = ET.fromstring(r.content).findall("request")
    assert request.findtext("service_request_id") == request_id
    assert request.findtext("status") == "open"
    assert request.findtext("external_status_code") == "open"
    assert request.findtext("service_code") == "fly-tipping"
    assert request.findtext("service_name") == "Report fly-tipping"
    assert request.findtext("description") == "A sofa <and> tyres & more by the redway"
    assert request.findtext("media_url") == "https://photos.example/p/1.jpeg"
    assert float(request.findtext("lat") or 0) == 52.0406
    requested = datetime.fromisoformat(request.findtext("requested_datetime") or "")
    assert requested.utcoffset() == timedelta(0)

    listing = catalogue.get(f"{BASE}/requests.json")
    assert [i["service_request_id"] for i in listing.json()] == [request_id]
    for text in (r.text, listing.text, caplog.text):
        assert not any(p in text for p in PERSONAL)

    # same command as the JSON API: same attributes, consented contact, the outbox event
    [stored] = requests_in_db(catalogue)
    assert stored.attributes == {"waste_type": ["furniture", "tyres"], "bags": 3.0, "size": "large"}
    assert stored.contact == {
        "email": "resident@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "01908 123456",
    }
    assert stored.contact_consent is True and stored.citizen_id is None
    events = [
        row
        for row in outbox_rows(catalogue)
        if row["event_type"].split(".")[-2] == "ServiceRequestSubmitted"
    ]
    assert len(events) == 1
    assert not any(p in json.dumps(events[0]["payload"], default=str) for p in PERSONAL)

    r = catalogue.get(f"{BASE}/tokens/{request_id}.json")
    assert r.json() == [{"service_request_id": request_id, "token": request_id}]


def test_post_json_format_and_repeated_attribute_is_a_list(catalogue: TestClient) -> None:
    form = [(k, v) for k, v in FMS_FORM if not k.startswith("attribute[waste_type]")]
    form += [("attribute[waste_type]", "tyres"), ("attribute[waste_type]", "furniture")]
    r = post(catalogue, form, "json")
    assert r.status_code == 200, r.text
    [created] = r.json()
    assert set(created) == {"service_request_id", "service_notice", "account_id"}
    [stored] = requests_in_db(catalogue)
    assert stored.attributes["waste_type"] == ["tyres", "furniture"]


@pytest.mark.parametrize("who", ["anonymous", "citizen", "partner without the scope"])
def test_post_needs_an_open311_partner_or_staff(catalogue: TestClient, who: str) -> None:
    headers = {
        "anonymous": lambda: ANONYMOUS,
        "citizen": lambda: identity_headers(*CITIZEN),
        "partner without the scope": lambda: partner("events:read"),
    }[who]
    r = post(catalogue, FMS_FORM, "xml", headers=headers())
    assert r.status_code == 403
    [(status, description)] = xml_errors(r)
    assert status == "403" and description.startswith("api_key")
    r = post(catalogue, FMS_FORM, "json", headers=headers())
    assert r.status_code == 403
    [error] = json_errors(r)
    assert error["code"] == 403 and error["description"].startswith("api_key")
    assert requests_in_db(catalogue) == []


def _without(*names: str) -> list[tuple[str, str]]:
    return [
        (k, v)
        for k, v in FMS_FORM
        if k not in names and not any(k.startswith(n) for n in names if n.endswith("["))
    ]


BAD_FORMS = [
    ("description", [*_without("description"), ("description", "x" * 4001)]),
    ("service_code", [*_without("service_code"), ("service_code", "no-such-service")]),
    ("service_code", [*_without("service_code"), ("service_code", "pay-council-tax")]),
    ("service_code", [*_without("service_code"), ("service_code", "draft-thing")]),
    ("service_code", _without("service_code")),
    # An attribute the service does not define is kept (FixMyStreet sends some), within limits.
    ("attribute[colour]", [*FMS_FORM, ("attribute[colour]", "red" * 334)]),
    ("attribute[waste_type]", _without("attribute[waste_type][")),
    (
        "attribute[waste_type]",
        [*_without("attribute[waste_type]["), ("attribute[waste_type][]", "gold")],
    ),
    ("attribute[size]", [*FMS_FORM, ("attribute[size]", "small")]),
    ("attribute[bags]", [*_without("attribute[bags]"), ("attribute[bags]", "many")]),
    ("lat", [*_without("lat", "long"), ("lat", "51.5074"), ("long", "-0.1278")]),
    ("lat", [*_without("lat"), ("lat", "north")]),
    ("lat", _without("lat", "long")),
    ("long", _without("long")),
    ("email", [*_without("email"), ("email", "not an email")]),
    ("phone", [*_without("phone"), ("phone", "call me")]),
    ("description", [*_without("description"), ("description", "nul \x00 byte")]),
    ("media_url", [*_without("media_url"), ("media_url", "javascript:alert(1)")]),
]


@pytest.mark.parametrize(("field", "form"), BAD_FORMS, ids=[f for f, _ in BAD_FORMS])
def test_bad_submissions_name_the_field_and_write_nothing(
    catalogue: TestClient, field: str, form: list[tuple[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    before = len(outbox_rows(catalogue))
    r = post(catalogue, form, "xml")
    assert r.status_code == 400, r.text
    errors = xml_errors(r)
    assert all(code == "400" for code, _ in errors)
    assert any(d.startswith(field) for _, d in errors), errors
    r = post(catalogue, form, "json")
    assert r.status_code == 400
    assert any(e["description"].startswith(field) for e in json_errors(r))
    for text in (r.text, caplog.text):
        assert not any(p in text for p in PERSONAL)
    assert requests_in_db(catalogue) == []
    assert len(outbox_rows(catalogue)) == before


def test_pattern_errors_say_what_is_expected_not_the_regex(catalogue: TestClient) -> None:
    form = [*_without("email", "phone"), ("email", "not an email"), ("phone", "call me")]
    descriptions = {e["description"] for e in json_errors(post(catalogue, form, "json"))}
    assert descriptions == {
        "email: must be an email address",
        "phone: must be a phone number: digits, spaces, '+', '(', ')' and '-'",
    }


def test_post_must_be_form_encoded(catalogue: TestClient) -> None:
    r = catalogue.post(f"{BASE}/requests.json", json=dict(FMS_FORM), headers=partner())
    assert r.status_code == 400 and json_errors(r)[0]["description"].startswith("request")


# -- reading requests and updates ---------------------------------------------------------


def _submit(client: TestClient, **changes: str) -> str:
    form = [(k, changes.get(k, v)) for k, v in FMS_FORM]
    r = post(client, form, "json")
    assert r.status_code == 200, r.text
    return str(r.json()[0]["service_request_id"])


def test_request_filters_and_status_mapping(catalogue: TestClient) -> None:
    publish(catalogue, {**FLY_TIPPING, "name": "Graffiti", "service_code": "graffiti"})
    a = _submit(catalogue)
    b = _submit(catalogue, service_code="graffiti")
    c = _submit(catalogue)
    old = _submit(catalogue)
    backdate(catalogue, old, days=120)
    r = catalogue.post(f"/api/v1/service-requests/{b}/updates", json={"status": "in_progress"})
    assert r.status_code == 200
    r = catalogue.post(
        f"/api/v1/service-requests/{c}/updates",
        json={
            "status": "not_councils_responsibility",
            "note": "Private land",
            "note_visibility": "public",
        },
    )
    assert r.status_code == 200

    def ids(**params: str) -> list[str]:
        r = catalogue.get(f"{BASE}/requests.json", params=params)
        assert r.status_code == 200, r.text
        return [i["service_request_id"] for i in r.json()]

    assert set(ids()) == {a, b, c}  # the last 90 days by default
    assert set(ids(status="open")) == {a, b}
    assert ids(status="closed") == [c]
    assert set(ids(status="open,closed")) == {a, b, c}
    assert ids(service_code="graffiti") == [b]
    assert set(ids(service_code="graffiti,fly-tipping")) == {a, b, c}
    assert set(ids(service_request_id=f"{old},{a},junk")) == {old, a}
    assert old in ids(start_date=(datetime.now(UTC) - timedelta(days=200)).isoformat())
    assert ids(end_date="2000-01-01T00:00:00Z") == []
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(start_date=future) == []

    [closed] = catalogue.get(f"{BASE}/requests.json", params={"status": "closed"}).json()
    assert closed["status"] == "closed"
    assert closed["external_status_code"] == "not_councils_responsibility"
    assert closed["status_notes"] == "Private land"
    xml = ET.fromstring(catalogue.get(f"{BASE}/requests/{b}.xml").content)
    assert xml.findtext("request/status") == "open"
    assert xml.findtext("request/external_status_code") == "in_progress"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "pending"}, "status"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"end_date": "2026-13-45"}, "end_date"),
        ({"start_date": "2026-02-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}, "end_date"),
        # in UTC these fall outside years 1-9999: refused, not a 500 from the database driver
        ({"start_date": "9999-12-31T23:59:59-01:00"}, "start_date"),
        ({"end_date": "0001-01-01T00:00:00+01:00"}, "end_date"),
        # PostgreSQL refuses a NUL in a string: a code that cannot exist is a 400, not a 500
        ({"service_code": "fly-tipping,fly\x00tipping"}, "service_code"),
        (
            {"service_request_id": ",".join(str(uuid.uuid4()) for _ in range(201))},
            "service_request_id",
        ),
        ({"service_request_id": "x" * 8001}, "service_request_id"),
    ],
)
def test_bad_request_filters_are_400_in_both_shapes(
    anonymous_client: TestClient, params: dict[str, str], field: str
) -> None:
    r = anonymous_client.get(f"{BASE}/requests.xml", params=params)
    assert r.status_code == 400
    assert xml_errors(r)[0][1].startswith(field)
    r = anonymous_client.get(f"{BASE}/requests.json", params=params)
    assert r.status_code == 400
    assert json_errors(r)[0]["description"].startswith(field)


def test_service_request_updates(catalogue: TestClient) -> None:
    request_id = _submit(catalogue)
    start = datetime.now(UTC) - timedelta(seconds=5)
    catalogue.post(
        f"/api/v1/service-requests/{request_id}/updates", json={"assigned_to": "staff-9"}
    )  # internal only: not an update
    catalogue.post(
        f"/api/v1/service-requests/{request_id}/updates", json={"status": "action_scheduled"}
    )
    catalogue.post(
        f"/api/v1/service-requests/{request_id}/updates",
        json={"status": "fixed", "note": "Cleared & swept", "note_visibility": "public"},
    )
    r = catalogue.get(
        f"{BASE}/servicerequestupdates.json",
        params={
            "start_date": start.isoformat(),
            "end_date": (datetime.now(UTC) + timedelta(minutes=1)).isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    updates = r.json()
    assert [(u["status"], u["description"]) for u in updates] == [
        ("action_scheduled", ""),
        ("fixed", "Cleared & swept"),
    ]
    assert all(u["service_request_id"] == request_id for u in updates)
    assert updates[-1]["external_status_code"] == "fixed"
    assert datetime.fromisoformat(updates[-1]["updated_datetime"]).tzinfo is not None
    assert set(updates[0]) == {
        "update_id",
        "service_request_id",
        "status",
        "updated_datetime",
        "description",
        "media_url",
        "external_status_code",
    }

    r = catalogue.get(f"{BASE}/servicerequestupdates.xml")
    root = ET.fromstring(r.content)
    assert root.tag == "service_request_updates"
    assert [u.findtext("status") for u in root.findall("request_update")] == [
        "action_scheduled",
        "fixed",
    ]
    r = catalogue.get(f"{BASE}/servicerequestupdates.xml", params={"end_date": start.isoformat()})
    assert ET.fromstring(r.content).findall("request_update") == []
    for params in (
        {"start_date": "soon"},
        {"start_date": "9999-12-31T23:59:59-01:00"},
        {"start_date": "2026-02-01", "end_date": "2026-01-01"},
    ):
        r = catalogue.get(f"{BASE}/servicerequestupdates.json", params=params)
        assert r.status_code == 400, params
        assert json_errors(r)[0]["description"].startswith(list(params)[-1])


def test_openapi_documents_the_reads_not_the_post(anonymous_client: TestClient) -> None:
    paths = anonymous_client.get("/openapi.json").json()["paths"]
    open311 = {p: item for p, item in paths.items() if p.startswith(BASE)}
    assert set(open311) == {
        f"{BASE}/discovery.{{format}}",
        f"{BASE}/services.{{format}}",
        f"{BASE}/services/{{service_code}}.{{format}}",
        f"{BASE}/requests.{{format}}",
        f"{BASE}/requests/{{service_request_id}}.{{format}}",
        f"{BASE}/tokens/{{token_id}}.{{format}}",
        f"{BASE}/servicerequestupdates.{{format}}",
        f"{BASE}/media/{{media_id}}.{{extension}}",
    }
    assert all(set(item) == {"get"} for item in open311.values())
    ok = open311[f"{BASE}/requests.{{format}}"]["get"]["responses"]["200"]["content"]
    assert set(ok) == {"application/json", "text/xml"}


# -- what is public -----------------------------------------------------------------------


def test_only_public_requests_and_public_notes_are_on_open311(catalogue: TestClient) -> None:
    """A citizen's report through /api/v1 is private unless they chose public: 404 and
    absent from every list and from the updates; a note is on Open311 only if public."""
    citizen = identity_headers(*CITIZEN)
    report = {
        "service_code": "fly-tipping",
        "description": "Outside my flat, number 4",
        "address": "4 Quiet Lane, MK9 1AA",
        "attributes": {"waste_type": ["tyres"]},
    }
    private = catalogue.post("/api/v1/service-requests", json=report, headers=citizen)
    public = catalogue.post(
        "/api/v1/service-requests",
        headers=citizen,
        json={
            **report,
            "description": "On the redway",
            "address": None,
            "lat": 52.0406,
            "long": -0.7594,
            "public": True,
        },
    )
    assert private.status_code == public.status_code == 201, private.text
    hidden, shown = private.json()["id"], public.json()["id"]
    partner_made = _submit(catalogue)
    for request_id in (hidden, shown):
        for body in (
            {
                "status": "investigating",
                "note": "Safeguarding concern",
                "note_visibility": "internal",
            },
            {"note": "Referred to social care"},
            {"note": "Crew booked", "note_visibility": "public"},
        ):
            r = catalogue.post(f"/api/v1/service-requests/{request_id}/updates", json=body)
            assert r.status_code == 200, r.text

    for fmt in ("json", "xml"):
        for path in (f"requests/{hidden}", f"tokens/{hidden}"):
            r = catalogue.get(f"{BASE}/{path}.{fmt}")
            assert r.status_code == 404, (path, r.text)
        assert catalogue.get(f"{BASE}/requests/{shown}.{fmt}").status_code == 200
        for params in ({}, {"service_request_id": f"{hidden},{shown}"}):
            r = catalogue.get(f"{BASE}/requests.{fmt}", params=params)
            assert hidden not in r.text and "Quiet Lane" not in r.text
            assert shown in r.text and (partner_made in r.text) == (params == {})
        r = catalogue.get(f"{BASE}/servicerequestupdates.{fmt}")
        assert hidden not in r.text and shown in r.text
        for secret in ("Safeguarding", "social care", str(CITIZEN[0])):
            assert secret not in r.text
    [one] = catalogue.get(f"{BASE}/requests/{shown}.json").json()
    assert one["status_notes"] == "Crew booked" and one["description"] == "On the redway"
    updates = [
        (u["status"], u["description"])
        for u in catalogue.get(f"{BASE}/servicerequestupdates.json").json()
        if u["service_request_id"] == shown
    ]
    assert updates == [("investigating", ""), ("investigating", "Crew booked")]
    # The citizen still reads their private report.
    mine = catalogue.get(f"/api/v1/service-requests/{hidden}", headers=citizen)
    assert mine.status_code == 200 and mine.json()["address"] == "4 Quiet Lane, MK9 1AA"
    # Open311 submissions are public; their submitter's identity is never shown.
    assert [r.public for r in requests_in_db(catalogue) if str(r.id) == partner_made] == [True]
