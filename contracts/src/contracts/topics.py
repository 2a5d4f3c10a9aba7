"""The topic registry: every topic of the platform, its partitions, retention and events.

Names follow ``<context>.<aggregate>.v<major>``; each topic has a dead-letter twin
``<topic>.dlq`` holding records a consumer could not process, with the error in headers.
``mkinfra.kafka ensure-topics`` creates them all idempotently from this list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 24 * 60 * 60 * 1000
DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class Topic:
    name: str
    description: str
    partitions: int = 3
    retention_ms: int = 7 * DAY_MS
    dlq_retention_ms: int = 30 * DAY_MS
    events: tuple[str, ...] = field(default_factory=tuple)  # event class names, for docs

    @property
    def dlq(self) -> str:
        return dlq_name(self.name)


def dlq_name(topic: str) -> str:
    return topic + DLQ_SUFFIX


CATALOGUE_SERVICE = Topic(
    name="citizen-services.service.v1",
    description="Lifecycle of the council's digital-service catalogue entries.",
    events=("ServicePublished", "ServiceUpdated", "ServiceSuspended", "ServiceRetired"),
)
SERVICE_REQUEST = Topic(
    name="citizen-services.service-request.v1",
    description="Citizens' service requests (reports) and their status changes.",
    events=("ServiceRequestSubmitted", "ServiceRequestStatusChanged"),
)

# -- inclusion (digital-inclusion programmes) ------------------------------------------------
PROGRAMME = Topic(
    name="inclusion.programme.v1",
    description="Digital-inclusion programmes: published, changed, closed.",
    events=("ProgrammePublished",),
)
SESSION = Topic(
    name="inclusion.session.v1",
    description="Sessions of programmes: scheduled, reminders due, cancelled.",
    events=("SessionScheduled", "SessionReminderDue", "SessionCancelled"),
)
ENROLMENT = Topic(
    name="inclusion.enrolment.v1",
    description="Enrolments in sessions: confirmed, waitlisted, promoted, cancelled.",
    events=("EnrolmentConfirmed", "EnrolmentWaitlisted", "WaitlistPromoted", "EnrolmentCancelled"),
)
DEVICE_LOAN = Topic(
    name="inclusion.device-loan.v1",
    description="Device lending: loaned, returned, overdue.",
    events=("DeviceLoaned", "DeviceReturned", "DeviceReturnOverdue"),
)
VOUCHER = Topic(
    name="inclusion.voucher.v1",
    description="Data-SIM vouchers allocated to participants.",
    events=("VoucherAllocated",),
)
OUTCOME = Topic(
    name="inclusion.outcome.v1",
    description="Essential Digital Skills outcomes recorded for participants.",
    events=("OutcomeRecorded",),
)

# -- notifications ---------------------------------------------------------------------------
NOTIFICATION = Topic(
    name="notifications.notification.v1",
    description="Delivery status of email and SMS notifications.",
    events=("NotificationStatusChanged",),
)

# -- privacy (platform-wide; published by the service that takes the request) -------------
CITIZEN_ERASURE = Topic(
    name="privacy.citizen-erasure.v1",
    description="Citizens' erasure requests (UK GDPR): every service forgets the citizen.",
    # 30 days: a consumer that was down for a week still catches up within the month UK
    # GDPR allows for an erasure.
    retention_ms=30 * DAY_MS,
    events=("CitizenErasureRequested",),
)

TOPICS: tuple[Topic, ...] = (
    CATALOGUE_SERVICE,
    SERVICE_REQUEST,
    PROGRAMME,
    SESSION,
    ENROLMENT,
    DEVICE_LOAN,
    VOUCHER,
    OUTCOME,
    NOTIFICATION,
    CITIZEN_ERASURE,
)


def all_topic_names(*, include_dlq: bool = True) -> list[str]:
    names = [t.name for t in TOPICS]
    if include_dlq:
        names += [t.dlq for t in TOPICS]
    return names


def topic(name: str) -> Topic:
    for t in TOPICS:
        if t.name == name:
            return t
    raise KeyError(name)
