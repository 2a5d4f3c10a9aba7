"""``python -m gateway``: serve on GATEWAY_HOST:PORT (default 127.0.0.1:8000)."""

import uvicorn

from gateway.config import GatewaySettings
from gateway.main import create_app

if __name__ == "__main__":
    settings = GatewaySettings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None,
                access_log=False, loop="uvloop", http="httptools", server_header=False,
                date_header=False,
                # The gateway is the edge: a client's X-Forwarded-* must not replace the
                # socket peer (uvicorn trusts them from 127.0.0.1 by default).
                proxy_headers=False,
                timeout_graceful_shutdown=10)
