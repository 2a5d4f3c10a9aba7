"""Service requests and their updates.

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
        "service_request",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("service_id", sa.Uuid(), sa.ForeignKey("catalogue_service.id"),
                  nullable=False, index=True),
        sa.Column("service_code", sa.String(64), nullable=False, index=True),
        sa.Column("status", sa.String(40), nullable=False, index=True),
        sa.Column("description", sa.String(4000), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("long", sa.Float(), nullable=True),
        sa.Column("address", sa.String(500), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=True),
        sa.Column("citizen_id", sa.String(200), nullable=True, index=True),
        sa.Column("contact", sa.JSON(), nullable=True),
        sa.Column("contact_consent", sa.Boolean(), nullable=False),
        sa.Column("assigned_to", sa.String(200), nullable=True, index=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "service_request_update",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.Uuid(), sa.ForeignKey("service_request.id"),
                  nullable=False, index=True),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("previous_status", sa.String(40), nullable=True),
        sa.Column("note", sa.String(4000), nullable=True),
        sa.Column("assigned_to", sa.String(200), nullable=True),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("service_request_update")
    op.drop_table("service_request")
