"""Open311 GeoReport v2 through the gateway, with real clients.

* The PyPI ``georeport`` client, unchanged, reads the service list, a definition, the
  request list and one request, in JSON and in XML.
* A FixMyStreet-style form POST to ``requests.xml`` (``api_key`` in the body, contact
  fields, ``attribute[code][]``) answers XML whose ``service_request_id`` reads back, and
  its ServiceRequestSubmitted reaches Kafka; without a key, or with a bad one, the answer
  is Open311's 403 in XML.
"""

from __future__ import annotations

import asyncio
import json
import uuid
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from georeport import GeoReport

from contracts.topics import SERVICE_REQUEST
from servicekit.testing import read_topic

from .conftest import Platform

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

FORM = {"content-type": "application/x-www-form-urlencoded"}


async def _reportable_service(platform: Platform, client: httpx.AsyncClient) -> str:
    tag = uuid.uuid4().hex[:8]
    staff = platform.bearer("STAFF_TOKEN")
    created = await client.post(
        "/api/v1/services",
        headers=staff,
        json={
            "name": f"Report a damaged bench {tag}",
            "service_code": f"bench-{tag}",
            "keywords": ["bench", "street furniture"],
            "groups": ["Streets"],
            "attributes": [
                {
                    "code": "damage",
                    "datatype": "multivaluelist",
                    "required": True,
                    "order": 1,
                    "description": "What is wrong?",
                    "values": [
                        {"key": "slats", "name": "Broken slats"},
                        {"key": "graffiti", "name": "Graffiti"},
                    ],
                },
                {
                    "code": "seats",
                    "datatype": "number",
                    "order": 2,
                    "description": "How many seats?",
                },
            ],
        },
    )
    assert created.status_code == 201, created.text
    published = await client.post(f"/api/v1/services/{created.json()['id']}/publish", headers=staff)
    assert published.status_code == 200, published.text
    return f"bench-{tag}"


def _fixmystreet_form(code: str, api_key: str | None) -> list[tuple[str, str]]:
    form = [
        ("service_code", code),
        ("lat", "52.0406"),
        ("long", "-0.7594"),
        ("email", "reporter@example.com"),
        ("first_name", "Grace"),
        ("last_name", "Hopper"),
        ("phone", "07700 900123"),
        ("description", "Two slats snapped & tagged <again>"),
        ("media_url", "https://www.fixmystreet.com/photo/1.jpeg"),
        ("attribute[damage][]", "slats"),
        ("attribute[damage][]", "graffiti"),
        ("attribute[seats]", "3"),
        ("jurisdiction_id", "milton-keynes"),
    ]
    return form + ([("api_key", api_key)] if api_key is not None else [])


async def _submit(client: httpx.AsyncClient, code: str, api_key: str | None) -> httpx.Response:
    return await client.post(
        "/open311/v2/requests.xml",
        headers=FORM,
        content=urlencode(_fixmystreet_form(code, api_key)).encode(),
    )


async def test_georeport_client_reads_json_and_xml(platform: Platform) -> None:
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        code = await _reportable_service(platform, client)
        submitted = await _submit(client, code, platform.credentials["OPEN311_API_KEY"])
        assert submitted.status_code == 200, submitted.text
        request_id = ET.fromstring(submitted.content).findtext("request/service_request_id")
        assert request_id

    root = f"{platform.gateway_url}/open311/v2"

    def read(output_format: str) -> dict[str, Any]:
        client = GeoReport(root, output_format=output_format)
        return {
            "services": client.get_service_list(),
            "definition": client.get_service_definition(code),
            "requests": client.get_service_requests(service_code=code),
            "request": client.get_service_request(str(request_id)),
        }

    as_json = await asyncio.to_thread(read, "json")
    [service] = [s for s in as_json["services"] if s["service_code"] == code]
    assert service["metadata"] is True and service["type"] == "realtime"
    assert service["group"] == "Streets"
    assert [a["code"] for a in as_json["definition"]["attributes"]] == ["damage", "seats"]
    assert as_json["definition"]["attributes"][0]["values"][1] == {
        "key": "graffiti",
        "name": "Graffiti",
    }
    assert [r["service_request_id"] for r in as_json["requests"]] == [request_id]
    assert as_json["request"]["status"] == "open"
    assert as_json["request"]["description"] == "Two slats snapped & tagged <again>"

    as_xml = await asyncio.to_thread(read, "xml")
    [service] = [s for s in as_xml["services"] if s["service_code"] == code]
    assert service["metadata"] == "true" and service["service_name"].startswith("Report")
    attributes = as_xml["definition"]["attributes"]["attribute"]
    assert [a["code"] for a in attributes] == ["damage", "seats"]
    assert attributes[0]["datatype"] == "multivaluelist"
    assert [v["key"] for v in attributes[0]["values"]["value"]] == ["slats", "graffiti"]
    assert as_xml["requests"]["service_request_id"] == request_id  # one: a dict
    assert as_xml["request"]["service_request_id"] == request_id
    assert as_xml["request"]["description"] == "Two slats snapped & tagged <again>"
    assert as_xml["request"]["media_url"] == "https://www.fixmystreet.com/photo/1.jpeg"
    for text in (json.dumps(as_json), json.dumps(as_xml)):
        assert not any(
            p in text for p in ("reporter@example.com", "Grace", "Hopper", "07700 900123")
        )


async def test_fixmystreet_form_post_reads_back_as_xml(
    platform: Platform, kafka_bootstrap: str
) -> None:
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        code = await _reportable_service(platform, client)

        for key in (None, "mk_not_a_real_key"):
            refused = await _submit(client, code, key)
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"] == "text/xml; charset=utf-8"
            error = ET.fromstring(refused.content).find("error")
            assert error is not None and error.findtext("code") == "403"

        submitted = await _submit(client, code, platform.credentials["OPEN311_API_KEY"])
        assert submitted.status_code == 200, submitted.text
        assert submitted.headers["content-type"] == "text/xml; charset=utf-8"
        created = ET.fromstring(submitted.content)
        assert created.tag == "service_requests"
        request_id = created.findtext("request/service_request_id")
        assert request_id

        read = await client.get(f"/open311/v2/requests/{request_id}.xml")
        assert read.status_code == 200, read.text
        [request] = ET.fromstring(read.content).findall("request")
        assert request.findtext("service_request_id") == request_id
        assert request.findtext("service_code") == code
        assert request.findtext("status") == "open"
        assert request.findtext("description") == "Two slats snapped & tagged <again>"
        assert b"reporter@example.com" not in read.content

        staff = await client.get(
            f"/api/v1/service-requests/{request_id}", headers=platform.bearer("STAFF_TOKEN")
        )
        assert staff.json()["attributes"] == {"damage": ["slats", "graffiti"], "seats": 3.0}

    records = await read_topic(
        kafka_bootstrap,
        SERVICE_REQUEST.name,
        count=1,
        timeout=30,
        predicate=lambda r: _request_id(r.value) == request_id,
    )
    assert [dict(r.headers)["ce_type"].decode().split(".")[-2] for r in records] == [
        "ServiceRequestSubmitted"
    ]
    assert b"reporter@example.com" not in records[0].value


def _request_id(value: bytes | None) -> str | None:
    try:
        return str(json.loads(value or b"").get("request_id"))
    except (ValueError, AttributeError):
        return None
