"""Devices and their loans (at most one open loan per device).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("programme_id", sa.Uuid(), sa.ForeignKey("programme.id"), nullable=True),
        sa.Column("make", sa.String(100), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("serial", sa.String(100), nullable=False, unique=True),
        sa.Column("condition", sa.String(20), nullable=False),
        sa.Column("wiped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "device_loan",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("device_id", sa.Uuid(), sa.ForeignKey("device.id"), nullable=False,
                  index=True),
        sa.Column("participant_id", sa.Uuid(), sa.ForeignKey("participant.id"),
                  nullable=False, index=True),
        sa.Column("loaned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("return_condition", sa.String(20), nullable=True),
    )
    op.create_index("ux_device_loan_open", "device_loan", ["device_id"], unique=True,
                    postgresql_where=sa.text("returned_at IS NULL"),
                    sqlite_where=sa.text("returned_at IS NULL"))


def downgrade() -> None:
    op.drop_index("ux_device_loan_open", table_name="device_loan")
    op.drop_table("device_loan")
    op.drop_table("device")
