"""My requests: the citizen's reports, their status and the public timeline of updates."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response

from citizen_portal.clients import ServiceRequestsApi
from citizen_portal.views.labels import status_label
from webkit.app import CurrentUser, FrontendDep

router = APIRouter(prefix="/requests")


@router.get("")
async def mine(request: Request, frontend: FrontendDep, user: CurrentUser) -> Response:
    page = await frontend.client(ServiceRequestsApi, user).mine()
    return frontend.render(
        request,
        "requests/list.html",
        page_title="My reports",
        items=page["items"],
        status_label=status_label,
    )


@router.get("/{request_id}")
async def one(
    request_id: uuid.UUID, request: Request, frontend: FrontendDep, user: CurrentUser
) -> Response:
    found = await frontend.client(ServiceRequestsApi, user).one(str(request_id))
    return frontend.render(
        request,
        "requests/one.html",
        page_title=f"Report {str(request_id)[:8]}",
        item=found,
        status_label=status_label,
    )
