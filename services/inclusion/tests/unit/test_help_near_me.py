"""Help near me (application/help_near_me.py) on in-memory repositories."""

from __future__ import annotations

import pytest

from inclusion.application.help_near_me import WhereFrom, help_near_me, origin_of
from inclusion.domain.geo import UnknownPostcode
from inclusion.domain.programmes import ProgrammeKind

from .fakes import FakeUnitOfWork, a_programme, a_session, a_venue


def test_where_from() -> None:
    centre = origin_of(postcode="mk9", lat=None, long=None)
    assert centre.postcode_district == "MK9"
    assert origin_of(postcode=None, lat=52.0, long=-0.7).postcode_district is None
    with pytest.raises(WhereFrom):
        origin_of(postcode=None, lat=52.0, long=None)
    with pytest.raises(UnknownPostcode):
        origin_of(postcode="SW1A", lat=None, long=None)


async def test_nearest_first_with_upcoming_sessions_of_published_programmes() -> None:
    uow = FakeUnitOfWork()
    central = a_venue(uow.store, name="Central", latitude=52.0431, longitude=-0.7563)
    olney = a_venue(uow.store, name="Olney", latitude=52.1530, longitude=-0.7015)
    course = a_programme(uow.store)
    drop_in = a_programme(uow.store, kind="drop-in-help", title="Drop-in")
    on = a_session(uow.store, programme=drop_in, venue=olney)
    a_session(uow.store, programme=course, venue=olney, status="cancelled")
    a_session(uow.store, programme=a_programme(uow.store, status="closed"), venue=central)

    origin = origin_of(postcode="MK46", lat=None, long=None)
    nearby = await help_near_me(repos=uow, origin=origin)
    assert [n.venue for n in nearby] == [olney, central]
    assert [v.id for v in nearby[0].sessions] == [on.id] and nearby[1].sessions == []
    assert nearby[0].distance_km < nearby[1].distance_km

    only = await help_near_me(repos=uow, origin=origin, kind=ProgrammeKind.DROP_IN_HELP)
    assert [n.venue for n in only] == [olney]
    assert (
        await help_near_me(repos=uow, origin=origin, kind=ProgrammeKind.DIGITAL_SKILLS_COURSE) == []
    )
    assert len(await help_near_me(repos=uow, origin=origin, limit=1)) == 1
