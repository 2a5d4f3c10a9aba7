"""application/templates.py with fake repositories: versions, checks, reads, preview."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from notifications.application import templates
from notifications.domain import templating
from notifications.persistence.tables import NotifyService
from servicekit.errors import NotFound


def _service(services_repo: Any) -> uuid.UUID:
    service = NotifyService(
        name="MK", email_from="mk@x.example", sms_sender="MK", created_at=datetime.now(UTC)
    )
    services_repo.services[service.id] = service
    return service.id


async def test_a_template_starts_at_version_1_and_each_edit_is_a_new_version(
    templates_repo: Any, services_repo: Any
) -> None:
    service_id = _service(services_repo)
    view = await templates.create_template(
        templates_repo,
        services_repo,
        service_id=service_id,
        template_type="email",
        name="Welcome",
        subject="Hi ((name))",
        body="Hello ((name))",
        created_by="staff-1",
    )
    assert (view.version.version, view.placeholders) == (1, ["name"])
    edited = await templates.edit_template(
        templates_repo,
        template_id=view.template.id,
        body="Bye ((name)) ((ref))",
        created_by="staff-2",
    )
    assert (edited.version.version, edited.version.subject) == (2, "Hi ((name))")
    assert edited.template.version == 2 and edited.version.name == "Welcome"
    first = await templates.get_template(templates_repo, template_id=view.template.id, version=1)
    assert first.version.body == "Hello ((name))"
    current = await templates.get_template(templates_repo, template_id=view.template.id)
    assert current.version.body == "Bye ((name)) ((ref))"


@pytest.mark.parametrize(
    ("template_type", "subject", "body", "message"),
    [
        ("letter", None, "x", "A template is of type email or sms"),
        ("email", "S", "  ", "A template needs a body."),
        ("email", None, "x", "An email template needs a subject."),
        ("sms", "S", "x", "A text message template has no subject."),
    ],
)
async def test_invalid_templates_are_refused(
    templates_repo: Any,
    services_repo: Any,
    template_type: str,
    subject: str | None,
    body: str,
    message: str,
) -> None:
    with pytest.raises(templates.InvalidTemplate, match=message):
        await templates.create_template(
            templates_repo,
            services_repo,
            service_id=_service(services_repo),
            template_type=template_type,
            name="T",
            subject=subject,
            body=body,
        )
    assert not templates_repo.templates


async def test_a_template_needs_an_existing_notify_service(
    templates_repo: Any, services_repo: Any
) -> None:
    with pytest.raises(templates.InvalidTemplate, match="No such Notify service"):
        await templates.create_template(
            templates_repo,
            services_repo,
            service_id=uuid.uuid4(),
            template_type="sms",
            name="T",
            body="x",
        )


async def test_reads_refuse_other_services_archived_templates_and_absurd_versions(
    templates_repo: Any, services_repo: Any
) -> None:
    service_id = _service(services_repo)
    view = await templates.create_template(
        templates_repo,
        services_repo,
        service_id=service_id,
        template_type="sms",
        name="T",
        body="x",
    )
    tid = view.template.id
    for kwargs in (
        {"service_id": uuid.uuid4()},
        {"version": 2},
        {"version": 0},
        {"version": templates.MAX_VERSION + 1},
    ):
        with pytest.raises(NotFound):
            await templates.get_template(templates_repo, template_id=tid, **kwargs)
    view.template.archived = True
    with pytest.raises(NotFound):
        await templates.get_template(templates_repo, template_id=tid)
    assert await templates.list_templates(templates_repo) == []


async def test_list_filters_by_service_and_type(templates_repo: Any, services_repo: Any) -> None:
    mine, theirs = _service(services_repo), _service(services_repo)
    email = await templates.create_template(
        templates_repo,
        services_repo,
        service_id=mine,
        template_type="email",
        name="E",
        subject="S",
        body="b",
    )
    await templates.create_template(
        templates_repo, services_repo, service_id=mine, template_type="sms", name="S", body="b"
    )
    await templates.create_template(
        templates_repo,
        services_repo,
        service_id=theirs,
        template_type="email",
        name="E",
        subject="S",
        body="b",
    )
    listed = await templates.list_templates(templates_repo, service_id=mine, template_type="email")
    assert [v.template.id for v in listed] == [email.template.id]
    assert len(await templates.list_templates(templates_repo)) == 3


async def test_preview_renders_email_and_measures_sms(
    templates_repo: Any, services_repo: Any
) -> None:
    service_id = _service(services_repo)
    email = await templates.create_template(
        templates_repo,
        services_repo,
        service_id=service_id,
        template_type="email",
        name="E",
        subject="Hi ((name))",
        body="# Hello",
    )
    shown = templates.preview(email, {"name": "Ann"})
    assert shown.subject == "Hi Ann" and shown.html and shown.sms is None
    sms = await templates.create_template(
        templates_repo,
        services_repo,
        service_id=service_id,
        template_type="sms",
        name="S",
        body="Hi ((name))",
    )
    text = templates.preview(sms, {"name": "Bo"})
    assert text.body == "Hi Bo" and text.sms is not None and not text.sms.too_long
    with pytest.raises(templating.MissingPersonalisation):
        templates.preview(sms, {})
