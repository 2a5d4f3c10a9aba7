"""``python -m notifications``: serve on NOTIFICATIONS_HOST:PORT (default 127.0.0.1:8003)."""

from notifications.config import Settings
from notifications.main import create_app
from servicekit.server import serve

if __name__ == "__main__":
    settings = Settings()
    serve(create_app(settings), settings)
