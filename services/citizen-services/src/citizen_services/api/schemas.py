"""Request and response bodies."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from citizen_services.domain.requests import MAX_DESCRIPTION

#: No control characters (PostgreSQL cannot store NUL; CR/LF would end up in email headers).
#: A pattern also makes pydantic refuse unpaired surrogates, which cannot be encoded.
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
#: As ONE_LINE, but tabs and line breaks are allowed.
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
Label = Annotated[str, Field(pattern=ONE_LINE)]


class Datatype(StrEnum):
    """Open311 GeoReport v2 attribute datatypes."""

    STRING = "string"
    NUMBER = "number"
    DATETIME = "datetime"
    TEXT = "text"
    SINGLEVALUELIST = "singlevaluelist"
    MULTIVALUELIST = "multivaluelist"


class AttributeValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=100, pattern=ONE_LINE)
    name: str = Field(min_length=1, max_length=200, pattern=ONE_LINE)


class Automated(StrEnum):
    """mySociety's Open311 extension: an attribute the client fills itself. ``server_set``:
    FixMyStreet sets it and never shows it; ``hidden_field``: a hidden form field."""

    SERVER_SET = "server_set"
    HIDDEN_FIELD = "hidden_field"


class AttributeDefinition(BaseModel):
    """An Open311 request attribute: what a citizen is asked when reporting."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    datatype: Datatype = Datatype.STRING
    required: bool = False
    order: int = Field(default=0, ge=0, le=1000)
    description: str = Field(min_length=1, max_length=500, pattern=ONE_LINE)
    datatype_description: str | None = Field(default=None, max_length=500, pattern=ONE_LINE)
    variable: bool = True
    values: list[AttributeValue] = Field(default_factory=list, max_length=100)
    automated: Automated | None = Field(
        default=None, description="Filled by the Open311 client: server_set or hidden_field"
    )
    protected: bool = Field(
        default=False,
        description="FixMyStreet keeps this attribute when the definitions are fetched again",
    )

    @model_validator(mode="after")
    def _values_only_for_lists(self) -> AttributeDefinition:
        is_list = self.datatype in (Datatype.SINGLEVALUELIST, Datatype.MULTIVALUELIST)
        if is_list and not self.values:
            raise ValueError(f"a {self.datatype.value} attribute needs values")
        if not is_list and self.values:
            raise ValueError(f"a {self.datatype.value} attribute takes no values")
        keys = [v.key for v in self.values]
        if len(set(keys)) != len(keys):
            raise ValueError("attribute value keys must be unique")
        return self


Url = Annotated[str, Field(max_length=500, pattern=r"^https://[^\s\x00-\x1f\x7f]+$")]


class Channels(BaseModel):
    """How a citizen can use the service; every channel optional."""

    model_config = ConfigDict(extra="forbid")

    online_url: Url | None = None
    phone: str | None = Field(default=None, max_length=40, pattern=r"^\+?[0-9 ()\-]{3,40}$")
    venue: str | None = Field(default=None, max_length=300, pattern=ONE_LINE)
    email: str | None = Field(
        default=None, max_length=254, pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$"
    )
    sms: str | None = Field(default=None, max_length=40, pattern=r"^\+?[0-9 ()\-]{3,40}$")


def _unique_codes(attributes: list[AttributeDefinition]) -> list[AttributeDefinition]:
    codes = [a.code for a in attributes]
    if len(set(codes)) != len(codes):
        raise ValueError("attribute codes must be unique")
    return attributes


class ServiceDetails(BaseModel):
    """The descriptive fields shared by create and update (each optional on update)."""

    model_config = ConfigDict(extra="forbid")

    lgsl_codes: list[Annotated[int, Field(ge=1, le=99999)]] = Field(
        default_factory=list, max_length=20
    )
    channels: Channels = Field(default_factory=Channels)
    eligibility: str | None = Field(default=None, max_length=4000, pattern=TEXT)
    fees: str | None = Field(default=None, max_length=2000, pattern=TEXT)
    audience: list[Label] = Field(default_factory=list, max_length=20)
    opening_hours: str | None = Field(default=None, max_length=1000, pattern=TEXT)
    accessibility_statement_url: Url | None = None
    last_reviewed_on: date | None = None
    attributes: list[AttributeDefinition] = Field(default_factory=list, max_length=50)

    @field_validator("attributes")
    @classmethod
    def _attributes_unique(cls, value: list[AttributeDefinition]) -> list[AttributeDefinition]:
        return _unique_codes(value)


