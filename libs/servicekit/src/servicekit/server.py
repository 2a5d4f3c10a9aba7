"""Running a service under uvicorn; SIGTERM/SIGINT stop it gracefully (lifespan shutdown)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from servicekit.settings import ServiceSettings


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=None, access_log=False,
        loop="uvloop", http="httptools", lifespan="on", timeout_graceful_shutdown=10,
        server_header=False,
    )
    uvicorn.Server(config).run()
