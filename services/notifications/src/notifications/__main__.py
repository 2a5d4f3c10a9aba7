"""``python -m notifications [--workers N]``:
serve on NOTIFICATIONS_HOST:PORT (default 127.0.0.1:8003);
N worker processes with ``--workers`` or ``WEB_CONCURRENCY`` (see servicekit.server)."""

from notifications.config import Settings
from servicekit.server import main

if __name__ == "__main__":
    main("notifications.main:create_app", Settings())
