"""Bearer JWTs: what is accepted, what is refused and why (without echoing the token)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from gateway.auth import Authenticator, AuthFailed, AuthSettings, jwks
from gateway.auth.devissuer import DEV_AUDIENCE, DEV_ISSUER, DevIssuer, ensure_dev_issuer
from gateway.auth.testing import JwksServer, auth_settings, running_authenticator
from gateway.auth.tokens import claim_at, roles_from
from gateway.routes import AuthMode, Route
from servicekit.identity import ANONYMOUS, AuthMethod, Role
from servicekit.testing import free_port, running_app

ROUTE = Route("/api/v1/things", "citizen-services")
UPSTREAM_ROUTE = Route("/v2", "notifications", auth=AuthMode.UPSTREAM)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def read_bytes(path: Path) -> bytes:
    return path.read_bytes()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def issuer(tmp_path: Path) -> DevIssuer:
    return ensure_dev_issuer(tmp_path / "dev-issuer")


@pytest.fixture
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks_file(tmp_path: Path, issuer: DevIssuer, rsa_key: rsa.RSAPrivateKey) -> Path:
    """The dev issuer's ES256 key and an RS256 key ("rsa-1") in one JWKS file."""
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key()))
    rsa_jwk.update(kid="rsa-1", use="sig", alg="RS256")
    document = json.loads(issuer.jwks_path.read_text())
    document["keys"].append(rsa_jwk)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(document))
    return path


@pytest.fixture
async def auth(tmp_path: Path, jwks_file: Path) -> AsyncIterator[Authenticator]:
    settings = auth_settings(f"sqlite:///{tmp_path}/gateway.sqlite3", jwks_file=jwks_file)
    async with running_authenticator(settings) as authenticator:
        yield authenticator


async def refused(
    auth: Authenticator, token: str, *, status: int = 401, route: Route = ROUTE
) -> AuthFailed:
    with pytest.raises(AuthFailed) as caught:
        await auth.authenticate(bearer(token), "", route)
    failure = caught.value
    assert failure.status == status
    # Nothing of the token comes back to the caller.
    for part in token.split("."):
        if len(part) > 8:
            assert part not in failure.detail and part not in failure.title
    if status == 401:
        assert failure.www_authenticate == 'Bearer realm="mk-digital", error="invalid_token"'
    return failure


async def test_a_good_es256_token_gives_its_subject_and_roles(
    auth: Authenticator, issuer: DevIssuer
) -> None:
    token = issuer.mint("staff-7", [Role.STAFF], scope="catalogue:write reports")
    principal = await auth.authenticate(bearer(token), "", ROUTE)
    assert principal.subject == "staff-7"
    assert principal.roles == {Role.STAFF}
    assert principal.scopes == {"catalogue:write", "reports"}
    assert principal.method is AuthMethod.JWT and principal.key_id is None


async def test_a_good_rs256_token(auth: Authenticator, rsa_key: rsa.RSAPrivateKey) -> None:
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": DEV_ISSUER,
            "aud": DEV_AUDIENCE,
            "sub": "u-1",
            "exp": now + 60,
            "roles": ["citizen", "unknown-role"],
        },
        rsa_key,
        algorithm="RS256",
        headers={"kid": "rsa-1"},
    )
    principal = await auth.authenticate(bearer(token), "", ROUTE)
    assert principal.subject == "u-1" and principal.roles == {Role.CITIZEN}


async def test_no_credentials_is_anonymous(auth: Authenticator) -> None:
    assert await auth.authenticate({}, "", ROUTE) is ANONYMOUS


async def test_expired_token(auth: Authenticator, issuer: DevIssuer) -> None:
    token = issuer.mint("c-1", ["citizen"], ttl_seconds=-120)
    failure = await refused(auth, token)
    assert "token expired" in failure.detail


async def test_leeway_accepts_a_token_expired_a_moment_ago(
    auth: Authenticator, issuer: DevIssuer
) -> None:
    token = issuer.mint("c-1", ["citizen"], ttl_seconds=-5)
    assert (await auth.authenticate(bearer(token), "", ROUTE)).subject == "c-1"


