"""A development identity provider: an ES256 key pair under ``var/dev-issuer/`` and
:meth:`DevIssuer.mint` to make bearer tokens the gateway accepts when
``GATEWAY_JWT_JWKS_FILE`` points at its ``jwks.json``. Never used in production: a real
deployment points ``GATEWAY_JWT_JWKS_URL`` at the council's OIDC provider instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from servicekit.identity import Role

DEV_ISSUER = "http://127.0.0.1:8000/dev-issuer"
DEV_AUDIENCE = "mk-digital-platform"
DEFAULT_TTL_SECONDS = 12 * 3600
PRIVATE_KEY_FILE = "signing-key.pem"
JWKS_FILE = "jwks.json"


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    # RFC 7638 thumbprint as the key id: stable for the key, different for a new one.
    jwk["kid"] = _thumbprint(jwk)
    jwk.update(use="sig", alg="ES256")
    return jwk


def _thumbprint(jwk: dict[str, Any]) -> str:
    canonical = json.dumps(
        {k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class DevIssuer:
    directory: Path
    private_key: ec.EllipticCurvePrivateKey
    kid: str

    @property
    def jwks_path(self) -> Path:
        return self.directory / JWKS_FILE

    def mint(
        self,
        subject: str,
        roles: Iterable[Role | str],
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        issuer: str = DEV_ISSUER,
        audience: str = DEV_AUDIENCE,
        **extra: Any,
    ) -> str:
        """A signed ES256 token for ``subject`` with ``roles``; ``extra`` claims are added
        (and may replace the standard ones, which tests use to make bad tokens)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
            "jti": str(uuid.uuid4()),
            "roles": [Role(r).value if isinstance(r, Role) else str(r) for r in roles],
        }
        claims.update(extra)
        return jwt.encode(claims, self.private_key, algorithm="ES256", headers={"kid": self.kid})


def load_dev_issuer(jwks_file: Path) -> DevIssuer | None:
    """The dev issuer whose ``jwks.json`` is ``jwks_file``, read only (nothing is created or
    rewritten): None unless the file sits beside the issuer's private key and publishes it."""
    key_path = jwks_file.parent / PRIVATE_KEY_FILE
    if jwks_file.name != JWKS_FILE or not key_path.exists() or not jwks_file.exists():
        return None
    loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        return None
    kid = _public_jwk(loaded)["kid"]
    try:
        published = {k.get("kid") for k in json.loads(jwks_file.read_text()).get("keys", [])}
    except (ValueError, AttributeError):
        return None
    if kid not in published:
        return None
    return DevIssuer(directory=jwks_file.parent, private_key=loaded, kid=kid)


def ensure_dev_issuer(directory: Path) -> DevIssuer:
    """The dev issuer kept in ``directory``: its key pair is created on first use (private
    key mode 0600) and reused afterwards; ``jwks.json`` is (re)written from it."""
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / PRIVATE_KEY_FILE
    if key_path.exists():
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise RuntimeError(f"{key_path} is not an EC private key")
        private_key = loaded
    else:
        private_key = ec.generate_private_key(ec.SECP256R1())
        write_private(
            key_path,
            private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
    jwk = _public_jwk(private_key)
    jwks = json.dumps({"keys": [jwk]}, indent=2) + "\n"
    jwks_path = directory / JWKS_FILE
    if not jwks_path.exists() or jwks_path.read_text() != jwks:
        tmp = jwks_path.with_name(JWKS_FILE + ".tmp")
        tmp.write_text(jwks)
        os.replace(tmp, jwks_path)
    return DevIssuer(directory=directory, private_key=private_key, kid=jwk["kid"])
