"""Sending through the GOV.UK Notify API (``POST /v2/notifications/{email,sms}``): validate,
render with the template's current version (:class:`TemplateCache`), store as ``created``.
Errors are Notify's (:mod:`notifications.domain.notify`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from contracts.notifications import NotificationStatusChanged
from notifications.application import templates
from notifications.application.notify_auth import Caller
from notifications.application.notify_files import PreparedFiles, prepare_files, store_files
from notifications.config import Settings
from notifications.domain import recipients, templating
from notifications.domain.notification import Channel, Status, status_changed
from notifications.domain.notify import (
    TEAM_ONLY,
    BadRequestError,
    KeyType,
    NotifyError,
    NotifyValidationError,
    parse_uuid,
    sanitise_value,
    shown,
    unexpected,
)
from notifications.domain.notify_files import is_file
from notifications.persistence.notifications import (
    NotificationRepository,
    insert_with_event_if_current,
)
from notifications.persistence.notify_files import NotifyFileRepository
from notifications.persistence.notify_services import NotifyServiceRepository
from notifications.persistence.templates import TemplateRepository, templates_beside
from servicekit.db import Database
from servicekit.errors import NotFound
from servicekit.messaging.outbox import PENDING_KEY, record_event
from servicekit.uow import UnitOfWork


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

    async def current(
        self, repository: TemplateRepository, *, template_id: uuid.UUID, service_id: uuid.UUID
    ) -> templates.TemplateView:
        """Raises NotFound, as :func:`templates.get_template`."""
        row = await repository.current_version(template_id)
        if row is None or row.archived or row.service_id != service_id:
            raise NotFound("No such template.")
        view = self._views.get((template_id, row.version))
        if view is None:
            view = await templates.get_template(
                repository, template_id=template_id, version=row.version, service_id=service_id
            )
            # shared by requests: a rollback must not expire them
            repository.detach(view.template, view.version)
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
    posted: Posted


async def accept(
    database: Database,
    caller: Caller,
    channel: Channel,
    body: dict[str, Any],
    *,
    settings: Settings,
    template_cache: TemplateCache | None = None,
) -> Sent:
    """:func:`send_notification` in its own unit of work, committed when this returns (the
    template read beside it: :func:`templates_beside`); on PostgreSQL, when it can, in one
    statement (:func:`_accept_in_one_statement`)."""
    if database.is_postgres and template_cache is not None:
        sent = await _accept_in_one_statement(
            database, caller, channel, body, settings=settings, template_cache=template_cache
        )
        if sent is not None:
            return sent
    async with (
        UnitOfWork(database, source=settings.cloudevents_source) as uow,
        templates_beside(database, uow.db) as template_repository,
    ):
        return await send_notification(
            uow,
            NotificationRepository(uow.db),
            template_repository,
            caller,
            channel,
            body,
            template_cache=template_cache,
            services=NotifyServiceRepository(uow.db),
            public_url=settings.public_url,
        )


def personalisation_of(body: dict[str, Any]) -> dict[str, Any]:
    """The request's ``personalisation``: absent or null is none; anything but an object
    (``false`` too) is Notify's ValidationError."""
    value = body.get("personalisation")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise NotifyValidationError(f"personalisation {shown(value)} is not of type object")
    return value


#: The fields Notify's request schemas know (``additionalProperties: false``), in its order.
EMAIL_FIELDS = (
    "reference",
    "email_address",
    "template_id",
    "personalisation",
    "scheduled_for",
    "email_reply_to_id",
    "one_click_unsubscribe_url",
    "sanitise_content_for",
)
SMS_FIELDS = (
    "reference",
    "phone_number",
    "template_id",
    "personalisation",
    "scheduled_for",
    "sms_sender_id",
)
REFERENCE_MAX = 1000
#: How far ahead ``scheduled_for`` may be (Notify: 24 hours).
SCHEDULE_AHEAD = timedelta(hours=24)
SCHEDULE_FORMAT = (
    "scheduled_for datetime format is invalid. It must be a valid ISO8601 date time format, "
    "https://en.wikipedia.org/wiki/ISO_8601"
)