async def test_not_yet_valid_token(auth: Authenticator, issuer: DevIssuer) -> None:
    token = issuer.mint("c-1", ["citizen"], nbf=int(time.time()) + 600)
    assert "not valid yet" in (await refused(auth, token)).detail


async def test_wrong_audience(auth: Authenticator, issuer: DevIssuer) -> None:
    token = issuer.mint("c-1", ["citizen"], audience="another-council")
    assert "not meant for this platform" in (await refused(auth, token)).detail


async def test_wrong_issuer(auth: Authenticator, issuer: DevIssuer) -> None:
    token = issuer.mint("c-1", ["citizen"], issuer="https://evil.example")
    assert "trusted issuer" in (await refused(auth, token)).detail


async def test_bad_signature(auth: Authenticator, issuer: DevIssuer) -> None:
    token = issuer.mint("c-1", ["citizen"])
    header, payload, _ = token.split(".")
    forged_claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged_claims["roles"] = ["admin"]
    forged = f"{header}.{b64(json.dumps(forged_claims).encode())}.{token.split('.')[2]}"
    assert "signature" in (await refused(auth, forged)).detail


async def test_signed_by_another_key_with_the_same_kid(
    auth: Authenticator, issuer: DevIssuer
) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    token = jwt.encode(
        {"iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "sub": "x", "exp": now + 60, "roles": ["admin"]},
        other,
        algorithm="ES256",
        headers={"kid": issuer.kid},
    )
    assert "signature" in (await refused(auth, token)).detail


async def test_unknown_kid(auth: Authenticator) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(
        {
            "iss": DEV_ISSUER,
            "aud": DEV_AUDIENCE,
            "sub": "x",
            "exp": int(time.time()) + 60,
            "roles": ["admin"],
        },
        other,
        algorithm="ES256",
        headers={"kid": "nobody"},
    )
    assert "unknown key" in (await refused(auth, token)).detail


async def test_alg_none_is_refused(auth: Authenticator) -> None:
    claims = {
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "sub": "x",
        "exp": int(time.time()) + 60,
        "roles": ["admin"],
    }
    for alg in ("none", "None", "NONE"):
        token = (
            f"{b64(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}."
            f"{b64(json.dumps(claims).encode())}."
        )
        assert "algorithm" in (await refused(auth, token)).detail


async def test_hs256_signed_with_the_public_key_is_refused(
    auth: Authenticator, issuer: DevIssuer, jwks_file: Path
) -> None:
    """The classic key-confusion attack: HMAC keyed with the (public) verification key."""
    public_pem = issuer.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "sub": "x",
        "exp": int(time.time()) + 60,
        "roles": ["admin"],
    }
    for secret in (public_pem, read_bytes(jwks_file)):
        signing_input = (
            f"{b64(json.dumps({'alg': 'HS256', 'kid': issuer.kid}).encode())}."
            f"{b64(json.dumps(claims).encode())}"
        )
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assert "algorithm" in (await refused(auth, f"{signing_input}.{b64(signature)}")).detail


async def test_es256_header_on_an_rsa_key_is_refused(
    auth: Authenticator, issuer: DevIssuer
) -> None:
    token = issuer.mint("x", ["admin"])
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    header["kid"] = "rsa-1"  # point an ES256 signature at the RSA key
    _, payload, signature = token.split(".")
    await refused(auth, f"{b64(json.dumps(header).encode())}.{payload}.{signature}")


async def test_settings_refuse_symmetric_algorithms() -> None:
    with pytest.raises(ValueError, match="public-key"):
        AuthSettings(jwt_algorithms=["HS256"])
    with pytest.raises(ValueError, match="public-key"):
        AuthSettings(jwt_algorithms=["none"])
    with pytest.raises(ValueError, match="ISSUER"):
        AuthSettings(jwt_jwks_file=Path("x.json"), jwt_issuer=None, jwt_audience=None)


