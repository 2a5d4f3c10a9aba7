"""Open311 publishes only what is meant to be public, through the gateway.

A citizen's report through the platform's own API (``/api/v1/service-requests``) is private
unless they chose ``public``: no public Open311 path (one request and the list, JSON and XML,
tokens, ``servicerequestupdates``) shows it or its staff notes, while the citizen still reads
it. Staff notes are internal unless marked public; an internal note reaches neither Open311
nor the citizen's own timeline, and its ServiceRequestStatusChanged says it is internal. A
request the citizen made public appears on Open311 with its public notes only, never the
submitter's identity.
"""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest

from contracts.topics import SERVICE_REQUEST
from servicekit.testing import read_topic

from .conftest import Platform

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

SAFEGUARDING = "Safeguarding: resident appears vulnerable, lives alone, refer to adult social care"
DESCRIPTION = "Dumped mattress outside number 12, my ex keeps doing this"
ADDRESS = "12 Secret Close, Milton Keynes MK9 9ZZ"
PUBLIC_NOTE = "Crew booked for Tuesday"


def _request_id(value: bytes | None) -> str | None:
    try:
        return str(json.loads(value or b"").get("request_id"))
    except (ValueError, AttributeError):
        return None


async def _reportable_service(platform: Platform, client: httpx.AsyncClient) -> str:
    tag = uuid.uuid4().hex[:8]
    staff = platform.bearer("STAFF_TOKEN")
    created = await client.post(
        "/api/v1/services",
        headers=staff,
        json={
            "name": f"Report fly-tipping {tag}",
            "service_code": f"fly-{tag}",
            "attributes": [
                {
                    "code": "size",
                    "datatype": "singlevaluelist",
                    "required": True,
                    "description": "How big?",
                    "values": [
                        {"key": "small", "name": "Small"},
                        {"key": "large", "name": "Large"},
                    ],
                }
            ],
        },
    )
    assert created.status_code == 201, created.text
    published = await client.post(f"/api/v1/services/{created.json()['id']}/publish", headers=staff)
    assert published.status_code == 200, published.text
    return f"fly-{tag}"


async def _public_texts(
    client: httpx.AsyncClient, request_id: str, code: str
) -> dict[str, httpx.Response]:
    """Every public Open311 answer that could carry the request, anonymously."""
    paths = {f"/open311/v2/requests/{request_id}.{f}": {} for f in ("json", "xml")}
    paths |= {f"/open311/v2/tokens/{request_id}.{f}": {} for f in ("json", "xml")}
    out = {path: await client.get(path) for path in paths}
    for fmt in ("json", "xml"):
        for params in (
            {},
            {"service_code": code},
            {"service_request_id": request_id},
            {"status": "open,closed"},
        ):
            out[f"requests.{fmt}?{params}"] = await client.get(
                f"/open311/v2/requests.{fmt}", params=params
            )
        out[f"servicerequestupdates.{fmt}"] = await client.get(
            f"/open311/v2/servicerequestupdates.{fmt}"
        )
    return out


