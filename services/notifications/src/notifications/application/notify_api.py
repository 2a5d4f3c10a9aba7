"""The GOV.UK Notify API's commands and queries: services and keys, authentication,
sending, reading notifications back. Nothing HTTP-shaped: errors are Notify's
(:mod:`notifications.domain.notify`), mapped to its JSON shape by ``api/notify.py``.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from notifications.application import templates
from notifications.application.delivery import channel_work, publish_status
from notifications.config import Settings
from notifications.domain import recipients, templating
from notifications.domain.notification import Channel, Status
from notifications.domain.notify import (
    BEARER_REQUIRED,
    CLOCK_SKEW,
    KEY_NOT_FOUND,
    TEAM_ONLY,
    TOKEN_MISSING,
    AuthError,
    BadRequestError,
    KeyType,
    NoResultFound,
    NotifyError,
    RateLimitError,
    ValidationError,
    format_api_key,
)
from notifications.persistence.tables import Notification, NotifyApiKey, NotifyService, Template
from servicekit.db import mark_work
from servicekit.errors import NotFound
from servicekit.types import UtcDateTime
from servicekit.uow import UnitOfWork

PAGE_SIZE = 250  # Notify's page of GET /v2/notifications


# -- services and keys -----------------------------------------------------------------------

async def create_service(session: AsyncSession, *, name: str, email_from: str,
                         sms_sender: str, team_members: list[str] | None = None,
                         service_id: uuid.UUID | None = None,
                         created_by: str | None = None) -> NotifyService:
    service = NotifyService(id=service_id or uuid.uuid4(), name=name, email_from=email_from,
                            sms_sender=sms_sender, team_members="\n".join(team_members or []),
                            created_at=datetime.now(UTC), created_by=created_by)
    session.add(service)
    await session.flush()
    return service


async def ensure_default_service(session: AsyncSession, settings: Settings) -> NotifyService:
    """The council's own Notify service (``NOTIFICATIONS_NOTIFY_DEFAULT_SERVICE_ID``)."""
    from email.utils import parseaddr

    found = await session.get(NotifyService, settings.notify_default_service_id)
    if found is not None:
        return found
    return await create_service(
        session, service_id=settings.notify_default_service_id,
        name=settings.notify_default_service_name,
        email_from=parseaddr(settings.mail_from)[1] or settings.mail_from,
        sms_sender=settings.sms_sender)


async def create_api_key(session: AsyncSession, *, service_id: uuid.UUID, name: str,
                         key_type: KeyType, created_by: str | None = None
                         ) -> tuple[NotifyApiKey, str]:
    """The key row and the whole key to hand over once: ``{name}-{service id}-{secret}``."""
    secret = str(uuid.uuid4())
    key = NotifyApiKey(service_id=service_id, name=name, key_type=key_type.value,
                       secret=secret, created_at=datetime.now(UTC), created_by=created_by)
    session.add(key)
    await session.flush()
    return key, format_api_key(name, service_id, secret)


@dataclass(frozen=True)
class Caller:
    service: NotifyService
    key: NotifyApiKey

    @property
    def key_type(self) -> KeyType:
        return KeyType(self.key.key_type)


async def _service_keys(session: AsyncSession, service_id: uuid.UUID
                        ) -> tuple[NotifyService | None, list[NotifyApiKey]]:
    service = await session.get(NotifyService, service_id)
    if service is None:
        return None, []
    keys = (await session.execute(
        sa.select(NotifyApiKey).where(col(NotifyApiKey.service_id) == service_id))).scalars().all()
    return service, list(keys)


