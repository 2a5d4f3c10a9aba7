"""In-memory fakes of the notifications repositories and of the unit of work, for unit
tests of ``application/`` without a database (the API and integration tests cover the SQL).

Each fake keeps what the real repository would store, in dicts, with the same methods; a
test gets them as fixtures (``uow``, ``notifications``, ``templates_repo``,
``services_repo``, ``contacts_repo``, ``webhooks_repo``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pytest

from contracts import Event
from notifications.config import Settings
from notifications.domain.notification import Channel, Status
from notifications.persistence.tables import (
    CitizenContact,
    Consent,
    Notification,
    NotifyApiKey,
    NotifyService,
    Template,
    TemplateVersion,
    WebhookDelivery,
    WebhookSubscription,
)


class FakeUow:
    """What a command uses of servicekit's UnitOfWork: ``publish`` (kept in ``events``)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)

    async def flush(self) -> None:
        return None


class FakeTemplateRepository:
    def __init__(self) -> None:
        self.templates: dict[uuid.UUID, Template] = {}
        self.versions: dict[tuple[uuid.UUID, int], TemplateVersion] = {}
        self.detached: list[Any] = []

    async def get(self, template_id: uuid.UUID) -> Template | None:
        return self.templates.get(template_id)

    async def get_version(self, template_id: uuid.UUID, version: int) -> TemplateVersion | None:
        return self.versions.get((template_id, version))

    async def current_version(self, template_id: uuid.UUID) -> Any | None:
        t = self.templates.get(template_id)
        return (
            None
            if t is None
            else _Row(version=t.version, archived=t.archived, service_id=t.service_id)
        )

    async def insert(self, template: Template) -> None:
        self.templates[template.id] = template

    async def add_version(self, template: Template, version: TemplateVersion) -> None:
        self.templates[template.id] = template
        self.versions[(version.template_id, version.version)] = version

    async def list_current(
        self, *, service_id: uuid.UUID | None = None, template_type: str | None = None
    ) -> list[tuple[Template, TemplateVersion]]:
        return [
            (t, self.versions[(t.id, t.version)])
            for t in sorted(self.templates.values(), key=lambda t: t.created_at)
            if not t.archived
            and service_id in (None, t.service_id)
            and template_type in (None, "", t.template_type)
        ]

    def detach(self, *rows: Any) -> None:
        self.detached.extend(rows)


class _Row:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


