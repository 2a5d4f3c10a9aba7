"""Who is calling: the identity assertion the gateway signs and every service verifies.

The gateway authenticates the caller (a citizen's or staff member's bearer JWT, or a
partner's API key), strips every identity header the client sent, and forwards one
short-lived signed assertion in ``X-MK-Identity``: an HS256 JWT (shared secret
``PLATFORM_IDENTITY_SECRET``) with the subject, roles, scopes and the request id. Services
verify it and hand handlers a :class:`Principal` through ``CurrentPrincipal``; a request
without a valid assertion is anonymous. Services then enforce their resource rules
(a citizen sees only their own requests, enrolments and preferences).

An assertion is bound to one request: its audience is the target service's name
(``ServiceSettings.service_name``, the gateway's upstream name), its ``req`` claim a hash of
the method and the raw path, and its ``jti`` is accepted once per process while the
assertion lives (:class:`AssertionVerifier`), so a copy replayed to another service, another
path, or the same one again is anonymous. Assertions without that binding (audience
``mk-services``: what ``servicekit.testing.identity_headers`` signs for tests) are accepted
only when the environment is development or test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from servicekit.errors import Forbidden, Unauthorized

ASSERTION_HEADER = "x-mk-identity"
ISSUER = "mk-gateway"
#: The audience of an unbound assertion (tests' ``identity_headers``): development and test
#: only. The gateway's assertions name the target service instead.
AUDIENCE = "mk-services"
DEFAULT_TTL_SECONDS = 60
LEEWAY_SECONDS = 5
#: The claim binding an assertion to one request: :func:`request_binding`.
REQUEST_CLAIM = "req"


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
        return bool(self.roles & set(roles)) or (Role.ADMIN in self.roles and Role.STAFF in roles)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or "*" in self.scopes

    def owns(self, subject: str | None) -> bool:
        """True when a resource recorded for ``subject`` belongs to this caller."""
        return self.subject is not None and subject == self.subject

    def claims(self) -> dict[str, Any]:
        """The assertion claims naming this caller: ``sub``, ``roles``, ``scopes``, ``amr``,
        and ``kid`` for a caller authenticated by an API key (read back by ``_principal``)."""
        claims: dict[str, Any] = {
            "sub": self.subject,
            "roles": sorted(r.value for r in self.roles),
            "scopes": sorted(self.scopes),
            "amr": self.method.value,
        }
        if self.key_id:
            claims["kid"] = self.key_id
        return claims


ANONYMOUS = Principal()


class InvalidAssertion(Exception):
    """The X-MK-Identity header is missing its signature, expired, or forged."""


def request_binding(method: str, raw_path: str) -> str:
    """The ``req`` claim: SHA-256 of ``METHOD raw-path`` (the path as sent, without the query
    string), base64url, 128 bits."""
    digest = hashlib.sha256(f"{method.upper()} {raw_path}".encode("latin-1", "replace"))
    return base64.urlsafe_b64encode(digest.digest()[:16]).rstrip(b"=").decode()


def sign_assertion(
    principal: Principal,
    secret: str,
    *,
    ttl: int = DEFAULT_TTL_SECONDS,
    request_id: str | None = None,
    audience: str | None = None,
    method: str | None = None,
    path: str | None = None,
) -> str:
    """The assertion for one request to service ``audience`` (``method`` and raw ``path``
    required with it). Without ``audience``: an unbound assertion, which services accept
    only in development and test (tests use it to sign one header for many requests)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": audience or AUDIENCE,
        "iat": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
        **principal.claims(),
    }
    if request_id:
        claims["rid"] = request_id
    if audience is not None:
        if method is None or path is None:
            raise ValueError("a bound assertion needs the request's method and path")
        claims[REQUEST_CLAIM] = request_binding(method, path)
    return jwt.encode(claims, secret, algorithm="HS256")


def _principal(claims: dict[str, Any]) -> Principal:
    roles = frozenset(Role(r) for r in claims.get("roles", []))
    return Principal(
        subject=claims.get("sub"),
        roles=roles or frozenset({Role.ANONYMOUS}),
        scopes=frozenset(str(s) for s in claims.get("scopes", [])),
        method=AuthMethod(claims.get("amr", "none")),
        key_id=claims.get("kid"),
    )


