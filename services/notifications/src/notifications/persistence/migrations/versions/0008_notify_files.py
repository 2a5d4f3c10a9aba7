"""Notify: files sent by email (``prepare_upload``), served from a download page.

``notify_file``: the bytes (at most 2 MB, in the database: PostgreSQL ``bytea``, SQLite
``BLOB``), the SHA-256 of the link's key and of the recipient's address (the
confirm-your-email step compares it), and when it expires.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_file",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("notification_id", sa.Uuid(), nullable=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("mimetype", sa.String(100), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("confirm_email", sa.Boolean(), nullable=False),
        sa.Column("recipient_hash", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_notify_file_expires_at", "notify_file", ["expires_at"])
    op.create_index("ix_notify_file_notification_id", "notify_file", ["notification_id"])


def downgrade() -> None:
    op.drop_index("ix_notify_file_notification_id", "notify_file")
    op.drop_index("ix_notify_file_expires_at", "notify_file")
    op.drop_table("notify_file")
