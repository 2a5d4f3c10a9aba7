"""Citizens' contact details and consent per topic and channel; one-click unsubscribe.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.add_column(sa.Column("unsubscribe_url", sa.String(2000), nullable=True))
    op.create_table(
        "citizen_contact",
        sa.Column("citizen_id", sa.String(200), primary_key=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "consent",
        sa.Column("citizen_id", sa.String(200), primary_key=True),
        sa.Column("topic", sa.String(50), primary_key=True),
        sa.Column("channel", sa.String(10), primary_key=True),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("consent")
    op.drop_table("citizen_contact")
    with op.batch_alter_table("notification") as batch:
        batch.drop_column("unsubscribe_url")