@dataclass(frozen=True)
class Posted:
    """A valid ``POST /v2/notifications/{email,sms}`` body."""

    recipient: str
    template_id: uuid.UUID
    #: As sent, and as rendered (``sanitise_content_for``'s values made safe).
    unsanitised: dict[str, Any]
    personalisation: dict[str, Any]
    unsubscribe: str | None
    reference: str | None
    scheduled_for: datetime | None
    #: ``email_reply_to_id`` or ``sms_sender_id``.
    sender_id: uuid.UUID | None

    @property
    def sanitised_content(self) -> dict[str, Any]:
        """Notify's ``sanitised_content``: each value sanitisation changed, both ways."""
        return {
            key: {"unsanitised": self.unsanitised[key], "sanitised": value}
            for key, value in self.personalisation.items()
            if value != self.unsanitised[key]
        }


def _scheduled_for(value: Any, now: datetime) -> tuple[datetime | None, str | None]:
    if value is None:
        return None, None
    if not isinstance(value, str):
        return None, f"scheduled_for {shown(value)} is not of type string, null"
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None, SCHEDULE_FORMAT
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if when < now:
        return None, "scheduled_for datetime can not be in the past"
    if when > now + SCHEDULE_AHEAD:
        return None, "scheduled_for datetime can only be 24 hours in the future"
    return when, None


def validate_post(channel: Channel, body: dict[str, Any], *, now: datetime) -> Posted:
    """The body checked as Notify's request schema checks it; every problem found, in
    Notify's order (each field's, then missing ones, then unknown fields), as one
    ValidationError."""
    email = channel is Channel.EMAIL
    field = "email_address" if email else "phone_number"
    errors: list[str] = []
    reference = body.get("reference")
    if "reference" in body:
        if not isinstance(reference, str):
            errors.append(f"reference {shown(reference)} is not of type string")
        elif len(reference) > REFERENCE_MAX:
            errors.append(f"reference {shown(reference)} is too long")
    recipient = ""
    raw = body.get(field)
    if raw not in (None, ""):
        if not isinstance(raw, str):
            errors.append(f"{field} {shown(raw)} is not of type string")
        else:
            try:
                recipient = (
                    recipients.validate_email(raw) if email else recipients.normalise_phone(raw)
                )
            except recipients.InvalidRecipient as exc:
                errors.append(f"{field} {exc}")
    template_id: uuid.UUID | None = None
    if "template_id" in body and body["template_id"] not in (None, ""):
        try:
            template_id = parse_uuid(body["template_id"], "template_id")
        except NotifyValidationError as exc:
            errors.append(exc.message)
    personalisation: dict[str, Any] = {}
    try:
        personalisation = personalisation_of(body)
    except NotifyValidationError as exc:
        errors.append(exc.message)
    scheduled_for, problem = _scheduled_for(body.get("scheduled_for"), now)
    if problem:
        errors.append(problem)
    sender_field = "email_reply_to_id" if email else "sms_sender_id"
    sender_id: uuid.UUID | None = None
    if body.get(sender_field) is not None:
        try:
            sender_id = parse_uuid(body[sender_field], sender_field)
        except NotifyValidationError as exc:
            errors.append(exc.message)
    unsubscribe = body.get("one_click_unsubscribe_url") if email else None
    if unsubscribe is not None and not (
        isinstance(unsubscribe, str) and unsubscribe.startswith("https://")
    ):
        errors.append(f"one_click_unsubscribe_url {unsubscribe} is not a valid https url")
    sanitise_for = body.get("sanitise_content_for") if email else None
    if sanitise_for is not None and not isinstance(sanitise_for, list):
        errors.append(f"sanitise_content_for {shown(sanitise_for)} is not of type array, null")
        sanitise_for = None
    for required in (field, "template_id"):
        if required not in body or body[required] in (None, ""):
            errors.append(f"{required} is a required property")
    extra = unexpected(set(body) - set(EMAIL_FIELDS if email else SMS_FIELDS))
    if extra:
        errors.append(extra)
    if errors:
        raise NotifyValidationError(errors[0], more=tuple(errors[1:]))
    assert template_id is not None
    sanitised = dict(personalisation)
    if sanitise_for:
        wanted = {templating.normalise_key(str(name)) for name in sanitise_for}
        sanitised = {
            key: sanitise_value(value) if templating.normalise_key(key) in wanted else value
            for key, value in personalisation.items()
        }
    return Posted(
        recipient=recipient,
        template_id=template_id,
        unsanitised=personalisation,
        personalisation=sanitised,
        unsubscribe=unsubscribe,
        reference=reference,
        scheduled_for=scheduled_for,
        sender_id=sender_id,
    )


