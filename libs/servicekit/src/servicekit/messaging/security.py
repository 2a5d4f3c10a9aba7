"""How every Kafka client of a service connects (producer, consumer, admin, health probe):
TLS and SASL options for aiokafka, built from the service's settings.

``ServiceSettings`` holds them as ``<PREFIX>KAFKA_SECURITY_PROTOCOL`` (``PLAINTEXT``,
``SSL``, ``SASL_PLAINTEXT``, ``SASL_SSL``), ``<PREFIX>KAFKA_SASL_MECHANISM`` (``PLAIN``,
``SCRAM-SHA-256``, ``SCRAM-SHA-512``), ``<PREFIX>KAFKA_SASL_USERNAME`` /
``<PREFIX>KAFKA_SASL_PASSWORD``, and ``<PREFIX>KAFKA_SSL_CAFILE`` (the CA that signed the
brokers' certificates; the system's CAs when unset) with ``<PREFIX>KAFKA_SSL_CERTFILE`` /
``<PREFIX>KAFKA_SSL_KEYFILE`` (a client certificate, for clusters that require mutual TLS).

OAUTHBEARER is not offered: aiokafka takes it only as a token-provider object in code, not
as settings; clusters that need it (e.g. MSK with IAM) can use SCRAM or mutual TLS instead.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, Literal

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


@dataclass(frozen=True)
class KafkaSecurity:
    """TLS and SASL options of a Kafka connection; :meth:`client_options` gives them as
    keyword arguments every aiokafka client (producer, consumer, admin) takes."""

    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def __post_init__(self) -> None:
        uses_sasl = self.protocol.startswith("SASL_")
        if uses_sasl and not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL {self.protocol} needs KAFKA_SASL_MECHANISM, "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        if not uses_sasl and self.sasl_mechanism:
            raise ValueError(
                "KAFKA_SASL_MECHANISM is set but KAFKA_SECURITY_PROTOCOL is "
                f"{self.protocol}: use SASL_SSL (or SASL_PLAINTEXT)"
            )
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together")
        uses_tls = self.protocol in ("SSL", "SASL_SSL")
        if not uses_tls and (self.ssl_cafile or self.ssl_certfile):
            raise ValueError(
                f"KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL is {self.protocol}: "
                "use SSL or SASL_SSL"
            )

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context: the CA file (or the system's CAs), the client certificate
        if given, hostnames checked."""
        context = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.ssl_certfile and self.ssl_keyfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``AIOKafkaProducer``, ``AIOKafkaConsumer``,
        ``AIOKafkaAdminClient`` and ``AIOKafkaClient`` (empty for plaintext)."""
        if self.protocol == "PLAINTEXT":
            return {}
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        return options
