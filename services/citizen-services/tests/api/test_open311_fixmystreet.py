"""Open311 as FixMyStreet's client (``perllib/Open311.pm``) uses it: the attributes it
always sends, photos as multipart/form-data, citizens' updates, and the service list
fields it reads (``groups``, comma-split keywords, ``automated``/``protected``)."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from servicekit.testing import CITIZEN, identity_headers

from .test_open311 import (
    ANONYMOUS,
    BASE,
    FLY_TIPPING,
    FMS_FORM,
    PERSONAL,
    XML,
    catalogue,  # noqa: F401  (a fixture)
    json_errors,
    partner,
    post,
    publish,
    xml_errors,
)

#: What FixMyStreet's UK cobrands add as ``attribute[...]`` to every report, whether the
#: service defines them or not (``_populate_service_request_params``).
FMS_EXTRAS: list[tuple[str, str]] = [
    ("attribute[uprn]", "25032817"),
    ("attribute[fixmystreet_id]", "4021"),
    ("attribute[easting]", "485951"),
    ("attribute[northing]", "238214"),
    ("attribute[closest_address]", "1 Silbury Boulevard, Milton Keynes"),
    ("attribute[report_url]", "https://www.fixmystreet.com/report/4021"),
    ("attribute[title]", ""),
]
#: The smallest valid files of each type (the bytes a real encoder starts with).
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 32
GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 24
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 16


def staff_view(client: TestClient, request_id: str) -> dict[str, Any]:
    read = client.get(f"/api/v1/service-requests/{request_id}")
    assert read.status_code == 200, read.text
    return dict(read.json())


def multipart(
    client: TestClient,
    form: list[tuple[str, str]],
    files: list[tuple[str, tuple[str, bytes, str]]],
    fmt: str = "xml",
    path: str = "requests",
) -> Any:
    """A multipart/form-data POST as HTTP::Request::Common builds FixMyStreet's: the fields,
    then ``photo1``... with a filename and the photo's Content-Type."""
    fields: dict[str, list[str]] = {}
    for name, value in form:
        fields.setdefault(name, []).append(value)
    return client.post(f"{BASE}/{path}.{fmt}", data=fields, files=files, headers=partner())


# -- item 11: attributes the service does not define ----------------------------------------


@pytest.mark.usefixtures("catalogue")
def test_attributes_fixmystreet_always_sends_are_kept_not_refused(client: TestClient) -> None:
    created = post(client, FMS_FORM + FMS_EXTRAS)
    assert created.status_code == 200, created.text
    request_id = ET.fromstring(created.content).findtext("request/service_request_id")
    assert request_id

    staff = staff_view(client, request_id)
    assert staff["attributes"] == {
        "waste_type": ["furniture", "tyres"],
        "bags": 3.0,
        "size": "large",
    }
    assert staff["extra_attributes"] == {
        "uprn": "25032817",
        "fixmystreet_id": "4021",
        "easting": "485951",
        "northing": "238214",
        "closest_address": "1 Silbury Boulevard, Milton Keynes",
        "report_url": "https://www.fixmystreet.com/report/4021",
    }  # the empty title dropped

    # Not on Open311's public answers (the spec has no attributes there; an address is
    # the reporter's neighbourhood).
    for fmt in ("xml", "json"):
        public = client.get(f"{BASE}/requests/{request_id}.{fmt}")
        assert public.status_code == 200
        assert b"25032817" not in public.content and b"Silbury" not in public.content


@pytest.mark.usefixtures("catalogue")
def test_defined_attributes_are_still_checked_and_bad_extras_refused(client: TestClient) -> None:
    wrong = [(k, "huge" if k == "attribute[size]" else v) for k, v in FMS_FORM]
    refused = post(client, wrong + FMS_EXTRAS)
    assert refused.status_code == 400
    assert [d for _, d in xml_errors(refused)] == [
        "attribute[size]: must be one of ['large', 'small']"
    ]

    too_long = post(client, [*FMS_FORM, ("attribute[closest_address]", "x" * 1001)], "json")
    assert too_long.status_code == 400
    assert json_errors(too_long) == [
        {"code": 400, "description": "attribute[closest_address]: too long"}
    ]

    # The JSON API stays strict: an attribute the service does not define is refused.
    strict = client.post(
        "/api/v1/service-requests",
        json={
            "service_code": "fly-tipping",
            "lat": 52.04,
            "long": -0.76,
            "attributes": {"uprn": "1"},
        },
        headers=identity_headers(*CITIZEN),
    )
    assert strict.status_code == 422, strict.text


