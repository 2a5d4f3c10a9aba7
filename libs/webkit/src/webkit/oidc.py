"""An OpenID Connect relying party: authorization code flow with PKCE (S256), ``state`` and
``nonce``, discovery, and the ID token verified against the provider's JWKS.

Client authentication at the token endpoint is ``client_secret_post`` or ``private_key_jwt``
(RFC 7523: a short-lived JWT signed with the client's own key, which GOV.UK One Login
requires). Tokens are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from cryptography.hazmat.primitives import serialization

from webkit.settings import FrontendSettings

#: Signing algorithms accepted on an ID token: public-key ones only.
ID_TOKEN_ALGORITHMS = ["RS256", "ES256", "PS256", "ES384", "RS384", "EdDSA"]
DISCOVERY_CACHE_SECONDS = 300.0


class OidcError(Exception):
    """Sign-in failed: the message is safe to show (no token, no secret)."""


@dataclass(frozen=True)
class SignInStart:
    url: str
    state: str
    nonce: str
    verifier: str


@dataclass(frozen=True)
class SignedIn:
    subject: str
    access_token: str
    id_token: str
    expires_at: float
    claims: dict[str, Any]


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcClient:
    def __init__(self, settings: FrontendSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._jwks: tuple[float, jwt.PyJWKSet] | None = None
        self._private_key: Any = None
        if settings.oidc_client_auth == "private_key_jwt" and settings.oidc_private_key_file:
            self._private_key = serialization.load_pem_private_key(
                settings.oidc_private_key_file.read_bytes(), password=None
            )

    @property
    def issuer(self) -> str:
        return self.settings.oidc_issuer.rstrip("/")

    async def metadata(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._metadata is not None and now - self._metadata[0] < DISCOVERY_CACHE_SECONDS:
            return self._metadata[1]
        url = self.issuer + "/.well-known/openid-configuration"
        try:
            response = await self.http.get(url, timeout=self.settings.oidc_timeout_seconds)
            response.raise_for_status()
            metadata = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError("The sign-in service is not available.") from exc
        if not isinstance(metadata, dict) or metadata.get("issuer", "").rstrip("/") != self.issuer:
            raise OidcError("The sign-in service's configuration does not match its address.")
        self._metadata = (now, metadata)
        return metadata

    async def _keys(self, refresh: bool = False) -> jwt.PyJWKSet:
        now = time.monotonic()
        if not refresh and self._jwks is not None and now - self._jwks[0] < DISCOVERY_CACHE_SECONDS:
            return self._jwks[1]
        metadata = await self.metadata()
        try:
            response = await self.http.get(
                metadata["jwks_uri"], timeout=self.settings.oidc_timeout_seconds
            )
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, KeyError, jwt.PyJWTError) as exc:
            raise OidcError("The sign-in service's keys could not be read.") from exc
        self._jwks = (now, keys)
        return keys

    async def start(self, *, extra: dict[str, str] | None = None) -> SignInStart:
        metadata = await self.metadata()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": self.settings.oidc_client_id,
            "redirect_uri": self.settings.redirect_uri,
            "scope": self.settings.oidc_scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **self.settings.oidc_extra_authorize_params,
            **(extra or {}),
        }
        url = metadata["authorization_endpoint"] + "?" + urlencode(params)
        return SignInStart(url=url, state=state, nonce=nonce, verifier=verifier)

    def client_assertion(self, token_endpoint: str) -> str:
        """RFC 7523 client authentication: signed with the client's private key."""
        now = int(time.time())
        claims = {
            "iss": self.settings.oidc_client_id,
            "sub": self.settings.oidc_client_id,
            "aud": token_endpoint,
            "jti": str(uuid.uuid4()),
            "iat": now,
            "exp": now + 300,
        }
        algorithm = "ES256" if hasattr(self._private_key, "curve") else "RS256"
        headers = {"kid": self.settings.oidc_key_id} if self.settings.oidc_key_id else None
        return jwt.encode(claims, self._private_key, algorithm=algorithm, headers=headers)

    async def finish(self, *, code: str, verifier: str, nonce: str) -> SignedIn:
        metadata = await self.metadata()
        token_endpoint = metadata["token_endpoint"]
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.settings.redirect_uri,
            "code_verifier": verifier,
            "client_id": self.settings.oidc_client_id,
        }
        if self.settings.oidc_client_auth == "private_key_jwt":
            form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            form["client_assertion"] = self.client_assertion(token_endpoint)
        else:
            form["client_secret"] = self.settings.oidc_client_secret.get_secret_value()
        try:
            response = await self.http.post(
                token_endpoint, data=form, timeout=self.settings.oidc_timeout_seconds
            )
        except httpx.HTTPError as exc:
            raise OidcError("The sign-in service is not available.") from exc
        if response.status_code != 200:
            raise OidcError("The sign-in service refused the sign-in. Try again.")
        try:
            body = response.json()
            id_token, access_token = body["id_token"], body["access_token"]
        except (ValueError, KeyError, TypeError) as exc:
            raise OidcError("The sign-in service answered in a way this site cannot use.") from exc
        claims = await self.verify_id_token(id_token, nonce=nonce)
        expires_in = body.get("expires_in")
        expires_at = time.time() + (float(expires_in) if expires_in else 3600.0)
        return SignedIn(
            subject=str(claims["sub"]),
            access_token=str(access_token),
            id_token=str(id_token),
            expires_at=expires_at,
            claims=claims,
        )

    async def verify_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as exc:
            raise OidcError("The sign-in could not be verified.") from exc
        kid = header.get("kid")
        key = self._find(await self._keys(), kid) or self._find(await self._keys(True), kid)
        if key is None:
            raise OidcError("The sign-in could not be verified.")
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=ID_TOKEN_ALGORITHMS,
                audience=self.settings.oidc_client_id,
                issuer=self.issuer,
                leeway=60,
                options={"require": ["iss", "aud", "sub", "exp", "iat"]},
            )
        except jwt.PyJWTError as exc:
            raise OidcError("The sign-in could not be verified.") from exc
        if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(
            claims["nonce"], nonce
        ):
            raise OidcError("The sign-in could not be verified.")
        return claims

    @staticmethod
    def _find(keys: jwt.PyJWKSet, kid: Any) -> jwt.PyJWK | None:
        for key in keys.keys:
            if kid is None or key.key_id == kid:
                return key
        return None

    async def end_session_url(self, *, id_token: str | None, after: str) -> str | None:
        """The provider's sign-out page, when it has one (RP-initiated logout)."""
        try:
            metadata = await self.metadata()
        except OidcError:
            return None
        endpoint = metadata.get("end_session_endpoint")
        if not endpoint:
            return None
        params = {"post_logout_redirect_uri": after, "client_id": self.settings.oidc_client_id}
        if id_token:
            params["id_token_hint"] = id_token
        return str(endpoint) + "?" + urlencode(params)
