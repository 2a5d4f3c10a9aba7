"""The authorisation matrix: every operation of the gateway's aggregated OpenAPI, called
through the gateway by every kind of caller, answers the status its declared roles imply;
identity headers forged by a client change nothing.

Expected, per operation and caller:
* bad credentials (an expired token, a token for another audience, a revoked API key): 401,
  wherever they are presented;
* an operation with ``x-roles``: 401 for anonymous callers, 403 for a caller with none of
  those roles (admins count as staff), and neither 401 nor 403 for the others;
* an operation with ``x-scopes`` as well: 403 for a caller (not an admin) whose API key
  lacks one of them — the Open311-only key on the partner webhooks, say;
* an operation without ``x-roles`` (public): neither 401 nor 403 for valid callers;
* GOV.UK Notify's ``/v2`` (security ``notifyJwt``; the gateway passes ``Authorization``
  through and the notifications service checks Notify's JWT): a valid Notify JWT is
  allowed; without an ``Authorization`` header 401, with any other bearer token (the
  platform's own, valid or not) 403 — both with Notify's ``AuthError`` body, never
  problem+json. A Notify JWT anywhere else is a refused credential (401); so is a revoked
  platform API key on /v2, which the gateway refuses itself (401 problem+json).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from notifications.devcreds import ensure_dev_notify
from notifications.domain.notify import split_api_key
from servicekit.identity import Principal, Role, sign_assertion

from .conftest import Platform

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

METHODS = ("get", "post", "put", "patch", "delete")
ROLES_OF = {
    "anonymous": set(),
    "citizen": {"citizen"},
    "other citizen": {"citizen"},
    "staff": {"staff"},
    "partner": {"partner"},
    "open311 partner": {"partner"},
    "admin": {"admin", "staff"},
}
#: The dev API keys' scopes (gateway.devcreds.DEV_KEYS); tokens carry none.
SCOPES_OF = {
    "partner": {"events:subscribe", "events:catalogue", "events:service-requests"},
    "open311 partner": {"open311"},
}
BAD_CREDENTIALS = ("expired token", "wrong audience", "revoked key")
NOTIFY_SCHEME = "notifyJwt"


def notify_headers(api_key: str) -> dict[str, str]:
    """A fresh Notify JWT (its ``iat`` must be within 30 seconds of the server's clock)."""
    service_id, secret = split_api_key(api_key)
    token = jwt.encode({"iss": service_id, "iat": int(time.time())}, secret, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def is_notify(operation: dict[str, Any]) -> bool:
    return any(NOTIFY_SCHEME in requirement for requirement in operation.get("security", ()))


def forged_headers() -> dict[str, str]:
    admin = Principal(subject="admin-forged", roles=frozenset({Role.ADMIN, Role.STAFF}))
    return {
        "X-MK-Identity": sign_assertion(admin, "a-secret-the-platform-does-not-use"),
        "X-MK-Principal": "admin",
        "X-User-Id": "admin-dev-1",
        "X-Roles": "admin,staff",
    }


async def callers(platform: Platform, client: httpx.AsyncClient) -> dict[str, dict[str, str]]:
    admin = platform.bearer("ADMIN_TOKEN")
    created = await client.post(
        "/api/v1/admin/api-keys",
        headers=admin,
        json={"name": "to be revoked", "role": "partner", "scopes": ["events:read"]},
    )
    assert created.status_code == 201, created.text
    revoked = created.json()
    assert (
        await client.delete(f"/api/v1/admin/api-keys/{revoked['id']}", headers=admin)
    ).status_code == 204
    issuer = platform.issuer
    return {
        "anonymous": {},
        "citizen": platform.bearer("CITIZEN_TOKEN"),
        "other citizen": platform.bearer("CITIZEN2_TOKEN"),
        "staff": platform.bearer("STAFF_TOKEN"),
        "partner": {"X-API-Key": platform.credentials["PARTNER_API_KEY"]},
        "open311 partner": {"X-API-Key": platform.credentials["OPEN311_API_KEY"]},
        "admin": admin,
        "expired token": {
            "Authorization": "Bearer "
            + issuer.mint("citizen-dev-1", ["citizen"], ttl_seconds=-3600)
        },
        "wrong audience": {
            "Authorization": "Bearer "
            + issuer.mint("staff-dev-1", ["staff"], audience="another-council-api")
        },
        "revoked key": {"X-API-Key": revoked["key"]},
    }


def expected(caller: str, operation: dict[str, Any], headers: dict[str, str]) -> str:
    if is_notify(operation):
        if caller == "notify":
            return "allowed"
        return "403" if "Authorization" in headers else "401"
    if caller in BAD_CREDENTIALS or caller == "notify":
        return "401"
    roles = set(operation.get("x-roles", []))
    if not roles:
        return "allowed"
    if caller == "anonymous":
        return "401"
    if not ROLES_OF[caller] & roles:
        return "403"
    scopes = set(operation.get("x-scopes", []))
    if "admin" not in ROLES_OF[caller] and not scopes <= SCOPES_OF.get(caller, set()):
        return "403"
    return "allowed"


def fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: ids.get(m.group(1), str(uuid.uuid4())), path)


async def test_every_operation_answers_every_caller_as_its_roles_say(platform: Platform) -> None:
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        spec = (await client.get("/openapi.json")).json()
        staff = platform.bearer("STAFF_TOKEN")
        service = (
            await client.post(
                "/api/v1/services", headers=staff, json={"name": "Apply for a blue badge"}
            )
        ).json()
        await client.post(f"/api/v1/services/{service['id']}/publish", headers=staff)
        key = (
            await client.post(
                "/api/v1/admin/api-keys",
                headers=platform.bearer("ADMIN_TOKEN"),
                json={"name": "matrix", "role": "partner"},
            )
        ).json()
        job = (
            await client.post(
                "/api/v1/services/import-jobs", headers=staff, json=[{"name": "Matrix import"}]
            )
        ).json()
        ids = {"service_id": service["id"], "key_id": key["id"], "job_id": job["id"]}
        who = await callers(platform, client)
        notify_key = (
            await ensure_dev_notify(platform.apps["notifications"].state.runtime.database.url)
        )["NOTIFY_TEST_API_KEY"]
        who["notify"] = {}  # a fresh Notify JWT for every request (below)

        operations = [
            (path, method, op)
            for path, item in sorted(spec["paths"].items())
            for method, op in item.items()
            if method in METHODS
        ]
        assert len(operations) >= 5, "the aggregated OpenAPI lost operations"
        assert any(op.get("x-roles") for _, _, op in operations)
        assert any(op.get("x-scopes") for _, _, op in operations), "x-scopes were lost"
        assert any(is_notify(op) for _, _, op in operations), "/v2 is not documented"
        # the staff listing of sent messages: staff and admins only
        assert set(spec["paths"]["/api/v1/messages"]["get"]["x-roles"]) == {"staff", "admin"}
        failures = []
        for path, method, operation in operations:
            url = fill(path, ids)
            body = {} if "requestBody" in operation else None
            for caller, headers in who.items():
                want = expected(caller, operation, headers)
                for forged in (False, True):
                    own = notify_headers(notify_key) if caller == "notify" else headers
                    sent = {**own, **(forged_headers() if forged else {})}
                    r = await client.request(method.upper(), url, headers=sent, json=body)
                    got = str(r.status_code)
                    ok = (got not in ("401", "403")) if want == "allowed" else got == want
                    if r.status_code >= 500:
                        ok = False
                    if (
                        ok
                        and got in ("401", "403")
                        and is_notify(operation)
                        and caller not in BAD_CREDENTIALS
                    ):
                        ok = r.headers.get("content-type") == "application/json" and [
                            e.get("error") for e in r.json().get("errors", [])
                        ] == ["AuthError"]
                    if not ok:
                        failures.append(
                            f"{method.upper()} {path} as {caller}"
                            f"{' (forged headers)' if forged else ''}: "
                            f"{got}, expected {want}"
                        )
        assert not failures, "\n".join(failures)
