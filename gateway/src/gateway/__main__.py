"""``python -m gateway [--workers N]``: serve on GATEWAY_HOST:PORT (default 127.0.0.1:8000).

SIGTERM stops it cleanly: no new connections, requests in flight finish (at most
``GATEWAY_SHUTDOWN_GRACE_SECONDS``), the health checks and clients close, exit status 0.

With ``--workers N`` (or ``WEB_CONCURRENCY``) N processes share the port; each keeps its own
circuit breakers and, unless ``GATEWAY_REDIS_URL`` is set, its own rate-limit buckets (so
an in-memory limit is per process: use Redis to hold a limit across workers).
"""

import gc

import uvicorn

from gateway.config import GatewaySettings
from gateway.main import create_app
from servicekit.server import exit_zero_on_sigterm, workers_from

if __name__ == "__main__":
    settings = GatewaySettings()
    workers = workers_from()
    app = create_app(settings) if workers == 1 else "gateway.main:create_app"
    # Everything imported so far (~145,000 objects: libraries, schemas) lives as long as the
    # process: out of the collector's sight, a full collection no longer walks it (it took
    # 170-230 ms on the loaded 2-core bench machine, a pause for every request in flight).
    gc.freeze()
    exit_zero_on_sigterm()
    uvicorn.run(
        app,
        factory=workers > 1,
        workers=workers,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        server_header=False,
        date_header=False,
        # The gateway is the edge: a client's X-Forwarded-* must not replace the
        # socket peer (uvicorn trusts them from 127.0.0.1 by default).
        proxy_headers=False,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
    )
