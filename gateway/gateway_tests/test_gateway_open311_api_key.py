"""Open311's ``api_key`` stops at the gateway (finding 10): it used to travel on to
citizen-services in the query string or the form body and land in its traces
(``http.url``). The upstream sees every other parameter byte for byte, and a form body
without the field, with a ``Content-Length`` to match."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from gateway.auth import AuthSettings
from gateway.auth.credentials import open311_credentials, without_open311_key
from gateway.config import GatewaySettings
from gateway.devcreds import ensure_dev_credentials
from gateway.limits import LimitSettings
from gateway.main import create_app
from servicekit.testing import running_app

from .conftest import TEST_ROUTES, Upstream, closed_url

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    auth_db = f"sqlite:///{tmp_path}/gateway.sqlite3"
    creds = await ensure_dev_credentials(tmp_path, AuthSettings(database_url=auth_db))
    async with AsyncExitStack() as stack:
        upstream = await stack.enter_async_context(running_app(Upstream("citizen-services")))
        app = create_app(
            GatewaySettings(
                citizen_services_url=upstream,
                inclusion_url=closed_url(),
                notifications_url=closed_url(),
            ),
            routes=TEST_ROUTES,
            limit_settings=LimitSettings(rate_limits_enabled=False),
            auth_settings=AuthSettings(database_url=auth_db),
        )
        url = await stack.enter_async_context(running_app(app))
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=10))
        yield client, creds.values["OPEN311_API_KEY"]


def header(seen: dict[str, object], name: str) -> str | None:
    return next((v for k, v in seen["headers"] if k == name), None)  # type: ignore[attr-defined]


async def test_the_query_string_key_is_not_forwarded(
    gateway: tuple[httpx.AsyncClient, str],
) -> None:
    client, key = gateway
    r = await client.get(
        f"/open311/v2/requests.json?jurisdiction_id=mk&api_key={key}&status=open&api%5Fkey=" + key
    )
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["query_string"] == "jurisdiction_id=mk&status=open"
    assert key not in r.text


async def test_the_form_field_is_not_forwarded(gateway: tuple[httpx.AsyncClient, str]) -> None:
    client, key = gateway
    body = f"service_code=pothole&api_key={key}&lat=52.04&description=Big+hole".encode()
    r = await client.post("/open311/v2/requests.json", headers=FORM, content=body)
    assert r.status_code == 200, r.text
    seen = r.json()
    expected = b"service_code=pothole&lat=52.04&description=Big+hole"
    assert seen["body_sha256"] == hashlib.sha256(expected).hexdigest()
    assert seen["body_size"] == len(expected)
    assert header(seen, "content-length") == str(len(expected))
    assert key not in r.text

    # The key in a header: a stray api_key field in the form is dropped all the same.
    r = await client.post(
        "/open311/v2/requests.json",
        content=b"a=1&api_key=mk_x_y",
        headers={**FORM, "X-API-Key": key},
    )
    assert r.status_code == 200, r.text
    assert r.json()["body_sha256"] == hashlib.sha256(b"a=1").hexdigest()


def _multipart(*parts: tuple[str, bytes, str | None]) -> bytes:
    out = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--B0undary\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += value + b"\r\n"
    return out + b"--B0undary--\r\n"


MULTIPART = {"content-type": 'multipart/form-data; boundary="B0undary"'}


def _subject(seen: dict[str, object]) -> str:
    """The subject of the identity assertion the upstream received (read, not verified)."""
    payload = str(header(seen, "x-mk-identity")).split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims.get("sub", ""))


async def test_the_multipart_field_authenticates_and_is_not_forwarded(
    gateway: tuple[httpx.AsyncClient, str],
) -> None:
    """FixMyStreet posts photos as multipart/form-data with ``api_key`` among the fields."""
    client, key = gateway
    photo = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 64  # binary, CRLFs included
    body = _multipart(
        ("service_code", b"pothole", None),
        ("api_key", key.encode(), None),
        ("attribute[uprn]", b"25032817", None),
        ("photo1", photo, "1.0.full.jpeg"),
    )
    r = await client.post("/open311/v2/requests.xml", headers=MULTIPART, content=body)
    assert r.status_code == 200, r.text
    seen = r.json()
    expected = _multipart(
        ("service_code", b"pothole", None),
        ("attribute[uprn]", b"25032817", None),
        ("photo1", photo, "1.0.full.jpeg"),
    )
    assert seen["body_sha256"] == hashlib.sha256(expected).hexdigest()
    assert header(seen, "content-length") == str(len(expected))
    assert _subject(seen).startswith("apikey:")  # the key authenticated the caller

    # A wrong key in the multipart body is Open311's 403, as in a form-encoded one.
    wrong = _multipart(("api_key", b"mk_not_a_key", None), ("photo1", photo, "p.jpeg"))
    r = await client.post("/open311/v2/requests.xml", headers=MULTIPART, content=wrong)
    assert r.status_code == 403, r.text


async def test_other_routes_keep_their_api_key_parameter(
    gateway: tuple[httpx.AsyncClient, str],
) -> None:
    client, _ = gateway
    r = await client.get("/api/v1/services?api_key=abc&q=x")
    assert r.json()["query_string"] == "api_key=abc&q=x"  # not a credential there


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (b"", b""),
        (b"a=1&b=2", b"a=1&b=2"),
        (b"api_key=x", b""),
        (b"a=1&api_key=x", b"a=1"),
        (b"api%5Fkey=x&a=%41", b"a=%41"),
        (b"api_keys=1&api_key", b"api_keys=1"),
        (b"a=api_key&b=1", b"a=api_key&b=1"),
        (b"api+key=1", b"api+key=1"),
    ],
)
def test_without_open311_key(given: bytes, kept: bytes) -> None:
    assert without_open311_key(given) == kept


@pytest.mark.parametrize(
    ("given", "kept", "keys"),
    [
        # Unquoted names, as some clients write them; any header case.
        (
            b"--B0undary\r\ncontent-disposition: form-data; name=api_key\r\n\r\nmk_1\r\n"
            b"--B0undary\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--B0undary--\r\n",
            b"--B0undary\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--B0undary--\r\n",
            ["mk_1"],
        ),
        # A file whose *filename* is api_key is not the field.
        (
            b'--B0undary\r\nContent-Disposition: form-data; name="f"; filename="api_key"\r\n\r\n'
            b"x\r\n--B0undary--\r\n",
            None,
            [],
        ),
        # Not multipart at all: nothing found, nothing changed.
        (b"api_key=mk_1", None, []),
    ],
)
def test_multipart_api_key_parts(given: bytes, kept: bytes | None, keys: list[str]) -> None:
    content_type = "multipart/form-data; boundary=B0undary"
    assert without_open311_key(given, content_type) == (given if kept is None else kept)
    found = open311_credentials("", given, content_type)
    assert [c.value for c in found] == keys
    # Without a boundary the body is left alone (the service answers it 400).
    assert without_open311_key(given, "multipart/form-data") == given
