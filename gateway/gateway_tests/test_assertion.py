"""The gateway's own assertion signer (``gateway.assertion``) makes exactly the token
``servicekit.identity.sign_assertion`` makes, which the services' verifier accepts; and the
gateway no longer runs PyJWT's encoder for each request."""

from __future__ import annotations

import uuid
from unittest import mock

import httpx
import jwt
import pytest

from gateway.assertion import AssertionSigner
from servicekit.identity import (
    ANONYMOUS,
    AssertionVerifier,
    AuthMethod,
    InvalidAssertion,
    Principal,
    Role,
    sign_assertion,
)
from servicekit.settings import DEV_SECRET

CITIZEN = Principal(subject="citizen-1", roles=frozenset({Role.CITIZEN}), method=AuthMethod.JWT)
PARTNER = Principal(
    subject="apikey:k1",
    roles=frozenset({Role.PARTNER, Role.STAFF}),
    scopes=frozenset({"b:write", "a:read"}),
    method=AuthMethod.API_KEY,
    key_id="k1",
)
PATH = "/api/v1/services/a%20b/é"


@pytest.mark.parametrize("principal", [CITIZEN, PARTNER, ANONYMOUS])
@pytest.mark.parametrize("request_id", ["req-1", 'odd "id" \\ é', None])
def test_the_token_is_byte_for_byte_pyjwts(principal: Principal, request_id: str | None) -> None:
    random = bytes(range(16))
    signer = AssertionSigner(DEV_SECRET, ttl=45, clock=lambda: 1_700_000_000.7)
    with (
        mock.patch("os.urandom", return_value=random),
        mock.patch("uuid.uuid4", return_value=uuid.UUID(bytes=random)),
        mock.patch("time.time", return_value=1_700_000_000.7),
    ):
        ours = signer.sign(
            principal, audience="citizen-services", method="GET", path=PATH, request_id=request_id
        )
        reference = sign_assertion(
            principal,
            DEV_SECRET,
            ttl=45,
            request_id=request_id,
            audience="citizen-services",
            method="GET",
            path=PATH,
        )
    assert ours == reference


def test_services_verify_it_once_for_its_request_only() -> None:
    signer = AssertionSigner(DEV_SECRET, ttl=60)
    verifier = AssertionVerifier(DEV_SECRET, "citizen-services")
    token = signer.sign(
        PARTNER, audience="citizen-services", method="POST", path=PATH, request_id="r1"
    )
    assert verifier.verify(token, method="POST", path=PATH) == PARTNER
    with pytest.raises(InvalidAssertion):  # replayed
        verifier.verify(token, method="POST", path=PATH)
    other = signer.sign(PARTNER, audience="citizen-services", method="POST", path=PATH)
    assert (
        jwt.decode(other, DEV_SECRET, algorithms=["HS256"], audience="citizen-services")["jti"]
        != jwt.decode(token, DEV_SECRET, algorithms=["HS256"], audience="citizen-services")["jti"]
    )
    with pytest.raises(InvalidAssertion):  # another path
        verifier.verify(other, method="POST", path=PATH + "x")
    with pytest.raises(InvalidAssertion):  # another service
        AssertionVerifier(DEV_SECRET, "notifications").verify(other, method="POST", path=PATH)
    with pytest.raises(InvalidAssertion):  # another secret
        AssertionVerifier("another secret of enough length!!", "citizen-services").verify(
            signer.sign(PARTNER, audience="citizen-services", method="POST", path=PATH),
            method="POST",
            path=PATH,
        )


def test_a_principal_whose_claims_changed_is_not_served_stale_claims() -> None:
    signer = AssertionSigner(DEV_SECRET, ttl=60)
    for roles in ({Role.CITIZEN}, {Role.STAFF}):
        principal = Principal(subject="s", roles=frozenset(roles), method=AuthMethod.JWT)
        token = signer.sign(principal, audience="a", method="GET", path="/")
        claims = jwt.decode(token, DEV_SECRET, algorithms=["HS256"], audience="a")
        assert claims["roles"] == sorted(r.value for r in roles)


async def test_the_gateway_signs_without_pyjwt_per_request(client: httpx.AsyncClient) -> None:
    with mock.patch.object(jwt, "encode", side_effect=AssertionError("PyJWT per request")):
        r = await client.get("/api/v1/services")
    assert r.status_code == 200
