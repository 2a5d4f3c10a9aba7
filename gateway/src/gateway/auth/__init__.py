"""Authentication at the gateway: bearer JWTs from the identity provider, API keys for
partner systems and Open311 clients, the admin API for keys, and the dev issuer.

The gateway builds one :class:`Authenticator` from :class:`AuthSettings`, starts it with
the app, and calls :meth:`Authenticator.authenticate` for each request.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.auth.authenticator import Authenticator
    from gateway.auth.errors import AuthFailed
    from gateway.auth.settings import AuthSettings

__all__ = ["AuthFailed", "AuthSettings", "Authenticator"]

_HOMES = {
    "Authenticator": "gateway.auth.authenticator",
    "AuthFailed": "gateway.auth.errors",
    "AuthSettings": "gateway.auth.settings",
}


def __getattr__(name: str) -> Any:
    # Imported on first use, so ``python -m gateway.auth.cli`` does not load the token
    # verifier and the web framework just to manage keys.
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'gateway.auth' has no attribute {name!r}")
