"""application/contacts.py with fake repositories: preferences, a new email confirmed by a
one-time link, one-click unsubscribe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from notifications.application import contacts
from notifications.config import Settings
from notifications.domain.messages import INCLUSION, SERVICE_REQUESTS


def _link_token(notifications: Any) -> str:
    [row] = [r for r in notifications.rows.values() if r["subject"] == contacts.SUBJECT]
    return str(row["body"].split("token=")[1].split()[0])


async def test_defaults_until_the_citizen_chooses(contacts_repo: Any) -> None:
    shown = await contacts.preferences(contacts_repo, "c-1")
    assert (shown.email, shown.phone, shown.email_pending) == (None, None, None)
    assert {n: (t.email, t.sms) for n, t in shown.topics.items()} == {
        SERVICE_REQUESTS.name: (True, False),
        INCLUSION.name: (True, False),
    }


async def test_a_new_email_waits_for_its_link_and_choices_are_kept(
    uow: Any, contacts_repo: Any, notifications: Any, settings: Settings
) -> None:
    shown = await contacts.change_preferences(
        uow,
        contacts_repo,
        notifications,
        "c-1",
        email="ann@example.com",
        phone="07700 900123",
        settings=settings,
        topics={INCLUSION.name: contacts.ChannelChoices(email=False, sms=True)},
    )
    assert (shown.email, shown.email_pending, shown.phone) == (
        None,
        "ann@example.com",
        "+447700900123",
    )
    assert (shown.topics[INCLUSION.name].email, shown.topics[INCLUSION.name].sms) == (False, True)
    assert [r["recipient"] for r in notifications.rows.values()] == ["ann@example.com"]
    assert [e.status for e in uow.events] == ["created"]
    again = await contacts.change_preferences(  # asked again while the link works: no 2nd
        uow,
        contacts_repo,
        notifications,
        "c-1",
        email="ann@example.com",
        phone=None,
        topics={},
        settings=settings,
    )
    assert again.email_pending == "ann@example.com" and len(notifications.rows) == 1
    token = _link_token(notifications)
    await contacts.check_link(contacts_repo, token)
    await contacts.confirm_email(contacts_repo, token)
    confirmed = await contacts.preferences(contacts_repo, "c-1")
    assert (confirmed.email, confirmed.email_pending) == ("ann@example.com", None)
    with pytest.raises(contacts.InvalidVerificationLink):
        await contacts.confirm_email(contacts_repo, token)  # used once


async def test_an_expired_link_and_bad_input_are_refused(
    uow: Any, contacts_repo: Any, notifications: Any, settings: Settings
) -> None:
    await contacts.change_preferences(
        uow,
        contacts_repo,
        notifications,
        "c-1",
        email="ann@example.com",
        phone=None,
        topics={},
        settings=settings,
    )
    contacts_repo.contacts["c-1"].pending_email_expires_at = datetime(2000, 1, 1, tzinfo=UTC)
    with pytest.raises(contacts.InvalidVerificationLink):
        await contacts.check_link(contacts_repo, _link_token(notifications))
    with pytest.raises(contacts.InvalidPreference, match="Unknown topic"):
        await contacts.change_preferences(
            uow,
            contacts_repo,
            notifications,
            "c-1",
            email=None,
            phone=None,
            settings=settings,
            topics={"nope": contacts.ChannelChoices(email=True, sms=True)},
        )
    with pytest.raises(contacts.InvalidPreference):
        await contacts.change_preferences(
            uow,
            contacts_repo,
            notifications,
            "c-1",
            email=None,
            phone="123",
            topics={},
            settings=settings,
        )


async def test_an_empty_email_removes_it_and_unsubscribe_turns_email_off(
    uow: Any, contacts_repo: Any, notifications: Any, settings: Settings
) -> None:
    await contacts.change_preferences(
        uow,
        contacts_repo,
        notifications,
        "c-1",
        email="ann@example.com",
        phone=None,
        topics={},
        settings=settings,
    )
    removed = await contacts.change_preferences(
        uow, contacts_repo, notifications, "c-1", email="", phone=None, topics={}, settings=settings
    )
    assert (removed.email, removed.email_pending) == (None, None)
    await contacts.unsubscribe(contacts_repo, "c-1", SERVICE_REQUESTS.name)
    shown = await contacts.preferences(contacts_repo, "c-1")
    assert shown.topics[SERVICE_REQUESTS.name].email is False
    assert shown.topics[INCLUSION.name].email is True
