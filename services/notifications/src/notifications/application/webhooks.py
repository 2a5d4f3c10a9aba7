"""Partner webhooks: subscriptions, the fan-out of events into a delivery log, and the
worker that delivers them signed (Standard Webhooks), retries on the spec's schedule,
disables a subscription on 410 or sustained failure, and refuses private addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpcore
import httpx

from contracts import Event
from contracts.citizen_services import (
    ServicePublished,
    ServiceRequestStatusChanged,
    ServiceRetired,
    ServiceSuspended,
    ServiceUpdated,
)
from notifications.application.delivery import PacedWorker
from notifications.config import Settings
from notifications.domain import webhooks
from notifications.persistence.tables import WebhookDelivery, WebhookSubscription
from notifications.persistence.webhooks import WebhookRepository
from servicekit.db import Database
from servicekit.errors import DomainError, Forbidden, NotFound
from servicekit.messaging.consumer import MessageContext
from servicekit.uow import UnitOfWork

log = logging.getLogger(__name__)

#: Scopes a partner's API key needs (admins need none): ``events:subscribe`` to manage
#: subscriptions at all, and the scope of each event type it subscribes to.
SUBSCRIBE_SCOPE = "events:subscribe"
CATALOGUE_SCOPE = "events:catalogue"
SERVICE_REQUESTS_SCOPE = "events:service-requests"

_CATALOGUE_FIELDS = ("service_id", "service_code", "slug", "name", "entry_version", "occurred_at")
#: The events partners may subscribe to: the scope each needs, and the fields of the event a
#: partner receives. An allow-list: no citizen id, no staff subject, no staff note reaches a
#: partner, and a field added to an event later stays internal until it is added here.
PARTNER_EVENTS: dict[type[Event], tuple[str, tuple[str, ...]]] = {
    ServicePublished: (CATALOGUE_SCOPE, _CATALOGUE_FIELDS),
    ServiceUpdated: (CATALOGUE_SCOPE, (*_CATALOGUE_FIELDS, "changed_fields")),
    ServiceSuspended: (CATALOGUE_SCOPE, (*_CATALOGUE_FIELDS, "reason")),  # public status_reason
    ServiceRetired: (CATALOGUE_SCOPE, (*_CATALOGUE_FIELDS, "reason")),
    ServiceRequestStatusChanged: (
        SERVICE_REQUESTS_SCOPE,
        ("request_id", "service_code", "status", "previous_status", "occurred_at"),
    ),
}
#: The events partners may subscribe to, by CloudEvents type.
WEBHOOK_EVENTS: dict[str, type[Event]] = {cls.event_type(): cls for cls in PARTNER_EVENTS}
EVENT_SCOPES: dict[str, str] = {
    cls.event_type(): scope for cls, (scope, _) in PARTNER_EVENTS.items()
}
PARTNER_FIELDS: dict[str, frozenset[str]] = {
    cls.event_type(): frozenset(fields) for cls, (_, fields) in PARTNER_EVENTS.items()
}
ROTATION_OVERLAP = timedelta(hours=24)


class EndpointRefusedProblem(DomainError):
    status, code, title = 400, "endpoint-refused", "Endpoint refused"


class UnknownWebhookEvent(DomainError):
    status, code, title = 400, "unknown-event-type", "Unknown event type"


def _networks(settings: Settings) -> list[webhooks.IpNetwork]:
    return [ipaddress.ip_network(n, strict=False) for n in settings.webhook_allowed_networks]


#: (host, port) -> the addresses it resolves to.
Resolver = Callable[[str, int], Awaitable[list[str]]]
#: One answer whatever the reason (no such host, a private address...): the subscription API
#: and the delivery log must not tell a partner what lies inside the council's network.
REFUSED = "The endpoint's host must resolve to public internet addresses only."
#: Every transport failure (refused, reset, timed out, TLS...) reads the same in the log.
UNREACHABLE = "The endpoint could not be reached."


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Endpoint:
    """A checked endpoint: the connection goes to ``address``, with ``host`` kept for the
    Host header, TLS SNI and certificate verification."""

    host: str
    port: int
    address: str


async def check_endpoint(
    url: str, settings: Settings, *, resolve: Resolver | None = None
) -> Endpoint:
    """Resolve the URL's host once and refuse it unless every address is globally routable
    (or allow-listed) and the port is 443 (any port inside an allow-listed network)."""
    try:
        webhooks.check_url(url, require_https=settings.webhook_require_https)
        parsed = httpx.URL(url)
        host, port = (
            parsed.raw_host.decode("ascii").lower(),
            parsed.port or (443 if parsed.scheme == "https" else 80),
        )
        addresses = await (resolve or system_resolve)(host, port)
    except webhooks.EndpointRefused as exc:
        raise EndpointRefusedProblem(str(exc)) from None
    except (OSError, ValueError, UnicodeError, httpx.InvalidURL):  # NUL bytes, IDNA errors
        raise EndpointRefusedProblem(REFUSED) from None
    allowed = _networks(settings)
    try:
        if not addresses or any(webhooks.refused_address(a, allowed) for a in addresses):
            raise EndpointRefusedProblem(REFUSED)
    except ValueError:  # not an IP address
        raise EndpointRefusedProblem(REFUSED) from None
    if any(webhooks.refused_port(a, port, allowed) for a in addresses):
        raise EndpointRefusedProblem(f"The endpoint must use port {webhooks.WEBHOOK_PORT}.")
    return Endpoint(host=host, port=port, address=addresses[0])


_PINNED: ContextVar[Endpoint | None] = ContextVar("webhook_endpoint", default=None)


class _PinnedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Connects to the address :func:`check_endpoint` checked for this delivery, never to
    a fresh DNS answer (no rebinding between the check and the connection)."""

    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pinned = _PINNED.get()
        if pinned is None or (pinned.host, pinned.port) != (host.lower(), port):
            raise httpcore.ConnectError("not a checked webhook endpoint")
        return await self._backend.connect_tcp(
            pinned.address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks use TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport whose connections go only to checked addresses. The URL keeps the
    host name, so the Host header, SNI and certificate verification are for that name; the
    pool is keyed by it, and a pooled connection was opened to an address checked then."""

    def __init__(self, *, verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(verify=verify, trust_env=False)
        # httpx has no public way to give its pool a network backend: replace the pool.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            network_backend=_PinnedNetworkBackend(),
        )


def event_types_of(names: Sequence[str]) -> list[str]:
    """Full CloudEvents types; a short name (``ServicePublished``) is accepted too."""
    short = {cls.event_name: t for t, cls in WEBHOOK_EVENTS.items()}
    out: list[str] = []
    for name in names:
        full = name if name in WEBHOOK_EVENTS else short.get(name)
        if full is None:
            raise UnknownWebhookEvent(
                f"Not an event partners can subscribe to: {name}", available=sorted(WEBHOOK_EVENTS)
            )
        if full not in out:
            out.append(full)
    if not out:
        raise UnknownWebhookEvent("Name at least one event type.", available=sorted(WEBHOOK_EVENTS))
    return out


def missing_scopes(event_types: Sequence[str], scopes: frozenset[str]) -> list[str]:
    """The scopes (of :data:`EVENT_SCOPES`) a key with ``scopes`` lacks for ``event_types``
    (full CloudEvents types); ``*`` has them all."""
    if "*" in scopes:
        return []
    return sorted({EVENT_SCOPES[t] for t in event_types} - scopes)


def partner_data(event_type: str, event: Event) -> dict[str, Any]:
    """What a partner's webhook carries of ``event``: its allow-listed fields only."""
    allowed = PARTNER_FIELDS.get(event_type, frozenset())
    data: dict[str, Any] = json.loads(event.model_dump_json(include=set(allowed)))
    return data


async def create_subscription(
    webhooks_repo: WebhookRepository,
    *,
    owner: str,
    url: str,
    event_types: Sequence[str],
    settings: Settings,
    scopes: frozenset[str] | None = None,
) -> WebhookSubscription:
    """``scopes``: a partner's (each event type needs its scope); None: an admin's."""
    types = event_types_of(event_types)
    missing = missing_scopes(types, scopes) if scopes is not None else []
    if missing:
        raise Forbidden(
            "Your credential's scopes do not cover these event types.", required_scopes=missing
        )
    await check_endpoint(url, settings)
    now = datetime.now(UTC)
    sub = WebhookSubscription(
        owner=owner,
        url=url,
        event_types="\n".join(types),
        secret=webhooks.new_secret(),
        created_at=now,
        updated_at=now,
    )
    await webhooks_repo.insert(sub)
    return sub


async def list_subscriptions(
    webhooks_repo: WebhookRepository, owner: str | None
) -> list[WebhookSubscription]:
    """``owner``'s subscriptions (None: everyone's), oldest first."""
    return await webhooks_repo.subscriptions(owner)


async def get_subscription(
    webhooks_repo: WebhookRepository, subscription_id: uuid.UUID, owner: str | None
) -> WebhookSubscription:
    sub = await webhooks_repo.get(subscription_id)
    if sub is None or (owner is not None and sub.owner != owner):
        raise NotFound("No such webhook subscription.")
    return sub


async def delete_subscription(
    webhooks_repo: WebhookRepository, subscription_id: uuid.UUID, owner: str | None
) -> None:
    """The subscription and its delivery log."""
    sub = await get_subscription(webhooks_repo, subscription_id, owner)
    await webhooks_repo.delete(sub)


async def rotate_secret(
    webhooks_repo: WebhookRepository, subscription_id: uuid.UUID, owner: str | None
) -> WebhookSubscription:
    sub = await get_subscription(webhooks_repo, subscription_id, owner)
    now = datetime.now(UTC)
    sub.previous_secret, sub.previous_secret_until = sub.secret, now + ROTATION_OVERLAP
    sub.secret, sub.updated_at = webhooks.new_secret(), now
    await webhooks_repo.save(sub)
    return sub


async def enable(
    webhooks_repo: WebhookRepository,
    subscription_id: uuid.UUID,
    owner: str | None,
    *,
    settings: Settings,
) -> WebhookSubscription:
    """Active again (its endpoint checked again)."""
    sub = await get_subscription(webhooks_repo, subscription_id, owner)
    await check_endpoint(sub.url, settings)
    sub.status, sub.disabled_reason, sub.failing_since = "active", None, None
    sub.updated_at = datetime.now(UTC)
    await webhooks_repo.save(sub)
    return sub


async def deliveries(
    webhooks_repo: WebhookRepository,
    subscription_id: uuid.UUID,
    owner: str | None,
    *,
    limit: int = 100,
) -> list[WebhookDelivery]:
    """The delivery log, newest first."""
    sub = await get_subscription(webhooks_repo, subscription_id, owner)
    return await webhooks_repo.deliveries(sub.id, limit=limit)


async def replay(
    webhooks_repo: WebhookRepository,
    subscription_id: uuid.UUID,
    delivery_id: str,
    owner: str | None,
) -> WebhookDelivery:
    """Send a delivery again (same webhook-id): pending, its attempts from 0."""
    sub = await get_subscription(webhooks_repo, subscription_id, owner)
    delivery = await webhooks_repo.get_delivery(delivery_id)
    if delivery is None or delivery.subscription_id != sub.id:
        raise NotFound("No such delivery.")
    delivery.status, delivery.attempts, delivery.next_attempt_at = "pending", 0, None
    delivery.updated_at = datetime.now(UTC)
    await webhooks_repo.save_delivery(delivery)
    return delivery


async def fan_out(event: Event, ctx: MessageContext) -> None:
    """One delivery per active subscription to this event's type (in the handler's
    transaction: the inbox makes it once per event)."""
    await fan_out_event(
        WebhookRepository(ctx.uow.db),
        event,
        event_type=ctx.envelope.type,
        event_id=ctx.envelope.id,
        event_time=ctx.envelope.time,
    )


async def fan_out_event(
    webhooks_repo: WebhookRepository,
    event: Event,
    *,
    event_type: str,
    event_id: str,
    event_time: datetime,
) -> None:
    subs = await webhooks_repo.active()
    now = datetime.now(UTC)
    payload = json.dumps(
        {
            "type": event_type,
            "timestamp": event_time.isoformat(),
            "id": event_id,
            "data": partner_data(event_type, event),
        }
    )
    for sub in subs:
        if event_type not in sub.event_types.splitlines():
            continue
        webhooks_repo.add_delivery(
            WebhookDelivery(
                id="msg_" + uuid.uuid5(sub.id, event_id).hex,
                subscription_id=sub.id,
                event_id=event_id,
                event_type=event_type,
                payload=payload,
                status="pending",
                created_at=now,
                updated_at=now,
            )
        )


class WebhookDeliveryWorker(PacedWorker):
    """Delivers due webhook deliveries; wakes on every commit."""

    name = "webhook-delivery"
    wake_on = frozenset({WebhookDelivery.__tablename__})

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
        # trust_env=False: no proxy from the environment may take over the transport.
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
            claimed = await WebhookRepository(uow.db).claim_due(
                now=now,
                stale=now - timedelta(seconds=self.settings.sending_reclaim_seconds),
                limit=self.settings.delivery_batch_size,
            )
        if not claimed:
            return 0
        async with self.database.read_session() as db:
            subs = await WebhookRepository(db).by_ids(row.subscription_id for row in claimed)
        results = await asyncio.gather(
            *(self._attempt(row, subs.get(row.subscription_id)) for row in claimed)
        )
        async with UnitOfWork(self.database, source=self.settings.cloudevents_source) as uow:
            retries = await record_attempts(
                WebhookRepository(uow.db),
                list(zip(claimed, results, strict=True)),
                now=datetime.now(UTC),
                settings=self.settings,
            )
        for seconds in retries:
            self.wake_in(seconds)
        if self.metrics:
            for outcome, _, _ in results:
                self.metrics.deliveries.labels("webhook", outcome).inc()
        return len(claimed)

    async def _attempt(self, row: Any, sub: WebhookSubscription | None) -> Attempt:
        """(outcome, HTTP status, error); outcome: succeeded, gone, retry, refused, dropped."""
        if sub is None or sub.status != "active":
            return "dropped", None, "subscription disabled"
        try:  # again: DNS may have changed; the connection goes to what is checked now
            endpoint = await check_endpoint(sub.url, self.settings, resolve=self.resolve)
        except EndpointRefusedProblem as exc:
            return "refused", None, exc.detail
        now = datetime.now(UTC)
        secrets_in_use = [sub.secret] + (
            [sub.previous_secret]
            if sub.previous_secret and sub.previous_secret_until and sub.previous_secret_until > now
            else []
        )
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": row.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": webhooks.signature_header(
                secrets_in_use, row.id, timestamp, row.payload
            ),
            "user-agent": "mk-notifications-webhooks/1",
        }
        pinned = _PINNED.set(endpoint)
        try:  # the body is never read: a partner's answer is its status code
            async with self.client.stream(
                "POST", sub.url, content=row.payload.encode(), headers=headers
            ) as response:
                pass
        except httpx.HTTPError:
            return "retry", None, UNREACHABLE  # not which failure: no port scanning
        finally:
            _PINNED.reset(pinned)
        if response.is_success:
            return "succeeded", response.status_code, None
        if response.status_code == 410:
            return "gone", 410, "410 Gone"
        return "retry", response.status_code, f"HTTP {response.status_code}"


