"""Who is calling: the identity assertion the gateway signs and every service verifies.

The gateway authenticates the caller (a citizen's or staff member's bearer JWT, or a
partner's API key), strips every identity header the client sent, and forwards one
short-lived signed assertion in ``X-MK-Identity``: an HS256 JWT (shared secret
``PLATFORM_IDENTITY_SECRET``) with the subject, roles, scopes and the request id. Services
verify it and hand handlers a :class:`Principal` through ``CurrentPrincipal``; a request
without a valid assertion is anonymous. Services then enforce their resource rules
(a citizen sees only their own requests, enrolments and preferences).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from servicekit.errors import Forbidden, Unauthorized

ASSERTION_HEADER = "x-mk-identity"
ISSUER = "mk-gateway"
AUDIENCE = "mk-services"
DEFAULT_TTL_SECONDS = 60
LEEWAY_SECONDS = 5


class Role(StrEnum):
    ANONYMOUS = "anonymous"
    CITIZEN = "citizen"
    STAFF = "staff"
    PARTNER = "partner"
    ADMIN = "admin"


class AuthMethod(StrEnum):
    NONE = "none"
    JWT = "jwt"
    API_KEY = "api-key"


@dataclass(frozen=True)
class Principal:
    """The verified caller. ``subject`` is an opaque id (never a name or an email)."""

    subject: str | None = None
    roles: frozenset[Role] = field(default_factory=lambda: frozenset({Role.ANONYMOUS}))
    scopes: frozenset[str] = frozenset()
    method: AuthMethod = AuthMethod.NONE
    key_id: str | None = None

    @property
    def is_anonymous(self) -> bool:
        return self.subject is None

    def has_role(self, *roles: Role) -> bool:
        return bool(self.roles & set(roles)) or (Role.ADMIN in self.roles and
                                                 Role.STAFF in roles)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or "*" in self.scopes

    def owns(self, subject: str | None) -> bool:
        """True when a resource recorded for ``subject`` belongs to this caller."""
        return self.subject is not None and subject == self.subject


ANONYMOUS = Principal()


class InvalidAssertion(Exception):
    """The X-MK-Identity header is missing its signature, expired, or forged."""


def sign_assertion(principal: Principal, secret: str, *, ttl: int = DEFAULT_TTL_SECONDS,
                   request_id: str | None = None) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + ttl,
        "jti": str(uuid.uuid4()),
        "sub": principal.subject,
        "roles": sorted(r.value for r in principal.roles),
        "scopes": sorted(principal.scopes),
        "amr": principal.method.value,
    }
    if principal.key_id:
        claims["kid"] = principal.key_id
    if request_id:
        claims["rid"] = request_id
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_assertion(token: str, secret: str) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], audience=AUDIENCE,
                            issuer=ISSUER, leeway=LEEWAY_SECONDS,
                            options={"require": ["exp", "iat", "iss", "aud"]})
        roles = frozenset(Role(r) for r in claims.get("roles", []))
        return Principal(
            subject=claims.get("sub"),
            roles=roles or frozenset({Role.ANONYMOUS}),
            scopes=frozenset(str(s) for s in claims.get("scopes", [])),
            method=AuthMethod(claims.get("amr", "none")),
            key_id=claims.get("kid"),
        )
    except (jwt.PyJWTError, ValueError) as exc:
        raise InvalidAssertion(type(exc).__name__) from exc


async def get_principal(request: Request) -> Principal:
    """The caller of this request (anonymous without a valid gateway assertion).

    ``async`` although it never awaits: FastAPI runs a plain ``def`` dependency on a worker
    thread, a hand-off per request that cost more than the whole check."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    token = request.headers.get(ASSERTION_HEADER)
    principal = ANONYMOUS
    if token:
        secret = request.app.state.runtime.settings.identity_secret.get_secret_value()
        try:
            principal = verify_assertion(token, secret)
        except InvalidAssertion:
            principal = ANONYMOUS
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


#: Documents, in each service's OpenAPI, which operations need which roles. The gateway's
#: aggregated OpenAPI turns it into the public schemes (bearer JWT, API key) and ``x-roles``.
IDENTITY_SCHEME = "MkIdentity"
_identity_header = APIKeyHeader(
    name="X-MK-Identity", scheme_name=IDENTITY_SCHEME, auto_error=False,
    description="Signed by the gateway for each request; clients never send it.",
)


def require_roles(*roles: Role) -> Any:
    """Dependency: 401 for anonymous callers, 403 when the caller has none of ``roles``."""
    scopes = sorted(r.value for r in roles)

    async def check(principal: Principal = Depends(get_principal),
              _documented: str | None = Security(_identity_header, scopes=scopes),
              ) -> Principal:
        if principal.is_anonymous:
            raise Unauthorized("Sign in to do this.")
        if not principal.has_role(*roles):
            raise Forbidden("Your role does not allow this.",
                            required_roles=sorted(r.value for r in roles))
        return principal

    return Depends(check)


StaffPrincipal = Annotated[Principal, require_roles(Role.STAFF, Role.ADMIN)]
CitizenPrincipal = Annotated[Principal, require_roles(Role.CITIZEN)]
AdminPrincipal = Annotated[Principal, require_roles(Role.ADMIN)]
