"""API keys: ``mk_<8-char id>_<43-char secret>``, and how their secrets are stored.

The id is public (it names the key in lists, logs and the identity assertion); the secret
is 32 random bytes, shown once at creation and stored only as
``sha256$<salt hex>$<SHA-256(salt || secret) hex>``. Secrets are high-entropy, so one
fast salted hash is enough (no password stretching); comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "mk_"
ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
ID_LENGTH = 8
SECRET_BYTES = 32
_KEY = re.compile(r"^mk_([a-z0-9]{8})_([A-Za-z0-9_-]{32,128})$")
_HASH_SCHEME = "sha256"


@dataclass(frozen=True)
class ParsedKey:
    key_id: str
    secret: str

    def __repr__(self) -> str:  # never show the secret
        return f"ParsedKey(key_id={self.key_id!r})"


def new_key_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)  # 43 URL-safe characters


def format_key(key_id: str, secret: str) -> str:
    return f"{PREFIX}{key_id}_{secret}"


def parse_key(presented: str) -> ParsedKey | None:
    """Split a presented key into id and secret; None when it is not a key's shape."""
    match = _KEY.match(presented.strip())
    return ParsedKey(match.group(1), match.group(2)) if match else None


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.sha256(salt + secret.encode()).hexdigest()
    return f"{_HASH_SCHEME}${salt.hex()}${digest}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != _HASH_SCHEME:
        return False
    candidate = hashlib.sha256(salt + secret.encode()).hexdigest()
    return hmac.compare_digest(candidate.encode(), digest.encode())
