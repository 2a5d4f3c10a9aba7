"""Venues changed by staff: a version (the ETag an edit names in If-Match), and when and by
whom (a staff subject id) it last changed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN: no table rebuild on SQLite; existing venues are version 1.
    op.add_column("venue", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("venue", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("venue", sa.Column("updated_by", sa.String(200), nullable=True))


def downgrade() -> None:
    # In place (SQLite 3.35+ and PostgreSQL): a batch copy of venue would trip over the
    # sessions' foreign keys.
    for name in ("updated_by", "updated_at", "version"):
        op.drop_column("venue", name)
