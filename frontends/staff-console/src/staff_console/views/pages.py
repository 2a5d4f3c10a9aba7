"""The console's home (what staff can do) and its accessibility statement."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from staff_console.auth import StaffUser
from webkit.app import FrontendDep

router = APIRouter()


@router.get("/")
async def home(request: Request, frontend: FrontendDep, user: StaffUser) -> Response:
    return frontend.render(
        request, "home.html", page_title="Staff console", admin="admin" in user.roles
    )


@router.get("/accessibility")
async def accessibility(request: Request, frontend: FrontendDep) -> Response:
    return frontend.render(request, "accessibility.html", page_title="Accessibility statement")
