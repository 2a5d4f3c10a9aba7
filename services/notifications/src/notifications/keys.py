"""Notify API keys for operators: ``python -m notifications.keys create|list|revoke``.

The same application functions as the admin API (``/api/v1/notify-services``), on the
database of ``NOTIFICATIONS_DATABASE_URL`` (migrated first). ``create`` prints the whole key
once; ``list`` never shows secrets. The audit records ``--by`` (default: ``cli:$USER``).
A key revoked here is refused by running services within
``NOTIFICATIONS_NOTIFY_KEY_CACHE_SECONDS`` (their caches are in other processes); revoke
through the admin API for the replica that answers to refuse it at once.

    python -m notifications.keys list [--service ID]
    python -m notifications.keys create --name "housing" --type normal|team|test [--service ID]
    python -m notifications.keys revoke KEY_ID [--service ID]

``--service`` defaults to the council's own Notify service
(``NOTIFICATIONS_NOTIFY_DEFAULT_SERVICE_ID``).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import uuid
from collections.abc import Sequence

from pydantic import ValidationError

from notifications.api.notify_services import ApiKeyCreate
from notifications.application import notify_services
from notifications.config import Settings
from notifications.domain.notify import KeyType
from notifications.main import MIGRATIONS
from notifications.persistence.notify_services import NotifyServiceRepository
from servicekit.db import Database
from servicekit.errors import DomainError
from servicekit.migrations import upgrade
from servicekit.uow import UnitOfWork


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m notifications.keys",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument(
        "--service",
        type=uuid.UUID,
        default=None,
        help="the Notify service id (default: the council's own)",
    )
    parser.add_argument("--by", default=None, help="who acts, for the audit (default: cli:$USER)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the service's keys (no secrets)")
    create = commands.add_parser("create", help="issue a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--type", dest="key_type", choices=[t.value for t in KeyType], default=KeyType.LIVE.value
    )
    revoke = commands.add_parser("revoke", help="revoke a key (idempotent)")
    revoke.add_argument("key_id", type=uuid.UUID)
    return parser


async def run(args: argparse.Namespace, settings: Settings) -> list[str]:
    """The lines to print."""
    by = args.by or f"cli:{getpass.getuser()}"
    database = Database(settings.database_url)
    try:
        await upgrade(database, MIGRATIONS)
        async with UnitOfWork(database, source=settings.cloudevents_source) as uow:
            services = NotifyServiceRepository(uow.db)
            if args.service is None:
                service_id = (await notify_services.ensure_default_service(services, settings)).id
            else:
                service_id = args.service
            if args.command == "list":
                keys = await notify_services.list_api_keys(services, service_id=service_id)
                return [
                    f"{k.id}  {k.key_type:<6}  {k.name}  created {k.created_at:%Y-%m-%d %H:%M}"
                    f" by {k.created_by or '-'}"
                    + (
                        f"  REVOKED {k.revoked_at:%Y-%m-%d %H:%M} by {k.revoked_by or '-'}"
                        if k.revoked_at
                        else ""
                    )
                    for k in keys
                ]
            if args.command == "create":
                key, api_key = await notify_services.issue_api_key(
                    services,
                    service_id=service_id,
                    name=args.name,
                    key_type=KeyType(args.key_type),
                    created_by=by,
                )
                return [
                    f"Issued key {key.id} ({key.key_type}) for service {service_id}. "
                    "Keep it now: it is not shown again.",
                    api_key,
                ]
            key, revoked = await notify_services.revoke_api_key(
                services, service_id=service_id, key_id=args.key_id, revoked_by=by
            )
            return [
                f"Key {key.id} {'revoked' if revoked else 'was already revoked'} "
                f"({key.revoked_at:%Y-%m-%d %H:%M:%S} UTC by {key.revoked_by or '-'})."
            ]
    finally:
        await database.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "create":  # the admin API's rules for a key, not a second copy
        try:
            args.name = ApiKeyCreate(name=args.name, key_type=KeyType(args.key_type)).name
        except ValidationError as exc:
            print(
                "; ".join(f"--{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()),
                file=sys.stderr,
            )
            return 2
    try:
        lines = asyncio.run(run(args, Settings()))  # NOTIFICATIONS_DATABASE_URL or default
    except DomainError as exc:
        print(exc.detail, file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