async def test_algorithms_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_JWT_ALGORITHMS", "RS256, PS256")
    assert AuthSettings().jwt_algorithms == ["RS256", "PS256"]
    monkeypatch.setenv("GATEWAY_JWT_ALGORITHMS", '["ES256"]')
    assert AuthSettings().jwt_algorithms == ["ES256"]


async def test_sub_is_required_and_opaque(auth: Authenticator, issuer: DevIssuer) -> None:
    token = issuer.mint("x", ["citizen"])
    claims = jwt.decode(token, options={"verify_signature": False})
    del claims["sub"]
    no_sub = jwt.encode(claims, issuer.private_key, algorithm="ES256", headers={"kid": issuer.kid})
    assert "'sub'" in (await refused(auth, no_sub)).detail
    email = issuer.mint("jane.doe@example.org", ["citizen"])
    failure = await refused(auth, email)
    assert "opaque" in failure.detail and "jane" not in failure.detail


async def test_no_recognised_role_is_forbidden(auth: Authenticator, issuer: DevIssuer) -> None:
    for roles in ([], ["superuser"], ["anonymous"]):
        failure = await refused(auth, issuer.mint("x", roles), status=403)
        assert failure.www_authenticate and "insufficient_scope" in failure.www_authenticate
    no_claim = issuer.mint("x", [])
    claims = jwt.decode(no_claim, options={"verify_signature": False})
    del claims["roles"]
    await refused(
        auth,
        jwt.encode(claims, issuer.private_key, algorithm="ES256", headers={"kid": issuer.kid}),
        status=403,
    )


async def test_malformed_tokens_and_headers(auth: Authenticator) -> None:
    for token in ("", "abc", "a.b.c", "x" * 20_000):
        await refused(auth, token)
    with pytest.raises(AuthFailed) as caught:
        await auth.authenticate({"authorization": "Basic dXNlcjpwYXNz"}, "", ROUTE)
    assert caught.value.status == 401 and "dXNlcjpwYXNz" not in caught.value.detail


async def test_upstream_routes_never_read_authorization(
    auth: Authenticator, issuer: DevIssuer
) -> None:
    # GOV.UK Notify's own JWT (not ours, not valid here) passes as anonymous...
    assert await auth.authenticate(bearer("not.our.token"), "", UPSTREAM_ROUTE) is ANONYMOUS
    # ...and so does a valid platform token: Authorization belongs to the service there.
    token = issuer.mint("staff-1", ["staff"])
    assert await auth.authenticate(bearer(token), "", UPSTREAM_ROUTE) is ANONYMOUS


def test_roles_claim_paths() -> None:
    claims: dict[str, Any] = {
        "roles": ["staff"],
        "realm_access": {"roles": ["admin", "x"]},
        "https://mk.example/roles": "citizen partner",
        "groups": "Staff,Admin",
    }
    assert roles_from(claim_at(claims, "roles")) == {Role.STAFF}
    assert roles_from(claim_at(claims, "realm_access.roles")) == {Role.ADMIN}
    assert roles_from(claim_at(claims, "https://mk.example/roles")) == {Role.CITIZEN, Role.PARTNER}
    assert roles_from(claim_at(claims, "groups")) == {Role.STAFF, Role.ADMIN}
    assert claim_at(claims, "realm_access.missing") is None
    assert claim_at(claims, "roles.deeper") is None


async def test_keycloak_style_roles_claim(
    tmp_path: Path, jwks_file: Path, issuer: DevIssuer
) -> None:
    settings = auth_settings(
        f"sqlite:///{tmp_path}/kc.sqlite3",
        jwks_file=jwks_file,
        jwt_roles_claim="realm_access.roles",
    )
    async with running_authenticator(settings) as auth:
        token = issuer.mint("kc-user", [], realm_access={"roles": ["staff", "offline_access"]})
        principal = await auth.authenticate(bearer(token), "", ROUTE)
        assert principal.roles == {Role.STAFF}
        await refused(auth, issuer.mint("kc-user", ["staff"]), status=403)


