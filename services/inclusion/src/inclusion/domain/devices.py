"""Device lending: a device is lent only when wiped since its last loan, never on two loans
at once, and comes back by its due date (or is reported overdue, once)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from servicekit.errors import Conflict, DomainError


class Condition(StrEnum):
    NEW = "new"
    GOOD = "good"
    FAIR = "fair"
    POOR = "poor"
    BROKEN = "broken"


class DeviceOnLoan(Conflict):
    code, title = "device-already-on-loan", "Device is already on loan"


class DeviceNotOnLoan(Conflict):
    code, title = "device-not-on-loan", "Device is not on loan"


class DeviceNotWiped(Conflict):
    code, title = "device-not-wiped", "Device has not been wiped since its last loan"


class DeviceBroken(Conflict):
    code, title = "device-broken", "Device is broken"


class DuplicateSerial(Conflict):
    code, title = "duplicate-serial", "A device with this serial number exists"


class DueDateInThePast(DomainError):
    status, code, title = 422, "due-date-in-the-past", "Due date is in the past"


def check_lendable(
    *,
    condition: str,
    wiped_at: datetime | None,
    last_returned_at: datetime | None,
    on_loan: bool,
    due_at: datetime,
    now: datetime,
) -> None:
    if on_loan:
        raise DeviceOnLoan("This device is on another loan; it must be returned first.")
    if condition == Condition.BROKEN:
        raise DeviceBroken("A broken device cannot be lent.")
    if wiped_at is None or (last_returned_at is not None and wiped_at < last_returned_at):
        raise DeviceNotWiped(
            "Wipe the device (and record it) before lending it again.", rule="wiped-before-loan"
        )
    if due_at <= now:
        raise DueDateInThePast("The due date must be in the future.", rule="due-in-future")
