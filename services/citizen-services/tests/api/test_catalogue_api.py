"""The staff catalogue API over HTTP, on SQLite and PostgreSQL: problem+json errors, the
outbox row written with the state change, health and metrics."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from contracts.citizen_services import ServicePublished
from servicekit.errors import PROBLEM_JSON, TYPE_BASE
from servicekit.messaging.tables import OutboxMessage

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


def outbox_rows(client: TestClient) -> list[dict[str, Any]]:
    """The rows of the service's own ``servicekit_outbox`` (read on the app's loop)."""
    database = client.app.state.runtime.database  # type: ignore[attr-defined]

    async def read() -> list[dict[str, Any]]:
        async with database.session() as db:
            result = await db.execute(sa.select(OUTBOX).order_by(OUTBOX.c.id))
            return [dict(r._mapping) for r in result]

    return client.portal.call(read)  # type: ignore[union-attr]


def create(client: TestClient, **body: Any) -> dict[str, Any]:
    r = client.post("/api/v1/services", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def assert_problem(r, status: int, code: str | None = None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    body = r.json()
    assert body["status"] == status
    assert body["title"]
    if code:
        assert body["type"] == TYPE_BASE + code
    return body


# -- create ---------------------------------------------------------------------------------


def test_create_returns_201_location_etag_and_generated_slug_and_code(client: TestClient) -> None:
    r = client.post(
        "/api/v1/services",
        json={
            "name": "Report a Pothole!",
            "description": "Roads and pavements",
            "keywords": ["roads", "potholes"],
            "groups": ["Roads and transport"],
            "department": "Highways",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    service_id = uuid.UUID(body["id"])
    assert r.headers["location"] == f"/api/v1/services/{service_id}"
    assert r.headers["etag"] == '"1"'
    assert body["slug"] == "report-a-pothole"
    assert body["service_code"] == "report-a-pothole"
    assert body["status"] == "draft"
    assert body["version"] == 1
    assert body["published_at"] is None
    assert body["keywords"] == ["roads", "potholes"]
    assert body["groups"] == ["Roads and transport"]
    assert body["department"] == "Highways"

    got = client.get(r.headers["location"])
    assert got.status_code == 200
    assert got.headers["etag"] == '"1"'
    assert got.json() == body
    assert outbox_rows(client) == []  # creating a draft announces nothing


def test_create_keeps_given_slug_and_service_code(client: TestClient) -> None:
    body = create(
        client, name="Council tax", slug="council-tax-discount", service_code="CT.DISC_01"
    )
    assert body["slug"] == "council-tax-discount"
    assert body["service_code"] == "CT.DISC_01"


def test_long_name_still_creates_a_valid_entry(client: TestClient) -> None:
    name = "Apply for a " + " ".join(["very"] * 30) + " long named permit"  # 178 chars
    assert 120 < len(name) <= 200
    body = create(client, name=name)
    assert body["name"] == name
    assert len(body["slug"]) <= 120
    assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", body["slug"])
    assert 1 <= len(body["service_code"]) <= 64
    assert re.fullmatch(r"[A-Za-z0-9_.\-]+", body["service_code"])


def test_duplicate_slug_is_a_409_problem(client: TestClient) -> None:
    first = create(client, name="Report a pothole")
    r = client.post("/api/v1/services", json={"name": "Report a  pothole"})  # same slug
    body = assert_problem(r, 409, "duplicate-service")
    assert body["slug"] == "report-a-pothole"
    assert "report-a-pothole" in body["detail"]
    # an explicit slug or service_code that is taken clashes too
    assert_problem(
        client.post("/api/v1/services", json={"name": "Other", "slug": first["slug"]}),
        409,
        "duplicate-service",
    )
    assert_problem(
        client.post(
            "/api/v1/services", json={"name": "Other", "service_code": first["service_code"]}
        ),
        409,
        "duplicate-service",
    )
    assert client.post("/api/v1/services", json={"name": "Other"}).status_code == 201


def test_validation_errors_are_422_problems_naming_the_field(client: TestClient) -> None:
    cases = [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "Ok", "slug": "Not A Slug"}, "slug"),
        ({"name": "Ok", "service_code": "has space"}, "service_code"),
        ({"name": "Ok", "keywords": "roads"}, "keywords"),
        ({"name": "Ok", "status": "published"}, "status"),  # extra fields are refused
    ]
    for payload, field in cases:
        r = client.post("/api/v1/services", json=payload)
        body = assert_problem(r, 422, "validation-error")
        assert field in [e["field"] for e in body["errors"]], (payload, body)
        assert field in body["detail"]
    r = client.post(
        "/api/v1/services", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(r, 422, "validation-error")
    assert outbox_rows(client) == []


def test_unknown_id_is_a_404_problem(client: TestClient) -> None:
    missing = uuid.uuid4()
    body = assert_problem(client.get(f"/api/v1/services/{missing}"), 404, "service-not-found")
    assert str(missing) in body["detail"]
    assert body["instance"] == f"/api/v1/services/{missing}"
    assert_problem(client.post(f"/api/v1/services/{missing}/publish"), 404, "service-not-found")
    body = assert_problem(client.get("/api/v1/services/not-a-uuid"), 422, "validation-error")
    assert [e["field"] for e in body["errors"]] == ["path.service_id"]
    assert outbox_rows(client) == []


def test_unknown_route_is_a_404_problem(client: TestClient) -> None:
    body = assert_problem(client.get("/api/v1/nothing-here"), 404)
    assert body["title"] == "Not found"
    assert_problem(client.delete("/api/v1/services"), 405)


# -- publish and the outbox -----------------------------------------------------------------


def test_publish_bumps_version_and_writes_exactly_one_outbox_row(client: TestClient) -> None:
    service = create(client, name="Blue badge renewal", keywords=["parking"])
    r = client.post(f"/api/v1/services/{service['id']}/publish")
    assert r.status_code == 200, r.text
    published = r.json()
    assert published["status"] == "published"
    assert published["version"] == 2
    assert published["published_at"] is not None
    assert r.headers["etag"] == '"2"'
    assert client.get(f"/api/v1/services/{service['id']}").json() == published

    [row] = outbox_rows(client)
    assert row["event_type"] == ServicePublished.event_type()
    assert row["event_type"] == "uk.gov.milton-keynes.citizen-services.ServicePublished.v1"
    assert row["message_key"] == service["id"]
    assert row["topic"] == ServicePublished.topic
    assert row["published_at"] is None  # messaging is off: nobody relayed it
    envelope = json.loads(row["envelope"])
    assert envelope["id"] == row["event_id"]
    assert envelope["type"] == row["event_type"]
    assert envelope["source"] == "urn:uk-gov-milton-keynes:citizen-services"
    assert envelope["subject"] == service["id"]
    event = ServicePublished.model_validate_json(row["payload"])
    assert str(event.service_id) == service["id"]
    assert event.slug == "blue-badge-renewal"
    assert event.service_code == service["service_code"]
    assert event.entry_version == 2


def test_publishing_twice_is_a_409_and_writes_nothing(client: TestClient) -> None:
    service = create(client, name="Bulky waste collection")
    assert client.post(f"/api/v1/services/{service['id']}/publish").status_code == 200
    before = client.get(f"/api/v1/services/{service['id']}").json()

    r = client.post(f"/api/v1/services/{service['id']}/publish")
    body = assert_problem(r, 409, "invalid-status-transition")
    assert body["current_status"] == "published"
    assert body["requested_status"] == "published"

    assert client.get(f"/api/v1/services/{service['id']}").json() == before  # version still 2
    assert len(outbox_rows(client)) == 1


def test_each_service_gets_its_own_outbox_row_keyed_by_its_id(client: TestClient) -> None:
    ids = [create(client, name=f"Service {n}")["id"] for n in range(3)]
    for service_id in reversed(ids):
        assert client.post(f"/api/v1/services/{service_id}/publish").status_code == 200
    rows = outbox_rows(client)
    assert [r["message_key"] for r in rows] == list(reversed(ids))
    assert len({r["event_id"] for r in rows}) == 3


# -- health and metrics ---------------------------------------------------------------------


def test_health_live_and_ready(client: TestClient) -> None:
    r = client.get("/health/live")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    r = client.get("/health/ready")
    assert r.status_code == 200
    # messaging is off, so Kafka is not checked
    assert r.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    service = create(client, name="Garden waste")
    client.post(f"/api/v1/services/{service['id']}/publish")
    client.get(f"/api/v1/services/{uuid.uuid4()}")
    client.get("/no/such/route")
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("http_requests_total{")
    }
    assert samples['http_requests_total{method="POST",route="/api/v1/services",status="201"}'] == 1
    assert (
        samples[
            'http_requests_total{method="POST",'
            'route="/api/v1/services/{service_id}/publish",status="200"}'
        ]
        == 1
    )
    assert (
        samples[
            'http_requests_total{method="GET",route="/api/v1/services/{service_id}",status="404"}'
        ]
        == 1
    )
    assert samples['http_requests_total{method="GET",route="unmatched",status="404"}'] == 1
    assert service["id"] not in text  # raw paths never become labels
    assert "http_request_duration_seconds_bucket" in text


def test_staff_operations_need_a_staff_identity(anonymous_client, settings) -> None:  # type: ignore[no-untyped-def]
    from servicekit.testing import CITIZEN, identity_headers

    r = anonymous_client.post("/api/v1/services", json={"name": "Blue badges"})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    r = anonymous_client.post(
        "/api/v1/services", json={"name": "Blue badges"}, headers=identity_headers(*CITIZEN)
    )
    assert r.status_code == 403
    forged = {
        "x-mk-identity": identity_headers("staff-x", "staff", secret="not-the-secret")[
            "x-mk-identity"
        ]
    }
    r = anonymous_client.post("/api/v1/services", json={"name": "Blue badges"}, headers=forged)
    assert r.status_code == 401  # a forged assertion is no identity at all


def test_drafts_are_hidden_from_the_public(client, anonymous_client) -> None:  # type: ignore[no-untyped-def]
    created = client.post("/api/v1/services", json={"name": "Garden waste"}).json()
    assert anonymous_client.get(f"/api/v1/services/{created['id']}").status_code == 404
    client.post(f"/api/v1/services/{created['id']}/publish")
    assert anonymous_client.get(f"/api/v1/services/{created['id']}").status_code == 200
