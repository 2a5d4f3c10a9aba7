"""Notify: received text messages (inbound SMS from the SMS provider's webhook).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_received_text",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("user_number", sa.String(20), nullable=False),
        sa.Column("notify_number", sa.String(20), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("provider_reference", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("provider_reference", name="uq_notify_received_text_provider_ref"),
    )
    op.create_index(
        "ix_notify_received_text_service", "notify_received_text", ["service_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_notify_received_text_service", "notify_received_text")
    op.drop_table("notify_received_text")
