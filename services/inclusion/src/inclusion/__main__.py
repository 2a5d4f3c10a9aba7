"""``python -m inclusion``: serve on INCLUSION_HOST:PORT (default 127.0.0.1:8002)."""

from inclusion.config import Settings
from inclusion.main import create_app
from servicekit.server import serve

if __name__ == "__main__":
    settings = Settings()
    serve(create_app(settings), settings)
