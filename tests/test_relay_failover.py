"""Outbox relay hand-over between replicas: two inclusion processes on one PostgreSQL
database, one leads (publishes); SIGKILL it and the other takes over within seconds, every
pending event published exactly once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from contracts.citizen_services import ServicePublished
from contracts.topics import CATALOGUE_SERVICE
from mkinfra._proc import kill_group, tail, terminate_group
from mkinfra.testing import free_ports
from servicekit.db import Database
from servicekit.messaging.tables import OutboxMessage
from servicekit.testing import end_offsets, eventually, read_topic
from servicekit.uow import UnitOfWork

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
LEADS = "outbox-relay: this process leads"
SOURCE = "urn:uk-gov-milton-keynes:relay-failover-test"


def _event(tag: str, n: int) -> ServicePublished:
    return ServicePublished(
        service_id=uuid.uuid4(),
        service_code=f"{tag}-{n}",
        slug=tag,
        name=f"Failover {n}",
        entry_version=1,
        occurred_at=datetime.now(UTC),
    )


async def _publish(db: Database, tag: str, numbers: range) -> set[str]:
    async with UnitOfWork(db, source=SOURCE) as uow:
        return {uow.publish(_event(tag, n)).id for n in numbers}


async def _unpublished(db: Database, ids: set[str]) -> int:
    async with db.session() as s:
        return int(
            (
                await s.execute(
                    sa.select(sa.func.count())
                    .select_from(OutboxMessage)
                    .where(
                        OutboxMessage.event_id.in_(ids),  # type: ignore[attr-defined]
                        OutboxMessage.published_at.is_(None),  # type: ignore[union-attr]
                    )
                )
            ).scalar_one()
        )


async def test_the_relay_hands_over_when_its_leader_is_killed(
    kafka_bootstrap: str, new_postgres_database, tmp_path: Path
) -> None:
    database_url = new_postgres_database("relay_failover")
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    db = Database(database_url)
    try:
        for port in free_ports(2):
            log = tmp_path / f"inclusion-{port}.log"
            env = {
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "INCLUSION_PORT": str(port),
                "INCLUSION_DATABASE_URL": database_url,
                "INCLUSION_ENVIRONMENT": "test",
                "INCLUSION_LOG_LEVEL": "INFO",
                "INCLUSION_RELAY_IDLE_SECONDS": "0.5",
            }
            with log.open("ab") as out:
                proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once
                    [sys.executable, "-m", "inclusion"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            procs.append((proc, log))

        def leaders() -> list[int]:
            return [i for i, (_, log) in enumerate(procs) if LEADS in tail(log, 400)]

        async def one_leader() -> bool:
            for proc, log in procs:
                assert proc.poll() is None, tail(log, 40)
            return len(leaders()) == 1

        await eventually(one_leader, timeout=180, interval=0.5, message="no relay leader")
        leader = leaders()[0]
        survivor = 1 - leader
        tag = f"failover{uuid.uuid4().hex[:8]}"
        start = await end_offsets(kafka_bootstrap, CATALOGUE_SERVICE.name)

        before = await _publish(db, tag, range(0, 10))

        async def published(ids: set[str]) -> bool:
            return await _unpublished(db, ids) == 0

        await eventually(lambda: published(before), timeout=60, message="leader did not publish")

        kill_group(procs[leader][0])  # SIGKILL: no clean release, the OS closes its sockets
        killed_at = time.monotonic()
        after = await _publish(db, tag, range(10, 30))
        await eventually(lambda: published(after), timeout=60, interval=0.1, message="no hand-over")
        hand_over = time.monotonic() - killed_at
        assert LEADS in tail(procs[survivor][1], 400)
        print(f"\nrelay hand-over after SIGKILL of the leader: {hand_over:.1f}s")

        records = await read_topic(
            kafka_bootstrap,
            CATALOGUE_SERVICE.name,
            start=start,
            count=30,
            timeout=30,
            predicate=lambda r: tag.encode() in (r.value or b""),
        )
        ids = [dict(r.headers).get("ce_id", b"").decode() for r in records]
        assert sorted(ids) == sorted(before | after)  # each once: none lost, none twice
    finally:
        await db.dispose()
        for proc, _ in procs:
            await asyncio.to_thread(terminate_group, proc, 20)
