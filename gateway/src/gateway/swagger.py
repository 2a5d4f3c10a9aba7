"""Swagger UI for ``/docs``, served by the gateway itself from files vendored in
``static/swagger-ui`` (pinned, hashes in its README): no CDN, so the docs page's
Content-Security-Policy allows scripts and styles from the gateway's own origin only
(``'self'``), with no inline script.

The files live under a path naming their version, so they can be cached for good."""

from __future__ import annotations

import functools
from importlib import resources

VERSION = "5.36.0"
PREFIX = f"/docs/swagger-ui-{VERSION}/"
#: The page's one script of its own (no inline script: the CSP forbids it).
INIT_JS = b'SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});\n'
_FILES = {
    "swagger-ui-bundle.js": b"text/javascript; charset=utf-8",
    "swagger-ui.css": b"text/css; charset=utf-8",
}

DOCS_HTML = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Milton Keynes digital platform API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{PREFIX}swagger-ui.css">
</head><body><div id="swagger-ui"></div>
<script src="{PREFIX}swagger-ui-bundle.js"></script>
<script src="{PREFIX}init.js"></script>
</body></html>
"""


@functools.cache
def _read(name: str) -> bytes:
    return (resources.files("gateway") / "static" / "swagger-ui" / name).read_bytes()


def asset(path: str) -> tuple[bytes, bytes] | None:
    """``(content type, body)`` of a ``/docs/...`` asset, or None."""
    if not path.startswith(PREFIX):
        return None
    name = path[len(PREFIX) :]
    if name == "init.js":
        return b"text/javascript; charset=utf-8", INIT_JS
    content_type = _FILES.get(name)
    if content_type is None:
        return None
    return content_type, _read(name)
