"""application/notify_send.py with fake repositories: validation, rendering, team and test
keys, the cached template version checked by the insert."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from notifications.application import notify_services, templates
from notifications.application.notify_auth import Caller
from notifications.application.notify_send import TemplateCache, send_notification, validate_post
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
        (
            {"template_id": str(uuid.uuid4())},
            NotifyValidationError,
            "email_address is a required property",
        ),
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


# -- Notify's request schema (validate_post: no I/O) -------------------------------------------
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TID = str(uuid.uuid4())


@pytest.mark.parametrize(
    ("channel", "body", "messages"),
    [
        (
            Channel.EMAIL,
            {"email_address": "a@b.example", "template_id": TID, "colour": 1, "bcc": "x"},
            ["Additional properties are not allowed (bcc, colour were unexpected)"],
        ),
        (
            Channel.SMS,
            {"phone_number": "07700900123", "template_id": TID, "email_reply_to_id": TID},
            ["Additional properties are not allowed (email_reply_to_id was unexpected)"],
        ),
        (
            Channel.EMAIL,
            {"email_address": "a@b.example", "template_id": TID, "reference": "r" * 1001},
            [f"reference {'r' * 1001} is too long"],
        ),
        (
            Channel.EMAIL,
            {"email_address": "a@b.example", "template_id": TID, "reference": 5},
            ["reference 5 is not of type string"],
        ),
        (
            Channel.EMAIL,
            {"email_address": "a@b.example", "template_id": TID, "sanitise_content_for": "name"},
            ["sanitise_content_for name is not of type array, null"],
        ),
        (
            Channel.EMAIL,
            {"email_address": "a@b.example", "template_id": TID, "email_reply_to_id": "x"},
            ["email_reply_to_id is not a valid UUID"],
        ),
        (  # every problem, in Notify's order: fields, then missing, then unknown
            Channel.EMAIL,
            {"template_id": "x", "personalisation": [], "extra": 1},
            [
                "template_id is not a valid UUID",
                "personalisation [] is not of type object",
                "email_address is a required property",
                "Additional properties are not allowed (extra was unexpected)",
            ],
        ),
        (
            Channel.SMS,
            {"phone_number": "07700900123", "template_id": TID, "scheduled_for": "2026-12-07"},
            ["scheduled_for datetime can not be in the past"],
        ),
        (
            Channel.SMS,
            {
                "phone_number": "07700900123",
                "template_id": TID,
                "scheduled_for": "2026-12-08T12:00:01Z",
            },
            ["scheduled_for datetime can only be 24 hours in the future"],
        ),
        (
            Channel.SMS,
            {"phone_number": "07700900123", "template_id": TID, "scheduled_for": "tomorrow"},
            [
                "scheduled_for datetime format is invalid. It must be a valid ISO8601 date "
                "time format, https://en.wikipedia.org/wiki/ISO_8601"
            ],
        ),
        (
            Channel.SMS,
            {"phone_number": "+33 1 23 45 67 89", "template_id": TID},
            ["phone_number Not a mobile number"],
        ),
        (
            Channel.SMS,
            {"phone_number": "+999 1234567", "template_id": TID},
            ["phone_number Not a valid country prefix"],
        ),
    ],
)
def test_notifys_request_schema(
    channel: Channel, body: dict[str, Any], messages: list[str]
) -> None:
    with pytest.raises(NotifyValidationError) as refused:
        validate_post(channel, body, now=NOW)
    assert list(refused.value.messages) == messages


def test_valid_posts_scheduled_international_and_sanitised() -> None:
    sms = validate_post(
        Channel.SMS,
        {
            "phone_number": "0033 6 12 34 56 78",
            "template_id": TID,
            "scheduled_for": "2026-12-07T13:30:00+01:00",  # 12:30 UTC
            "sms_sender_id": TID,
        },
        now=NOW,
    )
    assert sms.recipient == "+33612345678"
    assert sms.scheduled_for == datetime(2026, 12, 7, 12, 30, tzinfo=UTC)
    assert sms.sender_id == uuid.UUID(TID)
    name = "Ann-Marie (see evil.example/x) or example.com"
    email = validate_post(
        Channel.EMAIL,
        {
            "email_address": "a@b.example",
            "template_id": TID,
            "personalisation": {"Name": name, "other": "x-y"},
            "sanitise_content_for": ["name"],
        },
        now=NOW,
    )
    sanitised = "Ann\\-Marie \\(see  or example\\. com"  # the link took the ")"
    assert email.personalisation == {"Name": sanitised, "other": "x-y"}
    assert email.sanitised_content == {"Name": {"unsanitised": name, "sanitised": sanitised}}
