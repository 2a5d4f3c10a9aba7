"""Sign-in through a real OIDC provider (the gateway's dev provider): authorization code +
PKCE, state and nonce, both client authentications, the session cookie, CSRF, sign-out, and
the access token the gateway then accepts."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gateway.auth.tokens import TokenVerifier
from webkit.settings import FrontendSettings

from .conftest import Stack, running_frontend

pytestmark = pytest.mark.timeout(120)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "every form carries a CSRF token"
    return match.group(1)


async def _sign_in(
    browser: httpx.AsyncClient, subject: str, *, start: str = "/me"
) -> httpx.Response:
    """Follow the browser's path: page → /sign-in → provider → callback → page."""
    first = await browser.get(start)
    assert first.status_code == 303 and first.headers["location"].startswith("/sign-in?next=")
    to_provider = await browser.get(first.headers["location"])
    assert to_provider.status_code == 303
    authorize = to_provider.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["state"][0] and query["nonce"][0]
    async with httpx.AsyncClient() as provider:
        page = await provider.get(authorize)
        assert page.status_code == 200 and subject in page.text
        form = {k: v[0] for k, v in query.items()} | {"subject": subject}
        chosen = await provider.post(authorize.split("?")[0], data=form)
    assert chosen.status_code == 303
    callback = chosen.headers["location"]
    back = await browser.get(callback)
    assert back.status_code == 303, back.text
    return await browser.get(back.headers["location"])


async def test_sign_in_with_client_secret_then_the_gateway_accepts_the_token(
    stack: Stack,
) -> None:
    port = stack.front_ports[0]
    async with running_frontend(stack.frontend_settings(port), port) as browser:
        page = await _sign_in(browser, "citizen-dev-1")
        assert page.status_code == 200
        assert '<p class="govuk-body" id="message">citizen-dev-1</p>' in page.text
        refused = await browser.get("/staff-only")
        assert refused.status_code == 403 and "You cannot see this page" in refused.text
        cookie = page.request and browser.cookies.get("mk_session")
        assert cookie
        token = (await browser.get("/token")).text
    principal = await TokenVerifier(stack.auth).verify(token)
    assert principal.subject == "citizen-dev-1"
    assert [r.value for r in principal.roles] == ["citizen"]


async def test_private_key_jwt_client_authentication(stack: Stack) -> None:
    port = stack.front_ports[1]
    settings = stack.frontend_settings(
        port,
        oidc_client_id="demo-pkjwt",
        oidc_client_auth="private_key_jwt",
        oidc_private_key_file=stack.client_key_file,
        oidc_key_id="demo-key-1",
    )
    async with running_frontend(settings, port) as browser:
        page = await _sign_in(browser, "staff-dev-1")
        assert page.status_code == 200 and ">staff-dev-1<" in page.text
        staff = await browser.get("/staff-only")  # roles from the ID token
        assert staff.status_code == 200 and ">staff<" in staff.text


async def test_cookie_csrf_headers_sign_out_and_a_forged_callback(stack: Stack) -> None:
    port = stack.front_ports[2]
    async with running_frontend(stack.frontend_settings(port), port) as browser:
        home = await browser.get("/")
        set_cookie = home.headers["set-cookie"]
        assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
        assert "Secure" not in set_cookie  # development over http only
        csp = home.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert home.headers["x-frame-options"] == "DENY"
        assert "<script>" not in home.text  # no inline script anywhere in the layout

        # CSRF: a form post without the token, or with another one, is refused
        missing = await browser.post("/form", data={})
        assert missing.status_code == 400 and "problem with this form" in missing.text
        wrong = await browser.post("/form", data={"csrf_token": "x" * 43})
        assert wrong.status_code == 400
        ok = await browser.post("/form", data={"csrf_token": _csrf(home.text)})
        assert ok.status_code == 200 and ">posted<" in ok.text

        # a callback whose state is not the one this browser started is refused
        forged = await browser.get("/auth/callback?code=abc&state=not-mine")
        assert forged.status_code == 400

        page = await _sign_in(browser, "citizen-dev-2")
        assert ">citizen-dev-2<" in page.text
        refused = await browser.post("/sign-out", data={})
        assert refused.status_code == 400
        out = await browser.post("/sign-out", data={"csrf_token": _csrf(page.text)})
        assert out.status_code == 303 and "/dev-issuer/logout?" in out.headers["location"]
        async with httpx.AsyncClient() as provider:
            back = await provider.get(out.headers["location"])
        assert back.status_code == 303
        assert back.headers["location"] == f"http://127.0.0.1:{port}/signed-out"
        again = await browser.get("/me")
        assert again.status_code == 303  # signed out: sign in again

        assets = await browser.get(
            "/assets/govuk-frontend.min.css?v=6.6.0", headers={"accept-encoding": "gzip"}
        )
        assert assets.status_code == 200
        assert "max-age=31536000" in assets.headers["cache-control"]
        assert assets.headers["content-encoding"] == "gzip"
        assert (await browser.get("/assets/webkit.js")).status_code == 200


def test_secure_cookies_and_secrets_outside_development() -> None:
    assert FrontendSettings(public_url="https://portal.example").cookies_secure
    with pytest.raises(ValueError, match="SESSION_SECRET"):
        FrontendSettings(environment="production", identity_secret="s" * 8 + "0123456789" * 4)
