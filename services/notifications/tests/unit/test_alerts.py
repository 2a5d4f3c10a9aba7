"""application/alerts.py with a fake repository: one staff email per published service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from contracts.citizen_services import ServicePublished
from notifications.application.alerts import alert_staff
from notifications.config import Settings

EVENT = ServicePublished(
    service_id=uuid.uuid4(),
    service_code="bins",
    slug="bins",
    name="Bin collections",
    entry_version=3,
    occurred_at=datetime(2026, 11, 26, 12, tzinfo=UTC),
)


async def test_the_team_is_told_once_per_event(
    uow: Any, notifications: Any, settings: Settings
) -> None:
    await alert_staff(
        uow, notifications, EVENT, settings=settings, event_id="ev-1", event_type=EVENT.event_type()
    )
    [row] = notifications.rows.values()
    assert (row["recipient"], row["subject"], row["source_event_id"]) == (
        str(settings.staff_alert_email),
        "Service published: Bin collections",
        "ev-1",
    )
    assert "Catalogue version: 3" in row["body"]
    assert [(e.status, e.notification_id) for e in uow.events] == [("created", row["id"])]


async def test_no_alert_without_an_address(uow: Any, notifications: Any) -> None:
    settings = Settings(environment="test", staff_alert_email=None)
    await alert_staff(
        uow, notifications, EVENT, settings=settings, event_id="ev-1", event_type=EVENT.event_type()
    )
    assert notifications.rows == {} and uow.events == []
