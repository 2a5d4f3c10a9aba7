"""Issuing GOV.UK Notify services and API keys to integrators, and revoking keys.

Shared by the admin API (``api/notify_services.py``) and the operators' CLI
(``python -m notifications.keys``). Keys are Notify's (``{name}-{service id}-{secret}``,
:func:`create_api_key`); the whole key is returned once, when issued, and never
again. A revoked key stays, with who revoked it and when, and answers Notify's
``Invalid token: API key revoked``. The unit of work commits (the caller's) and, after a
revocation, tells the process's :class:`notify_auth.KeyCache` to forget the service.

Team members (email addresses, phone numbers) are personal data: never logged. The audit
log lines name services, keys and the acting subject (an opaque id) only.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parseaddr

from notifications.config import Settings
from notifications.domain import recipients
from notifications.domain.notify import KeyType, format_api_key
from notifications.persistence.notify_services import NotifyServiceRepository
from notifications.persistence.tables import (
    NotifyApiKey,
    NotifyReplyTo,
    NotifyService,
    NotifySmsSender,
)
from servicekit.errors import DomainError, NotFound

log = logging.getLogger(__name__)


class InvalidTeamMember(DomainError):
    status, code, title = 422, "invalid-team-member", "Invalid team member"


def team_members_of(members: Sequence[str]) -> list[str]:
    """Email addresses (lower-cased) and UK mobiles (E.164), as a team key compares them;
    duplicates dropped. The error names the position, never the value."""
    out: list[str] = []
    for position, member in enumerate(members):
        try:
            value = recipients.team_member(member)
        except recipients.InvalidRecipient as exc:
            raise InvalidTeamMember(
                f"team_members[{position}]: {exc}", field=f"team_members.{position}"
            ) from None
        if value not in out:
            out.append(value)
    return out


def team_of(service: NotifyService) -> list[str]:
    return [line for line in service.team_members.splitlines() if line.strip()]


async def create_service(
    services: NotifyServiceRepository,
    *,
    name: str,
    email_from: str,
    sms_sender: str,
    team_members: list[str] | None = None,
    service_id: uuid.UUID | None = None,
    created_by: str | None = None,
) -> NotifyService:
    service = NotifyService(
        id=service_id or uuid.uuid4(),
        name=name,
        email_from=email_from,
        sms_sender=sms_sender,
        team_members="\n".join(team_members or []),
        created_at=datetime.now(UTC),
        created_by=created_by,
    )
    await services.insert(service)
    return service


async def ensure_default_service(
    services: NotifyServiceRepository, settings: Settings
) -> NotifyService:
    """The council's own Notify service (``NOTIFICATIONS_NOTIFY_DEFAULT_SERVICE_ID``)."""
    found = await services.get(settings.notify_default_service_id)
    if found is not None:
        return found
    return await create_service(
        services,
        service_id=settings.notify_default_service_id,
        name=settings.notify_default_service_name,
        email_from=parseaddr(settings.mail_from)[1] or settings.mail_from,
        sms_sender=settings.sms_sender,
    )


async def create_api_key(
    services: NotifyServiceRepository,
    *,
    service_id: uuid.UUID,
    name: str,
    key_type: KeyType,
    created_by: str | None = None,
) -> tuple[NotifyApiKey, str]:
    """The key row and the whole key to hand over once: ``{name}-{service id}-{secret}``."""
    secret = str(uuid.uuid4())
    key = NotifyApiKey(
        service_id=service_id,
        name=name,
        key_type=key_type.value,
        secret=secret,
        created_at=datetime.now(UTC),
        created_by=created_by,
    )
    await services.add_key(key)
    return key, format_api_key(name, service_id, secret)


async def register_service(
    services: NotifyServiceRepository,
    *,
    name: str,
    team_members: Sequence[str],
    created_by: str | None,
    settings: Settings,
    email_from: str | None = None,
    sms_sender: str | None = None,
) -> NotifyService:
    """A new Notify service; its emails come from ``email_from`` (default: the address of
    ``NOTIFICATIONS_MAIL_FROM``), its texts from ``sms_sender`` (default
    ``NOTIFICATIONS_SMS_SENDER``)."""
    service = await create_service(
        services,
        name=name,
        team_members=team_members_of(team_members),
        email_from=email_from or parseaddr(settings.mail_from)[1] or settings.mail_from,
        sms_sender=sms_sender or settings.sms_sender,
        created_by=created_by,
    )
    log.info("notify service %s created by %s", service.id, created_by or "-")
    return service


