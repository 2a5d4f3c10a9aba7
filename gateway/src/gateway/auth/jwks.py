"""Where the identity provider's public signing keys come from: a JWKS URL or a JWKS file.

The URL is fetched with :class:`jwt.PyJWKClient` (its JWK-set cache, ``lifespan`` seconds)
in a worker thread so the event loop never blocks on the network; one fetch runs at a time,
an unknown ``kid`` forces at most one refresh per cool-down, and if the provider is
unreachable the last good key set keeps serving. The file is re-read when it changes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Protocol

from jwt import PyJWK, PyJWKClient, PyJWKSet
from jwt.exceptions import PyJWKClientConnectionError, PyJWTError

from gateway.auth.errors import unavailable

log = logging.getLogger(__name__)

REFRESH_COOLDOWN_SECONDS = 30.0
#: After a failed fetch, the next one waits this long (the last good keys serve meanwhile).
RETRY_AFTER_FAILURE_SECONDS = 10.0


class KeySource(Protocol):
    async def start(self) -> None: ...

    async def keys(self, *, refresh: bool = False) -> PyJWKSet:
        """The current key set; ``refresh`` asks for a newer one (rate-limited)."""
        ...


def select_key(keys: PyJWKSet, kid: str | None) -> PyJWK | None:
    """The signing key named ``kid``; without a ``kid``, the set's only signing key."""
    signing = [k for k in keys.keys if k.public_key_use in ("sig", None)]
    if kid is not None:
        return next((k for k in signing if k.key_id == kid), None)
    return signing[0] if len(signing) == 1 else None


class FileKeySource:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: PyJWKSet | None = None
        self._mtime_ns = -1

    async def start(self) -> None:
        self._load()

    def _load(self) -> None:
        try:
            stat = self.path.stat()
            if stat.st_mtime_ns == self._mtime_ns and self._keys is not None:
                return
            self._keys = PyJWKSet.from_dict(json.loads(self.path.read_text()))
            self._mtime_ns = stat.st_mtime_ns
        except (OSError, ValueError, PyJWTError) as exc:
            if self._keys is None:
                raise RuntimeError(
                    f"cannot read the JWKS file {self.path}: {type(exc).__name__}"
                ) from exc
            log.warning(
                "JWKS file %s unreadable (%s); keeping the keys already loaded",
                self.path,
                type(exc).__name__,
            )

    async def keys(self, *, refresh: bool = False) -> PyJWKSet:
        if refresh or self._keys is None:
            self._load()
        assert self._keys is not None
        return self._keys


class UrlKeySource:
    def __init__(self, url: str, *, cache_seconds: float = 300, timeout: float = 5) -> None:
        self.url = url
        self._client = PyJWKClient(
            url,
            cache_jwk_set=True,
            lifespan=cache_seconds,
            timeout=timeout,
            cooldown_duration=REFRESH_COOLDOWN_SECONDS,
        )
        self._lock = asyncio.Lock()
        self._last_good: PyJWKSet | None = None
        self._last_fetch = float("-inf")
        self._failed_until = float("-inf")

    async def start(self) -> None:
        """Warm the cache; an unreachable provider is logged, not fatal (tokens are refused
        with 503 until it answers)."""
        try:
            await self.keys()
        except Exception:
            log.warning("JWKS %s not reachable at start-up", self.url)

    def _cached(self) -> PyJWKSet | None:
        cache = self._client.jwk_set_cache
        data = cache.get() if cache is not None else None
        return data if isinstance(data, PyJWKSet) else None

    async def keys(self, *, refresh: bool = False) -> PyJWKSet:
        cached = self._cached()
        if cached is not None and not refresh:
            return cached
        async with self._lock:
            cached = self._cached()
            if cached is not None and (
                not refresh or time.monotonic() - self._last_fetch < REFRESH_COOLDOWN_SECONDS
            ):
                return cached
            if time.monotonic() < self._failed_until:
                return self._fallback()
            try:
                keys = await asyncio.to_thread(self._client.get_jwk_set, True)
            except (PyJWKClientConnectionError, PyJWTError) as exc:
                log.warning("JWKS %s could not be fetched: %s", self.url, type(exc).__name__)
                self._failed_until = time.monotonic() + RETRY_AFTER_FAILURE_SECONDS
                return self._fallback()
            self._last_fetch = time.monotonic()
            self._last_good = keys
            return keys

    def _fallback(self) -> PyJWKSet:
        if self._last_good is not None:
            return self._last_good
        raise unavailable("The identity provider's signing keys cannot be fetched.")
