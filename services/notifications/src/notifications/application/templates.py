"""Templates: create, edit (each edit is a new version), read, list, preview."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from notifications.domain import templating
from notifications.domain.notify import TemplateType
from notifications.persistence.notify_services import NotifyServiceRepository
from notifications.persistence.tables import Template, TemplateVersion
from notifications.persistence.templates import TemplateRepository
from servicekit.errors import DomainError, NotFound

MAX_VERSION = 2**31 - 1  # an INTEGER column


class InvalidTemplate(DomainError):
    status, code, title = 400, "invalid-template", "Invalid template"


@dataclass(frozen=True)
class TemplateView:
    """A template at one version."""

    template: Template
    version: TemplateVersion

    @property
    def placeholders(self) -> list[str]:
        return templating.placeholders(self.version.subject, self.version.body)


@dataclass(frozen=True)
class Preview:
    subject: str | None
    body: str
    html: str | None = None
    text: str | None = None
    sms: templating.SmsInfo | None = None


def _check(template_type: str, subject: str | None, body: str) -> None:
    if template_type not in (TemplateType.EMAIL, TemplateType.SMS):
        raise InvalidTemplate("A template is of type email or sms (letters are not sent here).")
    if not body.strip():
        raise InvalidTemplate("A template needs a body.")
    if template_type == TemplateType.EMAIL and not (subject or "").strip():
        raise InvalidTemplate("An email template needs a subject.")
    if template_type == TemplateType.SMS and subject:
        raise InvalidTemplate("A text message template has no subject.")


async def create_template(
    templates: TemplateRepository,
    services: NotifyServiceRepository,
    *,
    service_id: uuid.UUID,
    template_type: str,
    name: str,
    body: str,
    subject: str | None = None,
    created_by: str | None = None,
    template_id: uuid.UUID | None = None,
) -> TemplateView:
    _check(template_type, subject, body)
    if await services.get(service_id) is None:
        raise InvalidTemplate("No such Notify service.")
    now = datetime.now(UTC)
    template = Template(
        id=template_id or uuid.uuid4(),
        service_id=service_id,
        template_type=template_type,
        name=name,
        version=1,
        created_by=created_by,
        created_at=now,
    )
    await templates.insert(template)
    return await _add_version(
        templates, template, name=name, subject=subject, body=body, created_by=created_by, now=now
    )


async def edit_template(
    templates: TemplateRepository,
    *,
    template_id: uuid.UUID,
    name: str | None = None,
    subject: str | None = None,
    body: str | None = None,
    created_by: str | None = None,
) -> TemplateView:
    """A new version with the given parts changed (the others as in the current one)."""
    current = await get_template(templates, template_id=template_id)
    template, last = current.template, current.version
    new_subject = subject if subject is not None else last.subject
    new_body = body if body is not None else last.body
    _check(template.template_type, new_subject, new_body)
    now = datetime.now(UTC)
    template.version += 1
    template.name = name or template.name
    template.updated_at = now
    return await _add_version(
        templates,
        template,
        name=name or last.name,
        subject=new_subject,
        body=new_body,
        created_by=created_by,
        now=now,
    )


async def _add_version(
    templates: TemplateRepository,
    template: Template,
    *,
    name: str,
    subject: str | None,
    body: str,
    created_by: str | None,
    now: datetime,
) -> TemplateView:
    """The row of ``template``'s current version (the one it was just created or edited to)."""
    version = TemplateVersion(
        template_id=template.id,
        version=template.version,
        name=name,
        subject=subject,
        body=body,
        created_by=created_by,
        created_at=now,
    )
    await templates.add_version(template, version)
    return TemplateView(template, version)


async def get_template(
    templates: TemplateRepository,
    *,
    template_id: uuid.UUID,
    version: int | None = None,
    service_id: uuid.UUID | None = None,
) -> TemplateView:
    if version is not None and not 1 <= version <= MAX_VERSION:
        raise NotFound("No such version of this template.")
    template = await templates.get(template_id)
    if (
        template is None
        or template.archived
        or (service_id is not None and template.service_id != service_id)
    ):
        raise NotFound("No such template.")
    found = await templates.get_version(template_id, version or template.version)
    if found is None:
        raise NotFound("No such version of this template.")
    return TemplateView(template, found)


async def list_templates(
    templates: TemplateRepository,
    *,
    service_id: uuid.UUID | None = None,
    template_type: str | None = None,
) -> list[TemplateView]:
    return [
        TemplateView(t, v)
        for t, v in await templates.list_current(service_id=service_id, template_type=template_type)
    ]


def preview(view: TemplateView, personalisation: dict[str, Any]) -> Preview:
    """Raises :class:`templating.MissingPersonalisation`."""
    v = view.version
    if view.template.template_type == TemplateType.EMAIL:
        email = templating.render_email(v.subject or "", v.body, personalisation)
        return Preview(subject=email.subject, body=email.body, html=email.html, text=email.text)
    sms = templating.render_sms(v.body, personalisation)
    return Preview(subject=None, body=sms.body, sms=sms.info)


def draft(view: TemplateView, *, subject: str | None, body: str | None) -> TemplateView:
    """``view`` with an edit not saved yet (for its preview): the text given replaces the
    version's; nothing is stored."""
    v = view.version
    return TemplateView(
        view.template,
        TemplateVersion(
            template_id=v.template_id,
            version=v.version,
            name=v.name,
            subject=v.subject if subject is None else subject,
            body=v.body if body is None else body,
            created_by=v.created_by,
            created_at=v.created_at,
        ),
    )


def as_written(view: TemplateView, personalisation: dict[str, Any]) -> dict[str, Any]:
    """``personalisation`` with each placeholder it has no value for shown as written,
    ``((name))``: a preview of a template being edited, before anyone fills it in."""
    given = {templating.normalise_key(k) for k in personalisation}
    missing = {
        name: f"(({name}))"
        for name in view.placeholders
        if templating.normalise_key(name) not in given
    }
    return {**missing, **personalisation}
