"""Staff listing of sent messages (``GET /api/v1/messages``): indexes for its filters.

* ``ix_notification_created``: newest first, unfiltered or by status and channel.
* ``ix_notification_reference``, ``ix_notification_template``: a reference or a template,
  newest first.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_notification_created", "notification", ["created_at", "id"])
    op.create_index("ix_notification_reference", "notification", ["reference", "created_at"])
    op.create_index("ix_notification_template", "notification", ["template_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_notification_template", table_name="notification")
    op.drop_index("ix_notification_reference", table_name="notification")
    op.drop_index("ix_notification_created", table_name="notification")
