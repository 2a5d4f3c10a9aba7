"""Security headers on every front-end response: a Content-Security-Policy with no inline
script or style (GOV.UK Frontend's assets come from ``/assets``), no framing, no sniffing, no
referrer beyond the origin, HSTS when the cookies are secure."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


def csp(*form_targets: str) -> str:
    """The policy; ``form_targets`` are origins a form's POST may be redirected to (the
    identity provider's, for sign-out: browsers apply ``form-action`` to redirects too)."""
    return CSP + "".join(f" {origin}" for origin in form_targets if origin)


HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "geolocation=(), camera=(), microphone=(), interest-cohort=()",
}


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, hsts: bool, form_targets: tuple[str, ...] = ()) -> None:
        self.app = app
        self.headers = {**HEADERS, "content-security-policy": csp(*form_targets)}
        if hsts:
            self.headers["strict-transport-security"] = "max-age=31536000; includeSubDomains"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    if name not in headers:
                        headers[name] = value
                if not headers.get("cache-control"):
                    # pages are personal: never stored by a shared cache
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
