"""The session: one cookie, encrypted and signed (Fernet, a key derived from the session
secret), ``HttpOnly``, ``SameSite=Lax`` and ``Secure`` unless development over http.

It holds the sign-in state while the browser is at the provider (state, nonce, PKCE verifier,
where to go back to), then the signed-in citizen's subject, access token and ID token (for
sign-out), a journey's answers so far, and the CSRF token every form carries. Nothing is kept
on the server, so any replica can answer any request. The cookie's own timestamp bounds its
life; its JSON is compressed (zlib) before encryption, so it stays under the browsers' 4 KB.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import zlib
from collections.abc import MutableMapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_FIELD = "csrf_token"
MAX_COOKIE_BYTES = 4000


def _fernet(secret: str) -> Fernet:
    key = hashlib.sha256(b"webkit-session\0" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


class Session(dict[str, Any]):
    """A dict that knows whether it changed."""

    modified = False

    def __setitem__(self, key: str, value: Any) -> None:
        self.modified = True
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.modified = True
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:
        self.modified = self.modified or key in self
        return super().pop(key, *default)

    def clear(self) -> None:
        self.modified = True
        super().clear()

    def csrf_token(self) -> str:
        token = self.get(CSRF_FIELD)
        if not isinstance(token, str):
            token = secrets.token_urlsafe(32)
            self[CSRF_FIELD] = token
        return token

    def csrf_valid(self, presented: str | None) -> bool:
        expected = self.get(CSRF_FIELD)
        return (
            isinstance(expected, str)
            and isinstance(presented, str)
            and hmac.compare_digest(expected.encode(), presented.encode())
        )


class SessionMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        secret: str,
        cookie: str,
        max_age: int,
        secure: bool,
    ) -> None:
        self.app = app
        self.fernet = _fernet(secret)
        self.cookie = cookie
        self.max_age = max_age
        self.secure = secure

    def load(self, raw: str | None) -> Session:
        if not raw:
            return Session()
        try:
            data = json.loads(zlib.decompress(self.fernet.decrypt(raw.encode(), ttl=self.max_age)))
        except (InvalidToken, ValueError, zlib.error):
            return Session()
        session = Session(data if isinstance(data, dict) else {})
        session.modified = False
        return session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        session = self.load(connection.cookies.get(self.cookie))
        scope["session"] = session
        had_cookie = self.cookie in connection.cookies

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and (session.modified or not had_cookie):
                headers = MutableHeaders(scope=message)
                if session:
                    plain = json.dumps(dict(session), ensure_ascii=False, separators=(",", ":"))
                    value = self.fernet.encrypt(zlib.compress(plain.encode())).decode()
                    if len(value) > MAX_COOKIE_BYTES:
                        raise RuntimeError("the session no longer fits in its cookie")
                    headers.append("set-cookie", self._cookie(value, self.max_age))
                elif had_cookie:
                    headers.append("set-cookie", self._cookie("", 0))
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _cookie(self, value: str, max_age: int) -> str:
        parts = [f"{self.cookie}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly"]
        parts.append("SameSite=Lax")
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)


def session_of(scope_holder: HTTPConnection | MutableMapping[str, Any]) -> Session:
    scope = scope_holder.scope if isinstance(scope_holder, HTTPConnection) else scope_holder
    session = scope.get("session")
    if not isinstance(session, Session):
        raise RuntimeError("SessionMiddleware is not installed")
    return session