# -- item 10: photos as multipart/form-data -------------------------------------------------


@pytest.mark.usefixtures("catalogue")
def test_multipart_report_with_photos_stores_them_and_serves_media_url(
    client: TestClient,
) -> None:
    form = [(k, v) for k, v in FMS_FORM if k != "media_url"] + FMS_EXTRAS
    created = multipart(
        client,
        form,
        [
            ("photo1", ("4021.0.full.jpeg", JPEG, "image/jpeg")),
            ("photo2", ("4021.1.full.png", PNG, "image/png")),
        ],
    )
    assert created.status_code == 200, created.text
    assert created.headers["content-type"] == XML
    request_id = ET.fromstring(created.content).findtext("request/service_request_id")
    assert request_id

    read = client.get(f"{BASE}/requests/{request_id}.json")
    [request] = read.json()
    media_url = request["media_url"]
    assert media_url.startswith("http://testserver/open311/v2/media/")
    assert media_url.endswith(".jpg")
    assert request["description"] == "A sofa <and> tyres & more by the redway"

    photo = client.get(media_url.removeprefix("http://testserver"))
    assert photo.status_code == 200
    assert photo.content == JPEG
    assert photo.headers["content-type"] == "image/jpeg"
    assert photo.headers["x-content-type-options"] == "nosniff"

    staff = staff_view(client, request_id)
    assert staff["attributes"]["waste_type"] == ["furniture", "tyres"]
    assert staff["extra_attributes"]["uprn"] == "25032817"

    # Behind the gateway the URL is the gateway's.
    forwarded = client.get(
        f"{BASE}/requests/{request_id}.xml",
        headers={"x-forwarded-host": "api.example.gov.uk", "x-forwarded-proto": "https"},
    )
    path = media_url.removeprefix("http://testserver")
    assert ET.fromstring(forwarded.content).findtext("request/media_url") == (
        f"https://api.example.gov.uk{path}"
    )


@pytest.mark.usefixtures("catalogue")
@pytest.mark.parametrize(
    ("data", "content_type", "extension"),
    [(GIF, "image/gif", "gif"), (WEBP, "image/webp", "webp"), (HEIC, "image/heic", "heic")],
)
def test_each_photo_type_is_known_by_its_bytes(
    client: TestClient, data: bytes, content_type: str, extension: str
) -> None:
    # The client's claimed type and name are not what decides.
    upload = [("photo1", ("x.bin", data, "application/octet-stream"))]
    created = multipart(client, FMS_FORM, upload, "json")
    assert created.status_code == 200, created.text
    [request] = client.get(f"{BASE}/requests/{created.json()[0]['service_request_id']}.json").json()
    # The client's own media_url (sent as a field) wins; the upload is still stored.
    assert request["media_url"] == "https://photos.example/p/1.jpeg"
    no_url = [(k, v) for k, v in FMS_FORM if k != "media_url"]
    created = multipart(client, no_url, upload, "json")
    [request] = client.get(f"{BASE}/requests/{created.json()[0]['service_request_id']}.json").json()
    assert request["media_url"].endswith(f".{extension}")
    photo = client.get(request["media_url"].removeprefix("http://testserver"))
    assert photo.headers["content-type"] == content_type and photo.content == data


@pytest.mark.usefixtures("catalogue")
def test_bad_files_get_open311_errors_and_nothing_is_stored(client: TestClient) -> None:
    no_url = [(k, v) for k, v in FMS_FORM if k != "media_url"]
    before = client.get(f"{BASE}/requests.json").json()
    cases = [
        (
            [("photo1", ("evil.jpeg", b"<svg onload=alert(1)>", "image/jpeg"))],
            "photo1: must be a JPEG, PNG, GIF, WebP or HEIC image",
        ),
        ([("photo1", ("empty.jpeg", b"", "image/jpeg"))], "photo1: the file is empty"),
        (
            [("photo1", ("big.jpeg", JPEG + b"\x00" * 10_000_000, "image/jpeg"))],
            "photo1: the file is over 10 MB",
        ),
        (
            [(f"photo{i}", ("p.jpeg", JPEG, "image/jpeg")) for i in range(6)],
            "request: at most 5 files",
        ),
    ]
    for files, description in cases:
        refused = multipart(client, no_url, files)
        assert refused.status_code == 400, refused.text
        assert xml_errors(refused) == [("400", description)]
    assert client.get(f"{BASE}/requests.json").json() == before

    broken = client.post(
        f"{BASE}/requests.json",
        content=b"--x\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--x--\r\n",
        headers={"content-type": "multipart/form-data; boundary=x", **partner()},
    )
    assert broken.status_code == 400
    assert json_errors(broken) == [
        {"code": 400, "description": "request: not valid multipart/form-data"}
    ]


