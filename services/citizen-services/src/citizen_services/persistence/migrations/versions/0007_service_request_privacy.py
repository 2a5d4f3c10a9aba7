"""Service requests: what Open311 may publish.

* ``service_request.public``: true for requests that arrived through Open311 (they have no
  ``citizen_id``: a partner or staff submitted them), false for citizens' reports through
  ``/api/v1/service-requests`` — until now these were all shown on Open311; from here on a
  citizen's report is public only if they choose so.
* ``service_request_update.note_visibility``: ``public`` or ``internal``. Notes written
  before this migration become ``internal`` (they may hold safeguarding details); staff can
  add a public note when one should be shown.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Not batch mode: for a column with an expression default, batch mode on SQLite copies
    # service_request and drops the original, which the updates' foreign key refuses once
    # there are rows. Both databases add a column in place.
    op.add_column("service_request", sa.Column("public", sa.Boolean(), nullable=False,
                                               server_default=sa.false()))
    op.add_column("service_request_update",
                  sa.Column("note_visibility", sa.String(20), nullable=True))
    requests = sa.table("service_request", sa.column("public", sa.Boolean()),
                        sa.column("citizen_id", sa.String()))
    op.execute(requests.update().where(requests.c.citizen_id.is_(None))
               .values(public=sa.true()))
    updates = sa.table("service_request_update", sa.column("note", sa.String()),
                       sa.column("note_visibility", sa.String()))
    op.execute(updates.update().where(updates.c.note.is_not(None))
               .values(note_visibility="internal"))


def downgrade() -> None:
    # Not batch mode either (as above): SQLite 3.35+ and PostgreSQL drop a column in place.
    op.drop_column("service_request_update", "note_visibility")
    op.drop_column("service_request", "public")
