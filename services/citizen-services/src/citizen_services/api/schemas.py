"""Request and response bodies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: No control characters (PostgreSQL cannot store NUL; CR/LF would end up in email headers).
#: A pattern also makes pydantic refuse unpaired surrogates, which cannot be encoded.
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
#: As ONE_LINE, but tabs and line breaks are allowed.
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
Label = Annotated[str, Field(pattern=ONE_LINE)]


class ServiceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=ONE_LINE)
    description: str = Field(default="", max_length=4000, pattern=TEXT)
    service_code: str | None = Field(default=None, min_length=1, max_length=64,
                                     pattern=r"^[A-Za-z0-9_.\-]+$")
    slug: str | None = Field(default=None, min_length=1, max_length=120,
                             pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
    keywords: list[Label] = Field(default_factory=list, max_length=50)
    groups: list[Label] = Field(default_factory=list, max_length=20)
    department: str | None = Field(default=None, max_length=200, pattern=ONE_LINE)


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
