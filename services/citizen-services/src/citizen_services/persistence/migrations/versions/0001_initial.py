"""Initial schema: catalogue entries, outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from servicekit.messaging.tables import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables(op)
    op.create_table(
        "catalogue_service",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("slug", sa.String(120), nullable=False, unique=True),
        sa.Column("service_code", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(4000), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=True),
        sa.Column("groups", sa.JSON(), nullable=True),
        sa.Column("department", sa.String(200), nullable=True),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status_changed_by", sa.String(200), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("catalogue_service")
    drop_messaging_tables(op)
