"""pytest plugin (``-p mkinfra.testing``): real Kafka, PostgreSQL and SMTP for tests.

Session fixtures start infrastructure lazily, only when a test asks for it:

* ``kafka_broker`` / ``kafka_bootstrap``: ``$KAFKA_BOOTSTRAP_SERVERS`` if set, else a local
  single-node KRaft broker (jars from Maven Central); the registry's topics are ensured.
* ``kafka_cluster``: a local 3-broker KRaft cluster (never an external one: tests kill
  its brokers), the registry's topics replicated 3 times with ``min.insync.replicas=2``.
  Started only by the tests that ask for it; a test that kills a node restarts it.
* ``kafka_secure``: a local broker with a ``SASL_SSL`` listener (SCRAM-SHA-512 / PLAIN)
  and a mutual-TLS ``SSL`` listener, certificates from a CA made for the session, the
  registry's topics created.
* ``postgres_admin_url`` / ``new_postgres_database``: ``$DATABASE_URL`` (a superuser URL) if
  set, else testcontainers when a Docker engine answers, else a local PostgreSQL cluster.
* ``smtp_sink`` (per test): a started :class:`~mkinfra.smtp_sink.SmtpSink`.
* ``redis_url``: ``$REDIS_URL`` if set, else a local Redis (no persistence) on a free port.
  Tests share it: use keys of their own, never FLUSHALL.

All fixtures are synchronous, so they do not depend on pytest-asyncio's loop scopes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mkinfra._proc import LOCALHOST, free_port, run_sync

if TYPE_CHECKING:
    from mkinfra.kafka import KafkaBroker, KafkaCluster, SecureKafka
    from mkinfra.smtp_sink import SmtpSink

__all__ = ["free_port", "free_ports"]

_START_ATTEMPTS = 3
_MARKERS = (
    "kafka: needs a real Kafka broker (started by the test session)",
    "postgres: needs a real PostgreSQL server (started by the test session)",
    "slow: fault and end-to-end tests that take more than a few seconds",
    "redis: needs a real Redis server (started by the test session)",
)


def pytest_configure(config: pytest.Config) -> None:
    """Register the infrastructure markers (harmless if the project registers them too)."""
    for marker in _MARKERS:
        config.addinivalue_line("markers", marker)


def free_ports(count: int, host: str = LOCALHOST) -> list[int]:
    """``count`` distinct TCP ports that are free right now."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


