"""SMS providers: a dev sink writing files (``var/sms/``) and a generic HTTP provider.

Both raise the email adapter's :class:`PermanentDeliveryError` / :class:`TemporaryDeliveryError`
so the delivery worker treats every channel alike.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import httpx

from notifications.adapters.email import PermanentDeliveryError, TemporaryDeliveryError


@dataclass(frozen=True)
class OutgoingSms:
    notification_id: str  # the provider's idempotency reference
    to: str  # E.164
    sender: str
    body: str


class SmsSender(Protocol):
    async def send(self, sms: OutgoingSms) -> None: ...
    async def close(self) -> None: ...


class SinkSmsSender:
    """Writes each message to ``<dir>/<notification id>.json`` (a re-send overwrites it)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    async def send(self, sms: OutgoingSms) -> None:
        record = {
            "id": sms.notification_id,
            "to": sms.to,
            "from": sms.sender,
            "body": sms.body,
            "received_at": datetime.now(UTC).isoformat(),
        }
        await asyncio.to_thread(self._write, sms.notification_id, record)

    def _write(self, name: str, record: dict[str, str]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{name}.tmp"
        tmp.write_text(json.dumps(record, ensure_ascii=False, indent=2))
        tmp.replace(self.directory / f"{name}.json")

    async def close(self) -> None:
        return None


class HttpSmsSender:
    """A generic HTTP SMS provider: ``POST {url}`` with JSON ``{reference, to, from, body}``
    and ``Authorization: Bearer <token>``. 2xx accepted; 400/403/404/422 refused for good;
    anything else (429, 5xx, connection trouble) is retried later."""

    PERMANENT = frozenset({400, 403, 404, 422})

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url
        self.client = httpx.AsyncClient(timeout=timeout, headers=headers, transport=transport)

    async def send(self, sms: OutgoingSms) -> None:
        try:
            response = await self.client.post(
                self.url,
                json={
                    "reference": sms.notification_id,
                    "to": sms.to,
                    "from": sms.sender,
                    "body": sms.body,
                },
            )
        except httpx.HTTPError as exc:
            raise TemporaryDeliveryError(type(exc).__name__) from None
        if response.is_success:
            return
        if response.status_code in self.PERMANENT:
            raise PermanentDeliveryError(f"HTTP {response.status_code}")
        raise TemporaryDeliveryError(f"HTTP {response.status_code}")

    async def close(self) -> None:
        await self.client.aclose()


class NotifySmsSender:
    """GOV.UK Notify itself as the SMS provider: each text is sent through Notify's API v2
    with a template whose whole body is ``((body))``. A 400 (bad number, ...) is a refusal
    for good; anything else that is not a 201 is retried later."""

    def __init__(
        self,
        api_key: str,
        template_id: str,
        *,
        base_url: str = "https://api.notifications.service.gov.uk",
        timeout: float = 10.0,
    ) -> None:
        self.service_id, self.secret = api_key[-73:-37], api_key[-36:]
        self.template_id = template_id
        self.url = base_url.rstrip("/") + "/v2/notifications/sms"
        self.client = httpx.AsyncClient(timeout=timeout)

    def _token(self) -> str:
        import time

        import jwt

        return jwt.encode(
            {"iss": self.service_id, "iat": int(time.time())},
            self.secret,
            algorithm="HS256",
            headers={"typ": "JWT"},
        )

    async def send(self, sms: OutgoingSms) -> None:
        try:
            response = await self.client.post(
                self.url,
                headers={"Authorization": f"Bearer {self._token()}"},
                json={
                    "phone_number": sms.to,
                    "template_id": self.template_id,
                    "personalisation": {"body": sms.body},
                    "reference": sms.notification_id,
                },
            )
        except httpx.HTTPError as exc:
            raise TemporaryDeliveryError(type(exc).__name__) from None
        if response.status_code == 201:
            return
        if response.status_code == 400:
            raise PermanentDeliveryError("Notify 400")
        raise TemporaryDeliveryError(f"Notify {response.status_code}")

    async def close(self) -> None:
        await self.client.aclose()
