"""Notify: scheduled sends, reply-to addresses and text message senders per Notify service.

* ``notification.scheduled_for``: not sent before (``next_attempt_at`` holds it too);
  ``notification.sender``: the Reply-To address or SMS sender it is sent with.
* ``notify_reply_to`` and ``notify_sms_sender``: a service's own; the default of each is
  also kept on ``notify_service`` (``email_reply_to``, ``sms_sender``), which the key cache
  holds, so a send without an id needs no query for it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notify_service") as batch:
        batch.add_column(sa.Column("email_reply_to", sa.String(320), nullable=True))
    with op.batch_alter_table("notification") as batch:
        batch.add_column(sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("sender", sa.String(320), nullable=True))
    for table, column in (("notify_reply_to", "email_address"), ("notify_sms_sender", "sms_sender")):
        op.create_table(
            table,
            sa.Column("id", sa.Uuid(), primary_key=True),
            sa.Column("service_id", sa.Uuid(), sa.ForeignKey("notify_service.id"), nullable=False),
            sa.Column(column, sa.String(320), nullable=False),
            sa.Column("is_default", sa.Boolean(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("created_by", sa.String(200), nullable=True),
        )
        op.create_index(f"ix_{table}_service_id", table, ["service_id"])


def downgrade() -> None:
    for table in ("notify_sms_sender", "notify_reply_to"):
        op.drop_index(f"ix_{table}_service_id", table)
        op.drop_table(table)
    with op.batch_alter_table("notification") as batch:
        batch.drop_column("sender")
        batch.drop_column("scheduled_for")
    with op.batch_alter_table("notify_service") as batch:
        batch.drop_column("email_reply_to")
