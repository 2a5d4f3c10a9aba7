"""UK GDPR erasure: the participant is pseudonymised everywhere, and the counts stay.

* the participant row keeps its opaque id (so enrolments, loans and vouchers still count in
  reports) and loses every personal field: subject, preferred name, postcode (and its
  district), year of birth, the benefit/device/connection answers;
* enrolments in sessions that have not started are cancelled (freed places go to the
  waitlist, as for any cancellation); past ones stay for the figures;
* the subject id is removed from the payloads in this service's outbox (published rows are
  kept two days for the relay), so no table of the service holds it any more. Events already
  on Kafka keep it until the topic's retention (7 days) deletes them.

A request taken here (the citizen's ``DELETE /participants/me``, or staff on their request)
is for the whole platform: it also records ``CitizenErasureRequested`` (contracts.privacy),
which every service consumes, this one too (:func:`erase_citizen`: the same erasure, without
announcing it again). The citizen's own request is announced even when this service keeps
nothing about them: what they asked for is their erasure everywhere.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from contracts.privacy import CitizenErasureRequested
from inclusion.application.enrolments import cancel_enrolment
from inclusion.application.participants import ParticipantNotFound
from inclusion.application.unit_of_work import InclusionUnitOfWork
from inclusion.persistence.tables import Participant
from servicekit.messaging.consumer import MessageContext
from servicekit.redact import without

PERSONAL_FIELDS = (
    "subject",
    "preferred_name",
    "postcode",
    "postcode_district",
    "year_of_birth",
    "receives_benefits",
    "has_device_at_home",
    "has_connection_at_home",
)


async def erase(
    *,
    uow: InclusionUnitOfWork,
    participant_id: uuid.UUID | None = None,
    subject: str | None = None,
    requested_by: str = "citizen",
    announce: bool = True,
) -> Participant | None:
    """Erase the participant (by id, or by the citizen's subject) and, with ``announce``,
    record the platform-wide ``CitizenErasureRequested`` (the caller's unit of work
    commits). ``None``: this service keeps nothing about that subject (not an error: the
    request still goes out)."""
    now = datetime.now(UTC)
    participant = await uow.participants.find(participant_id=participant_id, subject=subject)
    if participant is None and (participant_id is not None or not subject):
        raise ParticipantNotFound("No such participant.")
    erased_subject = subject
    if participant is not None and participant.erased_at is None:
        erased_subject = participant.subject
        await _erase(uow, participant, now)
    if announce and erased_subject:  # after the outbox scrub: this event needs the subject
        uow.publish(
            CitizenErasureRequested(
                citizen_id=erased_subject,
                erasure_id=uuid.uuid4(),
                requested_by=requested_by,
                occurred_at=now,
            )
        )
    return participant


async def _erase(uow: InclusionUnitOfWork, participant: Participant, now: datetime) -> None:
    erased_subject = participant.subject
    # Sessions first, then the participant's row: the order enrolment takes its locks in,
    # so an erasure and an enrolment of the same citizen cannot deadlock.
    upcoming = await uow.enrolments.upcoming_of(participant.id, after=now)
    for enrolment in upcoming:  # in session-id order: locks taken in one global order
        await cancel_enrolment(
            uow=uow, enrolment=enrolment, participant=participant, now=now, by="erasure"
        )
    await uow.participants.lock(participant)
    for field in PERSONAL_FIELDS:
        setattr(participant, field, None)
    participant.erased_at = participant.updated_at = now
    if erased_subject:
        for row_id, payload in await uow.outbox.payloads_containing(json.dumps(erased_subject)):
            scrubbed = json.dumps(
                without(json.loads(payload), erased_subject), separators=(",", ":")
            )
            await uow.outbox.set_payload(row_id, scrubbed)


async def erase_citizen(event: CitizenErasureRequested, ctx: MessageContext) -> None:
    """The platform-wide request (from any service, this one included): the same erasure,
    not announced again; nothing to do for a citizen this service does not know."""
    await erase(uow=InclusionUnitOfWork(ctx.uow), subject=event.citizen_id, announce=False)
