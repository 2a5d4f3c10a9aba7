"""application/privacy.py with fake repositories: erasure and the retention purge."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from notifications.application.privacy import NOT_SENT, erase, purge_batch
from notifications.config import Settings
from notifications.persistence.tables import (
    CitizenContact,
    Consent,
    Notification,
    WebhookDelivery,
)

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def _message(notifications: Any, **values: Any) -> uuid.UUID:
    n = Notification(channel="email", body="secret", created_at=NOW, updated_at=NOW, **values)
    notifications.add(n)
    return n.id


async def test_erasure_forgets_contact_choices_content_and_webhook_mentions(
    uow: Any, contacts_repo: Any, notifications: Any, webhooks_repo: Any
) -> None:
    contacts_repo.add(CitizenContact(citizen_id="c-1", email="ann@example.com", updated_at=NOW))
    contacts_repo.add_consent(
        Consent(
            citizen_id="c-1", topic="service-requests", channel="sms", granted=True, updated_at=NOW
        )
    )
    sent = _message(
        notifications, citizen_id="c-1", recipient="ann@example.com", status="delivered"
    )
    unsent = _message(notifications, citizen_id="c-1", recipient="ann@example.com")
    by_address = _message(notifications, recipient="ann@example.com", status="delivered")
    other = _message(notifications, citizen_id="c-2", recipient="bo@example.com")
    webhooks_repo.add_delivery(
        WebhookDelivery(
            id="msg_1",
            subscription_id=uuid.uuid4(),
            event_id="e",
            event_type="t",
            payload=json.dumps({"data": {"citizen_id": "c-1", "ids": ["c-1", "x"]}}),
            created_at=NOW,
            updated_at=NOW,
        )
    )
    assert await erase(uow, contacts_repo, notifications, webhooks_repo, citizen_id="c-1") == 3
    assert contacts_repo.contacts == {} and contacts_repo.choices == {}
    for nid in (sent, unsent, by_address):
        row = notifications.rows[nid]
        assert (row["recipient"], row["body"], row["citizen_id"]) == (None, "", None)
        assert row["redacted_at"] is not None
    assert (notifications.rows[unsent]["status"], notifications.rows[unsent]["last_error"]) == (
        "technical-failure",
        NOT_SENT,
    )
    assert notifications.rows[other]["body"] == "secret"
    assert [(e.notification_id, e.status) for e in uow.events] == [(unsent, "technical-failure")]
    assert json.loads(webhooks_repo.log["msg_1"].payload) == {
        "data": {"citizen_id": None, "ids": ["x"]}
    }
    assert (
        await erase(uow, contacts_repo, notifications, webhooks_repo, citizen_id="c-1") == 0
    )  # again: nothing changes


async def test_retention_blanks_only_finished_messages_past_the_period(notifications: Any) -> None:
    settings = Settings(environment="test", content_retention_days=7)
    old, now = NOW - timedelta(days=8), NOW
    finished = _message(notifications, status="delivered")
    pending = _message(notifications, status="created")
    recent = _message(notifications, status="delivered")
    for nid in (finished, pending):
        notifications.rows[nid]["created_at"] = old
    assert await purge_batch(notifications, settings, now=now) == 1
    assert notifications.rows[finished]["body"] == ""
    assert notifications.rows[pending]["body"] == notifications.rows[recent]["body"] == "secret"
    assert await purge_batch(notifications, settings, now=now) == 0