async def test_jwks_file_is_reread_when_the_key_rotates(tmp_path: Path) -> None:
    directory = tmp_path / "issuer"
    first = ensure_dev_issuer(directory)
    settings = auth_settings(f"sqlite:///{tmp_path}/g.sqlite3", jwks_file=first.jwks_path)
    async with running_authenticator(settings) as auth:
        assert (await auth.authenticate(bearer(first.mint("a", ["staff"])), "", ROUTE)).subject
        (directory / "signing-key.pem").unlink()
        second = ensure_dev_issuer(directory)
        assert second.kid != first.kid
        principal = await auth.authenticate(bearer(second.mint("b", ["staff"])), "", ROUTE)
        assert principal.subject == "b"


async def test_jwks_url(tmp_path: Path, issuer: DevIssuer) -> None:
    server = JwksServer(json.loads(issuer.jwks_path.read_text()))
    async with running_app(server) as url:
        settings = auth_settings(
            f"sqlite:///{tmp_path}/g.sqlite3",
            jwks_url=f"{url}/realms/mk/protocol/openid-connect/certs",
            jwt_jwks_cache_seconds=0.5,
        )
        async with running_authenticator(settings) as auth:
            for n in range(5):
                token = issuer.mint(f"user-{n}", ["citizen"])
                assert (await auth.authenticate(bearer(token), "", ROUTE)).subject == f"user-{n}"
            assert server.requests == 1  # fetched once, then cached
            # The provider fails after the cache expired: the last good keys keep working.
            server.status = 500
            await asyncio.sleep(0.6)
            token = issuer.mint("later", ["citizen"])
            assert (await auth.authenticate(bearer(token), "", ROUTE)).subject == "later"
            assert server.requests == 2


async def test_jwks_url_key_rotation(
    tmp_path: Path, issuer: DevIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jwks, "REFRESH_COOLDOWN_SECONDS", 0.0)
    server = JwksServer(json.loads(issuer.jwks_path.read_text()))
    async with running_app(server) as url:
        settings = auth_settings(f"sqlite:///{tmp_path}/g.sqlite3", jwks_url=f"{url}/jwks")
        async with running_authenticator(settings) as auth:
            assert await auth.authenticate(bearer(issuer.mint("a", ["staff"])), "", ROUTE)
            new = ensure_dev_issuer(tmp_path / "rotated")
            server.document = {
                "keys": [*server.document["keys"], *json.loads(new.jwks_path.read_text())["keys"]]
            }
            # A token from the new key makes the gateway fetch the JWKS again, at once.
            assert (
                await auth.authenticate(bearer(new.mint("b", ["staff"])), "", ROUTE)
            ).subject == "b"
            assert server.requests == 2


async def test_jwks_url_unreachable_from_the_start(tmp_path: Path, issuer: DevIssuer) -> None:
    settings = auth_settings(
        f"sqlite:///{tmp_path}/g.sqlite3",
        jwks_url=f"http://127.0.0.1:{free_port()}/jwks",
        jwt_jwks_timeout_seconds=1,
    )
    async with running_authenticator(settings) as auth:
        failure = await refused(auth, issuer.mint("x", ["citizen"]), status=503)
        assert failure.www_authenticate is None


async def test_no_identity_provider_configured(tmp_path: Path, issuer: DevIssuer) -> None:
    settings = auth_settings(f"sqlite:///{tmp_path}/g.sqlite3", jwt_issuer=None, jwt_audience=None)
    async with running_authenticator(settings) as auth:
        assert "no identity provider" in (await refused(auth, issuer.mint("x", ["staff"]))).detail


async def test_a_missing_jwks_file_stops_the_start(tmp_path: Path) -> None:
    settings = auth_settings(f"sqlite:///{tmp_path}/g.sqlite3", jwks_file=tmp_path / "missing.json")
    with pytest.raises(RuntimeError, match="JWKS file"):
        async with running_authenticator(settings):
            pass
