"""The start page and the pages a council must have: accessibility, privacy, cookies."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from webkit.app import FrontendDep

router = APIRouter()


@router.get("/")
async def home(request: Request, frontend: FrontendDep) -> Response:
    return frontend.render(request, "home.html", page_title="Milton Keynes City Council services")


@router.get("/accessibility")
async def accessibility(request: Request, frontend: FrontendDep) -> Response:
    return frontend.render(
        request, "accessibility.html", page_title="Accessibility statement for this website"
    )


@router.get("/privacy")
async def privacy(request: Request, frontend: FrontendDep) -> Response:
    return frontend.render(request, "privacy.html", page_title="Privacy notice")


@router.get("/cookies")
async def cookies(request: Request, frontend: FrontendDep) -> Response:
    return frontend.render(request, "cookies.html", page_title="Cookies")
