"""``python -m citizen_services [--workers N]``:
serve on CITIZEN_SERVICES_HOST:PORT (default 127.0.0.1:8001);
N worker processes with ``--workers`` or ``WEB_CONCURRENCY`` (see servicekit.server)."""

from citizen_services.config import Settings
from servicekit.server import main

if __name__ == "__main__":
    main("citizen_services.main:create_app", Settings())
