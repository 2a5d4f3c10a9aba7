"""A clean stop under load (issue 13, item 6): a real citizen-services process, serving a
stream of citizens' reports and consuming events, gets SIGTERM. It stops accepting, finishes
every request in flight (slow uploads included), commits the offsets of what it consumed,
publishes what its outbox still holds, and exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy.ext.asyncio import create_async_engine

from contracts import Envelope
from contracts.privacy import CitizenErasureRequested
from gateway.assertion import AssertionSigner, sign_assertion
from mkinfra._proc import tail, terminate_group
from servicekit.identity import ASSERTION_HEADER, AuthMethod, Principal, Role
from servicekit.settings import DEV_SECRET
from servicekit.testing import eventually, free_port

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

PATH = "/api/v1/service-requests"
SIGNER = AssertionSigner(DEV_SECRET, ttl=300)


class Service:
    """``python -m citizen_services`` on its own SQLite file, under its own name (so its
    consumer group is this test's alone)."""

    def __init__(self, tmp: Path, bootstrap: str) -> None:
        self.name = f"citizen-services-stop-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = tmp / "citizen.sqlite3"
        self.log = tmp / "citizen-services.log"
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "PYTHONUNBUFFERED": "1",
            "CITIZEN_SERVICES_SERVICE_NAME": self.name,
            "CITIZEN_SERVICES_DATABASE_URL": f"sqlite:///{self.db}",
            "CITIZEN_SERVICES_PORT": str(self.port),
            "CITIZEN_SERVICES_ENVIRONMENT": "test",
            "CITIZEN_SERVICES_LOG_LEVEL": "WARNING",
            "CITIZEN_SERVICES_SHUTDOWN_GRACE_SECONDS": "30",
            # the relay gathers commits for 2 s before publishing: the last requests' events
            # are still pending when the stop begins, and only a last pass publishes them
            "CITIZEN_SERVICES_RELAY_LINGER_SECONDS": "2",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "citizen_services"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    async def ready(self) -> None:
        async def answers() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode}:\n{tail(self.log, 40)}")
            try:
                async with httpx.AsyncClient(timeout=5) as client:
                    return (await client.get(self.url + "/health/ready")).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(answers, timeout=120, interval=0.2, message="service not ready")

    def headers(self, method: str, path: str, citizen: str) -> dict[str, str]:
        principal = Principal(
            subject=citizen, roles=frozenset({Role.CITIZEN}), method=AuthMethod.JWT
        )
        token = sign_assertion(SIGNER, principal, audience=self.name, method=method, path=path)
        # a new connection each time: a request is either accepted or refused, never sent
        # on a keep-alive connection the server is closing
        return {ASSERTION_HEADER: token, "Connection": "close"}

    async def query(self, sql: str) -> list[sa.Row[tuple[object, ...]]]:
        engine = create_async_engine(f"sqlite+aiosqlite:///{self.db}")
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(sa.text(sql))).all())
        finally:
            await engine.dispose()


@pytest.fixture
async def service(tmp_path: Path, kafka_bootstrap: str) -> AsyncIterator[Service]:
    s = Service(tmp_path, kafka_bootstrap)
    s.spawn()
    try:
        await s.ready()
        yield s
    finally:
        if s.proc is not None and s.proc.poll() is None:
            await asyncio.to_thread(terminate_group, s.proc, 10)


