"""The identity assertion the gateway adds names the upstream it goes to and the request
(method and raw path, as forwarded), with a fresh ``jti`` each time (finding 11)."""

from __future__ import annotations

import httpx
import jwt

from servicekit.identity import ASSERTION_HEADER, request_binding
from servicekit.settings import DEV_SECRET


def assertion_of(response: httpx.Response) -> dict[str, object]:
    seen = response.json()
    [token] = [v for k, v in seen["headers"] if k == ASSERTION_HEADER]
    claims: dict[str, object] = jwt.decode(
        token,
        DEV_SECRET,
        algorithms=["HS256"],
        audience=seen["upstream"],
        options={"verify_sub": False},
    )  # anonymous
    return claims


async def test_the_assertion_is_bound_to_the_upstream_and_the_request(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/api/v1/service-requests/a%20b", params={"page": "2"})
    assert first.status_code == 200
    claims = assertion_of(first)
    assert claims["aud"] == "citizen-services"
    assert claims["req"] == request_binding("GET", "/api/v1/service-requests/a%20b")
    again = assertion_of(await client.get("/api/v1/service-requests/a%20b"))
    assert again["jti"] != claims["jti"]

    other = await client.post("/api/v1/templates/x", json={})
    claims = assertion_of(other)
    assert claims["aud"] == "notifications"
    assert claims["req"] == request_binding("POST", "/api/v1/templates/x")


async def test_a_generated_request_id_is_the_same_everywhere(client: httpx.AsyncClient) -> None:
    """Without a usable X-Request-ID the gateway makes one up once: the assertion's ``rid``,
    the X-Request-ID the upstream gets and the one the client gets back are that one (the
    proxy used to make up a second one for the upstream and the client)."""
    for headers in ({}, {"X-Request-ID": "x" * 201}):
        r = await client.get("/api/v1/services", headers=headers)
        sent = [v for k, v in r.json()["headers"] if k == "x-request-id"]
        assert sent == [r.headers["x-request-id"]]
        assert assertion_of(r)["rid"] == r.headers["x-request-id"]
