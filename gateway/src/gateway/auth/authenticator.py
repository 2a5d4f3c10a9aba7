"""The gateway's authenticator: credentials in, a :class:`Principal` out (or AuthFailed).

The gateway calls :meth:`Authenticator.authenticate` once per request, signs the result
into the identity assertion and forwards it; anonymous is a valid outcome (no
credentials), a refused credential is not.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from sqlalchemy.exc import SQLAlchemyError

from gateway.auth.apikeys import parse_key, verify_secret
from gateway.auth.credentials import (
    Credential,
    Kind,
    has_header_credentials,
    is_form,
    is_multipart,
    open311_credentials,
    presented,
)
from gateway.auth.errors import AuthFailed, invalid_api_key, unavailable
from gateway.auth.keycache import KeyCache
from gateway.auth.settings import AuthSettings
from gateway.auth.store import TOUCH_INTERVAL, ApiKeyStore
from gateway.auth.tables import MIGRATIONS
from gateway.auth.tokens import TokenVerifier
from gateway.routes import AuthMode, Route
from servicekit.db import Database
from servicekit.identity import ANONYMOUS, AuthMethod, Principal
from servicekit.migrations import upgrade

log = logging.getLogger(__name__)


class Authenticator:
    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self.database: Database | None = None
        self.tokens = TokenVerifier(settings)
        self._store: ApiKeyStore | None = None
        self._cache: KeyCache | None = None
        self._touched: dict[str, float] = {}
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the database, apply the migrations, load the identity provider's keys."""
        self.database = Database(self.settings.database_url, pool_size=5)
        try:
            if self.settings.run_migrations:
                await upgrade(self.database, MIGRATIONS)
            await self.tokens.start()
        except BaseException:
            await self.database.dispose()
            self.database = None
            raise
        self._store = ApiKeyStore(self.database)
        self._cache = KeyCache(self._store.lookup, ttl=self.settings.api_key_cache_seconds)

    async def stop(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self.database is not None:
            await self.database.dispose()
            self.database = None

    @property
    def store(self) -> ApiKeyStore:
        """API keys (for the admin API); only after :meth:`start`."""
        if self._store is None:
            raise RuntimeError("Authenticator.start() has not run")
        return self._store

    def forget_key(self, key_id: str) -> None:
        """Drop a key from this process's cache (after a revocation here)."""
        if self._cache is not None:
            self._cache.invalidate(key_id)

    # ------------------------------------------------------------------ per request

    def needs_form_body(
        self,
        route: Route,
        method: str,
        content_type: str | None,
        headers: Mapping[str, str] | None = None,
        query_string: str = "",
    ) -> bool:
        """Whether :meth:`authenticate` needs the request body: only for an Open311 route's
        form POST (form-encoded or multipart) whose headers (when given) carry no credential
        and whose query string (when given) carries no ``api_key``."""
        if route.auth is not AuthMode.OPEN311 or method.upper() != "POST":
            return False
        if not (is_form(content_type) or is_multipart(content_type)):
            return False
        if headers is not None and has_header_credentials(headers, route):
            return False
        return not (query_string and open311_credentials(query_string, None))

    async def authenticate(
        self,
        headers: Mapping[str, str],
        query_string: str,
        route: Route,
        form_body: bytes | None = None,
    ) -> Principal:
        """The caller: ANONYMOUS without credentials; raises :class:`AuthFailed` for
        credentials that are malformed, unknown, expired or revoked. ``headers`` have
        lower-case names."""
        credential = presented(headers, query_string, route, form_body)
        if credential is None:
            return ANONYMOUS
        if credential.kind is Kind.BEARER:
            return await self.tokens.verify(credential.value)
        return await self._api_key(credential)

    async def _api_key(self, credential: Credential) -> Principal:
        if self._cache is None:
            raise RuntimeError("Authenticator.start() has not run")
        parsed = parse_key(credential.value)
        if parsed is None:
            raise invalid_api_key()
        try:
            stored = await self._cache.get(parsed.key_id)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("API key look-up failed: %s", type(exc).__name__)
            raise unavailable("API keys cannot be checked right now.") from None
        if stored is None or not verify_secret(parsed.secret, stored.secret_hash):
            raise invalid_api_key()
        key = stored.api_key
        if key.revoked:
            raise invalid_api_key("The API key has been revoked.")
        self._record_use(key.id)
        return Principal(
            subject=f"apikey:{key.id}",
            roles=frozenset({key.role}),
            scopes=frozenset(key.scopes),
            method=AuthMethod.API_KEY,
            key_id=key.id,
        )

    def _record_use(self, key_id: str) -> None:
        now = time.monotonic()
        last = self._touched.get(key_id)
        if last is not None and now - last < TOUCH_INTERVAL.total_seconds():
            return
        if last is None and len(self._touched) > 100_000:
            self._touched.clear()
        self._touched[key_id] = now
        task = asyncio.create_task(self._touch(key_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _touch(self, key_id: str) -> None:
        try:
            await self.store.touch(key_id)
        except Exception as exc:
            log.warning("could not record the use of API key %s: %s", key_id, type(exc).__name__)


__all__ = ["AuthFailed", "Authenticator"]
