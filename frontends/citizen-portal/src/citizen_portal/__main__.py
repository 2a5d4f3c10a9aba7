"""``python -m citizen_portal``: the portal on CITIZEN_PORTAL_HOST:CITIZEN_PORTAL_PORT
(127.0.0.1:8010 by default)."""

from __future__ import annotations

import uvicorn

from citizen_portal.config import PortalSettings
from citizen_portal.main import create_app


def main() -> None:
    settings = PortalSettings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
