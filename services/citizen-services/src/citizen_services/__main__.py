"""``python -m citizen_services``: serve on CITIZEN_SERVICES_HOST:PORT (default 127.0.0.1:8001)."""

from citizen_services.config import Settings
from citizen_services.main import create_app
from servicekit.server import serve

if __name__ == "__main__":
    settings = Settings()
    serve(create_app(settings), settings)