#: The JOSE header of every assertion the gateway signs (``{"alg":"HS256","typ":"JWT"}``).
_HS256_HEADER = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _decode(token: str, secret: str, audience: str | list[str]) -> dict[str, Any]:
    """The claims of a valid assertion, or :class:`InvalidAssertion`.

    Runs on every request of every service. An assertion with the gateway's exact header is
    checked here directly (HMAC-SHA256 compared in constant time, then the same claim rules
    PyJWT applies with these options), at a fraction of PyJWT's cost (~150 µs a request
    measured here); anything else goes through PyJWT, which refuses every other algorithm.
    ``tests/unit/test_identity.py`` checks both paths agree on accepted and refused tokens.
    """
    header, _, rest = token.partition(".")
    if header != _HS256_HEADER:
        return _decode_with_pyjwt(token, secret, audience)
    payload, dot, signature = rest.partition(".")
    if not dot or "." in signature:
        raise InvalidAssertion("DecodeError")
    expected = hmac.new(
        secret.encode(), f"{header}.{payload}".encode("ascii", "replace"), hashlib.sha256
    ).digest()
    try:
        valid = hmac.compare_digest(_b64decode(signature), expected)
        claims = json.loads(_b64decode(payload)) if valid else None
    except (ValueError, TypeError) as exc:
        raise InvalidAssertion("DecodeError") from exc
    if not valid:
        raise InvalidAssertion("InvalidSignatureError")
    if not isinstance(claims, dict):
        raise InvalidAssertion("DecodeError")
    _check_claims(claims, audience)
    return claims


def _check_claims(claims: dict[str, Any], audience: str | list[str]) -> None:
    """PyJWT's rules for ``require=[exp, iat, iss, aud]``, ``leeway``, ``issuer``, ``audience``."""
    for name in ("exp", "iat", "iss", "aud"):
        if name not in claims:
            raise InvalidAssertion("MissingRequiredClaimError")
    now = time.time()
    for name in ("exp", "iat", "nbf"):
        if name in claims and (
            isinstance(claims[name], bool) or not isinstance(claims[name], int | float)
        ):
            raise InvalidAssertion("DecodeError")
    if claims["exp"] <= now - LEEWAY_SECONDS:
        raise InvalidAssertion("ExpiredSignatureError")
    if claims["iat"] > now + LEEWAY_SECONDS or claims.get("nbf", now) > now + LEEWAY_SECONDS:
        raise InvalidAssertion("ImmatureSignatureError")
    if claims["iss"] != ISSUER:
        raise InvalidAssertion("InvalidIssuerError")
    if "sub" in claims and not isinstance(claims["sub"], str):
        raise InvalidAssertion("InvalidSubjectError")
    if "jti" in claims and not isinstance(claims["jti"], str):
        raise InvalidAssertion("InvalidJTIError")
    given = claims["aud"]
    given_list = [given] if isinstance(given, str) else given
    if not isinstance(given_list, list) or not all(isinstance(a, str) for a in given_list):
        raise InvalidAssertion("InvalidAudienceError")
    wanted = [audience] if isinstance(audience, str) else audience
    if not any(a in given_list for a in wanted):
        raise InvalidAssertion("InvalidAudienceError")


def _decode_with_pyjwt(token: str, secret: str, audience: str | list[str]) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=audience,
            issuer=ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud"]},
        )
        return claims
    except jwt.PyJWTError as exc:
        raise InvalidAssertion(type(exc).__name__) from exc


def verify_assertion(token: str, secret: str) -> Principal:
    """An unbound assertion's principal (no audience, request or replay checks): for tools
    and tests; services use :class:`AssertionVerifier`."""
    try:
        return _principal(_decode(token, secret, AUDIENCE))
    except ValueError as exc:
        raise InvalidAssertion(type(exc).__name__) from exc


