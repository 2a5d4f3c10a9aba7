"""api/notify.py's check of the gateway's assertion (which makes X-Forwarded-* trusted for
``uri`` and ``links``): only the gateway's signature, issuer and lifetime pass."""

from __future__ import annotations

import time

import jwt

from notifications.api.notify import _gateway_claims
from servicekit.identity import ISSUER, Principal, sign_assertion

SECRET = "s" * 40


def test_only_a_live_assertion_signed_by_the_gateway_passes() -> None:
    token = sign_assertion(
        Principal(), SECRET, audience="notifications", method="GET", path="/v2/templates"
    )
    claims = _gateway_claims(token, SECRET)
    assert claims is not None and claims["aud"] == "notifications" and claims["req"]
    assert _gateway_claims(token, "t" * 40) is None  # another secret
    assert _gateway_claims(token[:-3] + "abc", SECRET) is None  # tampered
    now = int(time.time())
    expired = jwt.encode(
        {"iss": ISSUER, "aud": "notifications", "iat": now - 600, "exp": now - 300},
        SECRET,
        algorithm="HS256",
    )
    assert _gateway_claims(expired, SECRET) is None
    other_issuer = jwt.encode(
        {"iss": "someone", "aud": "notifications", "iat": now, "exp": now + 60},
        SECRET,
        algorithm="HS256",
    )
    assert _gateway_claims(other_issuer, SECRET) is None
    other_alg = jwt.encode(
        {"iss": ISSUER, "aud": "notifications", "iat": now, "exp": now + 60},
        SECRET,
        algorithm="HS512",
    )
    assert _gateway_claims(other_alg, SECRET) is None
    assert _gateway_claims("not a token", SECRET) is None
