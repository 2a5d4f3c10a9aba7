"""``Server-Timing`` on every answer: how long the front-end took to start its answer
(``app``) and, of that, how long it waited for the gateway (``api``, with the number of
calls), as the front-end itself measures it. A browser's developer tools show both; the
benchmark (``bench/portal.py``) reads them to tell the page's own time from queueing on a
busy machine. Durations only: nothing about the user or the request.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The current request's [milliseconds waiting for the gateway, calls] (None outside one).
_api: ContextVar[list[float] | None] = ContextVar("webkit_api_time", default=None)


def record_api_call(milliseconds: float) -> None:
    """Count one gateway call of ``milliseconds`` against the request being answered."""
    spent = _api.get()
    if spent is not None:
        spent[0] += milliseconds
        spent[1] += 1


class ServerTiming:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        spent = [0.0, 0.0]
        token = _api.set(spent)

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                total = (time.perf_counter() - start) * 1000
                MutableHeaders(scope=message).append(
                    "server-timing",
                    f'app;dur={total:.1f};desc="page", '
                    f'api;dur={spent[0]:.1f};desc="{spent[1]:.0f} gateway calls"',
                )
            await send(message)

        try:
            await self.app(scope, receive, send_timed)
        finally:
            _api.reset(token)
