"""Placeholder: filled in by the open311 work."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