@dataclass
class _Draft:
    """A valid request, before its template is known: what :func:`send_notification` and
    :func:`_accept_in_one_statement` share."""

    caller: Caller
    channel: Channel
    posted: Posted
    personalisation: dict[str, Any]
    has_files: bool
    prepared: PreparedFiles | None
    sender: str | None

    def row(self, view: templates.TemplateView) -> dict[str, Any]:
        """The row to insert, rendered with ``view``; Notify's errors."""
        channel, caller, posted = self.channel, self.caller, self.posted
        email = channel is Channel.EMAIL
        recipient = posted.recipient
        if view.template.template_type != channel.value:
            raise BadRequestError(
                f"{view.template.template_type} template is not suitable "
                f"for {channel.value} notification"
            )
        if self.has_files and not email:
            raise BadRequestError("Can only send a file by email")
        try:
            rendered = templates.preview(view, self.personalisation)
        except templating.MissingPersonalisation as exc:
            raise BadRequestError(f"Missing personalisation: {', '.join(exc.names)}") from None
        if rendered.sms is not None and rendered.sms.too_long:
            raise BadRequestError(
                "Your message is too long. "
                f"Text messages cannot be longer than {templating.SMS_CHAR_LIMIT} characters. "
                f"Your message is {rendered.sms.length} characters long."
            )
        if caller.key_type is KeyType.TEAM and recipient.lower() not in (
            recipients.team_members(caller.service.team_members)
        ):
            raise BadRequestError(TEAM_ONLY)
        simulated = caller.key_type is KeyType.TEST or recipient.lower() in (
            recipients.SIMULATED_EMAILS | recipients.SIMULATED_PHONES
        )
        now = datetime.now(UTC)
        return {
            "id": uuid.uuid4(),
            "channel": channel.value,
            "recipient": recipient,
            "subject": rendered.subject,
            "body": rendered.body,
            "html_body": rendered.html,
            "text_body": rendered.text,
            "status": Status.CREATED.value,
            "reference": posted.reference,
            "service_id": caller.service.id,
            "api_key_id": caller.key.id,
            "key_type": caller.key.key_type,
            "template_id": view.template.id,
            "template_version": view.version.version,
            "simulated": simulated,
            "unsubscribe_url": posted.unsubscribe,
            "scheduled_for": posted.scheduled_for,
            "next_attempt_at": posted.scheduled_for,
            "sender": self.sender,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }


def _draft(
    caller: Caller, channel: Channel, body: dict[str, Any], *, public_url: str | None
) -> _Draft:
    posted = validate_post(channel, body, now=datetime.now(UTC))
    email = channel is Channel.EMAIL
    personalisation = posted.personalisation
    has_files = any(is_file(v) for v in personalisation.values())
    prepared: PreparedFiles | None = None
    if has_files and email:
        prepared = prepare_files(
            personalisation,
            service_id=caller.service.id,
            recipient=posted.recipient,
            public_url=public_url or "",
        )
        personalisation = prepared.personalisation
    return _Draft(
        caller=caller,
        channel=channel,
        posted=posted,
        personalisation=personalisation,
        has_files=has_files,
        prepared=prepared,
        sender=caller.service.email_reply_to if email else caller.service.sms_sender,
    )


def _outbox_row(event: NotificationStatusChanged, *, source: str) -> dict[str, Any]:
    """``event``'s outbox row exactly as ``record_event`` records it (into a session's
    ``info``: here a throw-away one, so nothing else inserts it)."""
    holder = Session()
    record_event(holder, event, source=source)
    rows: list[dict[str, Any]] = holder.info[PENDING_KEY]
    return rows[0]


