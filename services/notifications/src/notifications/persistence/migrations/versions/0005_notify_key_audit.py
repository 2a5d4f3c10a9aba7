"""Who issued and revoked Notify API keys, and who created Notify services.

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
    with op.batch_alter_table("notify_service") as batch:
        batch.add_column(sa.Column("created_by", sa.String(200), nullable=True))
    with op.batch_alter_table("notify_api_key") as batch:
        batch.add_column(sa.Column("created_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("revoked_by", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notify_api_key") as batch:
        batch.drop_column("revoked_by")
        batch.drop_column("created_by")
    with op.batch_alter_table("notify_service") as batch:
        batch.drop_column("created_by")
