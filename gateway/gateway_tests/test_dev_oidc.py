"""The dev OIDC provider (gateway.auth.devoidc): what a relying party may and may not do at
its token endpoint, and that the gateway serves it only in development or test."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from gateway.auth.devissuer import DEV_AUDIENCE, ensure_dev_issuer
from gateway.auth.devoidc import DevOidcRefused, dev_oidc_app, dev_oidc_mount
from gateway.auth.settings import AuthSettings
from gateway.auth.tokens import TokenVerifier
from gateway.config import GatewaySettings
from gateway.main import create_app
from servicekit.testing import free_port, running_app

SECRET = "a-test-client-secret-0123456789-abcdefghij"
REDIRECT = "http://127.0.0.1:9/auth/callback"


def _settings(tmp_path: Path, issuer_url: str) -> AuthSettings:
    issuer = ensure_dev_issuer(tmp_path / "dev-issuer")
    return AuthSettings(
        database_url=f"sqlite:///{tmp_path / 'gw.sqlite3'}",
        jwt_jwks_file=issuer.jwks_path,
        jwt_issuer=issuer_url,
        jwt_audience=DEV_AUDIENCE,
        dev_oidc_clients={"rp": {"redirect_uris": [REDIRECT], "secret": SECRET}},
    )


def _pkce() -> tuple[str, str]:
    verifier = "v" * 50
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def _code(client: httpx.AsyncClient, challenge: str, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": "rp",
        "redirect_uri": REDIRECT,
        "scope": "openid",
        "state": "s1",
        "nonce": "n1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    page = await client.get("/dev-issuer/authorize", params=params)
    assert page.status_code == 200 and "citizen-dev-1" in page.text
    assert "staff-dev-1" not in page.text  # this client is offered citizens only
    chosen = await client.post("/dev-issuer/authorize", data={**params, "subject": "citizen-dev-1"})
    assert chosen.status_code == 303
    location = urlsplit(chosen.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    answer = parse_qs(location.query)
    assert answer["state"] == ["s1"]
    return answer["code"][0]


async def test_code_pkce_client_auth_and_the_tokens(tmp_path: Path) -> None:
    port = free_port()
    issuer_url = f"http://127.0.0.1:{port}/dev-issuer"
    auth = _settings(tmp_path, issuer_url)
    gateway = create_app(GatewaySettings(environment="test", port=port), auth_settings=auth)
    verifier, challenge = _pkce()
    async with running_app(gateway, port=port) as url, httpx.AsyncClient(base_url=url) as client:
        meta = (await client.get("/dev-issuer/.well-known/openid-configuration")).json()
        assert meta["issuer"] == issuer_url
        assert meta["code_challenge_methods_supported"] == ["S256"]
        assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
        jwks = (await client.get("/dev-issuer/jwks.json")).json()

        # an unregistered redirect URI or no PKCE: refused on the page, never redirected
        bad = await client.get(
            "/dev-issuer/authorize",
            params={"client_id": "rp", "redirect_uri": "http://evil.example/cb"},
        )
        assert bad.status_code == 400
        no_pkce = await client.get(
            "/dev-issuer/authorize",
            params={
                "client_id": "rp",
                "redirect_uri": REDIRECT,
                "response_type": "code",
                "scope": "openid",
            },
        )
        assert no_pkce.status_code == 400 and "PKCE" in no_pkce.text

        form = {"grant_type": "authorization_code", "redirect_uri": REDIRECT, "client_id": "rp"}
        # wrong client secret
        code = await _code(client, challenge)
        wrong = await client.post(
            "/dev-issuer/token",
            data={**form, "code": code, "code_verifier": verifier, "client_secret": "nope"},
        )
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        # wrong PKCE verifier (the code is spent by the attempt)
        code = await _code(client, challenge)
        bad_pkce = await client.post(
            "/dev-issuer/token",
            data={**form, "code": code, "code_verifier": "w" * 50, "client_secret": SECRET},
        )
        assert bad_pkce.status_code == 400 and bad_pkce.json()["error"] == "invalid_grant"
        again = await client.post(
            "/dev-issuer/token",
            data={**form, "code": code, "code_verifier": verifier, "client_secret": SECRET},
        )
        assert again.json()["error"] == "invalid_grant"
        # the real thing, once
        code = await _code(client, challenge)
        good = await client.post(
            "/dev-issuer/token",
            data={**form, "code": code, "code_verifier": verifier, "client_secret": SECRET},
        )
        assert good.status_code == 200, good.text
        tokens = good.json()
        reused = await client.post(
            "/dev-issuer/token",
            data={**form, "code": code, "code_verifier": verifier, "client_secret": SECRET},
        )
        assert reused.json()["error"] == "invalid_grant"

    key = jwt.PyJWKSet.from_dict(jwks).keys[0]
    id_claims = jwt.decode(
        tokens["id_token"], key, algorithms=["ES256"], audience="rp", issuer=issuer_url
    )
    assert id_claims["sub"] == "citizen-dev-1" and id_claims["nonce"] == "n1"
    principal = await TokenVerifier(auth).verify(tokens["access_token"])
    assert principal.subject == "citizen-dev-1"


def test_not_mounted_for_a_jwks_file_that_is_not_the_dev_issuers(tmp_path: Path) -> None:
    issuer = ensure_dev_issuer(tmp_path / "dev-issuer")
    other = tmp_path / "elsewhere" / "jwks.json"
    other.parent.mkdir()
    other.write_text(issuer.jwks_path.read_text())
    settings = AuthSettings(
        jwt_jwks_file=other, jwt_issuer="http://127.0.0.1:1/dev-issuer", jwt_audience=DEV_AUDIENCE
    )
    assert dev_oidc_mount("test", settings) is None
    assert sorted(p.name for p in other.parent.iterdir()) == ["jwks.json"]  # nothing written
    mounted = settings.model_copy(update={"jwt_jwks_file": issuer.jwks_path})
    assert dev_oidc_mount("test", mounted) is not None
    assert dev_oidc_mount("production", mounted) is None


async def test_refused_outside_development(tmp_path: Path) -> None:
    issuer = ensure_dev_issuer(tmp_path / "dev-issuer")
    with pytest.raises(DevOidcRefused):
        dev_oidc_app(issuer, "http://127.0.0.1:1/dev-issuer", {}, environment="production")
    port = free_port()
    auth = _settings(tmp_path, f"http://127.0.0.1:{port}/dev-issuer")
    settings = GatewaySettings(
        environment="production", port=port, identity_secret="Zq8-vT3#kLm9@pW2!xR7$nB4^yH6&cD1"
    )
    gateway = create_app(settings, auth_settings=auth)
    assert gateway.dev_oidc is None
    async with running_app(gateway, port=port) as url, httpx.AsyncClient(base_url=url) as client:
        answer = await client.get("/dev-issuer/.well-known/openid-configuration")
        assert answer.status_code == 404
