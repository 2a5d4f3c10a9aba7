"""Manage API keys from a shell, on the database at ``GATEWAY_DATABASE_URL``::

    python -m gateway.auth.cli create --name "FixMyStreet MK" --role partner --scope open311
    python -m gateway.auth.cli list [--active] [--json]
    python -m gateway.auth.cli revoke <id>

``create`` prints the key once, on stdout, and nothing else there; it cannot be shown again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import datetime

from gateway.auth.settings import AuthSettings
from gateway.auth.store import ApiKey, ApiKeyStore, InvalidKeyRequest
from gateway.auth.tables import MIGRATIONS
from servicekit.db import Database
from servicekit.migrations import upgrade


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.auth.cli", description="Manage the gateway's API keys."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.add_argument("--role", choices=["partner", "admin"], default="partner")
    create.add_argument(
        "--scope",
        action="append",
        default=[],
        dest="scopes",
        help="a scope the key carries (repeatable), e.g. open311",
    )
    create.add_argument("--by", default="cli", help="recorded as created_by (default: cli)")
    listing = commands.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--active", action="store_true", help="leave revoked keys out")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    revoke = commands.add_parser("revoke", help="revoke a key (idempotent)")
    revoke.add_argument("id")
    revoke.add_argument("--by", default="cli", help="recorded as revoked_by (default: cli)")
    return parser


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _as_json(key: ApiKey) -> str:
    return json.dumps(
        {
            "id": key.id,
            "name": key.name,
            "role": key.role.value,
            "scopes": list(key.scopes),
            "created_at": key.created_at.isoformat(),
            "created_by": key.created_by,
            "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
            "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
            "revoked_by": key.revoked_by,
        }
    )


async def run(args: argparse.Namespace, settings: AuthSettings) -> int:
    database = Database(settings.database_url, pool_size=1)
    try:
        await upgrade(database, MIGRATIONS)
        store = ApiKeyStore(database)
        if args.command == "create":
            created = await store.create(
                args.name, role=args.role, scopes=args.scopes, created_by=args.by
            )
            print(created.key)
            print(
                f"created API key {created.api_key.id} ({created.api_key.role.value}, "
                f"scopes: {', '.join(created.api_key.scopes) or 'none'}); the key above "
                "is shown only now",
                file=sys.stderr,
            )
        elif args.command == "list":
            keys = await store.list_keys(include_revoked=not args.active)
            if args.json:
                for key in keys:
                    print(_as_json(key))
            else:
                print(
                    f"{'ID':8}  {'ROLE':7}  {'CREATED':16}  {'LAST USED':16}  "
                    f"{'REVOKED':16}  {'SCOPES':20}  NAME"
                )
                for key in keys:
                    print(
                        f"{key.id:8}  {key.role.value:7}  {_when(key.created_at):16}  "
                        f"{_when(key.last_used_at):16}  {_when(key.revoked_at):16}  "
                        f"{','.join(key.scopes) or '-':20}  {key.name}"
                    )
        elif args.command == "revoke":
            revoked = await store.revoke(args.id, revoked_by=args.by)
            if revoked is None:
                print(f"no API key with id {args.id[:8]!r}", file=sys.stderr)
                return 1
            print(
                f"revoked API key {revoked.id} (at {revoked.revoked_at:%Y-%m-%d %H:%M:%S}"
                " UTC); gateways stop accepting it within their cache time",
                file=sys.stderr,
            )
        return 0
    except InvalidKeyRequest as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    finally:
        await database.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return asyncio.run(run(args, AuthSettings()))


if __name__ == "__main__":
    sys.exit(main())
