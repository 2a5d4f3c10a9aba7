"""Data-SIM vouchers: stock per programme, one per participant and programme.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "voucher",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("programme_id", sa.Uuid(), sa.ForeignKey("programme.id"), nullable=False,
                  index=True),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("code", sa.String(100), nullable=False, unique=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("participant_id", sa.Uuid(), sa.ForeignKey("participant.id"),
                  nullable=True),
        sa.Column("allocated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ux_voucher_participant", "voucher", ["programme_id", "participant_id"],
                    unique=True, postgresql_where=sa.text("participant_id IS NOT NULL"),
                    sqlite_where=sa.text("participant_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ux_voucher_participant", table_name="voucher")
    op.drop_table("voucher")
