"""application/notify_services.py with a fake repository: services, keys, revocation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from notifications.application import notify_services
from notifications.config import Settings
from notifications.domain.notify import KeyType, split_api_key
from servicekit.errors import NotFound


async def test_the_default_service_is_created_once(services_repo: Any, settings: Settings) -> None:
    first = await notify_services.ensure_default_service(services_repo, settings)
    again = await notify_services.ensure_default_service(services_repo, settings)
    assert first is again and first.id == settings.notify_default_service_id
    assert first.email_from == "no-reply@notifications.milton-keynes.example"
    assert len(services_repo.services) == 1


async def test_a_registered_service_keeps_its_team_normalised(
    services_repo: Any, settings: Settings
) -> None:
    service = await notify_services.register_service(
        services_repo,
        name="Housing",
        created_by="admin-1",
        settings=settings,
        team_members=["Ann@Example.com", "07700 900123", "ann@example.com"],
    )
    assert notify_services.team_of(service) == ["ann@example.com", "+447700900123"]
    assert service.sms_sender == settings.sms_sender
    with pytest.raises(notify_services.InvalidTeamMember, match=r"team_members\[1\]"):
        notify_services.team_members_of(["a@b.example", "not a member"])
    assert await notify_services.list_services(services_repo) == [service]


async def test_a_key_is_shown_whole_once_and_revoked_idempotently(
    services_repo: Any, settings: Settings
) -> None:
    service = await notify_services.ensure_default_service(services_repo, settings)
    key, api_key = await notify_services.issue_api_key(
        services_repo,
        service_id=service.id,
        name="Pay Roll",
        key_type=KeyType.TEAM,
        created_by="admin-1",
    )
    assert api_key.startswith(f"pay_roll-{service.id}-")
    assert split_api_key(api_key) == (str(service.id), key.secret)
    assert await notify_services.list_api_keys(services_repo, service_id=service.id) == [key]
    revoked, now = await notify_services.revoke_api_key(
        services_repo, service_id=service.id, key_id=key.id, revoked_by="admin-2"
    )
    assert now and revoked.revoked_by == "admin-2"
    again, now = await notify_services.revoke_api_key(
        services_repo, service_id=service.id, key_id=key.id, revoked_by="admin-3"
    )
    assert not now and again.revoked_by == "admin-2"


async def test_unknown_services_and_other_services_keys_are_not_found(
    services_repo: Any, settings: Settings
) -> None:
    service = await notify_services.ensure_default_service(services_repo, settings)
    other = await notify_services.register_service(
        services_repo, name="Other", team_members=[], created_by=None, settings=settings
    )
    key, _ = await notify_services.issue_api_key(
        services_repo, service_id=other.id, name="k", key_type=KeyType.LIVE, created_by=None
    )
    with pytest.raises(NotFound):
        await notify_services.get_api_key(services_repo, service_id=service.id, key_id=key.id)
    with pytest.raises(NotFound):
        await notify_services.issue_api_key(
            services_repo, service_id=uuid.uuid4(), name="k", key_type=KeyType.LIVE, created_by=None
        )
