"""application/notify_auth.py and notify_limits.py with a fake repository: Notify's JWT
checks in its order, the key cache, the rate limit."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jwt
import pytest

from notifications.application import notify_services
from notifications.application.notify_auth import (
    Caller,
    KeyCache,
    authenticate,
    forget_after_commit,
)
from notifications.application.notify_limits import NotifyRateLimiter
from notifications.domain.notify import AuthError, KeyType, RateLimitError, split_api_key

NOW = 1_800_000_000.0


def bearer(api_key: str, *, iat: float = NOW, alg: str = "HS256", iss: str | None = None) -> str:
    service_id, secret = split_api_key(api_key)
    return "Bearer " + jwt.encode(
        {"iss": iss or service_id, "iat": iat},
        secret + ("x" if alg != "HS256" else ""),
        algorithm=alg,
    )


async def _key(services_repo: Any, key_type: KeyType = KeyType.LIVE) -> str:
    service = await notify_services.create_service(
        services_repo, name="MK", email_from="mk@x.example", sms_sender="MK"
    )
    _, api_key = await notify_services.create_api_key(
        services_repo, service_id=service.id, name="live", key_type=key_type
    )
    return api_key


async def test_a_signed_token_names_its_service_and_key(services_repo: Any) -> None:
    api_key = await _key(services_repo)
    caller = await authenticate(services_repo, bearer(api_key), now=NOW)
    assert str(caller.service.id) == split_api_key(api_key)[0]
    assert caller.key_type is KeyType.LIVE


@pytest.mark.parametrize(
    ("header", "status", "message"),
    [
        (None, 401, "Unauthorized: authentication token must be provided"),
        ("Basic abc", 401, "Unauthorized: authentication bearer scheme must be used"),
        ("Bearer not-a-jwt", 403, "Invalid token: signature, api token is not valid"),
    ],
)
async def test_notifys_messages_for_missing_and_malformed_tokens(
    services_repo: Any, header: str | None, status: int, message: str
) -> None:
    with pytest.raises(AuthError) as refused:
        await authenticate(services_repo, header, now=NOW)
    assert (refused.value.status_code, refused.value.message) == (status, message)


async def test_clock_skew_unknown_services_and_revoked_keys_are_refused(services_repo: Any) -> None:
    api_key = await _key(services_repo)
    checks = [
        (
            bearer(api_key, iat=NOW - 31),
            "Error: Your system clock must be accurate to within 30 seconds",
        ),
        (bearer(api_key, iss=str(uuid.uuid4())), "Invalid token: service not found"),
        (bearer(api_key, iss="nope"), "Invalid token: service id is not the right data type"),
        (
            bearer(f"x-{split_api_key(api_key)[0]}-{uuid.uuid4()}"),
            "Invalid token: API key not found",
        ),
    ]
    for header, message in checks:
        with pytest.raises(AuthError) as refused:
            await authenticate(services_repo, header, now=NOW)
        assert refused.value.message == message
    key = next(iter(services_repo.api_keys.values()))
    key.revoked_at = key.created_at
    with pytest.raises(AuthError, match="API key revoked"):
        await authenticate(services_repo, bearer(api_key), now=NOW)


async def test_the_cache_opens_no_repository_while_it_holds_the_keys(services_repo: Any) -> None:
    api_key = await _key(services_repo)
    opened = 0

    @asynccontextmanager
    async def source() -> AsyncIterator[Any]:
        nonlocal opened
        opened += 1
        yield services_repo

    cache = KeyCache(ttl=60)
    first = await authenticate(source, bearer(api_key), now=NOW, cache=cache)
    again = await authenticate(source, bearer(api_key), now=NOW + 1, cache=cache)
    assert (opened, again) == (1, first)
    assert services_repo.detached  # kept beyond the read: not expired by any rollback
    other = bearer(api_key, iat=NOW + 2)  # another token, the same keys: no read either
    await authenticate(source, other, now=NOW + 2, cache=cache)
    assert opened == 1
    cache.forget(first.service.id)
    await authenticate(source, bearer(api_key), now=NOW + 3, cache=cache)
    assert opened == 2


async def test_the_rate_limit_is_per_service_and_key_type(services_repo: Any) -> None:
    api_key = await _key(services_repo)
    caller = await authenticate(services_repo, bearer(api_key), now=NOW)
    test = Caller(
        service=caller.service, key=caller.key.model_copy(update={"key_type": KeyType.TEST.value})
    )
    limiter = NotifyRateLimiter(per_minute=2)
    limiter.check(caller, now=0)
    limiter.check(caller, now=1)
    limiter.check(test, now=1)  # another key type: its own window
    with pytest.raises(RateLimitError, match="key type LIVE of 2 requests per 60 seconds"):
        limiter.check(caller, now=2)
    limiter.check(caller, now=60.5)  # the first hit has left the window
    NotifyRateLimiter(per_minute=0).check(caller, now=time.monotonic())  # 0: no limit


async def test_a_revocation_empties_the_cache_when_it_commits(services_repo: Any) -> None:
    api_key = await _key(services_repo)
    cache = KeyCache(ttl=60)
    caller = await authenticate(services_repo, bearer(api_key), now=NOW, cache=cache)
    forget_after_commit(services_repo, cache, caller.service.id)
    assert cache.cached(caller.service.id) is not None  # not before the commit
    for committed in services_repo.on_commit:
        committed()
    assert cache.cached(caller.service.id) is None
