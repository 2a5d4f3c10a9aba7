"""``/api/v1/webhook-subscriptions`` as the console calls it, with the signed-in user's token:
an admin sees every partner's subscriptions, a partner only their own (the API decides)."""

from __future__ import annotations

from typing import Any

from webkit.api import ApiClient

BASE = "/api/v1/webhook-subscriptions"


class WebhooksApi(ApiClient):
    async def all(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.get(BASE)
        return result

    async def one(self, subscription_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"{BASE}/{subscription_id}")
        return result

    async def create(self, url: str, event_types: list[str]) -> dict[str, Any]:
        """The new subscription with its signing secret (shown once)."""
        result: dict[str, Any] = await self.post(BASE, {"url": url, "event_types": event_types})
        return result

    async def deliveries(self, subscription_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.get(f"{BASE}/{subscription_id}/deliveries")
        return result

    async def replay(self, subscription_id: str, delivery_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(
            f"{BASE}/{subscription_id}/deliveries/{delivery_id}/replay"
        )
        return result

    async def rotate_secret(self, subscription_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(f"{BASE}/{subscription_id}/rotate-secret")
        return result

    async def enable(self, subscription_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(f"{BASE}/{subscription_id}/enable")
        return result
