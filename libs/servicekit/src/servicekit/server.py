"""Running a service under uvicorn; SIGTERM/SIGINT stop it gracefully (lifespan shutdown)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from servicekit.settings import ServiceSettings

#: Idle keep-alive of a service's HTTP connections (the gateway keeps its own below this).
KEEP_ALIVE_SECONDS = 75


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=None, access_log=False,
        loop="uvloop", http="httptools", lifespan="on", timeout_graceful_shutdown=10,
        # longer than the gateway's pooled-connection keep-alive, so the gateway never sends
        # a request on a connection the service is closing
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        server_header=False,
    )
    uvicorn.Server(config).run()
