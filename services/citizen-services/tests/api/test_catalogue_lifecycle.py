"""Catalogue details, optimistic concurrency (If-Match), suspend/retire and history, on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
from fastapi.testclient import TestClient

from citizen_services.config import Settings
from citizen_services.main import create_app
from servicekit.errors import PROBLEM_JSON, TYPE_BASE
from servicekit.testing import STAFF, identity_headers, running_app

from .test_catalogue_api import outbox_rows

POTHOLE: dict[str, Any] = {
    "name": "Report a pothole",
    "description": "Potholes on roads and pavements",
    "keywords": ["potholes", "roads"],
    "groups": ["Roads and transport"],
    "department": "Highways",
    "lgsl_codes": [1096],
    "channels": {
        "online_url": "https://www.milton-keynes.gov.uk/potholes",
        "phone": "01908 252570",
    },
    "eligibility": "Anyone",
    "fees": "Free",
    "audience": ["residents"],
    "opening_hours": "24/7 online",
    "last_reviewed_on": "2026-10-01",
    "accessibility_statement_url": "https://www.milton-keynes.gov.uk/accessibility",
    "attributes": [
        {
            "code": "depth",
            "datatype": "singlevaluelist",
            "required": True,
            "order": 1,
            "description": "How deep is it?",
            "values": [{"key": "shallow", "name": "Under 5cm"}, {"key": "deep", "name": "Deeper"}],
        },
        {"code": "notes", "datatype": "text", "order": 2, "description": "Anything else"},
    ],
}


def create(client: TestClient, **body: Any) -> tuple[dict[str, Any], str]:
    r = client.post("/api/v1/services", json=body)
    assert r.status_code == 201, r.text
    return r.json(), r.headers["etag"]


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["type"] == TYPE_BASE + code
    return r.json()  # type: ignore[no-any-return]


def test_create_keeps_every_detail(client: TestClient) -> None:
    body, etag = create(client, **POTHOLE)
    assert etag == '"1"'
    for key in (
        "lgsl_codes",
        "eligibility",
        "fees",
        "audience",
        "opening_hours",
        "last_reviewed_on",
        "accessibility_statement_url",
    ):
        assert body[key] == POTHOLE[key], key
    assert body["channels"]["phone"] == "01908 252570"
    assert [a["code"] for a in body["attributes"]] == ["depth", "notes"]
    again = client.get(f"/api/v1/services/{body['id']}").json()
    assert again["attributes"] == body["attributes"]


def test_bad_attribute_definitions_are_422(client: TestClient) -> None:
    for attributes in (
        [{"code": "x", "datatype": "singlevaluelist", "description": "no values"}],
        [
            {
                "code": "x",
                "datatype": "string",
                "description": "d",
                "values": [{"key": "a", "name": "A"}],
            }
        ],
        [{"code": "x", "description": "one"}, {"code": "x", "description": "two"}],
        [{"code": "x", "datatype": "colour", "description": "d"}],
    ):
        r = client.post("/api/v1/services", json={"name": "Bad", "attributes": attributes})
        body = problem(r, 422, "validation-error")
        assert any(e["field"].startswith("attributes") for e in body["errors"]), body


def test_patch_needs_if_match_and_refuses_a_stale_one(client: TestClient) -> None:
    service, etag = create(client, name="Bulky waste collection")
    url = f"/api/v1/services/{service['id']}"
    problem(client.patch(url, json={"fees": "£30"}), 428, "precondition-required")
    problem(
        client.patch(url, json={"fees": "£30"}, headers={"If-Match": "nonsense"}),
        412,
        "version-mismatch",
    )
    first = client.patch(
        url, json={"fees": "£30", "keywords": ["sofa"]}, headers={"If-Match": etag}
    )
    assert first.status_code == 200, first.text
    assert first.headers["etag"] == '"2"'
    assert first.json()["fees"] == "£30" and first.json()["keywords"] == ["sofa"]
    second = client.patch(url, json={"fees": "£35"}, headers={"If-Match": etag})
    assert problem(second, 412, "version-mismatch")["current_version"] == 2
    assert client.get(url).json()["fees"] == "£30"
    events = [row["event_type"].split(".")[-2] for row in outbox_rows(client)]
    assert events == ["ServiceUpdated"]


def test_suspend_retire_and_history(client: TestClient, anonymous_client: TestClient) -> None:
    service, _ = create(client, name="Garden waste subscription")
    url = f"/api/v1/services/{service['id']}"
    problem(client.post(f"{url}/suspend", json={"reason": "x"}), 409, "invalid-status-transition")
    assert client.post(f"{url}/publish").status_code == 200
    assert anonymous_client.get(url).status_code == 200
    r = client.post(f"{url}/suspend", json={"reason": "Winter break"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "suspended" and r.json()["status_reason"] == "Winter break"
    assert r.json()["status_changed_by"]
    assert anonymous_client.get(url).status_code == 404
    r = client.patch(url, json={"fees": "£45 a year"}, headers={"If-Match": r.headers["etag"]})
    assert r.status_code == 200, r.text
    r = client.post(f"{url}/retire", json={"reason": "Replaced by a new scheme"})
    assert r.status_code == 200 and r.json()["status"] == "retired"
    problem(
        client.patch(url, json={"fees": "£1"}, headers={"If-Match": r.headers["etag"]}),
        409,
        "invalid-status-transition",
    )
    problem(
        client.post(f"{url}/retire", json={"reason": "again"}), 409, "invalid-status-transition"
    )
    problem(client.post(f"{url}/publish"), 409, "invalid-status-transition")
    history = client.get(f"{url}/history").json()
    assert [(h["version"], h["action"]) for h in history] == [
        (1, "created"),
        (2, "published"),
        (3, "suspended"),
        (4, "updated"),
        (5, "retired"),
    ]
    assert history[2]["reason"] == "Winter break"
    assert history[3]["changed_fields"] == ["fees"]
    events = [row["event_type"].split(".")[-2] for row in outbox_rows(client)]
    assert events == ["ServicePublished", "ServiceSuspended", "ServiceUpdated", "ServiceRetired"]
    assert anonymous_client.get(f"{url}/history").status_code in (401, 403)


async def test_two_patches_with_the_same_etag_one_200_one_412(settings: Settings) -> None:
    async with (
        running_app(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=identity_headers(*STAFF)) as c,
    ):
        created = await c.post("/api/v1/services", json={"name": "Parking permit"})
        etag, path = created.headers["etag"], f"/api/v1/services/{created.json()['id']}"
        responses = await asyncio.gather(
            *(c.patch(path, json={"fees": f"£{n}"}, headers={"If-Match": etag}) for n in range(2))
        )
        assert Counter(r.status_code for r in responses) == {200: 1, 412: 1}, [
            r.text for r in responses
        ]
        history = (await c.get(f"{path}/history")).json()
        assert [h["version"] for h in history] == [1, 2]