@pytest.mark.usefixtures("catalogue")
def test_form_encoded_posts_still_work_and_unknown_media_is_404(client: TestClient) -> None:
    created = post(client, FMS_FORM, "json")
    assert created.status_code == 200, created.text
    [request] = client.get(f"{BASE}/requests/{created.json()[0]['service_request_id']}.json").json()
    assert request["media_url"] == "https://photos.example/p/1.jpeg"
    for path in (f"media/{uuid.uuid4()}.jpg", "media/not-a-uuid.jpg"):
        missing = client.get(f"{BASE}/{path}")
        assert missing.status_code == 404
        assert xml_errors(missing) == [("404", "media: no such photo")]


@pytest.mark.usefixtures("catalogue")
def test_no_personal_data_in_answers_from_a_multipart_report(client: TestClient) -> None:
    created = multipart(client, FMS_FORM + FMS_EXTRAS, [("photo1", ("p.jpeg", JPEG, "image/jpeg"))])
    request_id = ET.fromstring(created.content).findtext("request/service_request_id")
    for fmt in ("xml", "json"):
        for path in (f"requests/{request_id}", "requests", "servicerequestupdates"):
            text = client.get(f"{BASE}/{path}.{fmt}").text
            assert not any(p in text for p in PERSONAL), path
    assert json.dumps(staff_view(client, str(request_id))).count("resident@example.com") == 0


# -- item 12: citizens' updates from FixMyStreet --------------------------------------------


def fms_update(request_id: str, **changes: str) -> list[tuple[str, str]]:
    """``_populate_service_request_update_params``, with the api_key and jurisdiction
    ``_request`` adds."""
    fields = {
        "api_key": "ignored-here",
        "jurisdiction_id": "milton-keynes",
        "updated_datetime": "2026-12-07T21:10:00Z",
        "service_request_id": request_id,
        "status": "FIXED",
        "description": "The sofa has gone <now> & the tyres too",
        "last_name": "Lovelace",
        "first_name": "Ada",
        "email": "resident@example.com",
        "update_id": "73501",
        "media_url": "https://www.fixmystreet.com/c/73501.0.full.jpeg",
        **changes,
    }
    return list(fields.items())


def submitted(client: TestClient) -> str:
    created = post(client, FMS_FORM)
    assert created.status_code == 200, created.text
    return str(ET.fromstring(created.content).findtext("request/service_request_id"))


@pytest.mark.usefixtures("catalogue")
def test_fixmystreet_update_answers_its_id_and_joins_the_public_timeline(
    client: TestClient,
) -> None:
    request_id = submitted(client)
    form = fms_update(request_id)
    answered = client.post(
        f"{BASE}/servicerequestupdates.xml",
        content=urlencode(form).encode(),
        headers={"content-type": "application/x-www-form-urlencoded", **partner()},
    )
    assert answered.status_code == 200, answered.text
    assert answered.headers["content-type"] == XML
    # What FixMyStreet reads: $obj->{request_update}->[0]->{update_id}
    root = ET.fromstring(answered.content)
    assert root.tag == "service_request_updates"
    update_id = root.findtext("request_update/update_id")
    assert update_id and update_id.isdigit()

    # Posted again (FixMyStreet retries after a failure): the same update, no second one.
    again = post_update(client, form, "json")
    assert again.status_code == 200
    assert again.json() == [{"update_id": update_id}]

    listed = client.get(f"{BASE}/servicerequestupdates.json").json()
    [mine] = [u for u in listed if u["service_request_id"] == request_id]
    assert mine["update_id"] == update_id
    assert mine["description"] == "The sofa has gone <now> & the tyres too"
    assert mine["media_url"] == "https://www.fixmystreet.com/c/73501.0.full.jpeg"
    assert mine["status"] == "open"  # the council's status is the council's to change

    # The staff view: in the timeline, with what the client reported; status unchanged.
    staff = staff_view(client, request_id)
    assert staff["status"] == "open"
    last = staff["updates"][-1]
    assert last["note"] == "The sofa has gone <now> & the tyres too"
    assert (last["note_visibility"], last["source"], last["reported_status"]) == (
        "public",
        "open311",
        "fixed",
    )
    assert len(staff["updates"]) == 2

    # status_notes stays the council's: a citizen's comment is not a staff note.
    [request] = client.get(f"{BASE}/requests/{request_id}.json").json()
    assert request["status_notes"] is None

    for text in (
        json.dumps(staff),
        client.get(f"{BASE}/servicerequestupdates.xml").text,
        client.get(f"{BASE}/requests/{request_id}.xml").text,
    ):
        assert not any(p in text for p in PERSONAL)


