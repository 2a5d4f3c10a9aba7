"""Catalogue details (LGSL codes, channels, eligibility, fees, audience, opening hours,
accessibility statement, last review, request attribute definitions), the who/when/why of the
last status change, and the entry's audit history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_NEW_COLUMNS = [
    sa.Column("lgsl_codes", sa.JSON(), nullable=True),
    sa.Column("channels", sa.JSON(), nullable=True),
    sa.Column("eligibility", sa.String(4000), nullable=True),
    sa.Column("fees", sa.String(2000), nullable=True),
    sa.Column("audience", sa.JSON(), nullable=True),
    sa.Column("opening_hours", sa.String(1000), nullable=True),
    sa.Column("accessibility_statement_url", sa.String(500), nullable=True),
    sa.Column("last_reviewed_on", sa.Date(), nullable=True),
    sa.Column("attributes", sa.JSON(), nullable=True),
    sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("status_reason", sa.String(1000), nullable=True),
]


def upgrade() -> None:
    for column in _NEW_COLUMNS:
        op.add_column("catalogue_service", column)
    op.create_table(
        "catalogue_service_history",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("service_id", sa.Uuid(), sa.ForeignKey("catalogue_service.id"),
                  nullable=False, index=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("reason", sa.String(1000), nullable=True),
        sa.Column("changed_fields", sa.JSON(), nullable=True),
        sa.Column("snapshot", sa.JSON(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("service_id", "version", name="uq_catalogue_history_version"),
    )


def downgrade() -> None:
    op.drop_table("catalogue_service_history")
    with op.batch_alter_table("catalogue_service") as batch:
        for column in reversed(_NEW_COLUMNS):
            batch.drop_column(column.name)
