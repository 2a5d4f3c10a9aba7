"""Reports for staff: participants, completions, devices lent and on loan, vouchers used, by
programme, ward and month. Counted from enrolments, loans and vouchers, which erasure keeps
(pseudonymised), so erasing a participant does not change the figures.

* enrolment figures: ward = the venue's ward, month = the month the session starts;
* device and voucher figures: ward is empty (they are not tied to a venue), month = the month
  the loan started or the voucher was allocated; "on loan" counts loans still open.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from inclusion.persistence.repositories import Repositories

Key = tuple[uuid.UUID, str, str]  # programme, ward, month


@dataclass
class Figures:
    programme_id: uuid.UUID
    programme_title: str
    ward: str
    month: str
    participants: set[uuid.UUID] = field(default_factory=set)
    enrolments: int = 0
    completions: int = 0
    devices_loaned: int = 0
    devices_on_loan: int = 0
    vouchers_allocated: int = 0

    def row(self) -> dict[str, object]:
        return {
            "programme_id": self.programme_id,
            "programme_title": self.programme_title,
            "ward": self.ward,
            "month": self.month,
            "participants": len(self.participants),
            "enrolments": self.enrolments,
            "completions": self.completions,
            "devices_loaned": self.devices_loaned,
            "devices_on_loan": self.devices_on_loan,
            "vouchers_allocated": self.vouchers_allocated,
        }


def _month(at: datetime) -> str:
    return at.strftime("%Y-%m")


async def figures(
    *, repos: Repositories, programme_id: uuid.UUID | None = None
) -> list[dict[str, object]]:
    titles = await repos.programmes.titles()
    cells: dict[Key, Figures] = {}

    def cell(pid: uuid.UUID, ward: str, month: str) -> Figures:
        key = (pid, ward, month)
        if key not in cells:
            cells[key] = Figures(pid, titles.get(pid, ""), ward, month)
        return cells[key]

    enrolments = await repos.reports.confirmed_enrolments()
    for pid, ward, starts_at, participant_id, attended in enrolments:
        figures_ = cell(pid, ward, _month(starts_at))
        figures_.participants.add(participant_id)
        figures_.enrolments += 1
        figures_.completions += bool(attended)

    loans = await repos.reports.programme_loans()
    for pid, loaned_at, returned_at, participant_id in loans:
        figures_ = cell(pid, "", _month(loaned_at))
        figures_.participants.add(participant_id)
        figures_.devices_loaned += 1
        figures_.devices_on_loan += returned_at is None

    vouchers = await repos.reports.allocated_vouchers()
    for pid, allocated_at, participant_id in vouchers:
        figures_ = cell(pid, "", _month(allocated_at))
        figures_.participants.add(participant_id)
        figures_.vouchers_allocated += 1

    rows = [
        f.row() for f in cells.values() if programme_id is None or f.programme_id == programme_id
    ]
    rows.sort(key=lambda r: (str(r["programme_title"]), str(r["month"]), str(r["ward"])))
    return rows
