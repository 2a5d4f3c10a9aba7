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
    """

    __tablename__ = "notification"
    __table_args__ = (
        sa.UniqueConstraint("source_event_id", "recipient", "channel",
                            name="uq_notification_event_recipient_channel"),
        sa.Index("ix_notification_due", "status", "next_attempt_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    channel: str = Field(max_length=10)
    recipient: str = Field(max_length=320)
    subject: str | None = Field(default=None, max_length=998)
    body: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    status: str = Field(default="created", max_length=30)
    reference: str | None = Field(default=None, max_length=1000)
    source_event_id: str | None = Field(default=None, max_length=64)
    source_event_type: str | None = Field(default=None, max_length=200)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True))
    claimed_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True))
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    sent_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True))
    last_error: str | None = Field(default=None, max_length=500)