async def test_a_citizens_request_and_staff_notes_stay_off_open311(
    platform: Platform, kafka_bootstrap: str
) -> None:
    staff, citizen = platform.bearer("STAFF_TOKEN"), platform.bearer("CITIZEN_TOKEN")
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        code = await _reportable_service(platform, client)
        submitted = await client.post(
            "/api/v1/service-requests",
            headers=citizen,
            json={
                "service_code": code,
                "description": DESCRIPTION,
                "address": ADDRESS,
                "attributes": {"size": "large"},
            },
        )
        assert submitted.status_code == 201, submitted.text
        assert submitted.json()["public"] is False
        request_id = submitted.json()["id"]
        url = f"/api/v1/service-requests/{request_id}"
        changed = await client.post(
            f"{url}/updates", headers=staff, json={"status": "investigating", "note": SAFEGUARDING}
        )  # internal by default
        assert changed.status_code == 200, changed.text
        noted = await client.post(
            f"{url}/updates", headers=staff, json={"note": PUBLIC_NOTE, "note_visibility": "public"}
        )
        assert noted.status_code == 200, noted.text

        answers = await _public_texts(client, request_id, code)
        for path, answer in answers.items():
            if "/requests/" in path or "/tokens/" in path:
                assert answer.status_code == 404, (path, answer.text)
            else:
                assert answer.status_code == 200, (path, answer.text)
            for secret in (request_id, DESCRIPTION, ADDRESS, SAFEGUARDING, PUBLIC_NOTE):
                assert secret not in answer.text, (path, secret)

        # The citizen still reads their own request, with the public note only.
        mine = await client.get(url, headers=citizen)
        assert mine.status_code == 200, mine.text
        assert mine.json()["description"] == DESCRIPTION
        assert mine.json()["address"] == ADDRESS
        assert mine.json()["status"] == "investigating"
        notes = [u["note"] for u in mine.json()["updates"]]
        assert PUBLIC_NOTE in notes and SAFEGUARDING not in json.dumps(mine.json())
        # Staff see both, each with its visibility.
        worked = (await client.get(url, headers=staff)).json()["updates"]
        assert [(u["note"], u["note_visibility"]) for u in worked if u["note"]] == [
            (SAFEGUARDING, "internal"),
            (PUBLIC_NOTE, "public"),
        ]
        # Another citizen still gets 404.
        other = await client.get(url, headers=platform.bearer("CITIZEN2_TOKEN"))
        assert other.status_code == 404

    [record] = await read_topic(
        kafka_bootstrap,
        SERVICE_REQUEST.name,
        count=1,
        timeout=30,
        predicate=lambda r: (
            _request_id(r.value) == request_id
            and b"ServiceRequestStatusChanged" in dict(r.headers)["ce_type"]
        ),
    )
    event = json.loads(record.value)
    assert event["note"] == SAFEGUARDING and event["note_visibility"] == "internal"


async def test_a_request_the_citizen_made_public_shows_public_notes_only(
    platform: Platform,
) -> None:
    staff, citizen = platform.bearer("STAFF_TOKEN"), platform.bearer("CITIZEN_TOKEN")
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        code = await _reportable_service(platform, client)
        submitted = await client.post(
            "/api/v1/service-requests",
            headers=citizen,
            json={
                "service_code": code,
                "description": "Fridge on the redway",
                "lat": 52.0406,
                "long": -0.7594,
                "attributes": {"size": "small"},
                "public": True,
            },
        )
        assert submitted.status_code == 201, submitted.text
        request_id = submitted.json()["id"]
        url = f"/api/v1/service-requests/{request_id}"
        for body in (
            {"status": "action_scheduled", "note": PUBLIC_NOTE, "note_visibility": "public"},
            {"status": "fixed", "note": SAFEGUARDING},
        ):
            answer = await client.post(f"{url}/updates", headers=staff, json=body)
            assert answer.status_code == 200, answer.text

        one = await client.get(f"/open311/v2/requests/{request_id}.json")
        assert one.status_code == 200, one.text
        [shown] = one.json()
        assert shown["description"] == "Fridge on the redway"
        assert shown["status_notes"] == PUBLIC_NOTE  # not the newer internal note
        xml = await client.get(f"/open311/v2/requests/{request_id}.xml")
        assert ET.fromstring(xml.content).findtext("request/status_notes") == PUBLIC_NOTE
        updates = await client.get("/open311/v2/servicerequestupdates.json")
        mine: list[dict[str, Any]] = [
            u for u in updates.json() if u["service_request_id"] == request_id
        ]
        assert [(u["status"], u["description"]) for u in mine] == [
            ("action_scheduled", PUBLIC_NOTE),
            ("fixed", ""),
        ]
        for answer in (one, xml, updates):
            assert SAFEGUARDING not in answer.text
            assert "citizen-dev-1" not in answer.text