def post_update(client: TestClient, form: list[tuple[str, str]], fmt: str = "xml") -> Any:
    return client.post(
        f"{BASE}/servicerequestupdates.{fmt}",
        content=urlencode(form).encode(),
        headers={"content-type": "application/x-www-form-urlencoded", **partner()},
    )


@pytest.mark.usefixtures("catalogue")
def test_fixmystreet_update_with_a_photo_upload(client: TestClient) -> None:
    request_id = submitted(client)
    form = [(k, v) for k, v in fms_update(request_id, description="") if k != "media_url"]
    answered = multipart(
        client,
        form,
        [("photo1", ("73501.0.full.png", PNG, "image/png"))],
        path="servicerequestupdates",
    )
    assert answered.status_code == 200, answered.text
    update_id = ET.fromstring(answered.content).findtext("request_update/update_id")
    updates = client.get(f"{BASE}/servicerequestupdates.json").json()
    assert [u for u in updates if u["update_id"] == update_id] == []  # no text: no public entry
    staff = staff_view(client, request_id)
    assert staff["updates"][-1]["source"] == "open311"


@pytest.mark.usefixtures("catalogue")
def test_bad_fixmystreet_updates_get_open311_errors(client: TestClient) -> None:
    request_id = submitted(client)
    cases: list[tuple[list[tuple[str, str]], int, str]] = [
        (fms_update(str(uuid.uuid4())), 404, "service_request_id: no such service request"),
        (fms_update("not-an-id"), 404, "service_request_id: no such service request"),
        (
            [(k, v) for k, v in fms_update(request_id) if k != "service_request_id"],
            400,
            "service_request_id: required",
        ),
        (fms_update(request_id, status="MADE_UP"), 400, "status: must be one of"),
        (fms_update(request_id, email="not an email"), 400, "email: must be an email address"),
        (fms_update(request_id, description="nul \x00"), 400, "description: at most"),
        (fms_update(request_id, updated_datetime="yesterday"), 400, "updated_datetime: must be"),
        (fms_update(request_id, media_url="javascript:x"), 400, "media_url: must be"),
        (
            [(k, v) for k, v in fms_update(request_id, description="") if k != "media_url"],
            400,
            "description: required",
        ),
    ]
    for form, status, description in cases:
        for fmt in ("xml", "json"):
            refused = post_update(client, form, fmt)
            assert refused.status_code == status, (description, refused.text)
            errors = xml_errors(refused) if fmt == "xml" else json_errors(refused)
            text = errors[0][1] if fmt == "xml" else errors[0]["description"]
            assert text.startswith(description), errors
            assert not any(p in refused.text for p in PERSONAL)
    assert len(staff_view(client, request_id)["updates"]) == 1

    anonymous = client.post(
        f"{BASE}/servicerequestupdates.xml",
        content=urlencode(fms_update(request_id)).encode(),
        headers={"content-type": "application/x-www-form-urlencoded", **ANONYMOUS},
    )
    assert anonymous.status_code == 403
    assert xml_errors(anonymous)[0][0] == "403"


