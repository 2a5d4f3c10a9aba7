"""Where things are: MK postcode districts (approximate centroids shipped as data, the same
file as inclusion's) and great-circle distances; for Open Referral UK's ``postcode`` and
``proximity`` filters and the coordinates of venues."""

from __future__ import annotations

import csv
import functools
import io
import math
import re
from dataclasses import dataclass
from importlib import resources

EARTH_RADIUS_M = 6_371_008.8
#: A UK postcode (``MK9 3EP``, ``MK93EP``) or an outward code alone (``MK9``).
POSTCODE = re.compile(r"^\s*([A-Z]{1,2}[0-9][A-Z0-9]?)\s*([0-9][A-Z]{2})?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class District:
    code: str
    latitude: float
    longitude: float
    in_milton_keynes: bool
    #: The places it covers ("Fenny Stratford, Denbigh"), for people choosing one.
    area: str = ""


@functools.cache
def districts() -> dict[str, District]:
    text = (
        resources.files("citizen_services.data")
        .joinpath("mk_postcode_districts.csv")
        .read_text(encoding="utf-8")
    )
    rows = csv.DictReader(
        io.StringIO("".join(line for line in text.splitlines(True) if not line.startswith("#")))
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


def outward_code(postcode: str) -> str | None:
    """``MK9`` of ``MK9 3EP`` / ``mk93ep`` / ``MK9``; None when it is no UK postcode."""
    match = POSTCODE.match(postcode)
    return match.group(1).upper() if match else None


def district_of(postcode: str) -> District | None:
    """The MK district of a postcode, or None (not a postcode, or not an MK district)."""
    code = outward_code(postcode)
    return districts().get(code) if code else None


def distance_m(lat1: float, long1: float, lat2: float, long2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(long2 - long1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


#: A full postcode anywhere in a free-text address (``12 High St, Olney MK46 4AA``).
_POSTCODE_IN_TEXT = re.compile(r"\b([A-Z]{1,2}[0-9][A-Z0-9]?)\s*[0-9][A-Z]{2}\b", re.IGNORECASE)


def nearest_district(lat: float, long: float) -> District:
    """The district whose centre is nearest (a point's district, as near as centroids tell)."""
    return min(districts().values(), key=lambda d: distance_m(lat, long, d.latitude, d.longitude))


def area_of(*, lat: float | None, long: float | None, address: str | None) -> str | None:
    """The postcode district a request is in: the nearest district centre to its location;
    without one, the MK district of a postcode in its address; otherwise None."""
    if lat is not None and long is not None:
        return nearest_district(lat, long).code
    if address:
        for match in _POSTCODE_IN_TEXT.finditer(address):
            district = districts().get(match.group(1).upper())
            if district is not None:
                return district.code
    return None
