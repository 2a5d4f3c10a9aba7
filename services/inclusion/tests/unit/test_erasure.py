"""Erasure (application/erasure.py) on in-memory repositories: the participant is
pseudonymised, upcoming enrolments are cancelled (freed places promoted), the outbox is
scrubbed, and the request is announced to the platform."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from inclusion.application.erasure import PERSONAL_FIELDS, erase
from inclusion.application.participants import ParticipantNotFound

from .fakes import FakeUnitOfWork, a_participant, a_session, an_enrolment


async def test_erasure_pseudonymises_cancels_upcoming_and_scrubs_the_outbox() -> None:
    uow = FakeUnitOfWork()
    me = a_participant(uow.store, "citizen-9", preferred_name="Sam")
    upcoming = a_session(uow.store, capacity=1)
    past = a_session(uow.store, starts_in=-timedelta(days=1))
    mine = an_enrolment(uow.store, upcoming, me)
    waiting = an_enrolment(
        uow.store, upcoming, a_participant(uow.store, "other"), status="waitlisted"
    )
    attended = an_enrolment(uow.store, past, me)
    uow.store.outbox[1] = json.dumps({"citizen_id": "citizen-9", "ids": ["citizen-9", "x"]})
    uow.store.outbox[2] = json.dumps({"citizen_id": "other"})

    erased = await erase(uow=uow, subject="citizen-9")
    assert erased is me and me.erased_at is not None
    assert all(getattr(me, name) is None for name in PERSONAL_FIELDS)
    assert mine.status == "cancelled" and waiting.status == "confirmed"
    assert attended.status == "confirmed"  # the past stays, for the figures
    assert json.loads(uow.store.outbox[1]) == {"citizen_id": None, "ids": ["x"]}
    assert json.loads(uow.store.outbox[2]) == {"citizen_id": "other"}
    assert uow.types() == ["EnrolmentCancelled", "WaitlistPromoted", "CitizenErasureRequested"]
    assert uow.published[0].cancelled_by == "erasure"  # type: ignore[attr-defined]
    assert uow.published[-1].citizen_id == "citizen-9"  # type: ignore[attr-defined]

    again = FakeUnitOfWork(uow.store)  # the platform-wide event coming back: nothing to do
    assert await erase(uow=again, subject="citizen-9", announce=False) is None
    assert again.published == []


async def test_a_citizen_we_do_not_know_is_still_announced() -> None:
    uow = FakeUnitOfWork()
    assert await erase(uow=uow, subject="stranger", requested_by="citizen") is None
    assert uow.types() == ["CitizenErasureRequested"]
    with pytest.raises(ParticipantNotFound):
        await erase(uow=uow, participant_id=uuid.uuid4(), requested_by="staff")


async def test_staff_erase_by_participant_id() -> None:
    uow = FakeUnitOfWork()
    someone = a_participant(uow.store, "citizen-3")
    await erase(uow=uow, participant_id=someone.id, requested_by="staff")
    assert someone.subject is None
    assert uow.published[-1].requested_by == "staff"  # type: ignore[attr-defined]