async def _accept_in_one_statement(
    database: Database,
    caller: Caller,
    channel: Channel,
    body: dict[str, Any],
    *,
    settings: Settings,
    template_cache: TemplateCache,
) -> Sent | None:
    """PostgreSQL, the common case (the template's version cached, no sender id to look
    up, no files): the notification and its outbox event in one statement outside a
    transaction block, so the whole transaction is one round trip to PostgreSQL (measured:
    BEGIN, two INSERTs and COMMIT were four, each a wake of the PostgreSQL backend and of
    this process), sent on the driver's connection (:func:`insert_with_event_if_current`).
    ``None`` when this path does not apply or the template guess was wrong: then nothing
    was written and :func:`accept` takes the unit of work's path (which reads the template
    and reports Notify's errors)."""
    draft = _draft(caller, channel, body, public_url=settings.public_url)
    view = template_cache.latest(draft.posted.template_id)
    if view is None or draft.posted.sender_id is not None or draft.has_files:
        return None
    try:
        row = draft.row(view)
    except NotifyError:
        return None  # perhaps only the guess is wrong: the full path says
    event = _outbox_row(
        status_changed(row, Status.CREATED, None, row["created_at"]),
        source=settings.cloudevents_source,
    )
    inserted = await insert_with_event_if_current(
        database,
        row,
        event,
        template_id=draft.posted.template_id,
        template_version=view.version.version,
        service_id=caller.service.id,
    )
    return Sent(row, view, draft.posted) if inserted else None


async def send_notification(
    uow: UnitOfWork,
    notifications: NotificationRepository,
    template_repository: TemplateRepository,
    caller: Caller,
    channel: Channel,
    body: dict[str, Any],
    *,
    template_cache: TemplateCache | None = None,
    services: NotifyServiceRepository | None = None,
    public_url: str | None = None,
) -> Sent:
    """POST /v2/notifications/{email,sms}: validate, render, store as ``created``.

    The sender is the reply-to address or SMS sender named by ``email_reply_to_id`` /
    ``sms_sender_id`` (read with ``services``; an id the service does not have is Notify's
    400), else the service's default (held with the service: no query). Files in an
    email's personalisation (``prepare_upload``) become links under ``public_url`` and are
    stored in the same transaction (:mod:`notify_files`).

    ``template_repository`` serves the template lookup (it may be on a read session, so
    that the write transaction is held only to insert). The row is inserted at once (a Core
    ``INSERT``), its ``NotificationStatusChanged`` goes to the outbox through
    ``uow.publish`` and is flushed with the commit."""
    draft = _draft(caller, channel, body, public_url=public_url)
    posted, template_id = draft.posted, draft.posted.template_id
    email = channel is Channel.EMAIL
    if posted.sender_id is not None:
        found = None
        if services is not None:
            found = await services.sender_of(caller.service.id, posted.sender_id, email=email)
        if found is None:
            field = "email_reply_to_id" if email else "sms_sender_id"
            raise BadRequestError(
                f"{field} {posted.sender_id} does not exist in database "
                f"for service id {caller.service.id}"
            )
        draft.sender = found

    async def read_view() -> templates.TemplateView:
        try:
            if template_cache is not None:
                return await template_cache.current(
                    template_repository, template_id=template_id, service_id=caller.service.id
                )
            return await templates.get_template(
                template_repository, template_id=template_id, service_id=caller.service.id
            )
        except NotFound:
            raise BadRequestError("Template not found") from None

    # The template version this process last saw is a guess, checked by the INSERT itself
    # (inserted only if it is still the template's current, unarchived version, of this
    # service): no query before it. A wrong guess (an edit, an archive, another service's
    # template, or an error the guess gave) reads the template and starts again.
    view = template_cache.latest(template_id) if template_cache is not None else None
    row: dict[str, Any] | None = None
    if view is not None:
        try:
            row = draft.row(view)
        except NotifyError:
            row = None
        if row is not None and not await notifications.insert_if_current(
            row,
            template_id=template_id,
            template_version=view.version.version,
            service_id=caller.service.id,
        ):
            row = None
    if row is None:
        view = await read_view()
        row = draft.row(view)
        await notifications.insert(row)
    assert view is not None
    if draft.prepared is not None and draft.prepared.any:
        store_files(NotifyFileRepository(uow.db), draft.prepared, notification_id=row["id"])
    uow.publish(status_changed(row, Status.CREATED, None, row["created_at"]))
    return Sent(row, view, posted)
