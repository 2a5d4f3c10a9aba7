"""The dev issuer as a minimal OpenID Connect provider, for ``make run`` and the tests only.

Mounted by the gateway at the dev issuer's path (``/dev-issuer``, from ``GATEWAY_JWT_ISSUER``)
when, and only when, the environment is development or test and the gateway trusts the dev
issuer's keys (``GATEWAY_JWT_JWKS_FILE``): :func:`dev_oidc_app` refuses anywhere else.

- ``/.well-known/openid-configuration`` and ``/jwks.json``;
- ``/authorize`` (GET: a page to pick a test user; POST: the choice → a one-time code),
  authorization code flow only, PKCE S256 required, redirect URIs registered exactly;
- ``/token``: the code, its PKCE verifier and the client's authentication
  (``client_secret_post``, or ``private_key_jwt`` against the client's registered JWKS) →
  an ID token for the client and an access token the gateway accepts (the same tokens
  :meth:`DevIssuer.mint` makes: ``aud`` ``mk-digital-platform``, ``roles``);
- ``/logout``: RP-initiated sign-out back to the client's own origin.

Clients come from ``GATEWAY_DEV_OIDC_CLIENTS`` (see :class:`DevOidcClient`); test users are
:data:`DEV_USERS`. Codes live in memory for a minute and are used once.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.auth.devissuer import DEV_AUDIENCE, DevIssuer
from servicekit.identity import Role
from servicekit.settings import is_production_like

CODE_TTL_SECONDS = 60
TOKEN_TTL_SECONDS = 8 * 3600
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PAGE_CSP = (
    "default-src 'none'; form-action 'self' http://127.0.0.1:* http://localhost:*; "
    "frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True)
class DevUser:
    subject: str
    name: str
    roles: tuple[Role, ...]
    #: OAuth scopes of the user's access token (``scope``), e.g. what partner APIs require.
    scopes: tuple[str, ...] = ()


#: The test users the authorize page offers (subjects match ``gateway.devcreds``' tokens).
DEV_USERS: tuple[DevUser, ...] = (
    DevUser("citizen-dev-1", "Alex Citizen (citizen)", (Role.CITIZEN,)),
    DevUser("citizen-dev-2", "Sam Resident (citizen)", (Role.CITIZEN,)),
    DevUser("staff-dev-1", "Jo Officer (staff)", (Role.STAFF,)),
    DevUser("admin-dev-1", "Pat Admin (admin and staff)", (Role.ADMIN, Role.STAFF)),
    DevUser(
        "partner-dev-1",
        "Kit Partner (partner)",
        (Role.PARTNER,),
        ("events:subscribe", "events:catalogue", "events:service-requests"),
    ),
)


class DevOidcRefused(RuntimeError):
    pass


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    user: DevUser
    expires: float


@dataclass
class DevOidcProvider:
    issuer: DevIssuer
    issuer_url: str
    clients: dict[str, Any]  # client id -> DevOidcClient (gateway.auth.settings)
    users: tuple[DevUser, ...] = DEV_USERS
    codes: dict[str, _Code] = field(default_factory=dict)
    _seen_assertions: dict[str, float] = field(default_factory=dict)

    @property
    def token_endpoint(self) -> str:
        return self.issuer_url + "/token"

    def metadata(self) -> dict[str, Any]:
        base = self.issuer_url
        return {
            "issuer": base,
            "authorization_endpoint": base + "/authorize",
            "token_endpoint": base + "/token",
            "jwks_uri": base + "/jwks.json",
            "end_session_endpoint": base + "/logout",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256"],
            "scopes_supported": ["openid"],
            "claims_supported": ["sub", "roles", "name", "nonce"],
        }

    # -- /authorize --------------------------------------------------------------------
    def check_authorize(self, params: dict[str, str]) -> tuple[Any, str] | str:
        """(client, redirect_uri) for a valid request, else the reason (shown on the page:
        an unregistered redirect URI is never redirected to)."""
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return "Unknown client_id."
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            return "The redirect_uri is not registered for this client."
        if params.get("response_type") != "code":
            return "Only response_type=code is supported."
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return "PKCE with code_challenge_method=S256 is required."
        if "openid" not in params.get("scope", "").split():
            return "The scope must include openid."
        return client, redirect_uri

    def users_for(self, client: Any) -> list[DevUser]:
        allowed = {Role(r) for r in client.roles}
        return [u for u in self.users if allowed & set(u.roles)]

    def issue_code(self, params: dict[str, str], user: DevUser) -> str:
        now = time.monotonic()
        for stale in [c for c, v in self.codes.items() if v.expires < now]:
            del self.codes[stale]
        code = secrets.token_urlsafe(32)
        self.codes[code] = _Code(
            client_id=params["client_id"],
            redirect_uri=params["redirect_uri"],
            challenge=params["code_challenge"],
            nonce=params.get("nonce") or None,
            user=user,
            expires=now + CODE_TTL_SECONDS,
        )
        return code

    # -- /token ------------------------------------------------------------------------
    def authenticate_client(self, form: dict[str, str]) -> Any | None:
        assertion_type = form.get("client_assertion_type")
        if assertion_type is not None:
            return self._private_key_jwt(form) if assertion_type == ASSERTION_TYPE else None
        client = self.clients.get(form.get("client_id", ""))
        secret = form.get("client_secret", "")
        if client is None or client.secret is None or not secret:
            return None
        expected = client.secret.get_secret_value()
        return client if secrets.compare_digest(expected.encode(), secret.encode()) else None

    def _private_key_jwt(self, form: dict[str, str]) -> Any | None:
        assertion = form.get("client_assertion", "")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None
        client_id = unverified.get("iss")
        client = self.clients.get(client_id) if isinstance(client_id, str) else None
        if client is None or not client.jwks:
            return None
        if form.get("client_id") not in (None, client_id):
            return None
        try:
            keys = jwt.PyJWKSet.from_dict(client.jwks)
            kid = jwt.get_unverified_header(assertion).get("kid")
            candidates = [k for k in keys.keys if kid is None or k.key_id == kid]
        except jwt.PyJWTError:
            return None
        for key in candidates:
            try:
                claims = jwt.decode(
                    assertion,
                    key,
                    algorithms=["ES256", "RS256", "PS256"],
                    audience=[self.token_endpoint, self.issuer_url],
                    options={"require": ["iss", "sub", "aud", "exp", "jti"]},
                )
            except jwt.PyJWTError:
                continue
            if claims.get("sub") != client_id:
                return None
            now = time.time()
            self._seen_assertions = {j: e for j, e in self._seen_assertions.items() if e > now}
            if claims["jti"] in self._seen_assertions:
                return None  # replayed
            self._seen_assertions[claims["jti"]] = float(claims["exp"])
            return client
        return None

    def redeem(self, form: dict[str, str], client: Any) -> dict[str, Any] | str:
        if form.get("grant_type") != "authorization_code":
            return "unsupported_grant_type"
        code = self.codes.pop(form.get("code", ""), None)  # used once, whatever happens
        if code is None or code.expires < time.monotonic() or code.client_id != client.client_id:
            return "invalid_grant"
        if form.get("redirect_uri") != code.redirect_uri:
            return "invalid_grant"
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if not verifier or not secrets.compare_digest(challenge, code.challenge):
            return "invalid_grant"
        user = code.user
        access = self.issuer.mint(
            user.subject,
            user.roles,
            ttl_seconds=TOKEN_TTL_SECONDS,
            issuer=self.issuer_url,
            audience=DEV_AUDIENCE,
            **({"scope": " ".join(user.scopes)} if user.scopes else {}),
        )
        now = int(time.time())
        id_claims: dict[str, Any] = {
            "iss": self.issuer_url,
            "aud": client.client_id,
            "sub": user.subject,
            "iat": now,
            "exp": now + TOKEN_TTL_SECONDS,
            "auth_time": now,
            "jti": str(uuid.uuid4()),
            "name": user.name,
            "roles": [r.value for r in user.roles],
        }
        if code.nonce:
            id_claims["nonce"] = code.nonce
        id_token = jwt.encode(
            id_claims, self.issuer.private_key, algorithm="ES256", headers={"kid": self.issuer.kid}
        )
        return {
            "access_token": access,
            "id_token": id_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL_SECONDS,
        }


def _form(body: bytes) -> dict[str, str]:
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items() if len(v) == 1}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} - dev sign-in</title></head><body><main>"
        f"<h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(document, status_code=status, headers={"content-security-policy": PAGE_CSP})


def _token_error(error: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status, headers={"cache-control": "no-store"})


def dev_oidc_app(
    issuer: DevIssuer, issuer_url: str, clients: dict[str, Any], *, environment: str
) -> Starlette:
    """The provider's ASGI app, to mount at ``issuer_url``'s path. Refused (raises
    :class:`DevOidcRefused`) unless the environment is development or test."""
    if is_production_like(environment):
        raise DevOidcRefused(
            f"the dev OIDC provider runs only in development or test (not {environment!r})"
        )
    provider = DevOidcProvider(issuer=issuer, issuer_url=issuer_url.rstrip("/"), clients=clients)
    prefix = urlsplit(provider.issuer_url).path.rstrip("/")

    async def discovery(request: Request) -> Response:
        return JSONResponse(provider.metadata())

    async def jwks(request: Request) -> Response:
        return Response(issuer.jwks_path.read_bytes(), media_type="application/json")

    async def authorize(request: Request) -> Response:
        if request.method == "GET":
            params = dict(request.query_params)
        else:
            params = _form(await request.body())
        checked = provider.check_authorize(params)
        if isinstance(checked, str):
            return _page("Sign-in request refused", f"<p>{html.escape(checked)}</p>", 400)
        client, redirect_uri = checked
        users = provider.users_for(client)
        if request.method == "POST":
            chosen = next((u for u in users if u.subject == params.get("subject")), None)
            if chosen is None:
                return _page("Choose a test user", "<p>No user was chosen.</p>", 400)
            code = provider.issue_code(params, chosen)
            answer = {"code": code}
            if params.get("state"):
                answer["state"] = params["state"]
            return RedirectResponse(redirect_uri + "?" + urlencode(answer), status_code=303)
        keep = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
            if k != "subject"
        )
        options = "".join(
            f'<div><input type="radio" name="subject" id="user-{i}" '
            f'value="{html.escape(u.subject)}"{" checked" if i == 0 else ""}>'
            f'<label for="user-{i}">{html.escape(u.name)}</label></div>'
            for i, u in enumerate(users)
        )
        body = (
            "<p>Development only: choose who to sign in as.</p>"
            f'<form method="post" action="{html.escape(prefix)}/authorize">'
            f"<fieldset><legend>Test users</legend>{options}</fieldset>{keep}"
            '<button type="submit" id="dev-sign-in">Sign in</button></form>'
        )
        return _page("Sign in to the MK digital platform", body)

    async def token(request: Request) -> Response:
        form = _form(await request.body())
        client = provider.authenticate_client(form)
        if client is None:
            return _token_error("invalid_client", 401)
        result = provider.redeem(form, client)
        if isinstance(result, str):
            return _token_error(result)
        return JSONResponse(result, headers={"cache-control": "no-store", "pragma": "no-cache"})

    async def logout(request: Request) -> Response:
        after = request.query_params.get("post_logout_redirect_uri", "")
        client = provider.clients.get(request.query_params.get("client_id", ""))
        origins = {_origin(u) for u in client.redirect_uris} if client is not None else set[str]()
        if after and _origin(after) in origins:
            return RedirectResponse(after, status_code=303)
        return _page("You have signed out", "<p>You can close this window.</p>")

    routes = [
        Route(prefix + "/.well-known/openid-configuration", discovery),
        Route(prefix + "/jwks.json", jwks),
        Route(prefix + "/authorize", authorize, methods=["GET", "POST"]),
        Route(prefix + "/token", token, methods=["POST"]),
        Route(prefix + "/logout", logout),
    ]
    return Starlette(routes=routes)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class DevOidcMount:
    prefix: str
    app: Starlette

    def owns(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")


def dev_oidc_mount(environment: str, settings: Any) -> DevOidcMount | None:
    """What the gateway mounts for ``AuthSettings`` ``settings``: the provider at the dev
    issuer's path, or None outside development/test or when the gateway does not trust the
    dev issuer (no ``GATEWAY_JWT_JWKS_FILE`` beside the dev issuer's key, as in any real
    deployment). Nothing is written: a JWKS file of another origin is left alone."""
    if is_production_like(environment) or settings.jwt_jwks_file is None or not settings.jwt_issuer:
        return None
    from gateway.auth.devissuer import load_dev_issuer

    issuer = load_dev_issuer(settings.jwt_jwks_file)
    if issuer is None:
        return None
    app = dev_oidc_app(
        issuer, settings.jwt_issuer, dict(settings.dev_oidc_clients), environment=environment
    )
    return DevOidcMount(urlsplit(settings.jwt_issuer.rstrip("/")).path, app)
