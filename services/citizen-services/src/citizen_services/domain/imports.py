"""Catalogue import jobs: queued -> running -> succeeded | failed."""

from __future__ import annotations

from enum import StrEnum

from servicekit.errors import NotFound


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ImportJobNotFound(NotFound):
    code, title = "import-job-not-found", "Import job not found"
