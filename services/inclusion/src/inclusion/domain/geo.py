"""Where things are: MK postcode districts (centroids shipped as data) and distances."""

from __future__ import annotations

import csv
import functools
import io
import math
import re
from dataclasses import dataclass
from importlib import resources
from typing import Literal, get_args

from servicekit.errors import DomainError

EARTH_RADIUS_KM = 6371.0088


class UnknownPostcode(DomainError):
    status, code, title = 422, "postcode-not-in-milton-keynes-area", "Unknown postcode"


@dataclass(frozen=True)
class District:
    code: str
    latitude: float
    longitude: float
    in_milton_keynes: bool
    area: str


@functools.cache
def districts() -> dict[str, District]:
    """MK1-MK19 and MK40-MK46, read once from ``data/mk_postcode_districts.csv``."""
    text = (
        resources.files("inclusion.data")
        .joinpath("mk_postcode_districts.csv")
        .read_text(encoding="utf-8")
    )
    rows = csv.DictReader(
        io.StringIO(
            "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
        )
    )
    return {
        row["district"]: District(
            row["district"],
            float(row["latitude"]),
            float(row["longitude"]),
            row["in_milton_keynes"] == "true",
            row["area"],
        )
        for row in rows
    }


_OUTWARD = re.compile(r"^\s*(MK\d{1,2})(?:\s*(\d[A-Z]{2}))?\s*$", re.IGNORECASE)
_FULL = re.compile(r"^\s*(MK\d{1,2})\s*(\d[A-Z]{2})\s*$", re.IGNORECASE)


def district_of(postcode: str) -> District | None:
    """The district of a full postcode (``MK9 3EP``) or of a district (``MK9``); None when it
    is not one of the MK districts. ``MK93EP`` without a space is read as ``MK9 3EP``."""
    match = _FULL.match(postcode) or _OUTWARD.match(postcode)
    if not match:
        return None
    return districts().get(match.group(1).upper())


def lookup(postcode: str) -> District:
    district = district_of(postcode)
    if district is None:
        raise UnknownPostcode(
            f"'{postcode[:20]}' is not a postcode in the MK area (MK1-MK19, MK40-MK46).",
            rule="mk-postcode",
        )
    return district


def distance_km(lat1: float, long1: float, lat2: float, long2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(long2 - long1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


#: The wards of the City of Milton Keynes council (boundaries of 2014).
Ward = Literal[
    "Bletchley East",
    "Bletchley Park",
    "Bletchley West",
    "Bradwell",
    "Broughton",
    "Campbell Park and Old Woughton",
    "Central Milton Keynes",
    "Danesborough and Walton",
    "Loughton and Shenley",
    "Monkston",
    "Newport Pagnell North and Hanslope",
    "Newport Pagnell South",
    "Olney",
    "Shenley Brook End",
    "Stantonbury",
    "Stony Stratford",
    "Tattenhoe",
    "Wolverton",
    "Woughton and Fishermead",
]
MK_WARDS: tuple[str, ...] = get_args(Ward)
