"""FixMyStreet's Open311 client, as ``perllib/Open311.pm`` talks, through the gateway.

* A report with a photo is multipart/form-data (``_request`` with uploads: the fields,
  ``api_key`` among them, then ``photo1`` with its filename and type) carrying
  ``attribute[uprn]`` and the other attributes FixMyStreet always adds; it reads back on
  Open311 with a ``media_url`` at the gateway that downloads the same photo, and staff see
  the extra attributes.
* A citizen's update is ``post_service_request_update``'s form POST to
  ``servicerequestupdates.xml``; the answer's ``request_update/update_id`` is the id that
  ``GET servicerequestupdates.xml`` lists it under, and staff see it in the timeline.
* Nothing personal (email, names, phone) in any public answer.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import httpx
import pytest

from .conftest import Platform
from .test_open311_georeport import _reportable_service

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

#: A JPEG's first bytes (SOI, JFIF APP0) and some binary content with CR/LF in it.
PHOTO = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(range(256)) * 40
)
PERSONAL = ("reporter@example.com", "Grace", "Hopper", "07700 900123")


async def test_fixmystreet_photo_report_and_update_through_the_gateway(
    platform: Platform,
) -> None:
    key = platform.credentials["OPEN311_API_KEY"]
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=60) as client:
        code = await _reportable_service(platform, client)

        # send_service_request with uploads: multipart/form-data, the key in the body.
        fields = {
            "service_code": code,
            "lat": "52.0406",
            "long": "-0.7594",
            "email": "reporter@example.com",
            "first_name": "Grace",
            "last_name": "Hopper",
            "phone": "07700 900123",
            "description": "Two slats snapped",
            "attribute[damage][]": ["slats", "graffiti"],
            "attribute[seats]": "3",
            "attribute[uprn]": "25032817",
            "attribute[fixmystreet_id]": "4021",
            "attribute[easting]": "485951",
            "attribute[northing]": "238214",
            "attribute[closest_address]": "1 Silbury Boulevard, Milton Keynes",
            "jurisdiction_id": "milton-keynes",
            "api_key": key,
        }
        created = await client.post(
            "/open311/v2/requests.xml",
            data=fields,
            files=[("photo1", ("4021.0.full.jpeg", PHOTO, "image/jpeg"))],
        )
        assert created.status_code == 200, created.text
        assert created.request.headers["content-type"].startswith("multipart/form-data")
        request_id = ET.fromstring(created.content).findtext("request/service_request_id")
        assert request_id

        read = await client.get(f"/open311/v2/requests/{request_id}.xml")
        assert read.status_code == 200, read.text
        [request] = ET.fromstring(read.content).findall("request")
        assert request.findtext("description") == "Two slats snapped"
        media_url = request.findtext("media_url") or ""
        assert media_url.startswith(f"{platform.gateway_url}/open311/v2/media/"), media_url

        photo = await client.get(media_url)  # anonymous, as a browser would
        assert photo.status_code == 200, photo.text
        assert photo.content == PHOTO
        assert photo.headers["content-type"] == "image/jpeg"

        staff = platform.bearer("STAFF_TOKEN")
        seen = (await client.get(f"/api/v1/service-requests/{request_id}", headers=staff)).json()
        assert seen["attributes"] == {"damage": ["slats", "graffiti"], "seats": 3.0}
        assert seen["extra_attributes"]["uprn"] == "25032817"
        assert seen["extra_attributes"]["closest_address"] == "1 Silbury Boulevard, Milton Keynes"

        # post_service_request_update: form-encoded, the key in the body.
        update = [
            ("updated_datetime", "2026-12-07T21:10:00Z"),
            ("service_request_id", request_id),
            ("status", "FIXED"),
            ("description", "Mended this morning, thank you"),
            ("last_name", "Hopper"),
            ("first_name", "Grace"),
            ("email", "reporter@example.com"),
            ("update_id", "73501"),
            ("jurisdiction_id", "milton-keynes"),
            ("api_key", key),
        ]
        posted = await client.post(
            "/open311/v2/servicerequestupdates.xml",
            content=urlencode(update).encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert posted.status_code == 200, posted.text
        update_id = ET.fromstring(posted.content).findtext("request_update/update_id")
        assert update_id

        # get_service_request_updates: the update under the id FixMyStreet was given.
        listed = await client.get("/open311/v2/servicerequestupdates.xml")
        assert listed.status_code == 200, listed.text
        [mine] = [
            u
            for u in ET.fromstring(listed.content).findall("request_update")
            if u.findtext("update_id") == update_id
        ]
        assert mine.findtext("service_request_id") == request_id
        assert mine.findtext("description") == "Mended this morning, thank you"

        timeline = (
            await client.get(f"/api/v1/service-requests/{request_id}", headers=staff)
        ).json()["updates"]
        assert timeline[-1]["note"] == "Mended this morning, thank you"
        assert timeline[-1]["reported_status"] == "fixed"

        for text in (read.text, listed.text, posted.text, created.text):
            assert not any(p in text for p in PERSONAL)
            assert key not in text
