"""The identity assertion is bound to one service and one request, and accepted once
(finding 11 of the security issue: one audience for every service and an unchecked ``jti``
let a copied assertion work on any service, any path, any number of times for 60 s)."""

from __future__ import annotations

import time

import jwt
import pytest

from servicekit.identity import (
    AUDIENCE,
    AssertionVerifier,
    InvalidAssertion,
    Principal,
    Role,
    request_binding,
    sign_assertion,
    verify_assertion,
)

SECRET = "kV3q9-Zr8tLw2mXcY7bN4pHs6dJf1gUe0aQiToRx"  # tests only
STAFF = Principal(subject="staff-1", roles=frozenset({Role.STAFF}), scopes=frozenset({"x"}))
PATH = "/api/v1/templates"


def bound(
    audience: str = "notifications", method: str = "GET", path: str = PATH, **kwargs: object
) -> str:
    return sign_assertion(STAFF, SECRET, audience=audience, method=method, path=path, **kwargs)  # type: ignore[arg-type]


def test_a_bound_assertion_is_accepted_once() -> None:
    verifier = AssertionVerifier(SECRET, "notifications")
    token = bound()
    principal = verifier.verify(token, method="GET", path=PATH)
    assert principal.subject == "staff-1" and principal.roles == {Role.STAFF}
    assert principal.scopes == {"x"}
    with pytest.raises(InvalidAssertion, match="replayed"):
        verifier.verify(token, method="GET", path=PATH)
    verifier.verify(bound(), method="GET", path=PATH)  # a new one is fine


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", PATH),
        ("GET", PATH + "/1"),
        ("GET", "/api/v1/templates/"),
        ("get", "/API/v1"),
    ],
)
def test_another_method_or_path_is_refused(method: str, path: str) -> None:
    verifier = AssertionVerifier(SECRET, "notifications")
    with pytest.raises(InvalidAssertion):
        verifier.verify(bound(), method=method, path=path)


def test_the_method_is_case_insensitive_and_the_query_is_not_part_of_it() -> None:
    assert request_binding("get", PATH) == request_binding("GET", PATH)
    verifier = AssertionVerifier(SECRET, "notifications")
    verifier.verify(bound(method="get"), method="GET", path=PATH)


def test_another_service_is_refused() -> None:
    verifier = AssertionVerifier(SECRET, "citizen-services", allow_unbound=True)
    with pytest.raises(InvalidAssertion):
        verifier.verify(bound("notifications"), method="GET", path=PATH)


def test_unbound_assertions_only_where_allowed() -> None:
    unbound = sign_assertion(STAFF, SECRET)  # servicekit.testing.identity_headers'
    with pytest.raises(InvalidAssertion):
        AssertionVerifier(SECRET, "notifications").verify(unbound, method="GET", path=PATH)
    lenient = AssertionVerifier(SECRET, "notifications", allow_unbound=True)
    for _ in range(2):  # not replay-checked: tests reuse one header
        assert lenient.verify(unbound, method="POST", path="/x").subject == "staff-1"
    assert verify_assertion(unbound, SECRET).subject == "staff-1"
    with pytest.raises(InvalidAssertion):
        verify_assertion(bound(), SECRET)


def test_a_bound_assertion_without_its_binding_or_jti_is_refused() -> None:
    now = int(time.time())
    base = {
        "iss": "mk-gateway",
        "aud": "notifications",
        "iat": now,
        "exp": now + 60,
        "sub": "staff-1",
        "roles": ["staff"],
    }
    verifier = AssertionVerifier(SECRET, "notifications", allow_unbound=True)
    no_req = jwt.encode({**base, "jti": "a"}, SECRET, algorithm="HS256")
    no_jti = jwt.encode({**base, "req": request_binding("GET", PATH)}, SECRET, algorithm="HS256")
    for token in (no_req, no_jti):
        with pytest.raises(InvalidAssertion):
            verifier.verify(token, method="GET", path=PATH)
    other_secret = sign_assertion(
        STAFF,
        "another-secret-another-secret-12345",
        audience="notifications",
        method="GET",
        path=PATH,
    )
    with pytest.raises(InvalidAssertion):
        verifier.verify(other_secret, method="GET", path=PATH)
    assert AUDIENCE == "mk-services"


