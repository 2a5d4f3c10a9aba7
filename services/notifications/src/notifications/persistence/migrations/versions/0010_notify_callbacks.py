"""Notify: callbacks to the calling service (delivery receipts, received texts).

* ``notify_service``: the two callback URLs and their bearer tokens.
* ``notify_callback``: one POST to make (its JSON), retried on Notify's schedule.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notify_service") as batch:
        batch.add_column(sa.Column("delivery_callback_url", sa.String(2000), nullable=True))
        batch.add_column(sa.Column("delivery_callback_token", sa.String(255), nullable=True))
        batch.add_column(sa.Column("inbound_callback_url", sa.String(2000), nullable=True))
        batch.add_column(sa.Column("inbound_callback_token", sa.String(255), nullable=True))
    op.create_table(
        "notify_callback",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_notify_callback_due", "notify_callback", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_notify_callback_due", "notify_callback")
    op.drop_table("notify_callback")
    with op.batch_alter_table("notify_service") as batch:
        batch.drop_column("inbound_callback_token")
        batch.drop_column("inbound_callback_url")
        batch.drop_column("delivery_callback_token")
        batch.drop_column("delivery_callback_url")