class ServiceCreate(ServiceDetails):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=ONE_LINE)
    description: str = Field(default="", max_length=4000, pattern=TEXT)
    service_code: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$"
    )
    slug: str | None = Field(
        default=None, min_length=1, max_length=120, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
    )
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
    lgsl_codes: list[int] = Field(default_factory=list)
    channels: dict[str, Any] = Field(default_factory=dict)
    eligibility: str | None = None
    fees: str | None = None
    audience: list[str] = Field(default_factory=list)
    opening_hours: str | None = None
    accessibility_statement_url: str | None = None
    last_reviewed_on: date | None = None
    attributes: list[dict[str, Any]] = Field(default_factory=list)
    status: str
    version: int
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    status_changed_at: datetime | None = None
    status_changed_by: str | None = None
    status_reason: str | None = None

    @field_validator("lgsl_codes", "audience", "attributes", "channels", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any, info: Any) -> Any:
        # Rows written before migration 0002 hold NULL in the new JSON columns.
        if value is None:
            return {} if info.field_name == "channels" else []
        return value

    @field_validator("created_at", "updated_at", "published_at", "status_changed_at")
    @classmethod
    def _assume_utc(cls, value: datetime | None) -> datetime | None:
        # Every stored time is UTC, but SQLite hands datetimes back without a zone.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class ServiceUpdate(BaseModel):
    """A partial update (PATCH): only the fields sent change. Needs ``If-Match``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=ONE_LINE)
    description: str | None = Field(default=None, max_length=4000, pattern=TEXT)
    keywords: list[Label] | None = Field(default=None, max_length=50)
    groups: list[Label] | None = Field(default=None, max_length=20)
    department: str | None = Field(default=None, max_length=200, pattern=ONE_LINE)
    lgsl_codes: list[Annotated[int, Field(ge=1, le=99999)]] | None = Field(
        default=None, max_length=20
    )
    channels: Channels | None = None
    eligibility: str | None = Field(default=None, max_length=4000, pattern=TEXT)
    fees: str | None = Field(default=None, max_length=2000, pattern=TEXT)
    audience: list[Label] | None = Field(default=None, max_length=20)
    opening_hours: str | None = Field(default=None, max_length=1000, pattern=TEXT)
    accessibility_statement_url: Url | None = None
    last_reviewed_on: date | None = None
    attributes: list[AttributeDefinition] | None = Field(default=None, max_length=50)

    @field_validator("attributes")
    @classmethod
    def _attributes_unique(
        cls, value: list[AttributeDefinition] | None
    ) -> list[AttributeDefinition] | None:
        return None if value is None else _unique_codes(value)


class StatusChange(BaseModel):
    """Why an entry is suspended or retired."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000, pattern=TEXT)


class HistoryEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    action: str
    actor: str | None
    reason: str | None
    changed_fields: list[str]
    occurred_at: datetime

    @field_validator("changed_fields", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("occurred_at")
    @classmethod
    def _assume_utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class ServicePage(BaseModel):
    """One page of published services."""

    items: list[ServicePublic]
    page: int
    size: int
    total: int


class ImportProblem(BaseModel):
    """A bad record of an import: ``row`` counts data records from 1 (0: the whole file)."""

    row: int
    field: str
    message: str


class ImportedService(BaseModel):
    id: uuid.UUID
    name: str
    slug: str
    service_code: str


class ImportJobPublic(BaseModel):
    """An import job: where it is, and when it is done what it created or why it failed."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: str = Field(description="queued, running, succeeded or failed")
    rows_total: int
    rows_done: int = Field(description="Rows staged so far; the catalogue changes at the end")
    created_by: str | None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    services: list[ImportedService] = Field(
        default_factory=list, description="Succeeded: the entries created, in file order"
    )
    service_ids: list[uuid.UUID] = Field(
        default_factory=list, description="Succeeded: their ids, in file order"
    )
    error: str | None = Field(default=None, description="Failed: why (nothing was imported)")
    errors: list[ImportProblem] = Field(default_factory=list, description="Failed: rows named")

    @model_validator(mode="before")
    @classmethod
    def _ids_of_services(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            data = dict(value)
        elif hasattr(value, "model_dump"):  # the job just queued (a table model)
            data = value.model_dump()
        else:
            return value
        data["services"] = data.get("services") or []
        data["errors"] = data.get("errors") or []
        data["service_ids"] = [s["id"] for s in data["services"]]
        return data

    @field_validator("created_at", "started_at", "finished_at")
    @classmethod
    def _assume_utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def render_entry(service: Any) -> bytes:
    """An entry's JSON body (``ServicePublic``), as the entry read cache keeps it
    (``application/catalogue.py: EntryReads``)."""
    return ServicePublic.model_validate(service).model_dump_json().encode()


# -- service requests (the JSON API's and Open311's submissions) ----------------------------

RequestAttributeValue = (
    Annotated[str, Field(max_length=4000, pattern=TEXT)]
    | float
    | list[Annotated[str, Field(max_length=100, pattern=ONE_LINE)]]
)


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(
        default=None, max_length=254, pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$"
    )
    first_name: str | None = Field(default=None, max_length=100, pattern=ONE_LINE)
    last_name: str | None = Field(default=None, max_length=100, pattern=ONE_LINE)
    phone: str | None = Field(default=None, max_length=40, pattern=r"^\+?[0-9 ()\-]{3,40}$")


class RequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = Field(default="", max_length=MAX_DESCRIPTION, pattern=TEXT)
    lat: float | None = Field(default=None, ge=-90, le=90)
    long: float | None = Field(default=None, ge=-180, le=180)
    address: str | None = Field(default=None, min_length=1, max_length=500, pattern=ONE_LINE)
    attributes: dict[Annotated[str, Field(max_length=64)], RequestAttributeValue] = Field(
        default_factory=dict, max_length=50
    )
    contact: Contact | None = None
    contact_consent: bool = False
    public: bool = Field(
        default=False,
        description=(
            "Publish this report on Open311 (description, address and location included; "
            "never who reported it). Default: only you and council staff see it."
        ),
    )
