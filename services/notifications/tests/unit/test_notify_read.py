"""application/notify_read.py with a fake repository: Notify's filters and errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from notifications.application.notify_auth import Caller
from notifications.application.notify_read import get_notification, list_notifications
from notifications.domain.notify import KeyType, NoResultFound, NotifyValidationError
from notifications.persistence.tables import NotifyApiKey, NotifyService


def _caller(key_type: KeyType = KeyType.LIVE) -> Caller:
    service = NotifyService(
        name="MK", email_from="a@b.example", sms_sender="MK", created_at=datetime.now(UTC)
    )
    return Caller(
        service=service,
        key=NotifyApiKey(
            service_id=service.id,
            name="k",
            key_type=key_type.value,
            secret="s",
            created_at=datetime.now(UTC),
        ),
    )


async def test_a_notification_of_another_service_is_not_found(notifications: Any) -> None:
    caller = _caller()
    now = datetime.now(UTC)
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    await notifications.insert(
        {
            "id": mine,
            "channel": "email",
            "service_id": caller.service.id,
            "created_at": now,
            "updated_at": now,
        }
    )
    await notifications.insert(
        {
            "id": theirs,
            "channel": "email",
            "service_id": uuid.uuid4(),
            "created_at": now,
            "updated_at": now,
        }
    )
    assert (await get_notification(notifications, caller, str(mine))).id == mine
    with pytest.raises(NoResultFound):
        await get_notification(notifications, caller, str(theirs))
    with pytest.raises(NotifyValidationError, match="notification_id is not a valid UUID"):
        await get_notification(notifications, caller, "x")


async def test_status_groups_and_filters_reach_the_query(notifications: Any) -> None:
    caller = _caller(KeyType.TEST)
    older = uuid.uuid4()
    await list_notifications(
        notifications,
        caller,
        template_types=["sms"],
        statuses=["failed", "pending"],
        reference="r",
        older_than=str(older),
        page_size=10,
    )
    assert notifications.listed == {
        "service_id": caller.service.id,
        "test_key": True,
        "channels": ["sms"],
        "statuses": [
            "created",
            "failed",
            "pending",
            "permanent-failure",
            "sending",
            "technical-failure",
            "temporary-failure",
        ],
        "reference": "r",
        "older_than": older,
        "limit": 10,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"template_types": ["fax"]}, "template_type fax is not one of [sms, email, letter]"),
        ({"statuses": ["lost"]}, "status lost is not one of [created, sending, delivered"),
        ({"older_than": "x"}, "older_than is not a valid UUID"),
    ],
)
async def test_bad_filters_are_notifys_validation_errors(
    notifications: Any, kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {
        "template_types": [],
        "statuses": [],
        "reference": None,
        "older_than": None,
        **kwargs,
    }
    with pytest.raises(NotifyValidationError) as refused:
        await list_notifications(notifications, _caller(), **args)
    assert refused.value.message.startswith(message)
