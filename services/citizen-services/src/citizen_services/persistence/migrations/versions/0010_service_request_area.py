"""Service requests: the area they are in, for the staff queue's area filter.

* ``service_request.area``: the MK postcode district (``MK9``) of the request's location
  (the nearest district centre) or, without one, of a postcode in its address
  (``citizen_services.domain.geo.area_of``); indexed. Existing requests are filled in here.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

from citizen_services.domain.geo import area_of

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # In place, not batch mode (as 0007 and 0008).
    op.add_column("service_request", sa.Column("area", sa.String(8), nullable=True))
    op.create_index("ix_service_request_area", "service_request", ["area"])
    requests = sa.table(
        "service_request",
        sa.column("id", sa.Uuid()),
        sa.column("lat", sa.Float()),
        sa.column("long", sa.Float()),
        sa.column("address", sa.String()),
        sa.column("area", sa.String()),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(requests.c.id, requests.c.lat, requests.c.long, requests.c.address)
    ).all()
    by_area: dict[str, list[object]] = {}
    for row in rows:
        area = area_of(lat=row.lat, long=row.long, address=row.address)
        if area is not None:
            by_area.setdefault(area, []).append(row.id)
    for area, ids in by_area.items():
        for start in range(0, len(ids), 500):
            conn.execute(
                requests.update()
                .where(requests.c.id.in_(ids[start : start + 500]))
                .values(area=area)
            )


def downgrade() -> None:
    op.drop_index("ix_service_request_area", table_name="service_request")
    op.drop_column("service_request", "area")