class KeyCache:
    """Services and their API keys, and the tokens already verified, for ``ttl`` seconds.

    Without it every request read the service and its keys (two queries) and tried each
    key's HMAC. Notify's clients sign one token a second (identical within the second), so
    most requests present a token verified moments ago: only its ``iat`` is checked again.
    A key revoked in the database is refused by this process within ``ttl`` seconds (at
    once when revoked through this process: :meth:`forget`); a key or service created
    since the last read is found at once (a miss reads them again).
    """

    def __init__(self, ttl: float = 5.0, *, max_entries: int = 4096) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._services: dict[uuid.UUID, tuple[float, NotifyService | None,
                                              list[NotifyApiKey]]] = {}
        self._tokens: dict[str, tuple[float, Caller, float]] = {}
        #: Bumped by :meth:`forget`: a read that began before it is not cached.
        self._generation: dict[uuid.UUID, int] = {}

    async def service_keys(self, session: AsyncSession, service_id: uuid.UUID, *,
                           refresh: bool = False
                           ) -> tuple[NotifyService | None, list[NotifyApiKey], bool]:
        """(service, keys, read just now)."""
        now = time.monotonic()
        found = self._services.get(service_id)
        if refresh or found is None or now - found[0] > self.ttl:
            generation = self.generation(service_id)
            service, keys = await _service_keys(session, service_id)
            for row in (service, *keys) if service is not None else ():
                session.expunge(row)  # shared by requests: no session may expire them
            if generation == self.generation(service_id):  # not forgotten meanwhile
                self._bound(self._services)
                self._services[service_id] = (now, service, keys)
            return service, keys, True
        return found[1], found[2], False

    def cached(self, service_id: uuid.UUID
               ) -> tuple[NotifyService | None, list[NotifyApiKey]] | None:
        """The service and its keys if cached within ``ttl``, without reading."""
        found = self._services.get(service_id)
        if found is None or time.monotonic() - found[0] > self.ttl:
            return None
        return found[1], found[2]

    def forget(self, service_id: uuid.UUID) -> None:
        """Drop a service's keys and the tokens verified with them (call it after the
        commit that revoked a key): the next request reads the keys again."""
        self._generation[service_id] = self.generation(service_id) + 1
        self._services.pop(service_id, None)
        for token in [t for t, (_, caller, _) in self._tokens.items()
                      if caller.service.id == service_id]:
            del self._tokens[token]

    def token(self, token: str) -> tuple[Caller, float] | None:
        found = self._tokens.get(token)
        if found is None or time.monotonic() - found[0] > self.ttl:
            return None
        return found[1], found[2]

    def generation(self, service_id: uuid.UUID) -> int:
        return self._generation.get(service_id, 0)

    def remember(self, token: str, caller: Caller, iat: float, *,
                 generation: int | None = None) -> None:
        """Keep a verified token, unless its service was forgotten since ``generation``."""
        if generation is not None and generation != self.generation(caller.service.id):
            return
        self._bound(self._tokens)
        self._tokens[token] = (time.monotonic(), caller, iat)

    def _bound(self, entries: dict[Any, Any]) -> None:
        if len(entries) >= self.max_entries:  # oldest first (dicts keep insertion order)
            for stale in list(entries)[: self.max_entries // 2]:
                del entries[stale]


SERVICE_NOT_FOUND = "Invalid token: service not found"
NO_KEYS = "Invalid token: service has no API keys"


def _verify(token: str, service: NotifyService | None, keys: list[NotifyApiKey], *,
            clock: float, leeway_seconds: int) -> tuple[Caller, float]:
    """The caller whose key signed ``token``, and the token's ``iat``; Notify's errors."""
    if service is None:
        raise AuthError(SERVICE_NOT_FOUND)
    if not keys:
        raise AuthError(NO_KEYS)
    for key in keys:
        try:
            verified = jwt.decode(token, key.secret, algorithms=["HS256"],
                                  options={"verify_iat": False, "verify_exp": False,
                                           "verify_nbf": False})
        except jwt.PyJWTError:
            continue
        iat = verified.get("iat")
        if not isinstance(iat, int | float):
            raise AuthError("Invalid token: iat field not provided")
        if abs(clock - iat) > leeway_seconds:
            raise AuthError(CLOCK_SKEW)
        if key.revoked_at is not None:
            raise AuthError("Invalid token: API key revoked")
        return Caller(service=service, key=key), iat
    raise AuthError(KEY_NOT_FOUND)


#: A session, or what opens one (``Database.read_session``): then a session is opened only
#: when the key cache misses.
SessionSource = AsyncSession | Callable[[], AbstractAsyncContextManager[AsyncSession]]


@asynccontextmanager
async def _session_from(source: SessionSource) -> AsyncIterator[AsyncSession]:
    if isinstance(source, AsyncSession):
        yield source
    else:
        async with source() as session:
            yield session


async def authenticate(session: SessionSource, authorization: str | None, *,
                       leeway_seconds: int = 30, now: float | None = None,
                       cache: KeyCache | None = None) -> Caller:
    """Notify's checks, in its order, with its messages. ``session`` may be a session
    factory (``Database.read_session``): it is called only when the cache misses."""
    if not authorization:
        raise AuthError(TOKEN_MISSING, status_code=401)
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(BEARER_REQUIRED, status_code=401)
    token = token.strip()
    clock = now if now is not None else time.time()
    known = cache.token(token) if cache is not None else None
    if known is not None:  # verified moments ago (its key not revoked then)
        caller, issued_at = known
        if abs(clock - issued_at) > leeway_seconds:
            raise AuthError(CLOCK_SKEW)
        return caller
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AuthError("Invalid token: signature, api token is not valid") from None
    if header.get("alg") != "HS256":
        raise AuthError("Invalid token: algorithm used is not HS256")
    issuer = claims.get("iss")
    if not issuer:
        raise AuthError("Invalid token: iss field not provided")
    try:
        service_id = uuid.UUID(str(issuer))
    except ValueError:
        raise AuthError("Invalid token: service id is not the right data type") from None
    if cache is None:
        async with _session_from(session) as s:
            service, keys = await _service_keys(s, service_id)
        return _verify(token, service, keys, clock=clock, leeway_seconds=leeway_seconds)[0]
    generation = cache.generation(service_id)
    service, keys, fresh = await _cached_keys(cache, session, service_id)
    try:
        caller, iat = _verify(token, service, keys, clock=clock,
                              leeway_seconds=leeway_seconds)
    except AuthError as exc:
        if fresh or exc.message not in (SERVICE_NOT_FOUND, NO_KEYS, KEY_NOT_FOUND):
            raise
        # created since they were cached? read them again before refusing
        service, keys, _ = await _cached_keys(cache, session, service_id, refresh=True)
        caller, iat = _verify(token, service, keys, clock=clock, leeway_seconds=leeway_seconds)
    cache.remember(token, caller, iat, generation=generation)
    return caller


async def _cached_keys(cache: KeyCache, source: SessionSource, service_id: uuid.UUID, *,
                       refresh: bool = False
                       ) -> tuple[NotifyService | None, list[NotifyApiKey], bool]:
    if not refresh and not isinstance(source, AsyncSession):
        found = cache.cached(service_id)
        if found is not None:  # no session opened
            return found[0], found[1], False
    async with _session_from(source) as s:
        return await cache.service_keys(s, service_id, refresh=refresh)


class RateLimiter:
    """Notify's limit: ``per_minute`` requests a minute per service and key type (a sliding
    one-minute window kept in memory, per process)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[tuple[uuid.UUID, str], deque[float]] = defaultdict(deque)

    def check(self, caller: Caller, *, now: float | None = None) -> None:
        if self.per_minute <= 0:
            return
        now = now if now is not None else time.monotonic()
        hits = self._hits[(caller.service.id, caller.key.key_type)]
        while hits and hits[0] <= now - 60:
            hits.popleft()
        if len(hits) >= self.per_minute:
            name = {"normal": "live"}.get(caller.key.key_type, caller.key.key_type)
            raise RateLimitError(f"Exceeded rate limit for key type {name.upper()} of "
                                 f"{self.per_minute} requests per 60 seconds")
        hits.append(now)


# -- sending ---------------------------------------------------------------------------------

def parse_uuid(value: Any, field: str) -> uuid.UUID:
    """A UUID, or Notify's ValidationError ``<field> is not a valid UUID``."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError(f"{field} is not a valid UUID") from None


def team_member(value: str) -> str:
    """A team member as a team key compares it: an email address lower-cased, a UK mobile
    as E.164. Raises :class:`recipients.InvalidRecipient` (its message has no value)."""
    return (recipients.validate_email(value).lower() if "@" in value
            else recipients.normalise_uk_mobile(value))


def _team_members(service: NotifyService) -> set[str]:
    members: set[str] = set()
    for line in service.team_members.splitlines():
        if not line.strip():
            continue
        try:
            members.add(team_member(line))
        except recipients.InvalidRecipient:
            continue
    return members


class TemplateCache:
    """Template versions by ``(id, version)``: a version never changes once written, so a
    request reads only the template's current version number (one small query) and the
    content comes from here. An edit (a new version) is seen at once, by every process."""

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self._views: dict[tuple[uuid.UUID, int], templates.TemplateView] = {}
        self._latest: dict[uuid.UUID, templates.TemplateView] = {}

    def latest(self, template_id: uuid.UUID) -> templates.TemplateView | None:
        """The version :meth:`current` last found current, without a query: a guess that
        :func:`send_notification` checks in its ``INSERT`` (see there)."""
        return self._latest.get(template_id)

    async def current(self, session: AsyncSession, *, template_id: uuid.UUID,
                      service_id: uuid.UUID) -> templates.TemplateView:
        """Raises NotFound, as :func:`templates.get_template`."""
        row = (await session.execute(
            sa.select(col(Template.version), col(Template.archived), col(Template.service_id))
            .where(col(Template.id) == template_id))).one_or_none()
        if row is None or row.archived or row.service_id != service_id:
            raise NotFound("No such template.")
        view = self._views.get((template_id, row.version))
        if view is None:
            view = await templates.get_template(session, template_id=template_id,
                                                version=row.version, service_id=service_id)
            session.expunge(view.template)  # shared by requests: a rollback must not
            session.expunge(view.version)  # expire them
            if len(self._views) >= self.max_entries:
                self._views.clear()
                self._latest.clear()
            self._views[(template_id, row.version)] = view
        self._latest[template_id] = view
        return view


@dataclass(frozen=True)
class Sent:
    #: The row as inserted (the ``notification`` table's columns that were set).
    notification: dict[str, Any]
    template: templates.TemplateView


#: The notification table, for Core inserts (no ORM object, no pydantic validation on the
#: request path: measured, building and flushing the SQLModel object was the largest part
#: of SQLAlchemy's share of an accepted email's CPU).
_NOTIFICATION = Notification.__table__  # type: ignore[attr-defined]


async def send_notification(uow: UnitOfWork, caller: Caller, channel: Channel,
                            body: dict[str, Any], *, settings: Settings,
                            reader: AsyncSession | None = None,
                            template_cache: TemplateCache | None = None) -> Sent:
    """POST /v2/notifications/{email,sms}: validate, render, store as ``created``.

    ``reader`` (a read session) serves the template lookup, so the write transaction (on
    SQLite: the database's write lock) is held only to insert and commit. The row is
    inserted at once (a Core ``INSERT``), its ``NotificationStatusChanged`` goes to the
    outbox through ``record_event`` and is flushed with the commit."""
    field = "email_address" if channel is Channel.EMAIL else "phone_number"
    errors: list[str] = []
    for required in (field, "template_id"):
        if required not in body or body[required] in (None, ""):
            errors.append(f"{required} is a required property")
    if errors:
        raise ValidationError(errors[0])
    template_id = parse_uuid(body["template_id"], "template_id")
    personalisation = body.get("personalisation") or {}
    if not isinstance(personalisation, dict):
        raise ValidationError(f"personalisation {personalisation} is not of type object")
    unsubscribe = body.get("one_click_unsubscribe_url") if channel is Channel.EMAIL else None
    if unsubscribe is not None and not (isinstance(unsubscribe, str)
                                        and unsubscribe.startswith("https://")):
        raise ValidationError(f"one_click_unsubscribe_url {unsubscribe} is not a valid https url")
    reference = body.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise ValidationError(f"reference {reference} is not of type string, null")
    try:
        if channel is Channel.EMAIL:
            recipient = recipients.validate_email(str(body[field]))
        else:
            recipient = recipients.normalise_uk_mobile(str(body[field]))
    except recipients.InvalidRecipient as exc:
        raise ValidationError(f"{field} {exc}") from None

    async def read_view() -> templates.TemplateView:
        try:
            if template_cache is not None:
                return await template_cache.current(reader or uow.session,
                                                    template_id=template_id,
                                                    service_id=caller.service.id)
            return await templates.get_template(reader or uow.session,
                                                template_id=template_id,
                                                service_id=caller.service.id)
        except NotFound:
            raise BadRequestError("Template not found") from None

    def prepare(view: templates.TemplateView) -> dict[str, Any]:
        """The row to insert, rendered with ``view``; Notify's errors."""
        if view.template.template_type != channel.value:
            raise BadRequestError(f"{view.template.template_type} template is not suitable "
                                  f"for {channel.value} notification")
        try:
            rendered = templates.preview(view, personalisation)
        except templating.MissingPersonalisation as exc:
            raise BadRequestError(
                f"Missing personalisation: {', '.join(exc.names)}") from None
        if rendered.sms is not None and rendered.sms.too_long:
            raise BadRequestError(
                f"Text messages cannot be longer than {templating.SMS_CHAR_LIMIT} characters. "
                f"Your message is {rendered.sms.length} characters long.")
        if caller.key_type is KeyType.TEAM and recipient.lower() not in _team_members(
                caller.service):
            raise BadRequestError(TEAM_ONLY)
        simulated = caller.key_type is KeyType.TEST or recipient.lower() in (
            recipients.SIMULATED_EMAILS | recipients.SIMULATED_PHONES)
        now = datetime.now(UTC)
        return {
            "id": uuid.uuid4(), "channel": channel.value, "recipient": recipient,
            "subject": rendered.subject, "body": rendered.body, "html_body": rendered.html,
            "text_body": rendered.text, "status": Status.CREATED.value,
            "reference": reference, "service_id": caller.service.id,
            "api_key_id": caller.key.id, "key_type": caller.key.key_type,
            "template_id": view.template.id, "template_version": view.version.version,
            "simulated": simulated, "unsubscribe_url": unsubscribe, "attempts": 0,
            "created_at": now, "updated_at": now}

    # The template version this process last saw is a guess, checked by the INSERT itself
    # (inserted only if it is still the template's current, unarchived version, of this
    # service): no query before it. A wrong guess (an edit, an archive, another service's
    # template, or an error the guess gave) reads the template and starts again.
    session = uow.session
    view = template_cache.latest(template_id) if template_cache is not None else None
    row: dict[str, Any] | None = None
    if view is not None:
        try:
            row = prepare(view)
        except NotifyError:
            row = None
        if row is not None:
            inserted = await session.execute(
                _insert_if_current(session.get_bind().dialect.name),
                {**row, "current_template_id": template_id,
                 "current_template_version": view.version.version,
                 "current_service_id": caller.service.id})
            if inserted.rowcount != 1:  # type: ignore[attr-defined]
                row = None
    if row is None:
        view = await read_view()
        row = prepare(view)
        await session.execute(sa.insert(_NOTIFICATION), row)
    assert view is not None
    mark_work(session, channel_work(channel))  # wakes this channel's worker only
    publish_status(session, settings, row, Status.CREATED, None, row["created_at"])
    return Sent(row, view)


#: The columns :func:`send_notification` sets.
_INSERT_COLUMNS = ("id", "channel", "recipient", "subject", "body", "html_body", "text_body",
                   "status", "reference", "service_id", "api_key_id", "key_type",
                   "template_id", "template_version", "simulated", "unsubscribe_url",
                   "attempts", "created_at", "updated_at")


@functools.cache
def _insert_if_current(dialect: str) -> sa.Insert:
    """``INSERT INTO notification (...) SELECT <the values> FROM template WHERE <the
    template is at the version rendered, not archived, the caller's>``: one round trip for
    the check and the insert. PostgreSQL needs each value's type (a cast; strings without
    their length, so an over-long value is refused as by a plain INSERT, not cut)."""
    table, template = _NOTIFICATION, Template.__table__  # type: ignore[attr-defined]

    def value(name: str) -> Any:
        column_type = table.c[name].type
        param = sa.bindparam(name, type_=column_type)
        if dialect != "postgresql":
            return param
        return sa.cast(param, sa.String() if isinstance(column_type, sa.String)
                       else column_type)

    pick = sa.select(*(value(name).label(name) for name in _INSERT_COLUMNS)).where(
        template.c.id == sa.bindparam("current_template_id"),
        template.c.version == sa.bindparam("current_template_version"),
        template.c.service_id == sa.bindparam("current_service_id"),
        template.c.archived.is_(False))
    return sa.insert(table).from_select(list(_INSERT_COLUMNS), pick)


# -- reading back ----------------------------------------------------------------------------

def _visible(caller: Caller) -> Any:
    """Test keys see what test keys sent; live and team keys see the rest (as Notify)."""
    test = col(Notification.key_type) == KeyType.TEST.value
    return sa.and_(col(Notification.service_id) == caller.service.id,
                   test if caller.key_type is KeyType.TEST else sa.not_(test))


async def get_notification(session: AsyncSession, caller: Caller,
                           notification_id: str) -> Notification:
    nid = parse_uuid(notification_id, "notification_id")
    found = (await session.execute(
        sa.select(Notification).where(col(Notification.id) == nid,
                                      col(Notification.service_id) == caller.service.id))
             ).scalar_one_or_none()
    if found is None:
        raise NoResultFound("No result found")
    return found


async def list_notifications(session: AsyncSession, caller: Caller, *,
                             template_types: list[str], statuses: list[str],
                             reference: str | None, older_than: str | None,
                             page_size: int = PAGE_SIZE) -> list[Notification]:
    query = sa.select(Notification).where(_visible(caller))
    for value in template_types:
        if value not in ("email", "sms", "letter"):
            raise ValidationError(f"template_type {value} is not one of [sms, email, letter]")
    if template_types:
        query = query.where(col(Notification.channel).in_(template_types))
    if statuses:
        known = {s.value for s in Status}
        for value in statuses:
            if value not in known and value not in ("failed", "sent", "pending"):
                raise ValidationError(f"status {value} is not one of "
                                      f"[{', '.join(s.value for s in Status)}]")
        wanted = set(statuses)
        if "failed" in wanted:
            wanted |= {Status.TEMPORARY_FAILURE, Status.PERMANENT_FAILURE,
                       Status.TECHNICAL_FAILURE}
        if "pending" in wanted:
            wanted |= {Status.CREATED, Status.SENDING}
        query = query.where(col(Notification.status).in_(sorted(wanted)))
    if reference is not None:
        query = query.where(col(Notification.reference) == reference)
    if older_than:
        anchor_id = parse_uuid(older_than, "older_than")
        anchor = (await session.execute(sa.select(col(Notification.created_at)).where(
            col(Notification.id) == anchor_id, _visible(caller)))).scalar_one_or_none()
        if anchor is None:
            return []
        query = query.where(sa.tuple_(col(Notification.created_at), col(Notification.id))
                            < sa.tuple_(sa.literal(anchor, UtcDateTime()),
                                        sa.literal(anchor_id, sa.Uuid())))
    query = query.order_by(col(Notification.created_at).desc(),
                           col(Notification.id).desc()).limit(page_size)
    return list((await session.execute(query)).scalars().all())