class FakeNotificationRepository:
    """Rows as dicts (the ``notification`` table's columns) by id."""

    def __init__(self, templates: FakeTemplateRepository | None = None) -> None:
        self.rows: dict[uuid.UUID, dict[str, Any]] = {}
        self.templates = templates
        self.inserted_if_current = 0

    def add(self, notification: Notification) -> None:
        self.rows[notification.id] = notification.model_dump()

    async def insert(self, row: Mapping[str, Any]) -> None:
        self.rows[row["id"]] = {
            **Notification(
                body="",
                created_at=row["created_at"],
                updated_at=row["updated_at"],
                channel=row["channel"],
            ).model_dump(),
            **row,
        }

    async def insert_if_current(
        self,
        row: Mapping[str, Any],
        *,
        template_id: uuid.UUID,
        template_version: int,
        service_id: uuid.UUID,
    ) -> bool:
        t = self.templates.templates.get(template_id) if self.templates else None
        if t is None or t.archived or t.version != template_version or (t.service_id != service_id):
            return False
        self.inserted_if_current += 1
        await self.insert(row)
        return True

    async def claim_due(
        self, channel: Channel, *, now: datetime, stale: datetime, limit: int
    ) -> list[dict[str, Any]]:
        def due(r: dict[str, Any]) -> bool:
            if r["status"] == Status.CREATED.value:
                return r["next_attempt_at"] is None or r["next_attempt_at"] <= now
            return r["status"] == Status.SENDING.value and r["claimed_at"] < stale

        picked = sorted(
            (r for r in self.rows.values() if r["channel"] == channel.value and due(r)),
            key=lambda r: r["created_at"],
        )[:limit]
        for r in picked:
            r.update(
                status=Status.SENDING.value,
                claimed_at=now,
                updated_at=now,
                attempts=r["attempts"] + 1,
            )
        return [dict(r) for r in picked]

    async def mark_delivered(self, ids: Sequence[uuid.UUID], now: datetime) -> None:
        for i in ids:
            self.rows[i].update(
                status=Status.DELIVERED.value, sent_at=now, completed_at=now, updated_at=now
            )

    async def update(self, notification_id: uuid.UUID, **values: Any) -> None:
        self.rows[notification_id].update(values)

    async def get_of_service(
        self, notification_id: uuid.UUID, service_id: uuid.UUID
    ) -> Notification | None:
        r = self.rows.get(notification_id)
        return Notification(**r) if r and r["service_id"] == service_id else None

    async def list_of_service(
        self,
        *,
        service_id: uuid.UUID,
        test_key: bool,
        channels: Sequence[str],
        statuses: Sequence[str],
        reference: str | None,
        older_than: uuid.UUID | None,
        limit: int,
    ) -> list[Notification]:
        self.listed = dict(
            service_id=service_id,
            test_key=test_key,
            channels=channels,
            statuses=statuses,
            reference=reference,
            older_than=older_than,
            limit=limit,
        )
        rows = [
            r
            for r in self.rows.values()
            if r["service_id"] == service_id
            and (r["key_type"] == "test") == test_key
            and (not channels or r["channel"] in channels)
            and (not statuses or r["status"] in statuses)
            and (reference is None or r["reference"] == reference)
        ]
        rows.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
        return [Notification(**r) for r in rows[:limit]]

    def _theirs(self, citizen_id: str, addresses: Sequence[str]) -> list[dict[str, Any]]:
        return [
            r
            for r in self.rows.values()
            if r["citizen_id"] == citizen_id
            or (r["citizen_id"] is None and r["recipient"] in addresses)
        ]

    async def unsent_of_citizen(
        self, citizen_id: str, addresses: Sequence[str]
    ) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self._theirs(citizen_id, addresses)
            if r["status"] == Status.CREATED.value
        ]

    async def fail(self, ids: Sequence[uuid.UUID], *, now: datetime, error: str) -> None:
        for i in ids:
            self.rows[i].update(
                status=Status.TECHNICAL_FAILURE.value,
                completed_at=now,
                updated_at=now,
                last_error=error,
            )

    async def redact_citizen(
        self, citizen_id: str, addresses: Sequence[str], *, blank: Mapping[str, Any], now: datetime
    ) -> int:
        theirs = self._theirs(citizen_id, addresses)
        for r in theirs:
            r.update(blank, citizen_id=None, updated_at=now, redacted_at=r["redacted_at"] or now)
        return len(theirs)

    async def redact_expired(
        self,
        *,
        created_before: datetime,
        statuses: Sequence[str],
        blank: Mapping[str, Any],
        now: datetime,
        limit: int,
    ) -> int:
        picked = [
            r
            for r in self.rows.values()
            if r["redacted_at"] is None
            and r["created_at"] < created_before
            and r["status"] in statuses
        ][:limit]
        for r in picked:
            r.update(blank, redacted_at=now)
        return len(picked)


class FakeNotifyServiceRepository:
    def __init__(self) -> None:
        self.services: dict[uuid.UUID, NotifyService] = {}
        self.api_keys: dict[uuid.UUID, NotifyApiKey] = {}
        self.reads = 0
        self.detached: list[Any] = []
        self.on_commit: list[Callable[[], None]] = []

    async def get(self, service_id: uuid.UUID) -> NotifyService | None:
        self.reads += 1
        return self.services.get(service_id)

    async def insert(self, service: NotifyService) -> None:
        self.services[service.id] = service

    async def all(self) -> list[NotifyService]:
        return sorted(self.services.values(), key=lambda s: (s.created_at, s.id))

    async def keys(self, service_id: uuid.UUID) -> list[NotifyApiKey]:
        return sorted(
            (k for k in self.api_keys.values() if k.service_id == service_id),
            key=lambda k: (k.created_at, k.id),
        )

    async def add_key(self, key: NotifyApiKey) -> None:
        self.api_keys[key.id] = key

    async def get_key(self, key_id: uuid.UUID) -> NotifyApiKey | None:
        return self.api_keys.get(key_id)

    async def find_live_key(
        self,
        service_id: uuid.UUID,
        *,
        key_type: str,
        name: str | None = None,
        secret: str | None = None,
    ) -> NotifyApiKey | None:
        return next(
            (
                k
                for k in self.api_keys.values()
                if k.service_id == service_id
                and k.key_type == key_type
                and k.revoked_at is None
                and name in (None, k.name)
                and secret in (None, k.secret)
            ),
            None,
        )

    async def revoke_key(self, key: NotifyApiKey, *, now: datetime, revoked_by: str | None) -> bool:
        if key.revoked_at is not None:
            return False
        key.revoked_at, key.revoked_by = now, revoked_by
        return True

    def detach(self, *rows: Any) -> None:
        self.detached.extend(rows)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self.on_commit.append(callback)


