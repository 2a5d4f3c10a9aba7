"""One-click unsubscribe tokens (RFC 8058): who and which topic, signed (HMAC-SHA256).

The token names the citizen by their opaque subject id, never by address."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json


class InvalidToken(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(citizen_id: str, topic: str, secret: str) -> str:
    payload = _b64(json.dumps({"c": citizen_id, "t": topic}, separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def read_token(token: str, secret: str) -> tuple[str, str]:
    """(citizen id, topic); raises :class:`InvalidToken`."""
    payload, _, mac = token.partition(".")
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    try:
        if not mac or not hmac.compare_digest(_unb64(mac), expected):
            raise InvalidToken("bad signature")
        data = json.loads(_unb64(payload))
        return str(data["c"]), str(data["t"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidToken("malformed") from exc
