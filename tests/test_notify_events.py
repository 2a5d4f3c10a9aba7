"""Acceptance: a platform event reaches a citizen as they chose, through real Kafka.

A citizen sets their preferences through the gateway (and confirms the address); a
``ServiceRequestStatusChanged`` (as citizen-services publishes it) arrives on Kafka; the
notifications service emails the consenting citizen exactly once, and nobody else."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from contracts import Envelope
from contracts.citizen_services import ServiceRequestStatusChanged
from mkinfra.smtp_sink import SmtpSink
from servicekit.testing import eventually

from .conftest import CONFIRM_SUBJECT, Platform, set_confirmed_email

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def publish(bootstrap: str, event: ServiceRequestStatusChanged) -> None:
    envelope = Envelope(
        source="urn:uk-gov-milton-keynes:citizen-services",
        type=event.event_type(),
        subject=event.aggregate_id,
        dataschema=event.dataschema(),
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            event.topic,
            event.to_json(),
            key=event.aggregate_id.encode(),
            headers=envelope.to_headers(),
        )
    finally:
        await producer.stop()


async def test_an_event_emails_the_consenting_citizen_once_and_not_the_opted_out(
    platform: Platform, smtp_sink: SmtpSink, kafka_bootstrap: str
) -> None:
    async with httpx.AsyncClient(base_url=platform.gateway_url) as http:
        await set_confirmed_email(
            http, platform.bearer("CITIZEN_TOKEN"), smtp_sink, "citizen.one@example.com"
        )
        await set_confirmed_email(
            http,
            platform.bearer("CITIZEN2_TOKEN"),
            smtp_sink,
            "citizen.two@example.com",
            topics={"service-requests": {"email": False, "sms": False}},
        )

    tag = uuid.uuid4()
    for citizen in ("citizen-dev-1", "citizen-dev-2"):
        await publish(
            kafka_bootstrap,
            ServiceRequestStatusChanged(
                request_id=tag if citizen == "citizen-dev-1" else uuid.uuid4(),
                service_code="pothole",
                status="action_scheduled",
                previous_status="open",
                citizen_id=citizen,
                note=None,
                occurred_at=datetime.now(UTC),
            ),
        )

    def updates() -> list[EmailMessage]:  # not the confirmation of the address
        return [m for m in smtp_sink.messages() if m["Subject"] != CONFIRM_SUBJECT]

    async def arrived() -> list[object]:
        return [m for m in updates() if m["To"] == "citizen.one@example.com"]

    [email] = await eventually(arrived, timeout=20, message="no email for the citizen")
    assert email["Subject"] == f"Your report {str(tag)[:8].upper()} is now action scheduled"
    await asyncio.sleep(1.0)  # give a duplicate or the opted-out email time to show up
    assert [m["To"] for m in updates() if str(m["To"]).startswith("citizen.")] == [
        "citizen.one@example.com"
    ]
