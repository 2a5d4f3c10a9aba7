"""Tables of notifications."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.types import UtcDateTime


class Notification(SQLModel, table=True):
    """One message to one recipient on one channel.

    ``(source_event_id, recipient, channel)`` is unique: an event yields at most one message
    per recipient and channel. ``recipient`` is personal data: never log it.

    Redacted (``redacted_at``) once older than the content retention period, or when its
    citizen is erased: recipient, subject and bodies are blanked, the status row stays.
    """

    __tablename__ = "notification"
    __table_args__ = (
        sa.UniqueConstraint(
            "source_event_id",
            "recipient",
            "channel",
            name="uq_notification_event_recipient_channel",
        ),
        sa.Index("ix_notification_due", "status", "next_attempt_at"),
        sa.Index("ix_notification_service_id", "service_id", "created_at"),
        sa.Index("ix_notification_retention", "redacted_at", "created_at"),
        # the staff listing of sent messages (persistence/sent_messages.py)
        sa.Index("ix_notification_created", "created_at", "id"),
        sa.Index("ix_notification_reference", "reference", "created_at"),
        sa.Index("ix_notification_template", "template_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    channel: str = Field(max_length=10)
    #: Null once redacted.
    recipient: str | None = Field(default=None, max_length=320)
    subject: str | None = Field(default=None, max_length=998)
    body: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    status: str = Field(default="created", max_length=30)
    reference: str | None = Field(default=None, max_length=1000)
    source_event_id: str | None = Field(default=None, max_length=64)
    source_event_type: str | None = Field(default=None, max_length=200)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )
    claimed_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    sent_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )
    last_error: str | None = Field(default=None, max_length=500)
    # -- sent through the Notify API (null for event-driven messages) --
    service_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    key_type: str | None = Field(default=None, max_length=10)
    template_id: uuid.UUID | None = None
    template_version: int | None = None
    #: The email as sent (rendered once, when accepted); ``body`` keeps Notify's "body".
    html_body: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    text_body: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    #: Test keys and Notify's simulated recipients: the outcome is simulated, nothing is sent.
    simulated: bool = False
    #: Sent as ``List-Unsubscribe`` with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``.
    unsubscribe_url: str | None = Field(default=None, max_length=2000)
    completed_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )
    #: The citizen (opaque subject id) a message of the platform's own was for: erasure
    #: finds their messages by it. Null for /v2 messages (found by address).
    citizen_id: str | None = Field(default=None, max_length=200, index=True)
    #: When recipient and content were blanked (retention or erasure).
    redacted_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )
    #: Notify's ``scheduled_for``: not sent before then (``next_attempt_at`` starts there).
    scheduled_for: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )
    #: The Reply-To address (email) or sender (SMS) chosen by id; null: the service's default.
    sender: str | None = Field(default=None, max_length=320)


class NotifyService(SQLModel, table=True):
    """A GOV.UK Notify "service": what API keys and templates belong to."""

    __tablename__ = "notify_service"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=255)
    email_from: str = Field(max_length=320)  # the From address of its emails
    sms_sender: str = Field(max_length=11)
    #: The default Reply-To of its emails (a ``notify_reply_to`` marked default), if any.
    email_reply_to: str | None = Field(default=None, max_length=320)
    #: Where delivery receipts and received texts are POSTed, with ``Authorization:
    #: Bearer <token>`` (Notify's callbacks); null: none.
    delivery_callback_url: str | None = Field(default=None, max_length=2000)
    delivery_callback_token: str | None = Field(default=None, max_length=255)
    inbound_callback_url: str | None = Field(default=None, max_length=2000)
    inbound_callback_token: str | None = Field(default=None, max_length=255)
    #: Recipients a team key may send to (email addresses and E.164 numbers), one a line.
    team_members: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    #: The subject (an opaque id) of the admin who created it; null: start-up or a script.
    created_by: str | None = Field(default=None, max_length=200)


class NotifyReplyTo(SQLModel, table=True):
    """A reply-to address of a Notify service (``email_reply_to_id``)."""

    __tablename__ = "notify_reply_to"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    service_id: uuid.UUID = Field(foreign_key="notify_service.id", index=True)
    email_address: str = Field(max_length=320)
    is_default: bool = False
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    created_by: str | None = Field(default=None, max_length=200)


class NotifySmsSender(SQLModel, table=True):
    """A text message sender of a Notify service (``sms_sender_id``): at most 11 letters
    and digits, or a phone number."""

    __tablename__ = "notify_sms_sender"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    service_id: uuid.UUID = Field(foreign_key="notify_service.id", index=True)
    sms_sender: str = Field(max_length=320)
    is_default: bool = False
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    created_by: str | None = Field(default=None, max_length=200)


class NotifyFile(SQLModel, table=True):
    """A file sent by email (Notify's ``prepare_upload``): the email links to its download
    page. Only hashes of the link's key and of the recipient's address are kept."""

    __tablename__ = "notify_file"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    service_id: uuid.UUID
    notification_id: uuid.UUID | None = Field(default=None, index=True)
    key_hash: str = Field(max_length=64)
    filename: str | None = Field(default=None, max_length=255)
    mimetype: str = Field(max_length=100)
    content: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    size: int
    #: Ask for the recipient's email address before the download (Notify's default).
    confirm_email: bool = True
    recipient_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False, index=True))


class NotifyReceivedText(SQLModel, table=True):
    """A text message sent to one of a Notify service's numbers (inbound SMS). Personal
    data (the number and the text): never logged; deleted after the retention period."""

    __tablename__ = "notify_received_text"
    __table_args__ = (
        sa.UniqueConstraint("provider_reference", name="uq_notify_received_text_provider_ref"),
        sa.Index("ix_notify_received_text_service", "service_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    service_id: uuid.UUID
    user_number: str = Field(max_length=20)  # the sender, E.164
    notify_number: str = Field(max_length=20)  # the service's number it was sent to
    content: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    #: The provider's id of the message: a webhook delivered twice is stored once.
    provider_reference: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class NotifyCallback(SQLModel, table=True):
    """A callback to make: a delivery receipt or a received text, POSTed to the Notify
    service's callback URL (read when it is sent). Its payload holds the recipient: it is
    deleted after the retention period."""

    __tablename__ = "notify_callback"
    __table_args__ = (sa.Index("ix_notify_callback_due", "status", "next_attempt_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    service_id: uuid.UUID
    kind: str = Field(max_length=20)  # delivery-status, received-text
    payload: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    status: str = Field(default="pending", max_length=20)  # pending, sending, succeeded, failed
    attempts: int = 0
    next_attempt_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )
    claimed_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class NotifyApiKey(SQLModel, table=True):
    """An API key: the secret signs the client's JWTs (HS256), so it is kept, not hashed.

    Revoked keys stay (``revoked_at``, ``revoked_by``): the audit, and Notify's
    "API key revoked" answer rather than "not found"."""

    __tablename__ = "notify_api_key"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    service_id: uuid.UUID = Field(foreign_key="notify_service.id", index=True)
    name: str = Field(max_length=255)
    key_type: str = Field(max_length=10)  # normal (live), team, test
    secret: str = Field(max_length=255)
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    #: Subjects (opaque ids) of the admins who issued and revoked it; null: a script.
    created_by: str | None = Field(default=None, max_length=200)
    revoked_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )
    revoked_by: str | None = Field(default=None, max_length=200)


class Template(SQLModel, table=True):
    """A template; its content lives in versions (every edit is a new version)."""

    __tablename__ = "template"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    service_id: uuid.UUID = Field(foreign_key="notify_service.id", index=True)
    template_type: str = Field(max_length=10)  # email, sms
    name: str = Field(max_length=255)
    version: int = 1  # the current version
    archived: bool = False
    created_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    updated_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )


class TemplateVersion(SQLModel, table=True):
    __tablename__ = "template_version"

    template_id: uuid.UUID = Field(foreign_key="template.id", primary_key=True)
    version: int = Field(primary_key=True)
    name: str = Field(max_length=255)
    subject: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    body: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class CitizenContact(SQLModel, table=True):
    """Where a citizen wants messages (personal data: never log it).

    ``email`` is a confirmed address, the only one messages go to; a new address waits in
    ``pending_email`` until the one-time link sent to it is used (only its SHA-256 is kept).
    """

    __tablename__ = "citizen_contact"

    citizen_id: str = Field(primary_key=True, max_length=200)  # the identity's subject id
    email: str | None = Field(default=None, max_length=320)
    pending_email: str | None = Field(default=None, max_length=320)
    pending_email_token: str | None = Field(default=None, max_length=64, index=True)
    pending_email_expires_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )
    phone: str | None = Field(default=None, max_length=20)  # E.164
    updated_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class Consent(SQLModel, table=True):
    """A citizen's choice for one topic on one channel (absent: the topic's default)."""

    __tablename__ = "consent"

    citizen_id: str = Field(primary_key=True, max_length=200)
    topic: str = Field(primary_key=True, max_length=50)
    channel: str = Field(primary_key=True, max_length=10)
    granted: bool
    updated_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class WebhookSubscription(SQLModel, table=True):
    """A partner's endpoint and the event types it wants (Standard Webhooks)."""

    __tablename__ = "webhook_subscription"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner: str = Field(max_length=200, index=True)  # the partner's subject (API key) id
    url: str = Field(max_length=2000)
    event_types: str = Field(sa_column=sa.Column(sa.Text, nullable=False))  # one a line
    secret: str = Field(max_length=200)
    previous_secret: str | None = Field(default=None, max_length=200)
    previous_secret_until: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )
    status: str = Field(default="active", max_length=20)  # active, disabled
    disabled_reason: str | None = Field(default=None, max_length=200)
    failing_since: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class WebhookDelivery(SQLModel, table=True):
    """One event for one subscription: the delivery log (``id`` is the ``webhook-id``)."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_webhook_delivery_event"),
        sa.Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
    )

    id: str = Field(primary_key=True, max_length=64)
    subscription_id: uuid.UUID = Field(foreign_key="webhook_subscription.id", index=True)
    event_id: str = Field(max_length=64)
    event_type: str = Field(max_length=200)
    payload: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    status: str = Field(default="pending", max_length=20)  # pending, sending, succeeded, failed
    attempts: int = 0
    next_attempt_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )
    claimed_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    delivered_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )
