"""The admin API for API keys (``/api/v1/admin/api-keys``), as the gateway mounts it: the
caller's Principal arrives in ``scope["mk.principal"]``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth import Authenticator, AuthFailed
from gateway.auth.admin import PRINCIPAL_SCOPE_KEY, create_admin_app
from gateway.auth.testing import auth_settings, running_authenticator
from gateway.routes import Route
from servicekit.identity import AuthMethod, Principal, Role

URL = "/api/v1/admin/api-keys"
ROUTE = Route("/api/v1/events", "citizen-services")
ADMIN = Principal(
    subject="admin-dev-1", roles=frozenset({Role.ADMIN, Role.STAFF}), method=AuthMethod.JWT
)
STAFF = Principal(subject="staff-dev-1", roles=frozenset({Role.STAFF}), method=AuthMethod.JWT)


class WithPrincipal:
    """What the gateway does: put the authenticated caller into the ASGI scope."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.principal: Principal | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.principal is not None:
            scope = {**scope, PRINCIPAL_SCOPE_KEY: self.principal}
        await self.app(scope, receive, send)


@pytest.fixture
async def auth(tmp_path: Path) -> AsyncIterator[Authenticator]:
    async with running_authenticator(auth_settings(f"sqlite:///{tmp_path}/g.sqlite3")) as a:
        yield a


@pytest.fixture
async def admin_api(auth: Authenticator) -> AsyncIterator[tuple[httpx.AsyncClient, WithPrincipal]]:
    app = WithPrincipal(create_admin_app(auth))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as client:
        yield client, app


async def test_anonymous_is_401_and_non_admins_403(admin_api: Any) -> None:
    client, app = admin_api
    for method, path in (
        ("GET", URL),
        ("POST", URL),
        ("GET", f"{URL}/abcdefgh"),
        ("DELETE", f"{URL}/abcdefgh"),
    ):
        app.principal = None
        resp = await client.request(method, path, json={"name": "x"})
        assert resp.status_code == 401, (method, path)
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.headers["www-authenticate"] == 'Bearer realm="mk-digital"'
        app.principal = STAFF
        resp = await client.request(method, path, json={"name": "x"})
        assert resp.status_code == 403
        assert resp.json()["status"] == 403 and resp.json()["required_roles"] == ["admin"]
    # A partner's API key is not enough either.
    app.principal = Principal(
        subject="apikey:abcdefgh",
        roles=frozenset({Role.PARTNER}),
        method=AuthMethod.API_KEY,
        key_id="abcdefgh",
    )
    assert (await client.get(URL)).status_code == 403


async def test_create_list_read_revoke(admin_api: Any, auth: Authenticator) -> None:
    client, app = admin_api
    app.principal = ADMIN
    resp = await client.post(URL, json={"name": "FixMyStreet MK", "scopes": ["open311"]})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    key_id, key = body["id"], body["key"]
    assert resp.headers["location"] == f"{URL}/{key_id}"
    assert resp.headers["cache-control"] == "no-store"
    assert body["role"] == "partner" and body["scopes"] == ["open311"]
    assert body["created_by"] == "admin-dev-1" and body["revoked_at"] is None

    # The key works...
    principal = await auth.authenticate({"x-api-key": key}, "", ROUTE)
    assert principal.key_id == key_id and principal.roles == {Role.PARTNER}

    # ...and is never shown again: not in the list, not in the item.
    listed = await client.get(URL)
    assert listed.status_code == 200
    assert [k["id"] for k in listed.json()["items"]] == [key_id]
    item = await client.get(resp.headers["location"])
    assert item.status_code == 200 and item.json()["name"] == "FixMyStreet MK"
    for text in (listed.text, item.text):
        assert key not in text and key.split("_", 2)[2] not in text
        assert "secret" not in text and "hash" not in text and '"key"' not in text

    # Revoke: 204, idempotent, and the key stops working at once on this gateway.
    assert (await client.delete(f"{URL}/{key_id}")).status_code == 204
    assert (await client.delete(f"{URL}/{key_id}")).status_code == 204
    revoked = (await client.get(f"{URL}/{key_id}")).json()
    assert revoked["revoked_at"] is not None and revoked["revoked_by"] == "admin-dev-1"
    with pytest.raises(AuthFailed, match="revoked"):
        await auth.authenticate({"x-api-key": key}, "", ROUTE)
    active = await client.get(URL, params={"include_revoked": "false"})
    assert active.json()["items"] == []


async def test_admin_role_keys_and_validation(admin_api: Any) -> None:
    client, app = admin_api
    app.principal = ADMIN
    resp = await client.post(URL, json={"name": "ops", "role": "admin"})
    assert resp.status_code == 201 and resp.json()["role"] == "admin"
    for bad in (
        {"name": ""},
        {"name": "x", "role": "staff"},
        {"name": "x", "extra": 1},
        {"name": "x", "scopes": ["NOT OK"]},
        {},
    ):
        resp = await client.post(URL, json=bad)
        assert resp.status_code == 422, bad
        assert resp.headers["content-type"] == "application/problem+json"
    missing = await client.get(f"{URL}/nokey000")
    assert missing.status_code == 404 and missing.json()["title"] == "Not found"
    assert (await client.delete(f"{URL}/nokey000")).status_code == 404


async def test_openapi_declares_the_security_requirements(auth: Authenticator) -> None:
    spec = create_admin_app(auth).openapi()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["bearer"]["description"],
    }
    assert schemes["apiKey"]["in"] == "header" and schemes["apiKey"]["name"] == "X-API-Key"
    operations = [op for item in spec["paths"].values() for op in item.values()]
    assert set(spec["paths"]) == {URL, URL + "/{key_id}"}
    assert len(operations) == 4
    for op in operations:
        assert op["security"] == [{"bearer": []}, {"apiKey": []}]
    created = spec["paths"][URL]["post"]["responses"]["201"]
    assert "key" in str(created) or "ApiKeyCreated" in str(created)
