"""The identity assertion (``X-MK-Identity``), signed per request on the gateway's hot path.

Byte for byte the token :func:`servicekit.identity.sign_assertion` makes (an HS256 JWT with
the same header, claims in the same order, the same compact JSON), and verified by the
services' :class:`servicekit.identity.AssertionVerifier` as before; only cheaper to make:
PyJWT's encoder prepared the key, re-serialised a constant header and walked generic JSON
for every request (~40-200 µs here). :class:`AssertionSigner` keeps

* the base64url header and a keyed HMAC-SHA256 state (``hmac.copy()`` per request);
* per principal, the JSON of its constant claims (``sub``, ``roles``, ``scopes``, ``amr``,
  ``kid``), a few hundred at most (the token verifier's cache bounds the principals);

and per request adds the times, a fresh ``jti`` (128 random bits, hex, as ``uuid4().hex``
is 122), the request id and the ``req`` binding (:func:`servicekit.identity.request_binding`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable

from servicekit.identity import ISSUER, Principal, request_binding

_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=") + b"."
_dumps = json.JSONEncoder(separators=(",", ":")).encode  # what PyJWT's json.dumps does
#: Most principals whose constant claims are kept (dropped all at once past it).
MAX_PRINCIPALS = 4096


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class AssertionSigner:
    """Signs bound assertions with one secret (the gateway's ``identity_secret``)."""

    def __init__(self, secret: str, *, ttl: int, clock: Callable[[], float] = time.time) -> None:
        self._mac = hmac.new(secret.encode("utf-8"), _HEADER, hashlib.sha256)
        self.ttl = ttl
        self._clock = clock
        self._principals: dict[Principal, str] = {}

    def _principal_claims(self, principal: Principal) -> str:
        """``"sub":…,"roles":[…],"scopes":[…],"amr":…[,"kid":…]`` for ``principal``."""
        part = self._principals.get(principal)
        if part is None:
            part = _dumps(principal.claims())[1:-1]
            if len(self._principals) >= MAX_PRINCIPALS:
                self._principals.clear()
            self._principals[principal] = part
        return part

    def sign(
        self,
        principal: Principal,
        *,
        audience: str,
        method: str,
        path: str,
        request_id: str | None = None,
    ) -> str:
        """The assertion for one request to service ``audience``: ``method`` and raw
        ``path`` (no query string) are bound into its ``req`` claim."""
        now = int(self._clock())
        payload = (
            f'{{"iss":{_dumps(ISSUER)},"aud":{_dumps(audience)},"iat":{now},'
            f'"exp":{now + self.ttl},"jti":"{os.urandom(16).hex()}",'
            f"{self._principal_claims(principal)}"
            + (f',"rid":{_dumps(request_id)}' if request_id else "")
            + f',"req":"{request_binding(method, path)}"}}'
        )
        mac = self._mac.copy()
        body = _b64(payload.encode("utf-8"))
        mac.update(body)
        return (_HEADER + body + b"." + _b64(mac.digest())).decode("ascii")


def sign_assertion(
    signer: AssertionSigner,
    principal: Principal,
    *,
    audience: str,
    method: str,
    path: str,
    request_id: str | None = None,
) -> str:
    """``signer.sign(...)``: what the gateway calls for each request, by this module-level
    name (``gateway.main.sign_assertion``), so a test can see every assertion sent."""
    return signer.sign(
        principal, audience=audience, method=method, path=path, request_id=request_id
    )
