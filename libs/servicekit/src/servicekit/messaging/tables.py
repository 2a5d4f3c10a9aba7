"""The outbox and inbox tables every service carries in its own database.

Shape after eShop's IntegrationEventLog (event id, type, content, state, times sent), plus
what it lacks: a relay that retries unpublished rows, and an inbox that makes a consumer's
effects exactly-once per (consumer group, event id).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.types import UtcDateTime

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "servicekit_outbox"
    __table_args__ = (
        sa.Index(
            "ix_servicekit_outbox_pending",
            "id",
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        ),
    )

    id: int | None = Field(
        default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True)
    )
    event_id: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    event_type: str = Field(max_length=200)
    topic: str = Field(max_length=200)
    message_key: str = Field(max_length=200)
    #: The CloudEvents attributes (JSON), trace context included.
    envelope: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    payload: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    published_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))


class InboxMessage(SQLModel, table=True):
    __tablename__ = "servicekit_inbox"

    consumer_group: str = Field(max_length=200, primary_key=True)
    event_id: str = Field(max_length=64, primary_key=True)
    event_type: str = Field(max_length=200)
    topic: str = Field(max_length=200)
    partition: int
    offset: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    processed_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


def create_messaging_tables(op: object) -> None:
    """Create the outbox and inbox tables; call from a service's first Alembic migration."""
    bind = op.get_bind()  # type: ignore[attr-defined]
    OutboxMessage.__table__.create(bind, checkfirst=True)  # type: ignore[attr-defined]
    InboxMessage.__table__.create(bind, checkfirst=True)  # type: ignore[attr-defined]


def drop_messaging_tables(op: object) -> None:
    bind = op.get_bind()  # type: ignore[attr-defined]
    InboxMessage.__table__.drop(bind, checkfirst=True)  # type: ignore[attr-defined]
    OutboxMessage.__table__.drop(bind, checkfirst=True)  # type: ignore[attr-defined]
