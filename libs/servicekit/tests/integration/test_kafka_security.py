"""A service's own relay and consumer reach Kafka over SASL_SSL (SCRAM-SHA-512, PLAIN) and
over mutual TLS, configured by settings (environment variables) alone."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from contracts.citizen_services import ServicePublished
from mkinfra.kafka import SecureKafka
from servicekit.db import Database
from servicekit.messaging.consumer import EventConsumer, MessageContext
from servicekit.messaging.relay import OutboxRelay
from servicekit.messaging.security import KafkaSecurity
from servicekit.settings import ServiceSettings
from servicekit.testing import eventually
from servicekit.uow import UnitOfWork

from ..conftest import effect_table
from .test_consumer import effects, event

pytestmark = [pytest.mark.kafka]
SOURCE = "urn:uk-gov-milton-keynes:test"


class SecureSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SECURE_", extra="ignore")
    service_name: str = "secure-test"


def _environment(secure: SecureKafka, mode: str) -> dict[str, str]:
    user, password = next(iter(secure.users.items()))
    if mode == "mtls":
        return {
            "KAFKA_BOOTSTRAP_SERVERS": secure.ssl_bootstrap,
            "SECURE_KAFKA_SECURITY_PROTOCOL": "SSL",
            "SECURE_KAFKA_SSL_CAFILE": str(secure.ca_file),
            "SECURE_KAFKA_SSL_CERTFILE": str(secure.client_cert),
            "SECURE_KAFKA_SSL_KEYFILE": str(secure.client_key),
        }
    return {
        "KAFKA_BOOTSTRAP_SERVERS": secure.sasl_ssl_bootstrap,
        "SECURE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "SECURE_KAFKA_SASL_MECHANISM": mode,
        "SECURE_KAFKA_SASL_USERNAME": user,
        "SECURE_KAFKA_SASL_PASSWORD": password,
        "SECURE_KAFKA_SSL_CAFILE": str(secure.ca_file),
    }


@pytest.mark.parametrize("mode", ["SCRAM-SHA-512", "PLAIN", "mtls"])
async def test_relay_and_consumer_connect_by_settings_alone(
    db: Database,
    kafka_secure: SecureKafka,
    tag: str,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in _environment(kafka_secure, mode).items():
        monkeypatch.setenv(name, value)
    settings = SecureSettings()
    options = settings.kafka_security.client_options()

    async def handle(ev: ServicePublished, ctx: MessageContext) -> None:
        if ev.slug == tag:
            await ctx.uow.db.execute(
                sa.insert(effect_table).values(event_id=ctx.envelope.id, tag=tag)
            )

    relay = OutboxRelay(
        db,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        service_name=settings.service_name,
        kafka_options=options,
        idle_seconds=0.2,
    )
    consumer = EventConsumer(
        db,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"secure-{uuid.uuid4().hex[:8]}",
        subscriptions={ServicePublished: [handle]},
        service_name=settings.service_name,
        source=SOURCE,
        kafka_options=options,
    )
    await relay.start()
    await consumer.start()
    try:
        async with UnitOfWork(db, source=SOURCE) as uow:
            for i in range(3):
                uow.publish(event(tag, i))

        async def three() -> bool:
            return await effects(db, tag) == 3

        await eventually(three, timeout=60, message=f"no effects over {mode}")
    finally:
        await consumer.stop()
        await relay.stop()


async def test_a_wrong_password_or_no_client_certificate_is_refused(
    kafka_secure: SecureKafka,
) -> None:
    user = next(iter(kafka_secure.users))
    refused = [
        (
            kafka_secure.sasl_ssl_bootstrap,
            KafkaSecurity(
                protocol="SASL_SSL",
                sasl_mechanism="SCRAM-SHA-512",
                sasl_username=user,
                sasl_password="not-the-password",
                ssl_cafile=str(kafka_secure.ca_file),
            ),
        ),
        (
            kafka_secure.ssl_bootstrap,
            KafkaSecurity(protocol="SSL", ssl_cafile=str(kafka_secure.ca_file)),
        ),
    ]
    for bootstrap, security in refused:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, request_timeout_ms=5000, **security.client_options()
        )
        with pytest.raises((KafkaError, OSError)):
            try:
                await producer.start()
                await producer.send_and_wait("citizen-services.service.v1", b"x")
            finally:
                await producer.stop()


def test_incomplete_security_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECURE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ValidationError, match="KAFKA_SASL_MECHANISM"):
        SecureSettings()
    monkeypatch.setenv("SECURE_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    monkeypatch.setenv("SECURE_KAFKA_SSL_CAFILE", "/tmp/ca.pem")
    with pytest.raises(ValidationError, match="SSL or SASL_SSL"):
        SecureSettings()
