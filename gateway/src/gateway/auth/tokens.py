"""Bearer JWTs from the identity provider: signature, issuer, audience, expiry, roles.

Only the public-key algorithms in ``GATEWAY_JWT_ALGORITHMS`` are accepted, and each key
verifies only with its own algorithm (PyJWK binds them), so ``alg: none`` and HS256 signed
with the public key are refused. The caller's subject is the token's ``sub``; its roles come
from ``GATEWAY_JWT_ROLES_CLAIM`` (a dotted path such as ``realm_access.roles``).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import jwt
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)

from gateway.auth.errors import INSUFFICIENT_SCOPE, AuthFailed, invalid_token
from gateway.auth.jwks import FileKeySource, KeySource, UrlKeySource, select_key
from gateway.auth.settings import AuthSettings
from servicekit.identity import AuthMethod, Principal, Role

MAX_TOKEN_BYTES = 16 * 1024
MAX_SUBJECT_LENGTH = 255
#: Roles an identity provider may grant (``anonymous`` is never granted by a token).
GRANTABLE_ROLES = {r.value: r for r in (Role.CITIZEN, Role.STAFF, Role.PARTNER, Role.ADMIN)}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` (``realm_access.roles``), or None. A claim whose own
    name contains dots (``https://example.org/roles``) is found too."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.replace(",", " ").split()
    if isinstance(value, Iterable) and not isinstance(value, Mapping | bytes):
        return [v for v in value if isinstance(v, str)]
    return []


def roles_from(value: Any) -> frozenset[Role]:
    """Recognised roles in a roles claim (a list, or a space/comma-separated string); unknown
    names are ignored, matching is case-insensitive."""
    return frozenset(
        GRANTABLE_ROLES[name.lower()] for name in _strings(value) if name.lower() in GRANTABLE_ROLES
    )


def scopes_from(claims: Mapping[str, Any]) -> frozenset[str]:
    """OAuth scopes: ``scope`` (space-separated string) or ``scp`` (list or string)."""
    return frozenset(_strings(claims.get("scope"))) | frozenset(_strings(claims.get("scp")))


def key_source(settings: AuthSettings) -> KeySource | None:
    if settings.jwt_jwks_url:
        return UrlKeySource(
            settings.jwt_jwks_url,
            cache_seconds=settings.jwt_jwks_cache_seconds,
            timeout=settings.jwt_jwks_timeout_seconds,
        )
    if settings.jwt_jwks_file:
        return FileKeySource(settings.jwt_jwks_file)
    return None


#: How long a verified token is trusted without checking its signature again, and how
#: many are remembered.
VERIFIED_TTL = 60.0
VERIFIED_MAX = 10_000


class TokenVerifier:
    def __init__(self, settings: AuthSettings, source: KeySource | None = None) -> None:
        self.settings = settings
        self.source = source if source is not None else key_source(settings)
        self.algorithms = list(settings.jwt_algorithms)
        self._verified: dict[bytes, tuple[Principal, float]] = {}

    async def start(self) -> None:
        if self.source is not None:
            await self.source.start()

    async def verify(self, token: str) -> Principal:
        """The token's principal. A verified token is remembered (by its SHA-256, never the
        token itself) until it expires or for at most ``VERIFIED_TTL`` seconds, so the
        signature check runs once per token rather than once per request."""
        digest = hashlib.sha256(token.encode()).digest() if token else b""
        cached = self._verified.get(digest)
        now = time.time()
        if cached is not None:
            principal, valid_until = cached
            if now < valid_until:
                return principal
            del self._verified[digest]
        principal, expires = await self._verify(token)
        if len(self._verified) >= VERIFIED_MAX:
            self._verified.pop(next(iter(self._verified)))  # oldest first (insertion order)
        self._verified[digest] = (principal, min(expires, now + VERIFIED_TTL))
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        if self.source is None:
            raise invalid_token(
                "Bearer tokens are not accepted: no identity provider is configured."
            )
        if not token or len(token) > MAX_TOKEN_BYTES:
            raise invalid_token("The token is malformed.")
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError:
            raise invalid_token("The token is malformed.") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.algorithms:
            raise invalid_token("The token's signing algorithm is not accepted.")
        if kid is not None and not isinstance(kid, str):
            raise invalid_token("The token is malformed.")
        key = select_key(await self.source.keys(), kid)
        if key is None:
            key = select_key(await self.source.keys(refresh=True), kid)
        if key is None:
            raise invalid_token("The token was signed with an unknown key.")
        claims = self._decode(token, key)
        return self._principal(claims), float(claims["exp"])

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                leeway=self.settings.jwt_leeway_seconds,
                options={
                    "require": ["exp", "iss", "aud", "sub"],
                    "verify_signature": True,
                    "verify_exp": True,
                    "verify_nbf": True,
                    "verify_iat": True,
                    "verify_aud": True,
                    "verify_iss": True,
                    "verify_sub": True,
                },
            )
        except ExpiredSignatureError:
            raise invalid_token("The token expired.") from None
        except ImmatureSignatureError:
            raise invalid_token("The token is not valid yet.") from None
        except InvalidAudienceError:
            raise invalid_token("The token is not meant for this platform.") from None
        except InvalidIssuerError:
            raise invalid_token("The token was not issued by a trusted issuer.") from None
        except InvalidSignatureError:
            raise invalid_token("The token's signature is not valid.") from None
        except InvalidAlgorithmError:
            raise invalid_token("The token's signing algorithm is not accepted.") from None
        except MissingRequiredClaimError as exc:
            raise invalid_token(f"The token has no '{exc.claim}' claim.") from None
        except InvalidIssuedAtError:
            raise invalid_token("The token's issue time is not valid.") from None
        except PyJWTError:
            raise invalid_token("The token is not valid.") from None

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = claims.get("sub")
        if (
            not isinstance(subject, str)
            or not subject
            or len(subject) > MAX_SUBJECT_LENGTH
            or not subject.isprintable()
        ):
            raise invalid_token("The token's subject is not valid.")
        if _EMAIL.match(subject):
            # The platform records subjects: they must be opaque ids, never personal data.
            raise invalid_token("The token's subject must be an opaque identifier.")
        roles = roles_from(claim_at(claims, self.settings.jwt_roles_claim))
        if not roles:
            raise AuthFailed(
                "The token carries no role this platform recognises.",
                status=403,
                title="Forbidden",
                www_authenticate=INSUFFICIENT_SCOPE,
            )
        return Principal(
            subject=subject, roles=roles, scopes=scopes_from(claims), method=AuthMethod.JWT
        )
