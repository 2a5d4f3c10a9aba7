"""application/notify_send.py with fake repositories: validation, rendering, team and test
keys, the cached template version checked by the insert."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from notifications.application import notify_services, templates
from notifications.application.notify_auth import Caller
from notifications.application.notify_send import TemplateCache, send_notification
from notifications.domain.notification import Channel, Status
from notifications.domain.notify import BadRequestError, KeyType, NotifyValidationError
from notifications.persistence.tables import NotifyApiKey


async def _caller(services_repo: Any, key_type: KeyType = KeyType.LIVE) -> Caller:
    service = await notify_services.create_service(
        services_repo,
        name="MK",
        email_from="mk@x.example",
        sms_sender="MK",
        team_members=["team@example.com"],
    )
    key = NotifyApiKey(
        service_id=service.id,
        name="k",
        key_type=key_type.value,
        secret="s",
        created_at=datetime.now(UTC),
    )
    return Caller(service=service, key=key)


async def _template(
    templates_repo: Any, services_repo: Any, caller: Caller, template_type: str = "email"
) -> uuid.UUID:
    view = await templates.create_template(
        templates_repo,
        services_repo,
        service_id=caller.service.id,
        template_type=template_type,
        name="T",
        subject="Hi ((name))" if template_type == "email" else None,
        body="Hello ((name))",
    )
    return view.template.id


async def test_an_email_is_stored_as_created_and_its_event_published(
    uow: Any, notifications: Any, templates_repo: Any, services_repo: Any
) -> None:
    caller = await _caller(services_repo)
    tid = await _template(templates_repo, services_repo, caller)
    sent = await send_notification(
        uow,
        notifications,
        templates_repo,
        caller,
        Channel.EMAIL,
        {
            "email_address": "Ann@Example.com",
            "template_id": str(tid),
            "personalisation": {"name": "Ann"},
            "reference": "r1",
        },
    )
    row = notifications.rows[sent.notification["id"]]
    assert (row["subject"], row["status"], row["reference"], row["simulated"]) == (
        "Hi Ann",
        "created",
        "r1",
        False,
    )
    assert [(e.status, e.notification_id) for e in uow.events] == [
        (Status.CREATED.value, row["id"])
    ]


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ({"template_id": "x"}, NotifyValidationError, "email_address is a required property"),
        (
            {"email_address": "a@b.example", "template_id": "x"},
            NotifyValidationError,
            "template_id is not a valid UUID",
        ),
        (
            {"email_address": "nope", "template_id": str(uuid.uuid4())},
            NotifyValidationError,
            "email_address Not a valid email address",
        ),
        (
            {
                "email_address": "a@b.example",
                "template_id": str(uuid.uuid4()),
                "one_click_unsubscribe_url": "http://x",
            },
            NotifyValidationError,
            "one_click_unsubscribe_url http://x is not a valid https url",
        ),
        (
            {"email_address": "a@b.example", "template_id": str(uuid.uuid4())},
            BadRequestError,
            "Template not found",
        ),
    ],
)
async def test_notifys_errors(
    uow: Any,
    notifications: Any,
    templates_repo: Any,
    services_repo: Any,
    body: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    caller = await _caller(services_repo)
    with pytest.raises(error) as refused:
        await send_notification(uow, notifications, templates_repo, caller, Channel.EMAIL, body)
    assert refused.value.message == message  # type: ignore[attr-defined]
    assert not notifications.rows and not uow.events


async def test_wrong_template_type_missing_personalisation_and_team_only(
    uow: Any, notifications: Any, templates_repo: Any, services_repo: Any
) -> None:
    caller = await _caller(services_repo, KeyType.TEAM)
    sms = await _template(templates_repo, services_repo, caller, "sms")
    email = await _template(templates_repo, services_repo, caller)
    for body, message in (
        (
            {
                "email_address": "a@b.example",
                "template_id": str(sms),
                "personalisation": {"name": "A"},
            },
            "sms template is not suitable for email",
        ),
        (
            {"email_address": "team@example.com", "template_id": str(email)},
            "Missing personalisation: name",
        ),
        (
            {
                "email_address": "someone@example.com",
                "template_id": str(email),
                "personalisation": {"name": "A"},
            },
            "team-only API key",
        ),
    ):
        with pytest.raises(BadRequestError, match=message):
            await send_notification(uow, notifications, templates_repo, caller, Channel.EMAIL, body)
    await send_notification(
        uow,
        notifications,
        templates_repo,
        caller,
        Channel.EMAIL,
        {
            "email_address": "Team@Example.com",
            "template_id": str(email),
            "personalisation": {"name": "A"},
        },
    )
    assert len(notifications.rows) == 1


async def test_test_keys_and_simulated_recipients_are_simulated(
    uow: Any, notifications: Any, templates_repo: Any, services_repo: Any
) -> None:
    caller = await _caller(services_repo, KeyType.TEST)
    sms = await _template(templates_repo, services_repo, caller, "sms")
    sent = await send_notification(
        uow,
        notifications,
        templates_repo,
        caller,
        Channel.SMS,
        {"phone_number": "07700 900123", "template_id": str(sms), "personalisation": {"name": "B"}},
    )
    assert sent.notification["simulated"] and sent.notification["recipient"] == "+447700900123"


async def test_the_cached_version_is_a_guess_the_insert_checks(
    uow: Any, notifications: Any, templates_repo: Any, services_repo: Any
) -> None:
    caller = await _caller(services_repo)
    tid = await _template(templates_repo, services_repo, caller)
    cache = TemplateCache()
    body = {
        "email_address": "a@b.example",
        "template_id": str(tid),
        "personalisation": {"name": "A"},
    }
    await send_notification(
        uow, notifications, templates_repo, caller, Channel.EMAIL, body, template_cache=cache
    )
    assert notifications.inserted_if_current == 0  # nothing cached yet: read, then insert
    await send_notification(
        uow, notifications, templates_repo, caller, Channel.EMAIL, body, template_cache=cache
    )
    assert notifications.inserted_if_current == 1
    await templates.edit_template(templates_repo, template_id=tid, subject="New ((name))")
    sent = await send_notification(
        uow, notifications, templates_repo, caller, Channel.EMAIL, body, template_cache=cache
    )
    assert (sent.notification["subject"], sent.template.version.version) == ("New A", 2)
    assert notifications.inserted_if_current == 1  # the stale guess was refused
