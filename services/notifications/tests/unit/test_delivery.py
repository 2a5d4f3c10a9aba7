"""application/delivery.py's claim and record with a fake repository: statuses, events,
retries with backoff, giving up, simulated outcomes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from notifications.application.delivery import claim, record, simulated_outcome
from notifications.config import Settings
from notifications.domain.notification import Channel, Status
from notifications.persistence.tables import Notification

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def _add(notifications: Any, channel: Channel = Channel.EMAIL, **values: Any) -> uuid.UUID:
    n = Notification(
        channel=channel.value,
        recipient="a@b.example",
        body="b",
        created_at=NOW - timedelta(minutes=1),
        updated_at=NOW,
        **values,
    )
    notifications.add(n)
    return n.id


async def test_a_claim_takes_due_rows_of_its_channel_and_records_sending_once(
    uow: Any, notifications: Any, settings: Settings
) -> None:
    due = _add(notifications)
    _add(notifications, Channel.SMS)
    _add(notifications, next_attempt_at=NOW + timedelta(minutes=5))  # not yet
    stuck = _add(
        notifications,
        status=Status.SENDING.value,
        attempts=1,
        claimed_at=NOW - timedelta(seconds=settings.sending_reclaim_seconds + 1),
    )
    rows = await claim(uow, notifications, Channel.EMAIL, now=NOW, settings=settings)
    assert {r["id"] for r in rows} == {due, stuck}
    assert all(notifications.rows[r["id"]]["status"] == "sending" for r in rows)
    # the re-claimed one already said "sending": one event, for the first claim only
    assert [(e.notification_id, e.status, e.previous_status) for e in uow.events] == [
        (due, "sending", "created")
    ]


async def test_outcomes_are_recorded_with_their_events_and_retries_back_off(
    uow: Any, notifications: Any, settings: Settings
) -> None:
    ids = [_add(notifications, status="sending", attempts=a) for a in (1, 1, 1, 5)]
    rows = [dict(notifications.rows[i]) for i in ids]
    retries = await record(
        uow,
        notifications,
        [
            (rows[0], Status.DELIVERED, None),
            (rows[1], Status.PERMANENT_FAILURE, "SMTP 550"),
            (rows[2], None, "SMTP 451"),
            (rows[3], None, "SMTP 451"),
        ],
        now=NOW,
        max_attempts=5,
    )
    statuses = [(notifications.rows[i]["status"], notifications.rows[i]["last_error"]) for i in ids]
    assert statuses == [
        ("delivered", None),
        ("permanent-failure", "SMTP 550"),
        ("created", "SMTP 451"),
        ("technical-failure", "SMTP 451"),
    ]
    assert notifications.rows[ids[2]]["next_attempt_at"] == NOW + timedelta(seconds=2)
    assert retries == [2.0]  # the worker wakes for the one retry
    assert [(e.notification_id, e.status) for e in uow.events] == [
        (ids[0], "delivered"),
        (ids[1], "permanent-failure"),
        (ids[3], "technical-failure"),
    ]


def test_notifys_test_recipients_decide_simulated_outcomes() -> None:
    assert simulated_outcome("temp-fail@simulator.notify") is Status.TEMPORARY_FAILURE
    assert simulated_outcome("+447700900002") is Status.PERMANENT_FAILURE
    assert simulated_outcome("anyone@example.com") is Status.DELIVERED
