"""``/api/v1/reports``: figures by programme, ward and month for staff, as JSON or CSV.

The CSV is written by ``servicekit.csvsafe``: a programme title or ward that would start a
spreadsheet formula goes out with a single quote in front, and every cell is quoted.
"""

from __future__ import annotations

import io
import uuid

from fastapi import APIRouter, Response

from inclusion.api.deps import ReadDep
from inclusion.api.schemas import FiguresRow
from inclusion.application import reports
from servicekit import csvsafe
from servicekit.identity import StaffPrincipal

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
COLUMNS = list(FiguresRow.model_fields)


@router.get(
    "/figures",
    response_model=list[FiguresRow],
    summary="Participants, completions, devices and vouchers by programme, ward and month",
)
async def figures(
    repos: ReadDep, staff: StaffPrincipal, programme_id: uuid.UUID | None = None
) -> list[FiguresRow]:
    return [
        FiguresRow.model_validate(r)
        for r in await reports.figures(repos=repos, programme_id=programme_id)
    ]


@router.get(
    "/figures.csv",
    summary="The same figures as CSV",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "One row per programme, ward and month.",
        }
    },
)
async def figures_csv(
    repos: ReadDep, staff: StaffPrincipal, programme_id: uuid.UUID | None = None
) -> Response:
    out = io.StringIO()
    writer = csvsafe.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in await reports.figures(repos=repos, programme_id=programme_id):
        writer.writerow(row)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="inclusion-figures.csv"'},
    )
