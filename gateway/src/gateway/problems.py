"""Error responses written straight to ASGI: RFC 9457 problem+json, and on Open311 routes
the GeoReport v2 shape (``<errors><error><code/><description/></error></errors>`` or
``[{"code": …, "description": …}]``, by the path's ``.xml``/``.json`` suffix).

Once a request has a route, every error the gateway answers itself goes through
:func:`send_error`, which picks the route's shape: Open311 clients (FixMyStreet reads XML)
never see problem+json from the gateway, whatever the error (401/403, 413, 429, 503, 504)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from starlette.types import Send

from gateway.routes import AuthMode, Route

TYPE_BASE = "https://mk-digital.example/problems/"


async def send_problem(
    send: Send,
    status: int,
    title: str,
    detail: str | None = None,
    *,
    request_id: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    **extensions: Any,
) -> None:
    body: dict[str, Any] = {
        "type": TYPE_BASE + "-".join(title.lower().split()),
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update(extensions)
    payload = json.dumps(body).encode()
    raw = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if request_id:
        raw.append((b"x-request-id", request_id.encode()))
    raw += [(k.encode(), v.encode()) for k, v in headers or ()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def open311_error_body(status: int, description: str, path: str) -> tuple[bytes, bytes]:
    """``(content type, body)`` of an Open311 error for ``path``: JSON for ``….json``,
    otherwise XML (what FixMyStreet reads)."""
    if path.lower().endswith(".json"):
        return b"application/json", json.dumps(
            [{"code": status, "description": description}]
        ).encode()
    errors = ET.Element("errors")
    error = ET.SubElement(errors, "error")
    ET.SubElement(error, "code").text = str(status)
    ET.SubElement(error, "description").text = description
    return b"text/xml; charset=utf-8", (
        b'<?xml version="1.0" encoding="utf-8"?>\n'
        + ET.tostring(errors, encoding="unicode").encode()
    )


async def send_open311_error(
    send: Send,
    status: int,
    description: str,
    *,
    path: str,
    request_id: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> None:
    content_type, payload = open311_error_body(status, description, path)
    raw = [(b"content-type", content_type), (b"content-length", str(len(payload)).encode())]
    if request_id:
        raw.append((b"x-request-id", request_id.encode()))
    raw += [(k.encode(), v.encode()) for k, v in headers or ()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


async def send_error(
    send: Send,
    route: Route,
    path: str,
    status: int,
    title: str,
    detail: str | None = None,
    *,
    request_id: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    **extensions: Any,
) -> None:
    """An error the gateway answers itself on ``route``, in that route's error shape."""
    if route.auth is AuthMode.OPEN311:
        await send_open311_error(
            send, status, detail or title, path=path, request_id=request_id, headers=headers
        )
    else:
        await send_problem(
            send, status, title, detail, request_id=request_id, headers=headers, **extensions
        )
