"""Messages the platform sends citizens when things happen: topics, rules, quiet hours.

A rule maps a contract event to a topic and to an email and/or SMS in Notify's template
syntax (rendered by :mod:`notifications.domain.templating`). Consent is per topic and
channel: email is on unless the citizen turned it off (the messages are about their own
requests), SMS is off unless they turned it on. No SMS goes out between 21:00 and 08:00
Europe/London: it is held (not dropped) until 08:00.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from notifications.domain.notification import Channel

LONDON = ZoneInfo("Europe/London")
QUIET_FROM = time(21, 0)
QUIET_UNTIL = time(8, 0)


@dataclass(frozen=True)
class ConsentTopic:
    """What a citizen consents to per channel (not a Kafka topic)."""

    name: str
    description: str
    default: frozenset[Channel]  # channels consented to until the citizen says otherwise


SERVICE_REQUESTS = ConsentTopic(
    "service-requests",
    "Updates on the problems and requests you reported",
    frozenset({Channel.EMAIL}),
)
INCLUSION = ConsentTopic(
    "digital-inclusion",
    "Courses, sessions and device loans you signed up for",
    frozenset({Channel.EMAIL}),
)
TOPICS = {t.name: t for t in (SERVICE_REQUESTS, INCLUSION)}


@dataclass(frozen=True)
class Rule:
    topic: ConsentTopic
    #: The citizens to tell, by subject id, from the event (empty: nobody). Their addresses
    #: are what they gave in their preferences: events carry opaque ids only.
    recipients: Callable[[Any], Iterable[str | None]]
    personalisation: Callable[[Any], dict[str, Any]]
    email_subject: str | None = None
    email_body: str | None = None
    sms_body: str | None = None

    @property
    def channels(self) -> list[Channel]:
        return ([Channel.EMAIL] if self.email_body else []) + (
            [Channel.SMS] if self.sms_body else []
        )


def sms_release_time(now: datetime) -> datetime | None:
    """When an SMS created at ``now`` may go: None (now) or the next 08:00 in London."""
    local = now.astimezone(LONDON)
    if QUIET_UNTIL <= local.time() < QUIET_FROM:
        return None
    day = local.date() if local.time() < QUIET_UNTIL else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_UNTIL, tzinfo=LONDON)


def london_date(moment: datetime) -> str:
    """GOV.UK style, London time: ``Tuesday 1 December 2026``."""
    local = moment.astimezone(LONDON)
    return f"{local:%A} {local.day} {local:%B %Y}"


def london_time(moment: datetime) -> str:
    """GOV.UK style, London time: ``10am``, ``2:30pm``, ``midday``, ``midnight``."""
    local = moment.astimezone(LONDON)
    if (local.hour, local.minute) == (12, 0):
        return "midday"
    if (local.hour, local.minute) == (0, 0):
        return "midnight"
    hour = local.hour % 12 or 12
    minutes = f":{local.minute:02d}" if local.minute else ""
    return f"{hour}{minutes}{'am' if local.hour < 12 else 'pm'}"
