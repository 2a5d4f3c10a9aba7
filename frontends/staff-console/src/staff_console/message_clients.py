"""``/api/v1/messages`` as the console calls it (staff): sent messages, filtered and paged,
and one message whole."""

from __future__ import annotations

from typing import Any

from webkit.api import ApiClient

BASE = "/api/v1/messages"


class MessagesApi(ApiClient):
    async def find(
        self, *, reference: str = "", status: str = "", channel: str = "", page: str = ""
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(
            BASE,
            reference=reference,
            status=status,
            channel=channel,
            page=page,
            page_size=PAGE_SIZE,
        )
        return result

    async def one(self, message_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"{BASE}/{message_id}")
        return result


PAGE_SIZE = 20