class AssertionVerifier:
    """Verifies the assertions of one service (``audience``): the signature, issuer and
    lifetime; that the assertion names this service and this request (``req``); and that
    its ``jti`` was not seen before in this process while it lives. Unbound assertions
    pass only with ``allow_unbound`` (development and test).

    The seen-set is per process: each replica behind the gateway keeps its own, so a copy
    replayed to *another* replica of the same service within the assertion's minute is not
    caught by this check (only by the binding to service, method and path). Memory is
    bounded by requests a second times the lifetime (about 120 bytes a request).
    """

    def __init__(
        self,
        secret: str,
        audience: str,
        *,
        allow_unbound: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self.audience = audience
        self.allow_unbound = allow_unbound
        self._audiences: str | list[str] = [audience, AUDIENCE] if allow_unbound else audience
        self._clock = clock
        self._seen: set[str] = set()
        self._expiries: deque[tuple[float, str]] = deque()

    def verify(self, token: str, *, method: str, path: str) -> Principal:
        claims = _decode(token, self._secret, self._audiences)
        audience = claims["aud"]
        bound = audience == self.audience or (
            isinstance(audience, list) and self.audience in audience
        )
        if bound:
            if claims.get(REQUEST_CLAIM) != request_binding(method, path):
                raise InvalidAssertion("not this request")
            jti = claims.get("jti")
            if not isinstance(jti, str) or not jti:
                raise InvalidAssertion("no jti")
            self._remember(jti, float(claims["exp"]) + LEEWAY_SECONDS)
        elif not self.allow_unbound:  # pragma: no cover - the audience check refused it
            raise InvalidAssertion("unbound")
        try:
            return _principal(claims)
        except ValueError as exc:
            raise InvalidAssertion(type(exc).__name__) from exc

    def _remember(self, jti: str, expires: float) -> None:
        now = self._clock()
        expiries, seen = self._expiries, self._seen
        # Lifetimes are all alike, so expiries come in (nearly) in order: drop from the left.
        while expiries and expiries[0][0] < now:
            seen.discard(expiries.popleft()[1])
        if jti in seen:
            raise InvalidAssertion("replayed")
        seen.add(jti)
        expiries.append((expires, jti))

    def __len__(self) -> int:
        return len(self._seen)


def _verifier(request: Request) -> AssertionVerifier:
    state = request.app.state
    verifier = getattr(state, "identity_verifier", None)
    if verifier is None:
        settings = state.runtime.settings
        verifier = AssertionVerifier(
            settings.identity_secret.get_secret_value(),
            settings.service_name,
            allow_unbound=not settings.production_like,
        )
        state.identity_verifier = verifier
    return verifier


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
        raw = request.scope.get("raw_path")
        path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
        try:
            principal = _verifier(request).verify(token, method=request.method, path=path)
        except InvalidAssertion:
            principal = ANONYMOUS
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


#: Documents, in each service's OpenAPI, which operations need which roles. The gateway's
#: aggregated OpenAPI turns it into the public schemes (bearer JWT, API key) and ``x-roles``.
IDENTITY_SCHEME = "MkIdentity"
_identity_header = APIKeyHeader(
    name="X-MK-Identity",
    scheme_name=IDENTITY_SCHEME,
    auto_error=False,
    description="Signed by the gateway for each request; clients never send it.",
)


def require_roles(*roles: Role) -> Any:
    """Dependency: 401 for anonymous callers, 403 when the caller has none of ``roles``."""
    scopes = sorted(r.value for r in roles)

    async def check(
        principal: Principal = Depends(get_principal),
        _documented: str | None = Security(_identity_header, scopes=scopes),
    ) -> Principal:
        if principal.is_anonymous:
            raise Unauthorized("Sign in to do this.")
        if not principal.has_role(*roles):
            raise Forbidden(
                "Your role does not allow this.", required_roles=sorted(r.value for r in roles)
            )
        return principal

    return Depends(check)


def require_scopes(*roles: Role, scopes: tuple[str, ...]) -> Any:
    """Dependency: :func:`require_roles` ``roles``, and every one of ``scopes`` (an API
    key's, or a token's OAuth scopes) unless the caller is an admin, who holds them all.
    403 names the missing scopes. Document them with :func:`scopes_openapi`."""
    role_check = require_roles(*roles)

    async def check(principal: Principal = role_check) -> Principal:
        if Role.ADMIN in principal.roles:
            return principal
        missing = [s for s in scopes if not principal.has_scope(s)]
        if missing:
            raise Forbidden("Your credential's scopes do not allow this.", required_scopes=missing)
        return principal

    return Depends(check)


def scopes_openapi(*scopes: str) -> dict[str, Any]:
    """``openapi_extra`` documenting an operation's scopes (``x-scopes``); the gateway's
    aggregated OpenAPI keeps it beside ``x-roles``."""
    return {"x-scopes": list(scopes)}


StaffPrincipal = Annotated[Principal, require_roles(Role.STAFF, Role.ADMIN)]
CitizenPrincipal = Annotated[Principal, require_roles(Role.CITIZEN)]
AdminPrincipal = Annotated[Principal, require_roles(Role.ADMIN)]
