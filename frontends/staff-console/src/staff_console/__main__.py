"""``python -m staff_console``: the console on STAFF_CONSOLE_HOST:STAFF_CONSOLE_PORT
(127.0.0.1:8011 by default)."""

from __future__ import annotations

import uvicorn

from staff_console.config import ConsoleSettings
from staff_console.main import create_app


def main() -> None:
    settings = ConsoleSettings()
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
