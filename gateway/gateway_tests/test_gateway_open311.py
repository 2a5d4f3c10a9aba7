"""Every error the gateway answers itself on Open311 routes is in Open311's error shape, in
the format the path asks for (FixMyStreet reads XML): a bad ``api_key`` is the spec's 403, a
bad header credential stays a 401 with its challenge, and so are 413 and 503. Missing
credentials are the service's call."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest

from gateway.problems import open311_error_body

from .conftest import GatewayFactory

XML = "text/xml; charset=utf-8"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def xml_error(response: httpx.Response) -> tuple[str, str]:
    assert response.headers["content-type"] == XML, response.text
    root = ET.fromstring(response.content)
    assert root.tag == "errors"
    [error] = root.findall("error")
    return error.findtext("code") or "", error.findtext("description") or ""


@pytest.mark.parametrize(
    "path", ["/open311/v2/services.xml", "/open311/v2/requests/1.xml", "/open311/v2/discovery"]
)
async def test_a_bad_api_key_in_the_query_is_an_open311_403_in_xml(
    client: httpx.AsyncClient, path: str
) -> None:
    r = await client.get(path, params={"api_key": "mk_not_a_key"})
    assert r.status_code == 403
    code, description = xml_error(r)
    assert code == "403" and description.startswith("api_key")
    assert "mk_not_a_key" not in r.text
    assert "www-authenticate" not in r.headers


async def test_a_bad_api_key_is_json_for_json_paths(client: httpx.AsyncClient) -> None:
    r = await client.get("/open311/v2/requests.json", params={"api_key": "mk_nope"})
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/json"
    [error] = r.json()
    assert error["code"] == 403 and error["description"].startswith("api_key")


async def test_a_bad_api_key_in_a_form_body_is_an_open311_403(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/open311/v2/requests.xml",
        headers=FORM,
        content=b"service_code=pothole&api_key=mk_nope&lat=52.04",
    )
    assert r.status_code == 403
    assert xml_error(r)[0] == "403"


async def test_a_bad_header_credential_is_a_401_in_open311_shape(client: httpx.AsyncClient) -> None:
    r = await client.get("/open311/v2/services.json", headers={"X-API-Key": "mk_nope"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("ApiKey")
    assert r.json()[0]["code"] == 401
    r = await client.get("/open311/v2/services.xml", headers={"Authorization": "Bearer not-a-jwt"})
    assert r.status_code == 401 and xml_error(r)[0] == "401"


async def test_no_api_key_reaches_the_service(client: httpx.AsyncClient) -> None:
    r = await client.get("/open311/v2/services.xml")
    assert r.status_code == 200 and r.json()["upstream"] == "citizen-services"


async def test_other_routes_keep_problem_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/services", headers={"X-API-Key": "mk_nope"})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"


def test_error_bodies_escape_their_text() -> None:
    content_type, body = open311_error_body(400, "a <b> & c", "/open311/v2/x.xml")
    assert content_type.startswith(b"text/xml")
    assert b"a &lt;b&gt; &amp; c" in body
    assert ET.fromstring(body).findtext("error/description") == "a <b> & c"


async def test_a_form_too_large_to_authenticate_is_an_open311_413(
    client: httpx.AsyncClient,
) -> None:
    body = b"service_code=pothole&description=" + b"x" * (2 * 1024 * 1024)
    r = await client.post("/open311/v2/requests.xml", headers=FORM, content=body)
    assert r.status_code == 413
    assert xml_error(r)[0] == "413"


async def test_an_unreachable_service_is_an_open311_503(start_gateway: GatewayFactory) -> None:
    client = await start_gateway()  # citizen-services on a closed port
    r = await client.get("/open311/v2/services.json")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/json"
    [error] = r.json()
    assert error["code"] == 503 and "citizen-services" in error["description"]
    assert xml_error(await client.get("/open311/v2/services.xml"))[0] == "503"
    # elsewhere the same failure stays problem+json
    r = await client.get("/api/v1/services")
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
