"""Fault tests of the event pipeline, with exact counts (issue: foundation, a and b).

Email counts are taken from the SMTP sink, which stores each message under its Message-ID:
every notification has its own Message-ID, so a duplicated *effect* (two notifications for
one event) would show as two files, while a re-send of the same notification after a crash
lands on the same file, as a receiving mail system would drop it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer

from citizen_services.main import create_app as citizen_app
from contracts import Envelope
from contracts.citizen_services import ServicePublished
from mkinfra.smtp_sink import SmtpSink
from notifications.main import create_app as notifications_app
from servicekit.db import Database
from servicekit.testing import STAFF, eventually, free_port, identity_headers, running_app

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def emails_tagged(sink: SmtpSink, tag: str) -> int:
    return sum(1 for m in sink.messages() if tag in str(m["Subject"]))


async def count(db_url: str, sql: str, **params: object) -> int:
    db = Database(db_url)
    try:
        async with db.engine.connect() as conn:
            return int((await conn.execute(sa.text(sql), params)).scalar_one())
    finally:
        await db.dispose()


async def test_a_broker_down_100_published_then_restarted_gives_exactly_100_emails(
    kafka_broker, citizen_settings, notifications_settings, smtp_sink: SmtpSink
) -> None:
    if kafka_broker is None:
        pytest.skip("needs the suite's own broker to stop it (KAFKA_BOOTSTRAP_SERVERS is set)")
    tag = uuid.uuid4().hex[:10]
    cs, nt = citizen_app(citizen_settings), notifications_app(notifications_settings)
    async with (
        running_app(cs) as cs_url,
        running_app(nt),
        httpx.AsyncClient(base_url=cs_url, timeout=30, headers=identity_headers(*STAFF)) as client,
    ):
        await eventually(lambda: _connected(nt), timeout=30, message="consumer never connected")
        await asyncio.to_thread(kafka_broker.stop)
        try:
            for i in range(100):
                r = await client.post("/api/v1/services", json={"name": f"Service {tag} {i}"})
                assert r.status_code == 201, r.text
                r = await client.post(f"/api/v1/services/{r.json()['id']}/publish")
                assert r.status_code == 200, r.text
            pending = await count(
                citizen_settings.database_url,
                "SELECT count(*) FROM servicekit_outbox WHERE published_at IS NULL",
            )
            assert pending == 100  # all accepted, all waiting in the outbox
            assert emails_tagged(smtp_sink, tag) == 0
        finally:
            await asyncio.to_thread(kafka_broker.start)

        async def all_arrived() -> bool:
            return emails_tagged(smtp_sink, tag) >= 100

        await eventually(
            all_arrived,
            timeout=90,
            interval=0.5,
            message=f"emails after restart: {emails_tagged(smtp_sink, tag)}",
        )
        await asyncio.sleep(2)
        assert emails_tagged(smtp_sink, tag) == 100
        rows = await count(
            notifications_settings.database_url,
            "SELECT count(*) FROM notification WHERE subject LIKE :p",
            p=f"%{tag}%",
        )
        assert rows == 100


async def _connected(app) -> bool:  # type: ignore[no-untyped-def]
    return all(c.connected for c in app.state.runtime.consumers)


async def produce_published(bootstrap: str, tag: str, n: int) -> list[str]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5)
    await producer.start()
    ids = []
    try:
        futures = []
        for i in range(n):
            ev = ServicePublished(
                service_id=uuid.uuid4(),
                service_code=f"{tag}-{i}",
                slug=tag,
                name=f"Service {tag} {i}",
                entry_version=2,
                occurred_at=datetime.now(UTC),
            )
            env = Envelope(
                source="urn:uk-gov-milton-keynes:citizen-services",
                type=ev.event_type(),
                subject=ev.aggregate_id,
            )
            ids.append(env.id)
            futures.append(
                await producer.send(
                    ev.topic,
                    value=ev.to_json(),
                    key=ev.aggregate_id.encode(),
                    headers=env.to_headers(),
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return ids


def start_notifications(settings, port: int, log_path) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "NOTIFICATIONS_DATABASE_URL": settings.database_url,
        "NOTIFICATIONS_PORT": str(port),
        "NOTIFICATIONS_SMTP_PORT": str(settings.smtp_port),
        "NOTIFICATIONS_STAFF_ALERT_EMAIL": str(settings.staff_alert_email),
        "NOTIFICATIONS_SENDING_RECLAIM_SECONDS": "2",
        "NOTIFICATIONS_ENVIRONMENT": "test",
    }
    log = open(log_path, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "notifications"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def test_b_consumer_killed_midway_through_1000_events_gives_exactly_1000_effects(
    kafka_bootstrap, notifications_settings, smtp_sink: SmtpSink, tmp_path
) -> None:
    tag = uuid.uuid4().hex[:10]
    event_ids = await produce_published(kafka_bootstrap, tag, 1000)
    db_url = notifications_settings.database_url
    like = f"%{tag}%"
    rows_sql = "SELECT count(*) FROM notification WHERE subject LIKE :p"
    port = free_port()
    proc = start_notifications(notifications_settings, port, tmp_path / "notifications.log")
    try:

        async def midway() -> bool:
            try:
                return await count(db_url, rows_sql, p=like) >= 250
            except Exception:
                return False  # tables not migrated yet

        await eventually(midway, timeout=120, interval=0.05, message="consumer never got going")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        at_kill = await count(db_url, rows_sql, p=like)
        assert 0 < at_kill < 1000, f"not killed midway ({at_kill} of 1000 done)"

        proc = start_notifications(notifications_settings, port, tmp_path / "notifications.log")

        async def all_emailed() -> bool:
            return emails_tagged(smtp_sink, tag) >= 1000

        await eventually(
            all_emailed,
            timeout=180,
            interval=0.5,
            message=f"emails: {emails_tagged(smtp_sink, tag)}",
        )
        await asyncio.sleep(2)
        assert emails_tagged(smtp_sink, tag) == 1000
        assert await count(db_url, rows_sql, p=like) == 1000
        assert (
            await count(
                db_url,
                "SELECT count(*) FROM notification WHERE subject LIKE :p AND status = 'delivered'",
                p=like,
            )
            == 1000
        )
        inbox = await count(
            db_url,
            "SELECT count(*) FROM servicekit_inbox WHERE event_id = ANY(:ids)",
            ids=event_ids,
        )
        assert inbox == 1000
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    # Graceful stop on SIGTERM: uvicorn finishes the lifespan, then re-raises the signal.
    log_text = (tmp_path / "notifications.log").read_text()
    assert proc.returncode in (0, -signal.SIGTERM), log_text[-3000:]
    assert log_text.rstrip().splitlines()[-2:] and "Application shutdown complete" in log_text
