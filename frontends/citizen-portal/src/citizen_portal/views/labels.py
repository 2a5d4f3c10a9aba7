"""Words and dates as GOV.UK pages write them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")

#: Status → (label, tag colour).
STATUSES = {
    "open": ("Received", "blue"),
    "investigating": ("Investigating", "light-blue"),
    "action_scheduled": ("Action scheduled", "purple"),
    "in_progress": ("In progress", "purple"),
    "fixed": ("Fixed", "green"),
    "closed": ("Closed", "grey"),
    "duplicate": ("Duplicate", "grey"),
    "not_councils_responsibility": ("Not the council's responsibility", "grey"),
    "no_further_action": ("No further action", "grey"),
    "internal_referral": ("Passed to another team", "yellow"),
    "confirmed": ("Booked", "green"),
    "waitlisted": ("On the waiting list", "yellow"),
    "cancelled": ("Cancelled", "grey"),
}


def status_label(status: str) -> tuple[str, str]:
    return STATUSES.get(status, (status.replace("_", " ").capitalize(), "grey"))


def when(value: str | None) -> str:
    """``2026-12-01T10:00:00Z`` → ``Tuesday 1 December 2026 at 10am`` (London time)."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(LONDON)
    except ValueError:
        return value
    hour = moment.strftime("%-I")
    minutes = "" if moment.minute == 0 else moment.strftime(":%M")
    suffix = "am" if moment.hour < 12 else "pm"
    return f"{moment.strftime('%A %-d %B %Y')} at {hour}{minutes}{suffix}"
