"""Sessions cancelled by staff: when, why (for the participants) and by whom.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable): no table rebuild on SQLite.
    op.add_column("programme_session",
                  sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("programme_session",
                  sa.Column("cancellation_reason", sa.String(500), nullable=True))
    op.add_column("programme_session",
                  sa.Column("cancelled_by", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("programme_session") as batch:
        batch.drop_column("cancelled_by")
        batch.drop_column("cancellation_reason")
        batch.drop_column("cancelled_at")
