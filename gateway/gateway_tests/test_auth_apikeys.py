"""API keys: the store (SQLite and PostgreSQL), authentication, revocation, Open311."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.auth import Authenticator, AuthFailed
from gateway.auth.apikeys import parse_key
from gateway.auth.store import InvalidKeyRequest
from gateway.auth.tables import api_key
from gateway.auth.testing import auth_settings, running_authenticator
from gateway.routes import AuthMode, Route
from servicekit.identity import ANONYMOUS, AuthMethod, Principal, Role

ROUTE = Route("/api/v1/events", "citizen-services")
OPEN311 = Route("/open311/v2", "citizen-services", auth=AuthMode.OPEN311)
UPSTREAM = Route("/v2", "notifications", auth=AuthMode.UPSTREAM)
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
async def auth(database_url: str) -> AsyncIterator[Authenticator]:
    async with running_authenticator(auth_settings(database_url)) as authenticator:
        yield authenticator


async def refused(
    auth: Authenticator,
    headers: dict[str, str],
    query: str = "",
    route: Route = ROUTE,
    form: bytes | None = None,
) -> AuthFailed:
    with pytest.raises(AuthFailed) as caught:
        await auth.authenticate(headers, query, route, form)
    assert caught.value.status == 401
    assert caught.value.www_authenticate
    return caught.value


async def all_rows(auth: Authenticator) -> list[Any]:
    assert auth.database is not None
    async with auth.database.engine.connect() as conn:
        return list((await conn.execute(sa.select(api_key))).all())


async def test_create_authenticate_revoke(auth: Authenticator) -> None:
    created = await auth.store.create(
        "FixMyStreet MK", scopes=["open311", "events:read"], created_by="admin-1"
    )
    key = created.key
    assert key.startswith(f"mk_{created.api_key.id}_") and len(key) >= 3 + 8 + 1 + 32
    assert key not in repr(created)

    for headers in (
        {"x-api-key": key},
        {"authorization": f"ApiKey {key}"},
        {"authorization": f"apikey  {key} "},
    ):
        principal = await auth.authenticate(headers, "", ROUTE)
        assert principal == Principal(
            subject=f"apikey:{created.api_key.id}",
            roles=frozenset({Role.PARTNER}),
            scopes=frozenset({"open311", "events:read"}),
            method=AuthMethod.API_KEY,
            key_id=created.api_key.id,
        )

    revoked = await auth.store.revoke(created.api_key.id, revoked_by="admin-1")
    assert revoked is not None and revoked.revoked_at is not None
    failure = await refused(auth, {"x-api-key": key})
    assert "revoked" in failure.detail and key not in failure.detail
    # Idempotent: the first revocation is kept.
    again = await auth.store.revoke(created.api_key.id, revoked_by="someone-else")
    assert again is not None and again.revoked_at == revoked.revoked_at
    assert again.revoked_by == "admin-1"
    assert await auth.store.revoke("nokey000") is None


async def test_admin_keys(auth: Authenticator) -> None:
    created = await auth.store.create("ops automation", role="admin")
    principal = await auth.authenticate({"x-api-key": created.key}, "", ROUTE)
    assert principal.roles == {Role.ADMIN} and principal.scopes == frozenset()


async def test_the_secret_is_not_stored_nor_retrievable(auth: Authenticator) -> None:
    created = await auth.store.create("partner", scopes=["open311"])
    parsed = parse_key(created.key)
    assert parsed is not None
    rows = await all_rows(auth)
    assert len(rows) == 1
    stored = " ".join(str(v) for v in rows[0])
    assert parsed.secret not in stored and created.key not in stored
    assert rows[0].secret_hash.startswith("sha256$")
    read = await auth.store.get(created.api_key.id)
    assert read is not None and not hasattr(read, "secret_hash") and not hasattr(read, "key")
    assert all(not hasattr(k, "secret_hash") for k in await auth.store.list_keys())


async def test_wrong_secret_unknown_id_and_malformed_keys(auth: Authenticator) -> None:
    created = await auth.store.create("partner")
    parsed = parse_key(created.key)
    assert parsed is not None
    wrong_secret = f"mk_{parsed.key_id}_{'A' * 43}"
    unknown_id = f"mk_zzzzzzzz_{parsed.secret}"
    for bad in (wrong_secret, unknown_id, "mk_short", "", "x" * 5000, created.key + "x"):
        failure = await refused(auth, {"x-api-key": bad})
        assert failure.detail == "The API key is not valid."
        assert failure.www_authenticate == 'ApiKey realm="mk-digital"'


async def test_two_different_credentials_are_refused(auth: Authenticator) -> None:
    one, two = await auth.store.create("one"), await auth.store.create("two")
    await refused(auth, {"x-api-key": one.key, "authorization": f"ApiKey {two.key}"})
    await refused(auth, {"x-api-key": one.key, "authorization": "Bearer a.b.c"})
    # The same key twice is one credential.
    assert (
        await auth.authenticate(
            {"x-api-key": one.key, "authorization": f"ApiKey {one.key}"}, "", ROUTE
        )
    ).key_id == one.api_key.id
    failure = await refused(auth, {"authorization": f"Bearer {one.key}"})
    assert "X-API-Key" in failure.detail and one.key not in failure.detail


async def test_revocation_takes_effect_within_the_cache_time(database_url: str) -> None:
    settings = auth_settings(database_url, api_key_cache_seconds=0.3)
    async with (
        running_authenticator(settings) as auth,
        running_authenticator(settings) as other_replica,
    ):
        created = await auth.store.create("partner")
        headers = {"x-api-key": created.key}
        assert await other_replica.authenticate(headers, "", ROUTE)
        # Revoked through the first replica: it forgets the key at once...
        await auth.store.revoke(created.api_key.id)
        auth.forget_key(created.api_key.id)
        await refused(auth, headers)
        # ...the other replica still has it cached, but only for the cache time.
        assert await other_replica.authenticate(headers, "", ROUTE)
        await asyncio.sleep(0.35)
        await refused(other_replica, headers)


async def test_cache_reads_the_database_once_per_ttl(database_url: str) -> None:
    settings = auth_settings(database_url, api_key_cache_seconds=60)
    async with running_authenticator(settings) as auth:
        created = await auth.store.create("partner")
        calls = 0
        lookup = auth.store.lookup

        async def counting(key_id: str) -> Any:
            nonlocal calls
            calls += 1
            return await lookup(key_id)

        assert auth._cache is not None
        auth._cache.loader = counting
        principals = await asyncio.gather(
            *(auth.authenticate({"x-api-key": created.key}, "", ROUTE) for _ in range(50))
        )
        assert {p.key_id for p in principals} == {created.api_key.id}
        assert calls == 1


async def test_last_used_at_is_written_at_most_once_a_minute(auth: Authenticator) -> None:
    created = await auth.store.create("partner")
    assert created.api_key.last_used_at is None
    for _ in range(3):
        await auth.authenticate({"x-api-key": created.key}, "", ROUTE)
    await asyncio.gather(*auth._background)
    first = await auth.store.get(created.api_key.id)
    assert first is not None and first.last_used_at is not None
    # Another replica (or this one after a minute) writes only when the last write is old.
    await auth.store.touch(created.api_key.id)
    assert (await auth.store.get(created.api_key.id)).last_used_at == first.last_used_at  # type: ignore[union-attr]
    later = datetime.now(UTC) + timedelta(minutes=2)
    await auth.store.touch(created.api_key.id, later)
    assert (await auth.store.get(created.api_key.id)).last_used_at == later  # type: ignore[union-attr]


async def test_list_and_validation(auth: Authenticator) -> None:
    a = await auth.store.create("  Alpha   partner ", scopes=["open311", "open311"])
    b = await auth.store.create("Beta", role=Role.ADMIN, scopes=["*"])
    await auth.store.revoke(a.api_key.id)
    assert a.api_key.name == "Alpha partner" and a.api_key.scopes == ("open311",)
    assert [k.id for k in await auth.store.list_keys()] == [a.api_key.id, b.api_key.id]
    assert [k.id for k in await auth.store.list_keys(include_revoked=False)] == [b.api_key.id]
    for bad in (
        {"name": ""},
        {"name": "x" * 101},
        {"name": "ok", "role": "staff"},
        {"name": "ok", "role": "citizen"},
        {"name": "ok", "scopes": ["Has Space"]},
        {"name": "ok", "scopes": [f"s{i}" for i in range(40)]},
    ):
        with pytest.raises(InvalidKeyRequest):
            await auth.store.create(**bad)


async def test_open311_api_key_in_query_and_form(auth: Authenticator) -> None:
    created = await auth.store.create("FixMyStreet MK", scopes=["open311"])
    key = created.key
    query = f"jurisdiction_id=milton-keynes.gov.uk&api_key={key}"
    principal = await auth.authenticate({}, query, OPEN311)
    assert principal.key_id == created.api_key.id and principal.scopes == {"open311"}

    form = f"service_code=POT&lat=52.04&long=-0.76&api_key={key}&description=Big+hole".encode()
    assert auth.needs_form_body(OPEN311, "POST", f"{FORM}; charset=utf-8")
    assert (
        await auth.authenticate({"content-type": FORM}, "", OPEN311, form)
    ).key_id == created.api_key.id

    # Not on other routes: there ``api_key`` is just a parameter of the service.
    assert await auth.authenticate({}, query, ROUTE) is ANONYMOUS
    assert not auth.needs_form_body(ROUTE, "POST", FORM)
    # A bad one is refused like a bad header key.
    await refused(auth, {}, "api_key=mk_nope", OPEN311)
    await refused(auth, {}, "", OPEN311, b"api_key=" + key.encode() + b"x")
    # Two different keys (query and header) are refused.
    other = await auth.store.create("other", scopes=["open311"])
    await refused(auth, {"x-api-key": other.key}, query, OPEN311)


async def test_needs_form_body(auth: Authenticator) -> None:
    assert auth.needs_form_body(OPEN311, "POST", FORM)
    assert auth.needs_form_body(OPEN311, "post", "Application/X-WWW-Form-Urlencoded")
    assert not auth.needs_form_body(OPEN311, "GET", FORM)
    assert not auth.needs_form_body(OPEN311, "POST", "application/json")
    assert auth.needs_form_body(OPEN311, "POST", "multipart/form-data; boundary=x")
    assert not auth.needs_form_body(OPEN311, "POST", None)
    assert not auth.needs_form_body(UPSTREAM, "POST", FORM)
    # Optional refinements: a header credential or a query api_key makes the body moot.
    assert not auth.needs_form_body(OPEN311, "POST", FORM, {"x-api-key": "mk_x"})
    assert not auth.needs_form_body(OPEN311, "POST", FORM, {"authorization": "Bearer x"})
    assert not auth.needs_form_body(OPEN311, "POST", FORM, {}, "api_key=mk_x")
    assert auth.needs_form_body(OPEN311, "POST", FORM, {"accept": "*/*"}, "a=b")


async def test_a_form_key_is_ignored_when_a_header_carries_a_credential(
    auth: Authenticator,
) -> None:
    header_key = await auth.store.create("header")
    principal = await auth.authenticate(
        {"x-api-key": header_key.key}, "", OPEN311, b"api_key=mk_whatever_1"
    )
    assert principal.key_id == header_key.api_key.id


async def test_upstream_routes_ignore_authorization_but_take_x_api_key(
    auth: Authenticator, tmp_path: Path
) -> None:
    created = await auth.store.create("partner")
    assert (
        await auth.authenticate({"authorization": f"ApiKey {created.key}"}, "", UPSTREAM)
        is ANONYMOUS
    )
    assert (
        await auth.authenticate({"authorization": "Bearer notify.jwt.here"}, "", UPSTREAM)
        is ANONYMOUS
    )
    assert await auth.authenticate({"authorization": "Basic abc"}, "", UPSTREAM) is ANONYMOUS
    principal = await auth.authenticate(
        {"x-api-key": created.key, "authorization": "Bearer notify.jwt.here"}, "", UPSTREAM
    )
    assert principal.key_id == created.api_key.id


async def test_migrations_are_idempotent(database_url: str) -> None:
    settings = auth_settings(database_url)
    async with running_authenticator(settings) as first:
        created = await first.store.create("kept")
    async with running_authenticator(settings) as second:
        assert (await second.authenticate({"x-api-key": created.key}, "", ROUTE)).key_id


async def test_database_down_is_503_not_401(tmp_path: Path) -> None:
    async with running_authenticator(auth_settings(f"sqlite:///{tmp_path}/g.sqlite3")) as auth:
        created = await auth.store.create("partner")

        async def broken(key_id: str) -> Any:
            raise sa.exc.OperationalError("SELECT", {}, Exception("down"))

        assert auth._cache is not None
        auth._cache.loader = broken
        with pytest.raises(AuthFailed) as caught:
            await auth.authenticate({"x-api-key": created.key}, "", ROUTE)
        assert caught.value.status == 503
