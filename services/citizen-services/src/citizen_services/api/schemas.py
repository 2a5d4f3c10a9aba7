"""Request and response bodies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ServiceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    service_code: str | None = Field(default=None, min_length=1, max_length=64,
                                     pattern=r"^[A-Za-z0-9_.\-]+$")
    slug: str | None = Field(default=None, min_length=1, max_length=120,
                             pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
    keywords: list[str] = Field(default_factory=list, max_length=50)
    groups: list[str] = Field(default_factory=list, max_length=20)
    department: str | None = Field(default=None, max_length=200)


class ServicePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    slug: str
    service_code: str
    name: str
    description: str
    keywords: list[str]
    groups: list[str]
    department: str | None
    status: str
    version: int
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None

    @field_validator("created_at", "updated_at", "published_at")
    @classmethod
    def _assume_utc(cls, value: datetime | None) -> datetime | None:
        # Every stored time is UTC, but SQLite hands datetimes back without a zone.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
