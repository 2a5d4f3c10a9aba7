"""Placeholder: filled in by the hsds work."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