def test_the_seen_set_forgets_expired_assertions() -> None:
    now = [time.time()]
    verifier = AssertionVerifier(SECRET, "notifications", clock=lambda: now[0])
    for _ in range(50):
        verifier.verify(bound(), method="GET", path=PATH)
    assert len(verifier) == 50
    now[0] += 120  # all expired (60 s + leeway)
    verifier.verify(bound(), method="GET", path=PATH)
    assert len(verifier) == 1


def test_binding_needs_method_and_path() -> None:
    with pytest.raises(ValueError):
        sign_assertion(STAFF, SECRET, audience="notifications")


def test_verification_stays_cheap() -> None:
    """It runs on every request that names its caller: well under a millisecond."""
    verifier = AssertionVerifier(SECRET, "notifications")
    tokens = [bound() for _ in range(300)]
    started = time.perf_counter()
    for token in tokens:
        verifier.verify(token, method="GET", path=PATH)
    per_request = (time.perf_counter() - started) / len(tokens)
    assert per_request < 0.002, per_request


def test_the_fast_hs256_check_agrees_with_pyjwt_on_every_kind_of_token() -> None:
    """Services check the gateway's assertions without PyJWT (servicekit.identity._decode);
    for every token below both must accept the same ones with the same claims, and refuse
    the same ones."""
    import time as _time

    import jwt as pyjwt

    from servicekit import identity

    secret, other = "s" * 40, "t" * 40
    now = int(_time.time())
    good = {
        "iss": identity.ISSUER,
        "aud": "citizen-services",
        "exp": now + 60,
        "iat": now,
        "sub": "citizen-1",
        "jti": "j1",
        "roles": ["citizen"],
    }

    def tok(claims: dict, key: str = secret, alg: str = "HS256", **headers: str) -> str:
        return pyjwt.encode(claims, key, algorithm=alg, headers=headers or None)

    cases = {
        "good": tok(good),
        "list audience": tok({**good, "aud": ["x", "citizen-services"]}),
        "float times": tok({**good, "exp": now + 60.5, "iat": now + 0.5}),
        "within leeway": tok({**good, "exp": now - 2}),
        "expired": tok({**good, "exp": now - 10}),
        "future iat": tok({**good, "iat": now + 100}),
        "future nbf": tok({**good, "nbf": now + 100}),
        "wrong audience": tok({**good, "aud": "inclusion"}),
        "wrong issuer": tok({**good, "iss": "someone"}),
        "no exp": tok({k: v for k, v in good.items() if k != "exp"}),
        "no aud": tok({k: v for k, v in good.items() if k != "aud"}),
        "null sub": tok({**good, "sub": None}),
        "numeric jti": tok({**good, "jti": 7}),
        "string exp": tok({**good, "exp": str(now + 60)}),
        "other key": tok(good, key=other),
        "HS512": tok(good, key=secret * 2, alg="HS512"),
        "extra header": tok(good, kid="k1"),
        "none alg": pyjwt.encode(good, None, algorithm="none"),
        "truncated": tok(good)[:-3],
        "two dots only": tok(good).rsplit(".", 1)[0] + ".",
        "garbage": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.%%%.@@@",
    }
    for name, token in cases.items():
        outcomes = []
        for decode in (identity._decode, identity._decode_with_pyjwt):
            try:
                outcomes.append(("ok", decode(token, secret, "citizen-services")))
            except identity.InvalidAssertion:
                outcomes.append(("refused", None))
        if name == "string exp":  # PyJWT turns "123" into a time; the fast path refuses it
            assert outcomes[0] == ("refused", None), name
            continue
        assert outcomes[0] == outcomes[1], name
    assert identity._decode(cases["good"], secret, "citizen-services")["sub"] == "citizen-1"
    accepted = {n for n in cases if _accepts(cases[n], secret)}
    assert accepted == {"good", "list audience", "float times", "within leeway", "extra header"}


def _accepts(token: str, secret: str) -> bool:
    from servicekit import identity

    try:
        identity._decode(token, secret, "citizen-services")
    except identity.InvalidAssertion:
        return False
    return True
