"""Sends the callbacks :mod:`notify_callbacks` queues (see there), and sets a service's
callback URLs, both through the partner webhooks' SSRF guard."""

from __future__ import annotations

import asyncio
import logging
import ssl
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from notifications.application.delivery import PacedWorker
from notifications.application.notify_callbacks import (
    DELIVERY_STATUS,
    RETRIES,
    RETRY_DELAY,
)
from notifications.application.webhooks import (
    _PINNED,
    UNREACHABLE,
    EndpointRefusedProblem,
    PinnedTransport,
    Resolver,
    check_endpoint,
)
from notifications.config import Settings
from notifications.persistence.notify_callbacks import NotifyCallbackRepository
from notifications.persistence.tables import NotifyCallback, NotifyService
from servicekit.db import Database
from servicekit.errors import NotFound
from servicekit.uow import UnitOfWork

log = logging.getLogger(__name__)


async def set_callback(
    service: NotifyService | None,
    *,
    kind: str,
    url: str | None,
    bearer_token: str | None,
    settings: Settings,
    resolve: Resolver | None = None,
) -> NotifyService:
    """Set (or, with ``url`` None, remove) a service's callback; the URL passes the SSRF
    guard first (:class:`EndpointRefusedProblem`)."""
    if service is None:
        raise NotFound("No such Notify service.")
    if url is not None:
        await check_endpoint(url, settings, resolve=resolve)
    if kind == DELIVERY_STATUS:
        service.delivery_callback_url, service.delivery_callback_token = url, bearer_token
    else:
        service.inbound_callback_url, service.inbound_callback_token = url, bearer_token
    log.info("notify service %s: %s callback %s", service.id, kind, "set" if url else "removed")
    return service


#: (outcome, HTTP status, error): succeeded, retry, dropped (no callback set any more).
Attempt = tuple[str, int | None, str | None]


class NotifyCallbackWorker(PacedWorker):
    """Sends due callbacks; woken by the commits that queue them."""

    name = "notify-callbacks"
    wake_on = frozenset({NotifyCallback.__tablename__})

    def __init__(
        self,
        database: Database,
        settings: Settings,
        client: httpx.AsyncClient | None = None,
        *,
        resolve: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        super().__init__(database, settings)
        self.resolve = resolve
        self.client = client or httpx.AsyncClient(
            transport=PinnedTransport(verify=verify),
            trust_env=False,
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
        )

    async def run_once(self) -> int:
        return await self.deliver_due()

    async def close(self) -> None:
        await self.client.aclose()

    async def deliver_due(self) -> int:
        now = datetime.now(UTC)
        async with UnitOfWork(self.database, source=self.settings.cloudevents_source) as uow:
            repo = NotifyCallbackRepository(uow.db)
            claimed = await repo.claim_due(
                now=now,
                stale=now - timedelta(seconds=self.settings.sending_reclaim_seconds),
                limit=self.settings.delivery_batch_size,
            )
            services = await repo.services(row.service_id for row in claimed) if claimed else {}
            for service in services.values():
                uow.db.expunge(service)
        if not claimed:
            return 0
        results = await asyncio.gather(
            *(self._attempt(row, services.get(row.service_id)) for row in claimed)
        )
        retries: list[float] = []
        scale = self.settings.webhook_retry_scale
        now = datetime.now(UTC)
        async with UnitOfWork(self.database, source=self.settings.cloudevents_source) as uow:
            repo = NotifyCallbackRepository(uow.db)
            for row, (outcome, status_code, error) in zip(claimed, results, strict=True):
                values: dict[str, Any] = {
                    "updated_at": now,
                    "last_status_code": status_code,
                    "last_error": (error or "")[:500] or None,
                }
                if outcome == "succeeded":
                    values["status"] = "succeeded"
                elif outcome == "retry" and row.attempts <= RETRIES:
                    delay = RETRY_DELAY * scale
                    values.update(status="pending", next_attempt_at=now + delay)
                    retries.append(delay.total_seconds())
                else:
                    values["status"] = "failed"
                await repo.update(row.id, **values)
        for seconds in retries:
            self.wake_in(seconds)
        return len(claimed)

    async def _attempt(self, row: Any, service: NotifyService | None) -> Attempt:
        if service is None:
            return "dropped", None, "no such service"
        if row.kind == DELIVERY_STATUS:
            url, token = service.delivery_callback_url, service.delivery_callback_token
        else:
            url, token = service.inbound_callback_url, service.inbound_callback_token
        if not url:
            return "dropped", None, "the callback was removed"
        try:  # before every attempt: DNS may have changed since the URL was set
            endpoint = await check_endpoint(url, self.settings, resolve=self.resolve)
        except EndpointRefusedProblem as exc:
            return "retry", None, exc.detail
        headers = {
            "content-type": "application/json",
            "authorization": f"Bearer {token or ''}",
            "user-agent": "mk-notifications-callbacks/1",
        }
        pinned = _PINNED.set(endpoint)
        try:  # the answer's body is never read
            async with self.client.stream(
                "POST", url, content=row.payload.encode(), headers=headers
            ) as response:
                pass
        except httpx.HTTPError:
            return "retry", None, UNREACHABLE
        finally:
            _PINNED.reset(pinned)
        if response.is_success:
            return "succeeded", response.status_code, None
        return "retry", response.status_code, f"HTTP {response.status_code}"