# --------------------------------------------------------------------------- Kafka


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker | None]:
    """A local KRaft broker for the session, or None when KAFKA_BOOTSTRAP_SERVERS is set."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield None
        return
    from mkinfra.kafka import KafkaBroker, KafkaSetupError, ensure_kafka_jars

    libs = ensure_kafka_jars()
    base = tmp_path_factory.mktemp("kafka")
    for attempt in range(1, _START_ATTEMPTS + 1):
        port, controller_port = free_ports(2)
        broker = KafkaBroker(
            base / "data",
            port=port,
            controller_port=controller_port,
            log_file=base / "kafka.log",
            libs_dir=libs,
        )
        try:
            broker.start()
            break
        except KafkaSetupError as exc:  # most likely a port taken between pick and bind
            if attempt == _START_ATTEMPTS or "in use" not in str(exc):
                raise
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker | None) -> str:
    """Bootstrap servers of the session's Kafka, with every registry topic created."""
    from mkinfra.kafka import ensure_topics

    bootstrap = (
        kafka_broker.bootstrap_servers
        if kafka_broker is not None
        else os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    )
    run_sync(ensure_topics(bootstrap))
    return bootstrap


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A local 3-broker KRaft cluster for the session, every registry topic created with
    replication 3 and ``min.insync.replicas=2``. Its ``nodes`` may be killed and started
    again by a test (which leaves them all running when it ends)."""
    from mkinfra.kafka import KafkaCluster, KafkaSetupError, ensure_kafka_jars, ensure_topics

    libs = ensure_kafka_jars()
    base = tmp_path_factory.mktemp("kafka-cluster")
    for attempt in range(1, _START_ATTEMPTS + 1):
        cluster = KafkaCluster(base / f"try-{attempt}", brokers=3, libs_dir=libs)
        try:
            cluster.start()
            break
        except KafkaSetupError as exc:  # most likely a port taken between pick and bind
            if attempt == _START_ATTEMPTS or "in use" not in str(exc):
                raise
    try:
        run_sync(
            ensure_topics(
                cluster.bootstrap_servers,
                replication_factor=cluster.replication,
                min_insync_replicas=cluster.min_insync_replicas,
            )
        )
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def kafka_secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    """A local broker with TLS listeners (see :func:`mkinfra.kafka.secure_broker`)."""
    from mkinfra.kafka import KafkaSetupError, ensure_kafka_jars, ensure_topics, secure_broker

    libs = ensure_kafka_jars()
    base = tmp_path_factory.mktemp("kafka-secure")
    for attempt in range(1, _START_ATTEMPTS + 1):
        secure = secure_broker(base / f"try-{attempt}", free_ports(4), libs_dir=libs)
        try:
            secure.broker.start()
            break
        except KafkaSetupError as exc:  # most likely a port taken between pick and bind
            if attempt == _START_ATTEMPTS or "in use" not in str(exc):
                raise
    try:
        run_sync(ensure_topics(secure.broker.bootstrap_servers))
        yield secure
    finally:
        secure.broker.stop()


# --------------------------------------------------------------------------- PostgreSQL


def _docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        out = subprocess.run(["docker", "info"], capture_output=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


@contextlib.contextmanager
def _testcontainers_postgres() -> Iterator[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver=None) as container:
        yield container.get_connection_url()


@contextlib.contextmanager
def _local_postgres() -> Iterator[str]:
    from mkinfra.postgres import PostgresError, PostgresServer, ensure_postgres_installed

    bin_dir = ensure_postgres_installed()
    # Under /tmp: as root the cluster belongs to `postgres`, which must traverse the parents.
    base = Path(tempfile.mkdtemp(prefix="mk-pg-"))
    server: PostgresServer | None = None
    try:
        for attempt in range(1, _START_ATTEMPTS + 1):
            server = PostgresServer(base, port=free_port(), bin_dir=bin_dir)
            try:
                server.start()
                break
            except PostgresError as exc:
                if attempt == _START_ATTEMPTS or "in use" not in str(exc):
                    raise
        assert server is not None
        yield server.admin_url
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """Superuser URL of the session's PostgreSQL server (DATABASE_URL, Docker or local)."""
    env_url = os.environ.get("DATABASE_URL")
    if env_url:
        yield env_url
        return
    provider = _testcontainers_postgres if _docker_available() else _local_postgres
    with provider() as url:
        yield url


@pytest.fixture(scope="session")
def _mk_created_databases(postgres_admin_url: str) -> Iterator[list[str]]:
    """Databases made by ``new_postgres_database``; dropped when the server outlives us."""
    created: list[str] = []
    yield created
    if os.environ.get("DATABASE_URL"):
        from mkinfra.postgres import drop_database_at

        for name in created:
            with contextlib.suppress(Exception):
                drop_database_at(postgres_admin_url, name)


@pytest.fixture
def new_postgres_database(
    postgres_admin_url: str, _mk_created_databases: list[str]
) -> Callable[..., str]:
    """Factory: ``new_postgres_database(prefix="t") -> url`` of a fresh, empty database."""
    from mkinfra.postgres import admin_url_create_database

    def factory(prefix: str = "t") -> str:
        safe = re.sub(r"[^a-z0-9_]", "_", prefix.lower())[:40] or "t"
        name = f"{safe}_{uuid.uuid4().hex[:12]}"
        url = admin_url_create_database(postgres_admin_url, name)
        _mk_created_databases.append(name)
        return url

    return factory


# --------------------------------------------------------------------------- SMTP


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[SmtpSink]:
    """A started SMTP sink on a free port, storing into ``tmp_path/"mail"``."""
    from mkinfra.smtp_sink import SmtpSink

    sink = SmtpSink(tmp_path / "mail", port=free_port()).start()
    try:
        yield sink
    finally:
        sink.stop()


# --------------------------------------------------------------------------- Redis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the session's Redis: ``$REDIS_URL`` if set, else a local server on a free port
    (``redis-server`` from Debian's package, installed with apt-get when missing and root)."""
    env_url = os.environ.get("REDIS_URL")
    if env_url:
        yield env_url
        return
    from mkinfra.redis import RedisError, RedisServer, ensure_redis_installed

    binary = ensure_redis_installed()
    base = tmp_path_factory.mktemp("redis")
    server: RedisServer | None = None
    try:
        for attempt in range(1, _START_ATTEMPTS + 1):
            server = RedisServer(base, port=free_port(), binary=binary)
            try:
                server.start()
                break
            except RedisError as exc:  # most likely a port taken between pick and bind
                if attempt == _START_ATTEMPTS or "in use" not in str(exc):
                    raise
        assert server is not None
        yield server.url
    finally:
        if server is not None:
            server.stop()