class FakeContactRepository:
    def __init__(self) -> None:
        self.contacts: dict[str, CitizenContact] = {}
        self.choices: dict[tuple[str, str, str], Consent] = {}

    async def get(self, citizen_id: str) -> CitizenContact | None:
        return self.contacts.get(citizen_id)

    def add(self, contact: CitizenContact) -> None:
        self.contacts[contact.citizen_id] = contact

    async def delete(self, contact: CitizenContact) -> None:
        del self.contacts[contact.citizen_id]

    async def with_pending_token(self, token_hash: str) -> CitizenContact | None:
        return next(
            (c for c in self.contacts.values() if c.pending_email_token == token_hash), None
        )

    async def consents(self, citizen_id: str, topic: str | None = None) -> list[Consent]:
        return [
            c for (who, t, _), c in self.choices.items() if who == citizen_id and topic in (None, t)
        ]

    async def get_consent(self, citizen_id: str, topic: str, channel: str) -> Consent | None:
        return self.choices.get((citizen_id, topic, channel))

    def add_consent(self, consent: Consent) -> None:
        self.choices[(consent.citizen_id, consent.topic, consent.channel)] = consent

    async def delete_consents(self, citizen_id: str) -> None:
        for key in [k for k in self.choices if k[0] == citizen_id]:
            del self.choices[key]

    async def flush(self) -> None:
        return None


class FakeWebhookRepository:
    def __init__(self) -> None:
        self.subs: dict[uuid.UUID, WebhookSubscription] = {}
        self.log: dict[str, WebhookDelivery] = {}

    async def insert(self, sub: WebhookSubscription) -> None:
        self.subs[sub.id] = sub

    async def save(self, sub: WebhookSubscription) -> None:
        self.subs[sub.id] = sub

    async def get(self, subscription_id: uuid.UUID) -> WebhookSubscription | None:
        return self.subs.get(subscription_id)

    async def subscriptions(self, owner: str | None = None) -> list[WebhookSubscription]:
        return sorted(
            (s for s in self.subs.values() if owner in (None, s.owner)), key=lambda s: s.created_at
        )

    async def active(self) -> list[WebhookSubscription]:
        return [s for s in self.subs.values() if s.status == "active"]

    async def by_ids(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, WebhookSubscription]:
        return {i: self.subs[i] for i in set(ids) if i in self.subs}

    async def delete(self, sub: WebhookSubscription) -> None:
        for key in [k for k, d in self.log.items() if d.subscription_id == sub.id]:
            del self.log[key]
        del self.subs[sub.id]

    def add_delivery(self, delivery: WebhookDelivery) -> None:
        self.log[delivery.id] = delivery

    async def get_delivery(self, delivery_id: str) -> WebhookDelivery | None:
        return self.log.get(delivery_id)

    async def save_delivery(self, delivery: WebhookDelivery) -> None:
        self.log[delivery.id] = delivery

    async def deliveries(self, subscription_id: uuid.UUID, *, limit: int) -> list[WebhookDelivery]:
        return sorted(
            (d for d in self.log.values() if d.subscription_id == subscription_id),
            key=lambda d: d.created_at,
            reverse=True,
        )[:limit]

    async def update_delivery(self, delivery_id: str, **values: Any) -> None:
        for name, value in values.items():
            setattr(self.log[delivery_id], name, value)

    async def payloads_containing(self, text: str) -> list[tuple[str, str]]:
        return [(d.id, d.payload) for d in self.log.values() if text in d.payload]


@pytest.fixture
def settings() -> Settings:
    return Settings(environment="test", messaging_enabled=False)


@pytest.fixture
def uow() -> FakeUow:
    return FakeUow()


@pytest.fixture
def templates_repo() -> FakeTemplateRepository:
    return FakeTemplateRepository()


@pytest.fixture
def notifications(templates_repo: FakeTemplateRepository) -> FakeNotificationRepository:
    return FakeNotificationRepository(templates_repo)


@pytest.fixture
def services_repo() -> FakeNotifyServiceRepository:
    return FakeNotifyServiceRepository()


@pytest.fixture
def contacts_repo() -> FakeContactRepository:
    return FakeContactRepository()


@pytest.fixture
def webhooks_repo() -> FakeWebhookRepository:
    return FakeWebhookRepository()
