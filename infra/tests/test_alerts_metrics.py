"""The figures the alert rules need, exported by the code that knows them (SQLite, real
Kafka): the outbox's oldest pending age, the inclusion scheduler's last pass, and
notifications' delivery attempts by channel and outcome."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from contracts.citizen_services import ServicePublished
from mkinfra._proc import free_port
from servicekit.db import Database
from servicekit.messaging.relay import OutboxRelay
from servicekit.messaging.tables import OutboxMessage
from servicekit.metrics import ServiceMetrics
from servicekit.migrations import upgrade
from servicekit.uow import UnitOfWork


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels or None)


@pytest.fixture
async def outbox_db(tmp_path: Path) -> Any:
    database = Database(f"sqlite:///{tmp_path}/outbox.sqlite3")
    async with database.engine.begin() as conn:
        await conn.run_sync(lambda c: OutboxMessage.__table__.create(c))  # type: ignore[attr-defined]
    yield database
    await database.dispose()


async def write_event(database: Database) -> None:
    async with UnitOfWork(database, source="urn:uk-gov-milton-keynes:test") as uow:
        uow.publish(
            ServicePublished(
                service_id=uuid.uuid4(),
                service_code="age-1",
                slug="age",
                name="Age",
                entry_version=1,
                occurred_at=datetime.now(UTC),
            )
        )


@pytest.mark.kafka
async def test_outbox_age_grows_while_kafka_is_away_and_is_zero_once_published(
    outbox_db: Database, kafka_bootstrap: str
) -> None:
    metrics = ServiceMetrics("test")
    await write_event(outbox_db)
    await asyncio.sleep(1.2)
    # Kafka unreachable (nothing listens there): the row stays, its age is reported
    away = OutboxRelay(
        outbox_db,
        bootstrap_servers=f"127.0.0.1:{free_port()}",
        service_name="test",
        metrics=metrics,
    )
    with pytest.raises(Exception):  # whatever the client raises: publishing failed
        await away.publish_pending()
    await away.close()
    first = sample(metrics.registry, "outbox_oldest_pending_age_seconds")
    assert first is not None and first >= 1.0
    assert sample(metrics.registry, "outbox_backlog") == 1

    relay = OutboxRelay(
        outbox_db, bootstrap_servers=kafka_bootstrap, service_name="test", metrics=metrics
    )
    try:
        assert await relay.publish_pending() == 1
        # the pass after publishing finds nothing pending
        assert await relay.publish_pending() == 0
    finally:
        await relay.close()
    assert sample(metrics.registry, "outbox_oldest_pending_age_seconds") == 0
    assert sample(metrics.registry, "outbox_backlog") == 0


def test_inclusion_reports_its_scheduler_passes(tmp_path: Path) -> None:
    from inclusion.config import Settings
    from inclusion.main import create_app

    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/inclusion.sqlite3",
        messaging_enabled=False,
        environment="test",
        seed_data=False,
        scheduler_enabled=True,
        scheduler_interval_seconds=3600,
    )
    with TestClient(create_app(settings)) as client:
        registry = client.app.state.runtime.metrics.registry  # type: ignore[attr-defined]

        async def first_pass() -> float | None:
            for _ in range(300):  # the first pass runs at start
                value = sample(
                    registry, "scheduler_last_success_timestamp_seconds", scheduler="inclusion"
                )
                if value:
                    return value
                await asyncio.sleep(0.1)
            return None

        value = client.portal.call(first_pass)  # type: ignore[union-attr]
        assert value is not None
        assert abs(value - datetime.now(UTC).timestamp()) < 120
        text = client.get("/metrics").text
        assert 'scheduler_last_success_timestamp_seconds{scheduler="inclusion"}' in text


async def test_notifications_counts_delivery_attempts_by_channel_and_outcome(
    tmp_path: Path,
) -> None:
    from notifications.adapters.email import TemporaryDeliveryError
    from notifications.adapters.sms import OutgoingSms, SinkSmsSender
    from notifications.application.delivery import SmsDeliveryWorker
    from notifications.config import Settings
    from notifications.main import MIGRATIONS, workers
    from notifications.persistence.tables import Notification

    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/notifications.sqlite3",
        messaging_enabled=False,
        environment="test",
        delivery_max_attempts=2,
    )
    database = Database(settings.database_url)
    try:
        await upgrade(database, MIGRATIONS)
        metrics = ServiceMetrics("notifications")
        # the service's own wiring hands its metrics to every delivery worker
        runtime = SimpleNamespace(
            database=database,
            settings=settings,
            email_sender=None,
            sms_sender=SinkSmsSender(tmp_path / "sms"),
            metrics=metrics,
            notify_rate_limiter=None,
        )
        wired = workers(runtime)  # type: ignore[arg-type]
        delivering = [
            w
            for w in wired
            if type(w).__name__
            in {"EmailDeliveryWorker", "SmsDeliveryWorker", "WebhookDeliveryWorker"}
        ]
        assert len(delivering) == 3 and all(w.metrics is metrics for w in delivering)
        for w in wired:
            if hasattr(w, "close"):
                await w.close()

        class Flaky(SinkSmsSender):
            async def send(self, sms: OutgoingSms) -> None:
                if "fail" in sms.body:
                    raise TemporaryDeliveryError("provider timed out")
                await super().send(sms)

        now = datetime.now(UTC)
        async with database.session() as db:
            for body in ("hello", "hello again", "fail"):
                db.add(
                    Notification(
                        channel="sms",
                        recipient="07700900123",
                        body=body,
                        created_at=now - timedelta(seconds=5),
                        updated_at=now,
                    )
                )
            await db.commit()
        worker = SmsDeliveryWorker(database, settings, Flaky(tmp_path / "sms"))
        worker.metrics = metrics
        assert await worker.deliver_due() == 3
        registry = metrics.registry
        name = "notification_deliveries_total"
        assert sample(registry, name, channel="sms", outcome="delivered") == 2
        assert sample(registry, name, channel="sms", outcome="retry") == 1
        assert sample(registry, name, channel="email", outcome="delivered") is None
    finally:
        await database.dispose()
