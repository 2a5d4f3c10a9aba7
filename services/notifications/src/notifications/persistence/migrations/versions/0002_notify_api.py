"""GOV.UK Notify API: services, API keys, versioned templates; notifications sent through it.

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


def upgrade() -> None:
    op.create_table(
        "notify_service",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("email_from", sa.String(320), nullable=False),
        sa.Column("sms_sender", sa.String(11), nullable=False),
        sa.Column("team_members", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "notify_api_key",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("service_id", sa.Uuid(), sa.ForeignKey("notify_service.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("key_type", sa.String(10), nullable=False),
        sa.Column("secret", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_notify_api_key_service_id", "notify_api_key", ["service_id"])
    op.create_table(
        "template",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("service_id", sa.Uuid(), sa.ForeignKey("notify_service.id"), nullable=False),
        sa.Column("template_type", sa.String(10), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_template_service_id", "template", ["service_id"])
    op.create_table(
        "template_version",
        sa.Column("template_id", sa.Uuid(), sa.ForeignKey("template.id"), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("notification") as batch:
        batch.add_column(sa.Column("service_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("api_key_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("key_type", sa.String(10), nullable=True))
        batch.add_column(sa.Column("template_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("template_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("html_body", sa.Text(), nullable=True))
        batch.add_column(sa.Column("text_body", sa.Text(), nullable=True))
        batch.add_column(sa.Column("simulated", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_notification_service_id", "notification", ["service_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_notification_service_id", "notification")
    with op.batch_alter_table("notification") as batch:
        for column in ("completed_at", "simulated", "text_body", "html_body",
                       "template_version", "template_id", "key_type", "api_key_id",
                       "service_id"):
            batch.drop_column(column)
    op.drop_table("template_version")
    op.drop_table("template")
    op.drop_table("notify_api_key")
    op.drop_table("notify_service")
