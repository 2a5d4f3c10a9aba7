"""``python -m inclusion [--workers N]``:
serve on INCLUSION_HOST:PORT (default 127.0.0.1:8002);
N worker processes with ``--workers`` or ``WEB_CONCURRENCY`` (see servicekit.server)."""

from inclusion.config import Settings
from servicekit.server import main

if __name__ == "__main__":
    main("inclusion.main:create_app", Settings())
