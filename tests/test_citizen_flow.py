"""The citizen-services acceptance flow, through the gateway: staff create and publish a
reportable service -> a citizen finds it by keyword (and a directory tool through
/hsds) -> reports a problem with attributes ->
staff set it to fixed -> ServiceRequestStatusChanged(status=fixed) is on Kafka."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from contracts.topics import SERVICE_REQUEST
from servicekit.testing import read_topic

from .conftest import Platform

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def _request_id(value: bytes | None) -> str | None:
    """The record's request id; None for records other tests left on the topic (some are
    deliberately not JSON)."""
    try:
        return str(json.loads(value or b"").get("request_id"))
    except (ValueError, AttributeError):
        return None


async def test_report_a_problem_end_to_end(platform: Platform, kafka_bootstrap: str) -> None:
    tag = uuid.uuid4().hex[:10]
    staff, citizen = platform.bearer("STAFF_TOKEN"), platform.bearer("CITIZEN_TOKEN")
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        created = await client.post(
            "/api/v1/services",
            headers=staff,
            json={
                "name": f"Report a broken bench {tag}",
                "service_code": f"bench-{tag}",
                "keywords": [f"bench{tag}", "street furniture"],
                "groups": ["Streets"],
                "attributes": [
                    {
                        "code": "damage",
                        "datatype": "singlevaluelist",
                        "required": True,
                        "description": "What is wrong?",
                        "values": [
                            {"key": "broken", "name": "Broken slats"},
                            {"key": "missing", "name": "Missing"},
                        ],
                    }
                ],
            },
        )
        assert created.status_code == 201, created.text
        published = await client.post(
            f"/api/v1/services/{created.json()['id']}/publish", headers=staff
        )
        assert published.status_code == 200, published.text

        found = await client.get("/api/v1/services", params={"q": f"bench{tag}"}, headers=citizen)
        assert found.status_code == 200, found.text
        [service] = found.json()["items"]
        assert service["service_code"] == f"bench-{tag}"

        # Directory tools find it too, anonymously, through Open Referral UK's API.
        directory = await client.get("/hsds/services", params={"search": f"bench{tag}"})
        assert directory.status_code == 200, directory.text
        assert directory.headers["cache-control"].startswith("public")
        [entry] = directory.json()["contents"]
        assert entry["id"] == service["id"] and entry["name"] == service["name"]
        again = await client.get(
            "/hsds/services",
            params={"search": f"bench{tag}"},
            headers={"If-None-Match": directory.headers["etag"]},
        )
        assert again.status_code == 304

        submitted = await client.post(
            "/api/v1/service-requests",
            headers=citizen,
            json={
                "service_code": service["service_code"],
                "description": "Slats snapped",
                "lat": 52.0406,
                "long": -0.7594,
                "attributes": {"damage": "broken"},
            },
        )
        assert submitted.status_code == 201, submitted.text
        request_id = submitted.json()["id"]

        fixed = await client.post(
            f"/api/v1/service-requests/{request_id}/updates",
            headers=staff,
            json={"status": "fixed", "note": "Repaired"},
        )
        assert fixed.status_code == 200, fixed.text
        mine = await client.get(f"/api/v1/service-requests/{request_id}", headers=citizen)
        assert mine.json()["status"] == "fixed"

    records = await read_topic(
        kafka_bootstrap,
        SERVICE_REQUEST.name,
        count=2,
        timeout=30,
        predicate=lambda r: _request_id(r.value) == request_id,
    )
    types = [dict(r.headers)["ce_type"].decode().split(".")[-2] for r in records]
    assert types == ["ServiceRequestSubmitted", "ServiceRequestStatusChanged"]
    changed = json.loads(records[1].value)
    assert changed["status"] == "fixed" and changed["previous_status"] == "open"
    assert {r.key.decode() for r in records} == {request_id}


async def test_stale_etag_and_bad_csv_row_through_the_gateway(platform: Platform) -> None:
    """Two PATCHes with the same ETag: one 200, one 412. A CSV with one bad row imports
    nothing and names that row."""
    tag = uuid.uuid4().hex[:10]
    staff = platform.bearer("STAFF_TOKEN")
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        created = await client.post(
            "/api/v1/services", headers=staff, json={"name": f"Rent an allotment {tag}"}
        )
        assert created.status_code == 201, created.text
        etag = created.headers["etag"]
        url = f"/api/v1/services/{created.json()['id']}"
        first, second = [
            await client.patch(url, headers=staff | {"If-Match": etag}, json={"description": text})
            for text in ("Plots across Milton Keynes", "Someone else's edit")
        ]
        assert (first.status_code, second.status_code) == (200, 412), second.text
        assert second.headers["content-type"] == "application/problem+json"
        assert (await client.get(url, headers=staff)).json()[
            "description"
        ] == "Plots across Milton Keynes"

        csv_text = (
            "name,description,keywords,groups\n"
            f"Book a tip slot {tag},Household waste,tip,Bins and recycling\n"
            f",No name on this row {tag},x,Bins and recycling\n"
        )
        rejected = await client.post(
            "/api/v1/services/import",
            content=csv_text.encode(),
            headers=staff | {"Content-Type": "text/csv"},
        )
        assert rejected.status_code == 422, rejected.text
        # rows count data records from 1 (the header is not one): the second record
        assert {e["row"] for e in rejected.json()["errors"]} == {2}
        listed = await client.get(
            "/api/v1/services", headers=staff, params={"q": f"tip slot {tag}", "status": "draft"}
        )
        assert listed.status_code == 200 and listed.json()["items"] == [], listed.text