async def produce_erasures(bootstrap: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        sent = []
        for _ in range(n):
            event = CitizenErasureRequested(
                citizen_id=f"citizen-{uuid.uuid4().hex}",
                erasure_id=uuid.uuid4(),
                requested_by="citizen",
                occurred_at=datetime.now(UTC),
            )
            envelope = Envelope(
                source="urn:uk-gov-milton-keynes:inclusion",
                type=event.event_type(),
                subject=event.aggregate_id,
            )
            sent.append(
                await producer.send(
                    event.topic,
                    value=event.to_json(),
                    key=event.aggregate_id.encode(),
                    headers=envelope.to_headers(),
                )
            )
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition (-1: none), read without joining it."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        out = {}
        for p in sorted(partitions):
            offset = await consumer.committed(TopicPartition(topic, p))
            out[p] = -1 if offset is None else offset
        return out
    finally:
        await consumer.stop()


async def test_sigterm_under_load_finishes_in_flight_commits_offsets_and_flushes_the_relay(
    service: Service, kafka_bootstrap: str
) -> None:
    # a published service that takes reports and requires no attribute
    codes = await service.query(
        "SELECT service_code FROM catalogue_service WHERE status = 'published' "
        "AND attributes LIKE '[{%' AND attributes NOT LIKE '%\"required\": true%' LIMIT 1"
    )
    code = codes[0][0]
    # the consumer at work: events before, and a batch arriving as the stop begins
    await produce_erasures(kafka_bootstrap, 20)
    group, topic = service.name, CitizenErasureRequested.topic

    async def consumed_20() -> bool:
        rows = await service.query(
            f"SELECT count(*) FROM servicekit_inbox WHERE consumer_group = '{service.name}'"
        )
        return bool(rows[0][0] >= 20)

    await eventually(consumed_20, timeout=120, interval=0.2, message="events not consumed")

    outcomes: dict[str, str] = {}  # report tag -> "201", or the error that ended it
    stop = asyncio.Event()

    async def report(client: httpx.AsyncClient, tag: str, *, slow: bool = False) -> None:
        citizen = f"citizen-{tag}"
        body = httpx.Request(
            "POST",
            "/",
            json={
                "service_code": code,
                "description": f"Pothole {tag}",
                "lat": 52.04,
                "long": -0.76,
            },
        ).content
        content: bytes | AsyncIterator[bytes] = body
        if slow:  # half the body now, the rest once the SIGTERM has been sent

            async def parts() -> AsyncIterator[bytes]:
                yield body[: len(body) // 2]
                await stop.wait()
                await asyncio.sleep(1.0)
                yield body[len(body) // 2 :]

            content = parts()
        headers = {
            **service.headers("POST", PATH, citizen),
            "Content-Type": "application/json",
            **({} if slow else {"Content-Length": str(len(body))}),
        }
        try:
            resp = await client.post(PATH, content=content, headers=headers)
            outcomes[tag] = str(resp.status_code)
        except httpx.TransportError as exc:
            outcomes[tag] = type(exc).__name__

    async def stream(client: httpx.AsyncClient, worker: int) -> None:
        n = 0
        while True:
            n += 1
            tag = f"w{worker}n{n}"
            await report(client, tag)
            if outcomes[tag] != "201":
                return  # refused: the service has stopped accepting
            await asyncio.sleep(0)

    async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
        streams = [asyncio.create_task(stream(client, w)) for w in range(6)]
        await eventually(
            lambda: asyncio.sleep(0, result=len(outcomes) >= 30),
            timeout=60,
            message="too few reports answered",
        )
        slow = [asyncio.create_task(report(client, f"slow{i}", slow=True)) for i in range(3)]
        await asyncio.sleep(1.5)  # the slow uploads' headers are in
        proc = service.proc
        assert proc is not None

        async def keep_producing() -> None:  # events arrive until the process is gone
            while proc.poll() is None:
                await produce_erasures(kafka_bootstrap, 20)
                await asyncio.sleep(0.05)

        produce = asyncio.create_task(keep_producing())
        await asyncio.sleep(0.3)
        os.killpg(proc.pid, signal.SIGTERM)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*streams, *slow), timeout=90)
        code_ = await asyncio.to_thread(proc.wait, 90)
        await asyncio.wait_for(produce, timeout=30)

    assert code_ == 0, tail(service.log, 40)
    answered = {t: o for t, o in outcomes.items() if o.isdigit()}
    refused = {t: o for t, o in outcomes.items() if not o.isdigit()}
    # every request that was answered succeeded, the slow ones in flight at the SIGTERM too
    assert set(answered.values()) == {"201"}, answered
    assert {f"slow{i}" for i in range(3)} <= set(answered)
    assert len(answered) >= 30
    # a refused request never reached the service; an answered one did, once
    rows = await service.query("SELECT description FROM service_request")
    stored = [r[0].removeprefix("Pothole ") for r in rows]
    assert sorted(stored) == sorted(answered), (len(stored), len(answered), refused)

    # the relay flushed: every event recorded, published
    pending = await service.query(
        "SELECT count(*) FROM servicekit_outbox WHERE published_at IS NULL"
    )
    assert pending[0][0] == 0
    submitted = await service.query(
        "SELECT count(*) FROM servicekit_outbox WHERE event_type LIKE '%ServiceRequestSubmitted%'"
    )
    assert submitted[0][0] == len(answered)

    # the consumer committed what it processed: nothing would be delivered again
    inbox = await service.query(
        'SELECT partition, max("offset"), count(*) FROM servicekit_inbox '
        f"WHERE consumer_group = '{group}' GROUP BY partition"
    )
    committed = await committed_offsets(kafka_bootstrap, group, topic)
    assert inbox, "nothing consumed"
    for partition, last, _ in inbox:
        assert committed[partition] == last + 1, (partition, last, committed)
