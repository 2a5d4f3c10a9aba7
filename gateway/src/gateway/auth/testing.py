"""Helpers for tests of gateway authentication (used by ``gateway/gateway_tests/test_auth_*.py``
and usable by the gateway's own tests): settings, a started authenticator, a JWKS server,
and the ASGI lifespan exchange every stand-in app (this JWKS server, the tests' upstreams)
has to answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from gateway.auth.authenticator import Authenticator
from gateway.auth.devissuer import DEV_AUDIENCE, DEV_ISSUER
from gateway.auth.settings import AuthSettings


def auth_settings(
    database_url: str,
    *,
    jwks_file: Path | None = None,
    jwks_url: str | None = None,
    **overrides: Any,
) -> AuthSettings:
    """Settings for a test: no caching of API keys, the dev issuer's issuer and audience."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_jwks_file": jwks_file,
        "jwt_jwks_url": jwks_url,
        "jwt_issuer": DEV_ISSUER,
        "jwt_audience": DEV_AUDIENCE,
        "api_key_cache_seconds": 0,
        "jwt_roles_claim": "roles",
        "jwt_algorithms": ["RS256", "ES256"],
        "jwt_leeway_seconds": 30,
    }
    values.update(overrides)
    return AuthSettings(**values)


async def answer_lifespan(receive: Any, send: Any) -> None:
    """Answer an ASGI ``lifespan`` scope for an app with nothing to start or stop: complete
    the start-up, then the shut-down, and return."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


@asynccontextmanager
async def running_authenticator(settings: AuthSettings) -> AsyncIterator[Authenticator]:
    authenticator = Authenticator(settings)
    await authenticator.start()
    try:
        yield authenticator
    finally:
        await authenticator.stop()


class JwksServer:
    """An ASGI app serving ``document`` at any path (``status`` to make it fail); counts
    requests. Serve it with ``servicekit.testing.running_app``."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.status = 200
        self.requests = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        self.requests += 1
        body = json.dumps(self.document).encode() if self.status == 200 else b"{}"
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