def test_a_private_request_takes_no_update(client: TestClient) -> None:
    publish(client, FLY_TIPPING)
    own = client.post(
        "/api/v1/service-requests",
        json={
            "service_code": "fly-tipping",
            "lat": 52.04,
            "long": -0.76,
            "attributes": {"waste_type": ["tyres"]},
        },
        headers=identity_headers(*CITIZEN),
    )
    assert own.status_code == 201, own.text
    refused = post_update(client, fms_update(own.json()["id"]))
    assert refused.status_code == 404


# -- item 13: the service list as FixMyStreet reads it ---------------------------------------

STREET_LIGHT: dict[str, Any] = {
    "name": "Report a street light fault",
    "service_code": "street-light",
    "description": "A light that is out, or on all day",
    "keywords": ["private", "waste_only", "lights, lamps", " staff "],
    "groups": ["Streets", "Lighting", "Night-time"],
    "attributes": [
        {
            "code": "fixmystreet_id",
            "order": 0,
            "description": "FixMyStreet's id",
            "automated": "server_set",
            "variable": False,
        },
        {
            "code": "asset_id",
            "order": 0,
            "description": "The lamp post",
            "automated": "hidden_field",
            "protected": True,
        },
        {
            "code": "fault",
            "order": 5,
            "description": "What is wrong?",
            "required": True,
            "datatype": "singlevaluelist",
            "values": [{"key": "out", "name": "Out"}, {"key": "day", "name": "On all day"}],
        },
    ],
}


def test_groups_keywords_automated_protected_and_order(client: TestClient) -> None:
    publish(client, STREET_LIGHT)
    publish(
        client,
        {
            **STREET_LIGHT,
            "name": "No groups",
            "service_code": "nogroups",
            "groups": [],
            "keywords": [],
        },
    )

    [service, bare] = sorted(
        client.get(f"{BASE}/services.json").json(),
        key=lambda s: s["service_code"] != "street-light",
    )
    assert service["groups"] == ["Streets", "Lighting", "Night-time"]
    assert service["group"] == "Streets"  # kept: clients that read one group
    # FixMyStreet: split /,/ — private and waste_only must come out exactly.
    assert service["keywords"].split(",") == ["private", "waste_only", "lights  lamps", "staff"]
    assert "groups" not in bare and bare["group"] == "" and bare["keywords"] == ""

    xml = ET.fromstring(client.get(f"{BASE}/services.xml").content)
    [light] = [s for s in xml.findall("service") if s.findtext("service_code") == "street-light"]
    assert [g.text for g in light.findall("groups/group")] == ["Streets", "Lighting", "Night-time"]
    assert light.findtext("group") == "Streets"

    definition = client.get(f"{BASE}/services/street-light.json").json()["attributes"]
    assert [(a["code"], a["order"]) for a in definition] == [
        ("asset_id", 1),
        ("fixmystreet_id", 2),
        ("fault", 3),
    ]
    assert definition[0]["automated"] == "hidden_field" and definition[0]["protected"] is True
    assert definition[1]["automated"] == "server_set" and "protected" not in definition[1]
    assert "automated" not in definition[2] and "protected" not in definition[2]
    xml_definition = ET.fromstring(client.get(f"{BASE}/services/street-light.xml").content)
    first = xml_definition.find("attributes/attribute")
    assert first is not None
    assert (first.findtext("automated"), first.findtext("protected"), first.findtext("order")) == (
        "hidden_field",
        "true",
        "1",
    )

    bad = client.post(
        "/api/v1/services",
        json={
            **STREET_LIGHT,
            "service_code": "bad",
            "name": "Bad",
            "attributes": [{**STREET_LIGHT["attributes"][0], "automated": "sometimes"}],
        },
    )
    assert bad.status_code == 422


@pytest.mark.usefixtures("catalogue")
def test_an_empty_status_is_the_same_as_none(client: TestClient) -> None:
    submitted(client)
    every = client.get(f"{BASE}/requests.json").json()
    assert len(every) == 1
    for params in ({"status": ""}, {"status": "", "service_code": "", "start_date": ""}):
        r = client.get(f"{BASE}/requests.json", params=params)
        assert r.status_code == 200, r.text
        assert r.json() == every
    assert client.get(f"{BASE}/requests.json", params={"status": "closed"}).json() == []
    assert client.get(f"{BASE}/requests.json", params={"status": "shut"}).status_code == 400