async def list_services(services: NotifyServiceRepository) -> list[NotifyService]:
    return await services.all()


async def get_service(services: NotifyServiceRepository, service_id: uuid.UUID) -> NotifyService:
    service = await services.get(service_id)
    if service is None:
        raise NotFound("No such Notify service.")
    return service


async def issue_api_key(
    services: NotifyServiceRepository,
    *,
    service_id: uuid.UUID,
    name: str,
    key_type: KeyType,
    created_by: str | None,
) -> tuple[NotifyApiKey, str]:
    """The key row and the whole key (shown once)."""
    await get_service(services, service_id)
    key, api_key = await create_api_key(
        services, service_id=service_id, name=name, key_type=key_type, created_by=created_by
    )
    log.info(
        "notify api key %s (%s) issued for service %s by %s",
        key.id,
        key.key_type,
        service_id,
        created_by or "-",
    )
    return key, api_key


async def list_api_keys(
    services: NotifyServiceRepository, *, service_id: uuid.UUID
) -> list[NotifyApiKey]:
    """The service's keys, revoked ones included (oldest first)."""
    await get_service(services, service_id)
    return await services.keys(service_id)


async def get_api_key(
    services: NotifyServiceRepository, *, service_id: uuid.UUID, key_id: uuid.UUID
) -> NotifyApiKey:
    await get_service(services, service_id)
    key = await services.get_key(key_id)
    if key is None or key.service_id != service_id:
        raise NotFound("No such API key for this Notify service.")
    return key


async def revoke_api_key(
    services: NotifyServiceRepository,
    *,
    service_id: uuid.UUID,
    key_id: uuid.UUID,
    revoked_by: str | None,
) -> tuple[NotifyApiKey, bool]:
    """(the key, revoked just now). Idempotent: a key already revoked keeps its first
    ``revoked_at`` and ``revoked_by``."""
    key = await get_api_key(services, service_id=service_id, key_id=key_id)
    if key.revoked_at is not None:
        return key, False
    revoked = await services.revoke_key(key, now=datetime.now(UTC), revoked_by=revoked_by)
    if revoked:
        log.info(
            "notify api key %s of service %s revoked by %s", key_id, service_id, revoked_by or "-"
        )
    return key, revoked


# -- reply-to addresses and SMS senders ----------------------------------------------------
async def list_reply_tos(
    services: NotifyServiceRepository, *, service_id: uuid.UUID
) -> list[NotifyReplyTo]:
    await get_service(services, service_id)
    return await services.reply_tos(service_id)


async def list_sms_senders(
    services: NotifyServiceRepository, *, service_id: uuid.UUID
) -> list[NotifySmsSender]:
    await get_service(services, service_id)
    return await services.sms_senders(service_id)


async def add_reply_to(
    services: NotifyServiceRepository,
    *,
    service_id: uuid.UUID,
    email_address: str,
    is_default: bool,
    created_by: str | None,
) -> NotifyReplyTo:
    """A reply-to address (``email_reply_to_id`` names it); the default one (the first is
    the default whatever is asked) is the Reply-To of the service's other emails."""
    service = await get_service(services, service_id)
    is_default = is_default or not await services.reply_tos(service_id)
    reply_to = NotifyReplyTo(
        service_id=service_id,
        email_address=email_address,
        is_default=is_default,
        created_at=datetime.now(UTC),
        created_by=created_by,
    )
    await services.add_sender(reply_to)
    if is_default:
        service.email_reply_to = email_address
        await services.db.flush()
    log.info("notify reply-to %s added to service %s by %s", reply_to.id, service_id, created_by)
    return reply_to


async def add_sms_sender(
    services: NotifyServiceRepository,
    *,
    service_id: uuid.UUID,
    sms_sender: str,
    is_default: bool,
    created_by: str | None,
) -> NotifySmsSender:
    """A text message sender (``sms_sender_id`` names it); the default one is the sender
    of the service's other texts (the service's ``sms_sender``)."""
    service = await get_service(services, service_id)
    sender = NotifySmsSender(
        service_id=service_id,
        sms_sender=sms_sender,
        is_default=is_default,
        created_at=datetime.now(UTC),
        created_by=created_by,
    )
    await services.add_sender(sender)
    if is_default:
        service.sms_sender = sms_sender
        await services.db.flush()
    log.info("notify sms sender %s added to service %s by %s", sender.id, service_id, created_by)
    return sender
