"""API keys in the gateway's own database: create (secret shown once), list, read, revoke."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from gateway.auth.apikeys import format_key, hash_secret, new_key_id, new_secret
from gateway.auth.tables import api_key
from servicekit.db import Database
from servicekit.identity import Role

#: Roles an API key may carry.
KEY_ROLES = (Role.PARTNER, Role.ADMIN)
SCOPE_PATTERN = re.compile(r"^(\*|[a-z0-9][a-z0-9:._-]{0,63})$")
MAX_SCOPES = 32
#: ``last_used_at`` is written at most this often per key.
TOUCH_INTERVAL = timedelta(minutes=1)


class InvalidKeyRequest(ValueError):
    """A name, role or scope an API key cannot have (``detail`` says which)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class ApiKey:
    """An API key as anyone may see it: never its secret nor its hash."""

    id: str
    name: str
    role: Role
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class StoredKey:
    """An API key with its secret's hash, for verification only."""

    api_key: ApiKey
    secret_hash: str = field(repr=False)


@dataclass(frozen=True)
class CreatedKey:
    """A new key: ``key`` is the full ``mk_…`` value, available only now."""

    api_key: ApiKey
    key: str = field(repr=False)


def check_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > 100 or not name.isprintable():
        raise InvalidKeyRequest("A key's name must be 1 to 100 printable characters.")
    return name


def check_role(role: Role | str) -> Role:
    try:
        value = Role(role)
    except ValueError:
        value = None
    if value not in KEY_ROLES:
        raise InvalidKeyRequest("An API key's role is 'partner' or 'admin'.")
    assert value is not None
    return value


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    unique = tuple(dict.fromkeys(s.strip() for s in scopes))
    if len(unique) > MAX_SCOPES or not all(SCOPE_PATTERN.match(s) for s in unique):
        raise InvalidKeyRequest(
            f"Scopes are at most {MAX_SCOPES} names of lower-case "
            "letters, digits and ':._-' (e.g. 'open311', 'events:subscribe')."
        )
    return unique


def _row_to_key(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        scopes=tuple(str(s) for s in row.scopes or ()),
        created_at=row.created_at,
        created_by=row.created_by,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )


_PUBLIC_COLUMNS = [c for c in api_key.c if c.name != "secret_hash"]


class ApiKeyStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(
        self,
        name: str,
        *,
        role: Role | str = Role.PARTNER,
        scopes: Iterable[str] = (),
        created_by: str | None = None,
    ) -> CreatedKey:
        name, role, scope_list = check_name(name), check_role(role), check_scopes(scopes)
        secret = new_secret()
        now = datetime.now(UTC)
        for attempt in range(5):
            key_id = new_key_id()
            try:
                async with self.database.engine.begin() as conn:
                    await conn.execute(
                        api_key.insert().values(
                            id=key_id,
                            name=name,
                            role=role.value,
                            scopes=list(scope_list),
                            secret_hash=hash_secret(secret),
                            created_at=now,
                            created_by=created_by,
                        )
                    )
                break
            except IntegrityError:  # an id already taken: draw another
                if attempt == 4:
                    raise
        record = ApiKey(
            id=key_id,
            name=name,
            role=role,
            scopes=scope_list,
            created_at=now,
            created_by=created_by,
        )
        return CreatedKey(record, format_key(key_id, secret))

    async def get(self, key_id: str) -> ApiKey | None:
        async with self.database.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(*_PUBLIC_COLUMNS).where(api_key.c.id == key_id))
            ).first()
        return _row_to_key(row) if row else None

    async def list_keys(self, *, include_revoked: bool = True) -> list[ApiKey]:
        query = sa.select(*_PUBLIC_COLUMNS).order_by(api_key.c.created_at, api_key.c.id)
        if not include_revoked:
            query = query.where(api_key.c.revoked_at.is_(None))
        async with self.database.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_row_to_key(row) for row in rows]

    async def lookup(self, key_id: str) -> StoredKey | None:
        async with self.database.engine.connect() as conn:
            row = (await conn.execute(sa.select(api_key).where(api_key.c.id == key_id))).first()
        return StoredKey(_row_to_key(row), row.secret_hash) if row else None

    async def revoke(self, key_id: str, *, revoked_by: str | None = None) -> ApiKey | None:
        """Revoke a key (idempotent: a revoked key keeps its first revocation); None when
        there is no such key."""
        async with self.database.engine.begin() as conn:
            await conn.execute(
                api_key.update()
                .where(api_key.c.id == key_id, api_key.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC), revoked_by=revoked_by)
            )
        return await self.get(key_id)

    async def touch(self, key_id: str, at: datetime | None = None) -> None:
        """Record a use, unless one was recorded less than a minute ago."""
        at = at or datetime.now(UTC)
        async with self.database.engine.begin() as conn:
            await conn.execute(
                api_key.update()
                .where(
                    api_key.c.id == key_id,
                    sa.or_(
                        api_key.c.last_used_at.is_(None),
                        api_key.c.last_used_at < at - TOUCH_INTERVAL,
                    ),
                )
                .values(last_used_at=at)
            )
