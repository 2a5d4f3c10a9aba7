"""Tables of citizen-services (model naming: XBase / XCreate / X(table=True) / XPublic)."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.types import UtcDateTime


class CatalogueServiceBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    service_code: str | None = Field(default=None, max_length=64,
                                     description="Open311 service_code; generated if omitted")
    slug: str | None = Field(default=None, max_length=120)
    keywords: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON))
    groups: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON))
    department: str | None = Field(default=None, max_length=200)


class CatalogueService(CatalogueServiceBase, table=True):
    __tablename__ = "catalogue_service"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    slug: str = Field(max_length=120, sa_column_kwargs={"unique": True})
    service_code: str = Field(max_length=64,
                              sa_column_kwargs={"unique": True})
    status: str = Field(default="draft", max_length=20, index=True)
    version: int = 1
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    published_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True))
    status_changed_by: str | None = Field(default=None, max_length=200)
