"""Sending through the GOV.UK Notify API (``POST /v2/notifications/{email,sms}``): validate,
render with the template's current version (:class:`TemplateCache`), store as ``created``.
Errors are Notify's (:mod:`notifications.domain.notify`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from notifications.application import templates
from notifications.application.notify_auth import Caller
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
)
from notifications.persistence.notifications import NotificationRepository
from notifications.persistence.templates import TemplateRepository, templates_beside
from servicekit.db import Database
from servicekit.errors import NotFound
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
    template read beside it: :func:`templates_beside`)."""
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
        )


def personalisation_of(body: dict[str, Any]) -> dict[str, Any]:
    """The request's ``personalisation``: absent or null is none; anything but an object
    (``false`` too) is Notify's ValidationError."""
    value = body.get("personalisation")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise NotifyValidationError(f"personalisation {value} is not of type object")
    return value


def _validated(
    channel: Channel, body: dict[str, Any]
) -> tuple[str, uuid.UUID, dict[str, Any], str | None, str | None]:
    """(recipient, template id, personalisation, unsubscribe URL, reference) of a request
    body; Notify's ValidationError otherwise."""
    field = "email_address" if channel is Channel.EMAIL else "phone_number"
    errors: list[str] = []
    for required in (field, "template_id"):
        if required not in body or body[required] in (None, ""):
            errors.append(f"{required} is a required property")
    if errors:
        raise NotifyValidationError(errors[0])
    template_id = parse_uuid(body["template_id"], "template_id")
    personalisation = personalisation_of(body)
    unsubscribe = body.get("one_click_unsubscribe_url") if channel is Channel.EMAIL else None
    if unsubscribe is not None and not (
        isinstance(unsubscribe, str) and unsubscribe.startswith("https://")
    ):
        raise NotifyValidationError(
            f"one_click_unsubscribe_url {unsubscribe} is not a valid https url"
        )
    reference = body.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise NotifyValidationError(f"reference {reference} is not of type string, null")
    try:
        if channel is Channel.EMAIL:
            recipient = recipients.validate_email(str(body[field]))
        else:
            recipient = recipients.normalise_uk_mobile(str(body[field]))
    except recipients.InvalidRecipient as exc:
        raise NotifyValidationError(f"{field} {exc}") from None
    return recipient, template_id, personalisation, unsubscribe, reference


async def send_notification(
    uow: UnitOfWork,
    notifications: NotificationRepository,
    template_repository: TemplateRepository,
    caller: Caller,
    channel: Channel,
    body: dict[str, Any],
    *,
    template_cache: TemplateCache | None = None,
) -> Sent:
    """POST /v2/notifications/{email,sms}: validate, render, store as ``created``.

    ``template_repository`` serves the template lookup (it may be on a read session, so
    that the write transaction is held only to insert). The row is inserted at once (a Core
    ``INSERT``), its ``NotificationStatusChanged`` goes to the outbox through
    ``uow.publish`` and is flushed with the commit."""
    recipient, template_id, personalisation, unsubscribe, reference = _validated(channel, body)

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

    def prepare(view: templates.TemplateView) -> dict[str, Any]:
        """The row to insert, rendered with ``view``; Notify's errors."""
        if view.template.template_type != channel.value:
            raise BadRequestError(
                f"{view.template.template_type} template is not suitable "
                f"for {channel.value} notification"
            )
        try:
            rendered = templates.preview(view, personalisation)
        except templating.MissingPersonalisation as exc:
            raise BadRequestError(f"Missing personalisation: {', '.join(exc.names)}") from None
        if rendered.sms is not None and rendered.sms.too_long:
            raise BadRequestError(
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
            "reference": reference,
            "service_id": caller.service.id,
            "api_key_id": caller.key.id,
            "key_type": caller.key.key_type,
            "template_id": view.template.id,
            "template_version": view.version.version,
            "simulated": simulated,
            "unsubscribe_url": unsubscribe,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }

    # The template version this process last saw is a guess, checked by the INSERT itself
    # (inserted only if it is still the template's current, unarchived version, of this
    # service): no query before it. A wrong guess (an edit, an archive, another service's
    # template, or an error the guess gave) reads the template and starts again.
    view = template_cache.latest(template_id) if template_cache is not None else None
    row: dict[str, Any] | None = None
    if view is not None:
        try:
            row = prepare(view)
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
        row = prepare(view)
        await notifications.insert(row)
    assert view is not None
    uow.publish(status_changed(row, Status.CREATED, None, row["created_at"]))
    return Sent(row, view)
