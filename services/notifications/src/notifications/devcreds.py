"""Development credentials for the Notify API: ``python -m notifications.devcreds --var var``.

Idempotent. In the notifications database (``NOTIFICATIONS_DATABASE_URL``, migrated first)
it ensures the council's default Notify service, a live and a test API key and two
templates (email and SMS), then sets ``NOTIFY_API_KEY``, ``NOTIFY_TEST_API_KEY``,
``NOTIFY_EMAIL_TEMPLATE_ID`` and ``NOTIFY_SMS_TEMPLATE_ID`` in ``var/dev-credentials.env``:
those lines are replaced or appended, every other line is kept. Keys already in the file
are kept while they still work. Prints where the file is, never a secret.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from notifications.application import notify_services, templates
from notifications.config import Settings
from notifications.domain.notify import KeyType, format_api_key, split_api_key
from notifications.main import MIGRATIONS
from notifications.persistence.notify_services import NotifyServiceRepository
from notifications.persistence.templates import TemplateRepository
from servicekit.db import Database
from servicekit.migrations import upgrade
from servicekit.uow import UnitOfWork

ENV_FILE = "dev-credentials.env"
NAMESPACE = uuid.UUID("6f1c1f4e-3d7a-4f5e-9a51-7d0c3b8e2a10")
EMAIL_TEMPLATE_ID = uuid.uuid5(NAMESPACE, "dev email template")
SMS_TEMPLATE_ID = uuid.uuid5(NAMESPACE, "dev sms template")
DEV_EMAIL_SUBJECT = "Your request ((reference)) has been updated"
DEV_EMAIL_BODY = """# Hello ((name))

Your request ((reference)) to Milton Keynes City Council has a new status: ((status)).

((details))

((show_help??^ Need help? Call 01908 691691 or visit https://www.milton-keynes.gov.uk))

---

Milton Keynes City Council
"""
DEV_SMS_BODY = (
    "Milton Keynes City Council: hello ((name)), your request ((reference)) is now ((status))."
)
VARIABLES = (
    "NOTIFY_API_KEY",
    "NOTIFY_TEST_API_KEY",
    "NOTIFY_EMAIL_TEMPLATE_ID",
    "NOTIFY_SMS_TEMPLATE_ID",
)


async def _working_key(
    services: NotifyServiceRepository, service_id: uuid.UUID, api_key: str | None, key_type: KeyType
) -> bool:
    if not api_key or len(api_key) < 74:
        return False
    key_service, secret = split_api_key(api_key)
    found = await services.find_live_key(service_id, key_type=key_type.value, secret=secret)
    return found is not None and key_service == str(service_id)


async def ensure_dev_notify(
    database_url: str,
    *,
    existing: Mapping[str, str] | None = None,
    settings: Settings | None = None,
) -> dict[str, str]:
    """Create what is missing; returns the four variables."""
    existing = existing or {}
    settings = settings or Settings(database_url=database_url)
    database = Database(database_url)
    try:
        await upgrade(database, MIGRATIONS)
        async with UnitOfWork(database, source=settings.cloudevents_source) as uow:
            services, template_repository = (
                NotifyServiceRepository(uow.db),
                TemplateRepository(uow.db),
            )
            service = await notify_services.ensure_default_service(services, settings)
            values: dict[str, str] = {}
            for variable, name, key_type in (
                ("NOTIFY_API_KEY", "dev live", KeyType.LIVE),
                ("NOTIFY_TEST_API_KEY", "dev test", KeyType.TEST),
            ):
                current = existing.get(variable)
                stored = await services.find_live_key(
                    service.id, key_type=key_type.value, name=name
                )
                if current and await _working_key(services, service.id, current, key_type):
                    values[variable] = current
                elif stored is not None:  # the env file was rewritten: the same key again
                    values[variable] = format_api_key(name, service.id, stored.secret)
                else:
                    _, values[variable] = await notify_services.create_api_key(
                        services,
                        service_id=service.id,
                        name=name,
                        key_type=key_type,
                        created_by="devcreds",
                    )
            for template_id, template_type, name, subject, body in (
                (
                    EMAIL_TEMPLATE_ID,
                    "email",
                    "Request update (email)",
                    DEV_EMAIL_SUBJECT,
                    DEV_EMAIL_BODY,
                ),
                (SMS_TEMPLATE_ID, "sms", "Request update (text)", None, DEV_SMS_BODY),
            ):
                if await template_repository.get(template_id) is None:
                    await templates.create_template(
                        template_repository,
                        services,
                        template_id=template_id,
                        service_id=service.id,
                        template_type=template_type,
                        name=name,
                        subject=subject,
                        body=body,
                        created_by="devcreds",
                    )
        values["NOTIFY_EMAIL_TEMPLATE_ID"] = str(EMAIL_TEMPLATE_ID)
        values["NOTIFY_SMS_TEMPLATE_ID"] = str(SMS_TEMPLATE_ID)
        return values
    finally:
        await database.dispose()


def read_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


def update_env_file(path: Path, values: Mapping[str, str]) -> None:
    """Replace the lines of ``values``' keys, append the missing ones, keep all others."""
    lines = path.read_text().splitlines() if path.exists() else []
    done: set[str] = set()
    out: list[str] = []
    for line in lines:
        key = line.partition("=")[0].strip()
        if "=" in line and not line.lstrip().startswith("#") and key in values:
            if key not in done:
                out.append(f"{key}={values[key]}")
                done.add(key)
            continue
        out.append(line)
    out += [f"{k}={v}" for k, v in values.items() if k not in done]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(out) + "\n")
    os.chmod(tmp, 0o600)
    tmp.replace(path)


async def write_dev_notify_credentials(var: Path, database_url: str) -> dict[str, str]:
    env_path = var / ENV_FILE
    values = await ensure_dev_notify(database_url, existing=read_env(env_path))
    update_env_file(env_path, values)
    return values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m notifications.devcreds",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--var", default="var", help="the var/ directory (default: var)")
    args = parser.parse_args(argv)
    var = Path(args.var)
    database_url = os.environ.get("NOTIFICATIONS_DATABASE_URL") or Settings().database_url
    asyncio.run(write_dev_notify_credentials(var, database_url))
    print(f"Notify dev credentials ({', '.join(VARIABLES)}) written to {var / ENV_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
