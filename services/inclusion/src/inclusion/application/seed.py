"""Seed data for a first start: realistic Milton Keynes programmes, venues across the wards
and upcoming sessions. Runs when the programme table is empty (``INCLUSION_SEED_DATA``,
on by default; tests turn it off). Ids are stable (uuid5), so two instances starting at once
insert the same rows and the second one's transaction fails harmlessly.

Venues and partners are modelled on the real ones; addresses and coordinates are
approximate and opening times illustrative.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from inclusion.application import programmes, sessions, venues
from inclusion.application.unit_of_work import Transactions
from inclusion.domain.programmes import EligibilityRules, ProgrammeKind, ProgrammeStatus
from servicekit.db import Database

log = logging.getLogger(__name__)
NAMESPACE = uuid.UUID("6f0d6c1e-3a51-4a55-9a8e-5e7d0c1a2b3c")
LONDON = ZoneInfo("Europe/London")


def _id(name: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, name)


def _weekdays(
    opens: str = "09:00",
    closes: str = "17:00",
    saturday: tuple[str, str] | None = ("10:00", "16:00"),
) -> list[dict[str, str]]:
    days = [
        {"day": d, "opens": opens, "closes": closes}
        for d in ("monday", "tuesday", "wednesday", "thursday", "friday")
    ]
    if saturday:
        days.append({"day": "saturday", "opens": saturday[0], "closes": saturday[1]})
    return days


STEP_FREE = "Step-free access, accessible toilet, hearing loop at the help desk."

VENUES: list[venues.CreateVenue] = [
    venues.CreateVenue(
        name="Milton Keynes Central Library",
        address="555 Silbury Boulevard, Milton Keynes",
        postcode="MK9 3HL",
        ward="Central Milton Keynes",
        latitude=52.0431,
        longitude=-0.7563,
        accessibility_notes=STEP_FREE + " Lift to all floors; blue-badge parking behind "
        "the library.",
        opening_times=_weekdays("09:30", "18:00"),
    ),
    venues.CreateVenue(
        name="Civic Offices Customer Service Centre",
        address="1 Saxon Gate East, Milton Keynes",
        postcode="MK9 3EJ",
        ward="Central Milton Keynes",
        latitude=52.0417,
        longitude=-0.7530,
        accessibility_notes=STEP_FREE + " Quiet room on request.",
        opening_times=_weekdays(saturday=None),
    ),
    venues.CreateVenue(
        name="Fishermead Trinity Centre",
        address="Fishermead Boulevard, Fishermead",
        postcode="MK6 2LP",
        ward="Woughton and Fishermead",
        latitude=52.0335,
        longitude=-0.7455,
        accessibility_notes="Ground floor, step-free; accessible toilet.",
        opening_times=_weekdays("10:00", "16:00", None),
    ),
    venues.CreateVenue(
        name="Bradwell Village Community Hub",
        address="Vicarage Road, Bradwell Village",
        postcode="MK13 9AQ",
        ward="Bradwell",
        latitude=52.0505,
        longitude=-0.7870,
        accessibility_notes="Ramp at the side entrance; accessible toilet.",
        opening_times=_weekdays("10:00", "15:00", None),
    ),
    venues.CreateVenue(
        name="Westcroft Library",
        address="Westcroft District Centre, Westcroft",
        postcode="MK4 4EN",
        ward="Shenley Brook End",
        latitude=52.0120,
        longitude=-0.8050,
        accessibility_notes=STEP_FREE,
        opening_times=_weekdays("10:00", "17:00"),
    ),
    venues.CreateVenue(
        name="Kingston Library",
        address="Kingston Centre, Tower Drive, Kingston",
        postcode="MK10 0AH",
        ward="Broughton",
        latitude=52.0335,
        longitude=-0.6945,
        accessibility_notes=STEP_FREE + " Free parking.",
        opening_times=_weekdays(),
    ),
    venues.CreateVenue(
        name="Olney Library",
        address="Olney Centre, High Street, Olney",
        postcode="MK46 4EF",
        ward="Olney",
        latitude=52.1530,
        longitude=-0.7015,
        accessibility_notes="Step-free from the car park; no hearing loop.",
        opening_times=_weekdays("10:00", "17:00"),
    ),
    venues.CreateVenue(
        name="Stony Stratford Library",
        address="Church Street, Stony Stratford",
        postcode="MK11 1BD",
        ward="Stony Stratford",
        latitude=52.0575,
        longitude=-0.8535,
        accessibility_notes="Ground floor only is step-free.",
        opening_times=_weekdays(),
    ),
    venues.CreateVenue(
        name="Wolverton Library",
        address="Church Street, Wolverton",
        postcode="MK12 5LG",
        ward="Wolverton",
        latitude=52.0625,
        longitude=-0.8105,
        accessibility_notes=STEP_FREE,
        opening_times=_weekdays(),
    ),
    venues.CreateVenue(
        name="Newport Pagnell Library",
        address="High Street, Newport Pagnell",
        postcode="MK16 8AN",
        ward="Newport Pagnell South",
        latitude=52.0860,
        longitude=-0.7225,
        accessibility_notes=STEP_FREE,
        opening_times=_weekdays(),
    ),
    venues.CreateVenue(
        name="Lakes Estate Community Hub",
        address="Serpentine Court, Water Eaton, Bletchley",
        postcode="MK2 3QL",
        ward="Bletchley East",
        latitude=51.9875,
        longitude=-0.7335,
        accessibility_notes="Step-free; large-print guides.",
        opening_times=_weekdays("09:30", "15:30", None),
    ),
    venues.CreateVenue(
        name="West Bletchley Community Centre",
        address="Rickley Lane, West Bletchley",
        postcode="MK3 6EW",
        ward="Bletchley West",
        latitude=51.9975,
        longitude=-0.7610,
        accessibility_notes="Step-free main hall; accessible toilet.",
        opening_times=_weekdays("09:00", "21:00"),
    ),
    venues.CreateVenue(
        name="Stantonbury Community Hub",
        address="Purbeck, Stantonbury",
        postcode="MK14 6BL",
        ward="Stantonbury",
        latitude=52.0655,
        longitude=-0.7810,
        accessibility_notes="Step-free; hearing loop.",
        opening_times=_weekdays("10:00", "16:00", None),
    ),
]
VENUES = [venues.CreateVenue(**{**v.__dict__, "id": _id("venue:" + v.name)}) for v in VENUES]

MK_RESIDENT = EligibilityRules(lives_in_milton_keynes=True)
PROGRAMMES: list[programmes.CreateProgramme] = [
    programmes.CreateProgramme(
        title="Getting started online",
        kind=ProgrammeKind.DIGITAL_SKILLS_COURSE,
        delivered_by="Milton Keynes City Council Libraries",
        description="Six friendly weekly sessions on the Essential Digital Skills: using a "
        "device, email and video calls, staying safe online, online forms and "
        "GOV.UK services. Laptops provided.",
        eligibility=EligibilityRules(min_age=16, lives_in_milton_keynes=True),
    ),
    programmes.CreateProgramme(
        title="Device lending library",
        kind=ProgrammeKind.DEVICE_LENDING,
        delivered_by="Milton Keynes City Council with the National Device Bank",
        description="Borrow a wiped, refurbished laptop or tablet for up to 12 weeks, with "
        "help to set it up.",
        eligibility=EligibilityRules(
            min_age=18, lives_in_milton_keynes=True, receives_benefits=True, no_device_at_home=True
        ),
    ),
    programmes.CreateProgramme(
        title="Free mobile data (National Databank)",
        kind=ProgrammeKind.CONNECTIVITY,
        delivered_by="Community Action: MK with Good Things Foundation",
        description="A free SIM with mobile data, calls and texts for people who cannot "
        "afford to get online.",
        eligibility=EligibilityRules(
            min_age=18, lives_in_milton_keynes=True, no_connection_at_home=True
        ),
    ),
    programmes.CreateProgramme(
        title="Digital Champions drop-in",
        kind=ProgrammeKind.DROP_IN_HELP,
        delivered_by="MK Digital Champions network",
        description="Bring your phone, tablet or laptop: volunteers help with anything from "
        "setting up email to booking a GP appointment online.",
        eligibility=EligibilityRules(),
    ),
]
PROGRAMMES = [
    programmes.CreateProgramme(**{**p.__dict__, "id": _id("programme:" + p.title)})
    for p in PROGRAMMES
]

#: (programme index, venue index, weekday, start hour, hours, capacity)
TIMETABLE = [
    (0, 0, 1, 10, 2, 12),
    (0, 4, 3, 14, 2, 10),
    (0, 10, 2, 10, 2, 8),
    (1, 0, 4, 13, 2, 15),
    (1, 11, 0, 10, 3, 10),
    (2, 1, 2, 10, 3, 20),
    (2, 2, 4, 10, 2, 15),
    (3, 0, 5, 10, 3, 25),
    (3, 2, 1, 13, 2, 15),
    (3, 3, 3, 10, 2, 12),
    (3, 5, 0, 14, 2, 12),
    (3, 6, 2, 10, 2, 10),
    (3, 7, 4, 14, 2, 10),
    (3, 8, 1, 14, 2, 10),
    (3, 9, 3, 14, 2, 10),
    (3, 12, 0, 10, 2, 10),
]


def upcoming_sessions(now: datetime, weeks: int = 4) -> list[sessions.ScheduleSession]:
    found = []
    today = now.astimezone(LONDON).date()
    for week in range(weeks):
        for p, v, weekday, hour, hours, capacity in TIMETABLE:
            day = today + timedelta(days=1 + (weekday - today.weekday() - 1) % 7 + 7 * week)
            starts = datetime.combine(day, time(hour), LONDON).astimezone(UTC)
            found.append(
                sessions.ScheduleSession(
                    programme_id=PROGRAMMES[p].id,  # type: ignore[arg-type]
                    venue_id=VENUES[v].id,  # type: ignore[arg-type]
                    starts_at=starts,
                    ends_at=starts + timedelta(hours=hours),
                    capacity=capacity,
                    id=_id(f"session:{p}:{v}:{day.isoformat()}"),
                )
            )
    return found


async def seed_if_empty(database: Database, *, source: str) -> bool:
    """Insert the seed data when there is no programme yet; True when it did."""
    return await seed(Transactions(database, source=source))


async def seed(tx: Transactions) -> bool:
    """:func:`seed_if_empty` in one unit of work of ``tx``."""
    try:
        async with tx.unit_of_work() as uow:
            if await uow.programmes.count():
                return False
            for venue in VENUES:
                await venues.create_venue(uow=uow, command=venue)
            for programme in PROGRAMMES:
                await programmes.create_programme(uow=uow, command=programme)
            await uow.flush()
            for programme in PROGRAMMES:
                assert programme.id is not None
                await programmes.change_programme_status(
                    uow=uow,
                    command=programmes.ChangeProgrammeStatus(
                        programme_id=programme.id, status=ProgrammeStatus.PUBLISHED, actor="seed"
                    ),
                )
            await uow.flush()
            for session in upcoming_sessions(datetime.now(UTC)):
                await sessions.schedule_session(uow=uow, command=session)
            await uow.flush()
    except IntegrityError:  # another instance seeded at the same moment (rolled back)
        return False
    log.info("seeded %d programmes and %d venues", len(PROGRAMMES), len(VENUES))
    return True
