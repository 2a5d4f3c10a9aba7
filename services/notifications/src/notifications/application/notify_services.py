"""Issuing GOV.UK Notify services and API keys to integrators, and revoking keys.

Shared by the admin API (``api/notify_services.py``) and the operators' CLI
(``python -m notifications.keys``). Keys are Notify's (``{name}-{service id}-{secret}``,
:func:`notify_api.create_api_key`); the whole key is returned once, when issued, and never
again. A revoked key stays, with who revoked it and when, and answers Notify's
``Invalid token: API key revoked``. The caller commits (one unit of work) and, after a
revocation, tells the process's :class:`notify_api.KeyCache` to forget the service.

Team members (email addresses, phone numbers) are personal data: never logged. The audit
log lines name services, keys and the acting subject (an opaque id) only.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parseaddr

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from notifications.application import notify_api
from notifications.config import Settings
from notifications.domain import recipients
from notifications.domain.notify import KeyType
from notifications.persistence.tables import NotifyApiKey, NotifyService
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
            value = notify_api.team_member(member)
        except recipients.InvalidRecipient as exc:
            raise InvalidTeamMember(f"team_members[{position}]: {exc}",
                                    field=f"team_members.{position}") from None
        if value not in out:
            out.append(value)
    return out


def team_of(service: NotifyService) -> list[str]:
    return [line for line in service.team_members.splitlines() if line.strip()]


async def register_service(session: AsyncSession, *, name: str, team_members: Sequence[str],
                           created_by: str | None, settings: Settings,
                           email_from: str | None = None,
                           sms_sender: str | None = None) -> NotifyService:
    """A new Notify service; its emails come from ``email_from`` (default: the address of
    ``NOTIFICATIONS_MAIL_FROM``), its texts from ``sms_sender`` (default
    ``NOTIFICATIONS_SMS_SENDER``)."""
    service = await notify_api.create_service(
        session, name=name, team_members=team_members_of(team_members),
        email_from=email_from or parseaddr(settings.mail_from)[1] or settings.mail_from,
        sms_sender=sms_sender or settings.sms_sender, created_by=created_by)
    log.info("notify service %s created by %s", service.id, created_by or "-")
    return service


async def list_services(session: AsyncSession) -> list[NotifyService]:
    return list((await session.execute(sa.select(NotifyService).order_by(
        col(NotifyService.created_at), col(NotifyService.id)))).scalars())


async def get_service(session: AsyncSession, service_id: uuid.UUID) -> NotifyService:
    service = await session.get(NotifyService, service_id)
    if service is None:
        raise NotFound("No such Notify service.")
    return service


async def issue_api_key(session: AsyncSession, *, service_id: uuid.UUID, name: str,
                        key_type: KeyType, created_by: str | None
                        ) -> tuple[NotifyApiKey, str]:
    """The key row and the whole key (shown once)."""
    await get_service(session, service_id)
    key, api_key = await notify_api.create_api_key(
        session, service_id=service_id, name=name, key_type=key_type, created_by=created_by)
    log.info("notify api key %s (%s) issued for service %s by %s", key.id, key.key_type,
             service_id, created_by or "-")
    return key, api_key


async def list_api_keys(session: AsyncSession, *, service_id: uuid.UUID
                        ) -> list[NotifyApiKey]:
    """The service's keys, revoked ones included (oldest first)."""
    await get_service(session, service_id)
    return list((await session.execute(sa.select(NotifyApiKey).where(
        col(NotifyApiKey.service_id) == service_id).order_by(
        col(NotifyApiKey.created_at), col(NotifyApiKey.id)))).scalars())


async def get_api_key(session: AsyncSession, *, service_id: uuid.UUID,
                      key_id: uuid.UUID) -> NotifyApiKey:
    await get_service(session, service_id)
    key = await session.get(NotifyApiKey, key_id)
    if key is None or key.service_id != service_id:
        raise NotFound("No such API key for this Notify service.")
    return key


async def revoke_api_key(session: AsyncSession, *, service_id: uuid.UUID, key_id: uuid.UUID,
                         revoked_by: str | None) -> tuple[NotifyApiKey, bool]:
    """(the key, revoked just now). Idempotent: a key already revoked keeps its first
    ``revoked_at`` and ``revoked_by``."""
    key = await get_api_key(session, service_id=service_id, key_id=key_id)
    if key.revoked_at is not None:
        return key, False
    now = datetime.now(UTC)
    # conditional: of two concurrent revocations, the first one's audit is kept
    done = await session.execute(
        sa.update(NotifyApiKey)
        .where(col(NotifyApiKey.id) == key_id, col(NotifyApiKey.revoked_at).is_(None))
        .values(revoked_at=now, revoked_by=revoked_by)
        .execution_options(synchronize_session=False))
    await session.refresh(key)
    revoked = getattr(done, "rowcount", 1) == 1
    if revoked:
        log.info("notify api key %s of service %s revoked by %s", key_id, service_id,
                 revoked_by or "-")
    return key, revoked