#: (outcome, HTTP status, error) of an attempt; outcome: succeeded, gone, retry, refused,
#: dropped.
Attempt = tuple[str, int | None, str | None]


async def record_attempts(
    webhooks_repo: WebhookRepository,
    results: list[tuple[Any, Attempt]],
    *,
    now: datetime,
    settings: Settings,
) -> list[float]:
    """Record each claimed delivery's attempt (and its subscription's health: failing
    since, disabled on 410 or failing too long); the delays (seconds) of the retries."""
    scale = settings.webhook_retry_scale
    retries: list[float] = []
    for row, (outcome, status_code, error) in results:
        values: dict[str, Any] = {
            "updated_at": now,
            "last_status_code": status_code,
            "last_error": (error or "")[:500] or None,
        }
        sub = await webhooks_repo.get(row.subscription_id)
        if outcome == "succeeded":
            values.update(status="succeeded", delivered_at=now)
            if sub is not None and sub.failing_since is not None:
                sub.failing_since = None
        elif outcome == "retry":
            delay = webhooks.next_retry(row.attempts)
            values.update(
                status="pending" if delay else "failed",
                next_attempt_at=now + delay * scale if delay else None,
            )
            if delay:
                retries.append((delay * scale).total_seconds())
            if sub is not None:
                sub.failing_since = sub.failing_since or now
                limit = timedelta(seconds=settings.webhook_disable_after_seconds)
                if now - sub.failing_since >= limit:
                    sub.status, sub.disabled_reason = "disabled", "failing for too long"
        else:
            values.update(status="failed")
            if outcome == "gone" and sub is not None:
                sub.status, sub.disabled_reason = "disabled", "410 Gone"
        if sub is not None:
            sub.updated_at = now
            await webhooks_repo.save(sub)
        await webhooks_repo.update_delivery(row.id, **values)
    return retries
