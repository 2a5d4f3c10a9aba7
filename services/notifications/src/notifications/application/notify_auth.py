"""Who calls the GOV.UK Notify API: its JWT checked against the service's API keys, with
a per-process cache of keys and of tokens already verified (:class:`KeyCache`). Errors are
Notify's (:mod:`notifications.domain.notify`)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import jwt

from notifications.domain.notify import (
    BEARER_REQUIRED,
    CLOCK_SKEW,
    KEY_NOT_FOUND,
    TOKEN_MISSING,
    AuthError,
    KeyType,
)
from notifications.persistence.notify_services import NotifyServiceRepository
from notifications.persistence.tables import NotifyApiKey, NotifyService
from servicekit.db import Database


@dataclass(frozen=True)
class Caller:
    service: NotifyService
    key: NotifyApiKey

    @property
    def key_type(self) -> KeyType:
        return KeyType(self.key.key_type)


async def _service_keys(
    services: NotifyServiceRepository, service_id: uuid.UUID
) -> tuple[NotifyService | None, list[NotifyApiKey]]:
    service = await services.get(service_id)
    if service is None:
        return None, []
    return service, await services.keys(service_id)


class KeyCache:
    """Services and their API keys, and the tokens already verified, for ``ttl`` seconds.

    Without it every request read the service and its keys (two queries) and tried each
    key's HMAC. Notify's clients sign one token a second (identical within the second), so
    most requests present a token verified moments ago: only its ``iat`` is checked again.
    A key revoked in the database is refused by this process within ``ttl`` seconds (at
    once when revoked through this process: :meth:`forget`); a key or service created
    since the last read is found at once (a miss reads them again).
    """

    def __init__(self, ttl: float = 5.0, *, max_entries: int = 4096) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._services: dict[uuid.UUID, tuple[float, NotifyService | None, list[NotifyApiKey]]] = {}
        self._tokens: dict[str, tuple[float, Caller, float]] = {}
        #: Bumped by :meth:`forget`: a read that began before it is not cached.
        self._generation: dict[uuid.UUID, int] = {}

    async def service_keys(
        self, services: NotifyServiceRepository, service_id: uuid.UUID, *, refresh: bool = False
    ) -> tuple[NotifyService | None, list[NotifyApiKey], bool]:
        """(service, keys, read just now)."""
        now = time.monotonic()
        found = self._services.get(service_id)
        if refresh or found is None or now - found[0] > self.ttl:
            generation = self.generation(service_id)
            service, keys = await _service_keys(services, service_id)
            if service is not None:  # shared by requests: no session may expire them
                services.detach(service, *keys)
            if generation == self.generation(service_id):  # not forgotten meanwhile
                self._bound(self._services)
                self._services[service_id] = (now, service, keys)
            return service, keys, True
        return found[1], found[2], False

    def cached(
        self, service_id: uuid.UUID
    ) -> tuple[NotifyService | None, list[NotifyApiKey]] | None:
        """The service and its keys if cached within ``ttl``, without reading."""
        found = self._services.get(service_id)
        if found is None or time.monotonic() - found[0] > self.ttl:
            return None
        return found[1], found[2]

    def forget(self, service_id: uuid.UUID) -> None:
        """Drop a service's keys and the tokens verified with them (call it after the
        commit that revoked a key): the next request reads the keys again."""
        self._generation[service_id] = self.generation(service_id) + 1
        self._services.pop(service_id, None)
        for token in [
            t for t, (_, caller, _) in self._tokens.items() if caller.service.id == service_id
        ]:
            del self._tokens[token]

    def token(self, token: str) -> tuple[Caller, float] | None:
        found = self._tokens.get(token)
        if found is None or time.monotonic() - found[0] > self.ttl:
            return None
        return found[1], found[2]

    def generation(self, service_id: uuid.UUID) -> int:
        return self._generation.get(service_id, 0)

    def remember(
        self, token: str, caller: Caller, iat: float, *, generation: int | None = None
    ) -> None:
        """Keep a verified token, unless its service was forgotten since ``generation``."""
        if generation is not None and generation != self.generation(caller.service.id):
            return
        self._bound(self._tokens)
        self._tokens[token] = (time.monotonic(), caller, iat)

    def _bound(self, entries: dict[Any, Any]) -> None:
        if len(entries) >= self.max_entries:  # oldest first (dicts keep insertion order)
            for stale in list(entries)[: self.max_entries // 2]:
                del entries[stale]


SERVICE_NOT_FOUND = "Invalid token: service not found"
NO_KEYS = "Invalid token: service has no API keys"


def _verify(
    token: str,
    service: NotifyService | None,
    keys: list[NotifyApiKey],
    *,
    clock: float,
    leeway_seconds: int,
) -> tuple[Caller, float]:
    """The caller whose key signed ``token``, and the token's ``iat``; Notify's errors."""
    if service is None:
        raise AuthError(SERVICE_NOT_FOUND)
    if not keys:
        raise AuthError(NO_KEYS)
    for key in keys:
        try:
            verified = jwt.decode(
                token,
                key.secret,
                algorithms=["HS256"],
                options={"verify_iat": False, "verify_exp": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            continue
        iat = verified.get("iat")
        if not isinstance(iat, int | float):
            raise AuthError("Invalid token: iat field not provided")
        if abs(clock - iat) > leeway_seconds:
            raise AuthError(CLOCK_SKEW)
        if key.revoked_at is not None:
            raise AuthError("Invalid token: API key revoked")
        return Caller(service=service, key=key), iat
    raise AuthError(KEY_NOT_FOUND)


#: The services' repository, or what opens one (on a read session): then a session is
#: opened only when the key cache misses.
KeySource = (
    NotifyServiceRepository | Callable[[], AbstractAsyncContextManager[NotifyServiceRepository]]
)


@asynccontextmanager
async def _services_from(source: KeySource) -> AsyncIterator[NotifyServiceRepository]:
    if callable(source):  # opens one
        async with source() as services:
            yield services
    else:
        yield source


async def authenticate(
    source: KeySource,
    authorization: str | None,
    *,
    leeway_seconds: int = 30,
    now: float | None = None,
    cache: KeyCache | None = None,
) -> Caller:
    """Notify's checks, in its order, with its messages. ``source`` may open a repository
    (:func:`read_keys`): it is called only when the cache misses."""
    if not authorization:
        raise AuthError(TOKEN_MISSING, status_code=401)
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(BEARER_REQUIRED, status_code=401)
    token = token.strip()
    clock = now if now is not None else time.time()
    known = cache.token(token) if cache is not None else None
    if known is not None:  # verified moments ago (its key not revoked then)
        caller, issued_at = known
        if abs(clock - issued_at) > leeway_seconds:
            raise AuthError(CLOCK_SKEW)
        return caller
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AuthError("Invalid token: signature, api token is not valid") from None
    if header.get("alg") != "HS256":
        raise AuthError("Invalid token: algorithm used is not HS256")
    issuer = claims.get("iss")
    if not issuer:
        raise AuthError("Invalid token: iss field not provided")
    try:
        service_id = uuid.UUID(str(issuer))
    except ValueError:
        raise AuthError("Invalid token: service id is not the right data type") from None
    if cache is None:
        async with _services_from(source) as services:
            service, keys = await _service_keys(services, service_id)
        return _verify(token, service, keys, clock=clock, leeway_seconds=leeway_seconds)[0]
    generation = cache.generation(service_id)
    service, keys, fresh = await _cached_keys(cache, source, service_id)
    try:
        caller, iat = _verify(token, service, keys, clock=clock, leeway_seconds=leeway_seconds)
    except AuthError as exc:
        if fresh or exc.message not in (SERVICE_NOT_FOUND, NO_KEYS, KEY_NOT_FOUND):
            raise
        # created since they were cached? read them again before refusing
        service, keys, _ = await _cached_keys(cache, source, service_id, refresh=True)
        caller, iat = _verify(token, service, keys, clock=clock, leeway_seconds=leeway_seconds)
    cache.remember(token, caller, iat, generation=generation)
    return caller


async def _cached_keys(
    cache: KeyCache, source: KeySource, service_id: uuid.UUID, *, refresh: bool = False
) -> tuple[NotifyService | None, list[NotifyApiKey], bool]:
    if not refresh and callable(source):
        found = cache.cached(service_id)
        if found is not None:  # no session opened
            return found[0], found[1], False
    async with _services_from(source) as services:
        return await cache.service_keys(services, service_id, refresh=refresh)


def read_keys(
    database: Database,
) -> Callable[[], AbstractAsyncContextManager[NotifyServiceRepository]]:
    """What opens the services' repository on a read session, for :func:`authenticate`."""

    @asynccontextmanager
    async def open_keys() -> AsyncIterator[NotifyServiceRepository]:
        async with database.read_session() as db:
            yield NotifyServiceRepository(db)

    return open_keys


def forget_after_commit(
    services: NotifyServiceRepository, cache: KeyCache, service_id: uuid.UUID
) -> None:
    """When the transaction of ``services`` commits (a key of the service revoked),
    ``cache`` forgets the service: this process refuses the key at once, and nothing read
    before the commit is kept."""
    services.after_commit(lambda: cache.forget(service_id))
