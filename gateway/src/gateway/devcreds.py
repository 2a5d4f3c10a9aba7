"""Development credentials for ``make run``: ``python -m gateway.devcreds --var var``.

Ensures the dev issuer (``var/dev-issuer/``) and two API keys in the gateway's database
(``GATEWAY_DATABASE_URL``): "dev partner" (scopes ``events:subscribe``,
``events:catalogue``, ``events:service-requests``: partner webhooks) and "dev open311"
(scope ``open311``), keeping the keys already in the env file while they still work; mints
tokens for a member of staff, two citizens and an admin; and writes them all, with the
settings the gateway needs to trust the dev issuer, to ``var/dev-credentials.env``
(mode 0600). Prints where the file is, never a secret.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.auth.apikeys import parse_key, verify_secret
from gateway.auth.devissuer import (
    DEV_AUDIENCE,
    DEV_ISSUER,
    DevIssuer,
    ensure_dev_issuer,
    write_private,
)
from gateway.auth.settings import AuthSettings
from gateway.auth.store import ApiKeyStore
from gateway.auth.tables import MIGRATIONS
from servicekit.db import Database
from servicekit.identity import Role
from servicekit.migrations import upgrade

ENV_FILE = "dev-credentials.env"
ISSUER_DIR = "dev-issuer"
CREATED_BY = "devcreds"


@dataclass(frozen=True)
class DevKey:
    variable: str
    name: str
    scopes: tuple[str, ...]
    role: Role = Role.PARTNER


@dataclass(frozen=True)
class DevToken:
    variable: str
    subject: str
    roles: tuple[Role, ...]


DEV_KEYS = (
    DevKey(
        "PARTNER_API_KEY",
        "dev partner",
        ("events:subscribe", "events:catalogue", "events:service-requests"),
    ),
    DevKey("OPEN311_API_KEY", "dev open311", ("open311",)),
)
DEV_TOKENS = (
    DevToken("STAFF_TOKEN", "staff-dev-1", (Role.STAFF,)),
    DevToken("CITIZEN_TOKEN", "citizen-dev-1", (Role.CITIZEN,)),
    DevToken("CITIZEN2_TOKEN", "citizen-dev-2", (Role.CITIZEN,)),
    DevToken("ADMIN_TOKEN", "admin-dev-1", (Role.ADMIN, Role.STAFF)),
)

HEADER = """\
# Development credentials for the MK digital platform — written by `python -m gateway.devcreds`
# (`make run` does it before the gateway starts). For this machine only: never commit,
# never reuse. Tokens last 12 hours; run it again for fresh ones. API keys are kept while
# they stay valid. Use them like:
#   curl -H "Authorization: Bearer $STAFF_TOKEN" http://127.0.0.1:8000/api/v1/services
#   curl -H "X-API-Key: $PARTNER_API_KEY" ...
"""


@dataclass(frozen=True)
class DevCredentials:
    path: Path
    values: dict[str, str]
    issuer: DevIssuer

    def env(self) -> dict[str, str]:
        """The gateway's settings for the dev issuer (the GATEWAY_* entries)."""
        return {k: v for k, v in self.values.items() if k.startswith("GATEWAY_")}


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of an env file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        values[name.strip()] = value.strip().strip("'\"")
    return values


def write_env_file(path: Path, values: Mapping[str, str], header: str = HEADER) -> None:
    """Write ``values`` as ``KEY=value`` lines, mode 0600, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = header + "".join(f"{k}={v}\n" for k, v in values.items())
    write_private(path, body.encode())


async def _still_valid(store: ApiKeyStore, presented: str | None, spec: DevKey) -> bool:
    parsed = parse_key(presented or "")
    if parsed is None:
        return False
    stored = await store.lookup(parsed.key_id)
    return (
        stored is not None
        and not stored.api_key.revoked
        and stored.api_key.name == spec.name
        and stored.api_key.role is spec.role
        and set(spec.scopes) <= set(stored.api_key.scopes)
        and verify_secret(parsed.secret, stored.secret_hash)
    )


async def ensure_dev_keys(store: ApiKeyStore, existing: Mapping[str, str]) -> dict[str, str]:
    """``{variable: key}`` for :data:`DEV_KEYS`: the existing keys while valid, else new ones
    (older keys of the same name, whose secrets are lost, are revoked)."""
    out: dict[str, str] = {}
    for spec in DEV_KEYS:
        current = existing.get(spec.variable)
        if current is not None and await _still_valid(store, current, spec):
            out[spec.variable] = current
            continue
        for old in await store.list_keys(include_revoked=False):
            if old.name == spec.name:
                await store.revoke(old.id, revoked_by=CREATED_BY)
        created = await store.create(
            spec.name, role=spec.role, scopes=spec.scopes, created_by=CREATED_BY
        )
        out[spec.variable] = created.key
    return out


def _prepare(var: Path) -> tuple[Path, DevIssuer, dict[str, str]]:
    var = var.resolve()
    issuer = ensure_dev_issuer(var / ISSUER_DIR)
    path = var / ENV_FILE
    return path, issuer, read_env_file(path)


async def ensure_dev_credentials(var: Path, settings: AuthSettings | None = None) -> DevCredentials:
    """Everything above; the database is ``settings.database_url`` (default: from the
    environment, GATEWAY_DATABASE_URL)."""
    settings = settings or AuthSettings()
    path, issuer, existing = await asyncio.to_thread(_prepare, var)
    database = Database(settings.database_url, pool_size=1)
    try:
        await upgrade(database, MIGRATIONS)
        keys = await ensure_dev_keys(ApiKeyStore(database), existing)
    finally:
        await database.dispose()
    values: dict[str, str] = {
        "GATEWAY_JWT_JWKS_FILE": str(issuer.jwks_path),
        "GATEWAY_JWT_ISSUER": DEV_ISSUER,
        "GATEWAY_JWT_AUDIENCE": DEV_AUDIENCE,
    }
    for token in DEV_TOKENS:
        values[token.variable] = issuer.mint(token.subject, token.roles)
    values.update(keys)
    await asyncio.to_thread(write_env_file, path, values)
    return DevCredentials(path=path, values=values, issuer=issuer)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.devcreds", description="Write development credentials."
    )
    parser.add_argument(
        "--var", type=Path, default=Path("var"), help="the data directory (default: ./var)"
    )
    args = parser.parse_args(argv)
    creds = asyncio.run(ensure_dev_credentials(args.var))
    names = ", ".join(k for k in creds.values if not k.startswith("GATEWAY_"))
    print(f"[devcreds] {creds.path}: {names}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
