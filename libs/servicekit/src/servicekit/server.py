"""Running a service under uvicorn; SIGTERM/SIGINT stop it gracefully.

A clean stop (SIGTERM, as a container runtime or systemd sends): the listening socket is
closed (no new connections), idle keep-alive connections are closed, requests in flight
finish (at most ``<PREFIX>SHUTDOWN_GRACE_SECONDS``, 10 s), then the lifespan shutdown runs:
background workers stop, consumers finish the records in hand and commit their offsets and
leave the group, the outbox relay publishes what is still pending, and the process exits 0
(:func:`exit_zero_on_sigterm`). The service listens on ``<PREFIX>HOST`` (default
``127.0.0.1``; ``0.0.0.0`` in a container) and ``<PREFIX>PORT``.

``python -m <service> migrate`` brings the service's database to the newest migration and
exits (for a deployment's migration job; the services then start with
``<PREFIX>RUN_MIGRATIONS=false``).

``python -m <service> [--workers N]`` (or ``WEB_CONCURRENCY=N``) runs N worker processes on
the one port, each a whole copy of the service: its own event loop, database pool,
consumers and workers. What keeps N processes correct is in the database and Kafka, not in a
process: start-up (migrations, seed data) runs one process at a time, one process publishes
the outbox (``servicekit.leader``), consumers share partitions through their group, and
delivery workers and schedulers claim rows. Read caches are emptied by any process's commit
(``servicekit.readcache``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys

import uvicorn
from fastapi import FastAPI

from servicekit.db import Database
from servicekit.migrations import upgrade
from servicekit.settings import ServiceSettings

#: Idle keep-alive of a service's HTTP connections (the gateway keeps its own below this).
KEEP_ALIVE_SECONDS = 75


def workers_from(argv: list[str] | None = None) -> int:
    """``--workers N``, else ``WEB_CONCURRENCY``, else 1."""
    parser = argparse.ArgumentParser(add_help=True)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: $WEB_CONCURRENCY or 1)",
    )
    args, _ = parser.parse_known_args(argv)
    workers = (
        args.workers
        if args.workers is not None
        else int(os.environ.get("WEB_CONCURRENCY", "1") or "1")
    )
    if workers < 1:
        raise SystemExit("--workers must be at least 1")
    return workers


def exit_zero_on_sigterm() -> None:
    """Make a SIGTERM that uvicorn handled end the process with status 0.

    uvicorn stops gracefully on SIGTERM and then raises the signal again with the handler
    that was installed before it ran: the default one would kill the process (status 143),
    which a supervisor reports as a crash although everything was stopped cleanly. This
    handler (which uvicorn replaces with its own while it serves) does nothing, so the
    process ends normally."""
    signal.signal(signal.SIGTERM, lambda signum, frame: None)


def serve(app: FastAPI | str, settings: ServiceSettings, *, workers: int = 1) -> None:
    """Serve ``app``; with ``workers`` > 1, ``app`` is the import string of a factory
    (``"citizen_services.main:create_app"``) each worker process calls."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
        # longer than the gateway's pooled-connection keep-alive, so the gateway never sends
        # a request on a connection the service is closing
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        server_header=False,
        workers=workers,
        factory=isinstance(app, str),
    )
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        sock = config.bind_socket()
        Multiprocess(config, sockets=[sock]).run()
        return
    exit_zero_on_sigterm()
    # What start-up made (imports, schemas, the app: a few hundred thousand objects) lives
    # as long as the process: out of the collector's sight, a full collection walks only
    # what requests and workers made since. Measured on the delivery worker: collections
    # run from aiokafka's per-record futures took a quarter of the service's busy CPU.
    gc.freeze()
    uvicorn.Server(config).run()


def main(factory: str, settings: ServiceSettings, argv: list[str] | None = None) -> None:
    """A service's ``__main__``: ``migrate``, or serve with one process or ``--workers N``.
    The migrations are the ``MIGRATIONS`` folder of the factory's module."""
    module_name, _, name = factory.partition(":")
    module = __import__(module_name, fromlist=[name])
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["migrate"]:
        asyncio.run(migrate(settings, module.MIGRATIONS))
        return
    workers = workers_from(args)
    if workers == 1:
        serve(getattr(module, name)(settings), settings)
    else:
        serve(factory, settings, workers=workers)


async def migrate(settings: ServiceSettings, migrations: str) -> None:
    """Bring the service's database to the newest revision (idempotent), and nothing else:
    no seed data, no messaging."""
    database = Database(settings.database_url)
    try:
        await upgrade(database, migrations)
    finally:
        await database.dispose()
    print(f"{settings.service_name}: database at the newest migration")
