"""Privacy: redaction of notifications (retention, erasure) and confirmed contact emails.

* ``notification.recipient`` may be null (redacted); ``citizen_id`` (whose message it was)
  and ``redacted_at``; an index for the retention purge.
* ``citizen_contact``: an address waiting for confirmation, the hash of its one-time token
  and when the token expires. Addresses saved before this revision stay as they were.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.alter_column("recipient", existing_type=sa.String(320), nullable=True)
        batch.add_column(sa.Column("citizen_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("redacted_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_notification_citizen_id", ["citizen_id"])
        batch.create_index("ix_notification_retention", ["redacted_at", "created_at"])
    with op.batch_alter_table("citizen_contact") as batch:
        batch.add_column(sa.Column("pending_email", sa.String(320), nullable=True))
        batch.add_column(sa.Column("pending_email_token", sa.String(64), nullable=True))
        batch.add_column(sa.Column("pending_email_expires_at", sa.DateTime(timezone=True),
                                   nullable=True))
        batch.create_index("ix_citizen_contact_pending_email_token", ["pending_email_token"])


def downgrade() -> None:
    with op.batch_alter_table("citizen_contact") as batch:
        batch.drop_index("ix_citizen_contact_pending_email_token")
        batch.drop_column("pending_email_expires_at")
        batch.drop_column("pending_email_token")
        batch.drop_column("pending_email")
    op.execute("UPDATE notification SET recipient = '' WHERE recipient IS NULL")
    with op.batch_alter_table("notification") as batch:
        batch.drop_index("ix_notification_retention")
        batch.drop_index("ix_notification_citizen_id")
        batch.drop_column("redacted_at")
        batch.drop_column("citizen_id")
        batch.alter_column("recipient", existing_type=sa.String(320), nullable=False)
