"""application/webhooks.py's commands with a fake repository: subscribing (event types,
scopes, endpoints), rotation, replay, the fan-out and the record of attempts."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.citizen_services import ServicePublished, ServiceRequestStatusChanged
from notifications.application import webhooks as app
from notifications.config import Settings
from servicekit.errors import Forbidden, NotFound

URL = "https://93.184.216.34/hook"  # an address literal: no DNS in a unit test
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
PUBLISHED = ServicePublished.event_type()
STATUS = ServiceRequestStatusChanged.event_type()


async def _subscribe(
    webhooks_repo: Any, settings: Settings, *types: str, owner: str = "partner-1"
) -> Any:
    return await app.create_subscription(
        webhooks_repo, owner=owner, url=URL, event_types=list(types), settings=settings
    )


async def test_short_names_scopes_and_private_endpoints(
    webhooks_repo: Any, settings: Settings
) -> None:
    sub = await _subscribe(webhooks_repo, settings, "ServicePublished", PUBLISHED)
    assert sub.event_types.splitlines() == [PUBLISHED] and sub.secret.startswith("whsec_")
    with pytest.raises(app.UnknownWebhookEvent):
        await _subscribe(webhooks_repo, settings, "CitizenErasureRequested")
    with pytest.raises(Forbidden) as refused:
        await app.create_subscription(
            webhooks_repo,
            owner="p",
            url=URL,
            settings=settings,
            event_types=[STATUS],
            scopes=frozenset({app.CATALOGUE_SCOPE}),
        )
    assert refused.value.extensions["required_scopes"] == [app.SERVICE_REQUESTS_SCOPE]
    with pytest.raises(app.EndpointRefusedProblem):
        await app.create_subscription(
            webhooks_repo,
            owner="p",
            url="https://10.0.0.1/x",
            event_types=[PUBLISHED],
            settings=settings,
        )
    assert list(webhooks_repo.subs) == [sub.id]


async def test_a_partner_sees_and_changes_only_its_own(
    webhooks_repo: Any, settings: Settings
) -> None:
    mine = await _subscribe(webhooks_repo, settings, PUBLISHED)
    theirs = await _subscribe(webhooks_repo, settings, PUBLISHED, owner="partner-2")
    assert await app.list_subscriptions(webhooks_repo, "partner-1") == [mine]
    assert len(await app.list_subscriptions(webhooks_repo, None)) == 2  # an admin
    with pytest.raises(NotFound):
        await app.rotate_secret(webhooks_repo, theirs.id, "partner-1")
    old = mine.secret
    rotated = await app.rotate_secret(webhooks_repo, mine.id, "partner-1")
    assert rotated.previous_secret == old and rotated.secret != old
    await app.delete_subscription(webhooks_repo, theirs.id, None)
    assert list(webhooks_repo.subs) == [mine.id]


async def test_the_fan_out_gives_each_interested_subscription_one_delivery(
    webhooks_repo: Any, settings: Settings
) -> None:
    wanted = await _subscribe(webhooks_repo, settings, PUBLISHED)
    await _subscribe(webhooks_repo, settings, STATUS)
    disabled = await _subscribe(webhooks_repo, settings, PUBLISHED)
    disabled.status = "disabled"
    event = ServicePublished(
        service_id=uuid.uuid4(),
        service_code="bins",
        slug="bins",
        name="Bins",
        entry_version=1,
        occurred_at=NOW,
        published_by="staff-secret",
    )
    await app.fan_out_event(
        webhooks_repo, event, event_type=PUBLISHED, event_id="ev-1", event_time=NOW
    )
    [delivery] = webhooks_repo.log.values()
    assert delivery.subscription_id == wanted.id and delivery.status == "pending"
    assert delivery.id == "msg_" + uuid.uuid5(wanted.id, "ev-1").hex
    payload = json.loads(delivery.payload)
    assert payload["type"] == PUBLISHED and "published_by" not in payload["data"]
    replayed = await app.replay(webhooks_repo, wanted.id, delivery.id, "partner-1")
    assert (replayed.status, replayed.attempts) == ("pending", 0)
    assert await app.deliveries(webhooks_repo, wanted.id, "partner-1") == [delivery]
    with pytest.raises(NotFound):
        await app.replay(webhooks_repo, disabled.id, delivery.id, "partner-1")


async def test_attempts_are_recorded_and_failing_subscriptions_disabled(webhooks_repo: Any) -> None:
    settings = Settings(environment="test", webhook_disable_after_seconds=3600)
    ok, flaky, gone = [await _subscribe(webhooks_repo, settings, PUBLISHED) for _ in range(3)]
    flaky.failing_since = NOW - timedelta(hours=2)
    for sub in (ok, flaky, gone):
        await app.fan_out_event(
            webhooks_repo,
            ServicePublished(
                service_id=uuid.uuid4(),
                service_code="b",
                slug="b",
                name="B",
                entry_version=1,
                occurred_at=NOW,
            ),
            event_type=PUBLISHED,
            event_id=f"ev-{sub.id}",
            event_time=NOW,
        )

    class Claimed:
        def __init__(self, delivery: Any) -> None:
            self.id, self.subscription_id = delivery.id, delivery.subscription_id
            self.attempts = 1

    claimed = {d.subscription_id: Claimed(d) for d in webhooks_repo.log.values()}
    retries = await app.record_attempts(
        webhooks_repo,
        [
            (claimed[ok.id], ("succeeded", 200, None)),
            (claimed[flaky.id], ("retry", 500, "HTTP 500")),
            (claimed[gone.id], ("gone", 410, "410 Gone")),
        ],
        now=NOW,
        settings=settings,
    )
    status = {d.subscription_id: d.status for d in webhooks_repo.log.values()}
    assert status == {ok.id: "succeeded", flaky.id: "pending", gone.id: "failed"}
    assert len(retries) == 1 and retries[0] > 0
    assert (flaky.status, flaky.disabled_reason) == ("disabled", "failing for too long")
    assert (gone.status, gone.disabled_reason) == ("disabled", "410 Gone")
    assert ok.status == "active" and ok.failing_since is None
    enabled = await app.enable(webhooks_repo, gone.id, None, settings=settings)
    assert (enabled.status, enabled.disabled_reason) == ("active", None)
