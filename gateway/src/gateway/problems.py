"""RFC 9457 problem+json responses written straight to ASGI."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Send

TYPE_BASE = "https://mk-digital.example/problems/"


async def send_problem(send: Send, status: int, title: str, detail: str | None = None, *,
                       request_id: str | None = None, headers: list[tuple[str, str]] | None = None,
                       **extensions: Any) -> None:
    body: dict[str, Any] = {"type": TYPE_BASE + "-".join(title.lower().split()),
                            "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extensions)
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/problem+json"),
           (b"content-length", str(len(payload)).encode())]
    if request_id:
        raw.append((b"x-request-id", request_id.encode()))
    raw += [(k.encode(), v.encode()) for k, v in headers or ()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
