"""Essential Digital Skills assessments (baseline and follow-up).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outcome_assessment",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("participant_id", sa.Uuid(), sa.ForeignKey("participant.id"),
                  nullable=False, index=True),
        sa.Column("programme_id", sa.Uuid(), sa.ForeignKey("programme.id"), nullable=False,
                  index=True),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("participant_id", "programme_id", "stage",
                            name="uq_outcome_stage"),
    )


def downgrade() -> None:
    op.drop_table("outcome_assessment")
