"""Kafka and PostgreSQL for benchmarks: the environment's if given, else started here."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mkinfra._proc import free_port, run_sync


@contextlib.contextmanager
def kafka() -> Iterator[str]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    from mkinfra.kafka import KafkaBroker, ensure_topics

    with tempfile.TemporaryDirectory(prefix="mk-bench-kafka-") as tmp:
        broker = KafkaBroker(Path(tmp), port=free_port(), controller_port=free_port(), heap="1g")
        print(f"  starting Kafka for the benchmark on {broker.bootstrap_servers} …", flush=True)
        broker.start()
        try:
            run_sync(ensure_topics(broker.bootstrap_servers))
            yield broker.bootstrap_servers
        finally:
            broker.stop()


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """Yields a superuser URL."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    from mkinfra.postgres import PostgresServer, ensure_postgres_installed

    ensure_postgres_installed()
    tmp = tempfile.mkdtemp(prefix="mk-bench-pg-")
    os.chmod(tmp, 0o755)
    server = PostgresServer(Path(tmp), port=free_port())
    print("  starting PostgreSQL for the benchmark …", flush=True)
    server.start()
    try:
        yield server.admin_url
    finally:
        server.stop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def create_database(admin_url: str, name: str) -> str:
    from mkinfra.postgres import admin_url_create_database

    return admin_url_create_database(admin_url, name)


def fresh_database(
    stack: contextlib.ExitStack[bool | None], kind: str, tmp: Path, *, sqlite_file: str, name: str
) -> str:
    """The URL of an empty database for one benchmark: ``tmp/<sqlite_file>`` when ``kind`` is
    "sqlite", else database ``name`` (re)created on :func:`postgres`'s server, which ``stack``
    stops."""
    if kind == "sqlite":
        return f"sqlite:///{tmp}/{sqlite_file}"
    from mkinfra.postgres import drop_database_at

    admin_url = stack.enter_context(postgres())
    drop_database_at(admin_url, name)  # a server given by DATABASE_URL
    return create_database(admin_url, name)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]
