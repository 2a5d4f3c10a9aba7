"""Tables of citizen-services (model naming: XBase / XCreate / X(table=True) / XPublic)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.types import UtcDateTime


class CatalogueServiceBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    service_code: str | None = Field(
        default=None, max_length=64, description="Open311 service_code; generated if omitted"
    )
    slug: str | None = Field(default=None, max_length=120)
    keywords: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON))
    groups: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON))
    department: str | None = Field(default=None, max_length=200)
    lgsl_codes: list[int] = Field(default_factory=list, sa_column=sa.Column(sa.JSON))
    #: {online_url, phone, venue, email, sms}: each optional.
    channels: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON))
    eligibility: str | None = Field(default=None, max_length=4000)
    fees: str | None = Field(default=None, max_length=2000)
    audience: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON))
    opening_hours: str | None = Field(default=None, max_length=1000)
    accessibility_statement_url: str | None = Field(default=None, max_length=500)
    last_reviewed_on: date | None = None
    #: Open311 attribute definitions: [{code, datatype, required, order, description, values}].
    attributes: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(sa.JSON))


class CatalogueService(CatalogueServiceBase, table=True):
    __tablename__ = "catalogue_service"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    slug: str = Field(max_length=120, sa_column_kwargs={"unique": True})
    service_code: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    status: str = Field(default="draft", max_length=20, index=True)
    version: int = 1
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    published_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )
    status_changed_by: str | None = Field(default=None, max_length=200)
    status_changed_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime(), nullable=True)
    )
    status_reason: str | None = Field(default=None, max_length=1000)


class CatalogueServiceHistory(SQLModel, table=True):
    """One row per change of an entry (create, update, publish, suspend, retire)."""

    __tablename__ = "catalogue_service_history"
    __table_args__ = (
        sa.UniqueConstraint("service_id", "version", name="uq_catalogue_history_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    service_id: uuid.UUID = Field(foreign_key="catalogue_service.id", index=True)
    version: int
    action: str = Field(max_length=20)
    actor: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=1000)
    changed_fields: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON))
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON))
    occurred_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class ServiceRequest(SQLModel, table=True):
    """A citizen's (or partner's) report against a published, reportable service."""

    __tablename__ = "service_request"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    service_id: uuid.UUID = Field(foreign_key="catalogue_service.id", index=True)
    service_code: str = Field(max_length=64, index=True)
    status: str = Field(default="open", max_length=40, index=True)
    description: str = Field(default="", max_length=4000)
    lat: float | None = None
    long: float | None = None
    address: str | None = Field(default=None, max_length=500)
    #: The MK postcode district it is in (``MK9``; domain.geo.area_of), set when it is
    #: reported: the queue's area filter (migration 0010 filled it in for older requests).
    area: str | None = Field(default=None, max_length=8, index=True)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON))
    #: Attributes an Open311 client sent that the service does not define (FixMyStreet's
    #: ``uprn``, ``fixmystreet_id``, ``easting``, ``closest_address``...): kept for staff,
    #: never shown on Open311 (migration 0008).
    extra_attributes: dict[str, Any] | None = Field(
        default=None, sa_column=sa.Column(sa.JSON, nullable=True)
    )
    #: A photo of the problem (Open311 ``media_url``; migration 0005): a client's URL, or
    #: the path of a photo uploaded with the report (``/open311/v2/media/...``).
    media_url: str | None = Field(default=None, max_length=2000)
    citizen_id: str | None = Field(default=None, max_length=200, index=True)
    #: {email, first_name, last_name, phone}: only with consent; never logged.
    contact: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    contact_consent: bool = False
    #: Shown on Open311 (migration 0007): true for Open311 submissions, and for a citizen's
    #: report only when they chose it; otherwise only the citizen and staff read it.
    public: bool = Field(
        default=False, nullable=False, sa_column_kwargs={"server_default": sa.false()}
    )
    assigned_to: str | None = Field(default=None, max_length=200, index=True)
    version: int = 1
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class ServiceRequestUpdate(SQLModel, table=True):
    """One change to a request (submission, status, assignment, note), oldest first."""

    __tablename__ = "service_request_update"

    id: int | None = Field(default=None, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="service_request.id", index=True)
    status: str = Field(max_length=40)
    previous_status: str | None = Field(default=None, max_length=40)
    note: str | None = Field(default=None, max_length=4000)
    #: ``public`` or ``internal`` (domain.requests.NoteVisibility) when there is a note;
    #: anything but ``public`` is internal (migration 0007).
    note_visibility: str | None = Field(default=None, max_length=20)
    assigned_to: str | None = Field(default=None, max_length=200)
    actor: str | None = Field(default=None, max_length=200)
    occurred_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    #: An update from an Open311 client (FixMyStreet's ``post_service_request_update``;
    #: migration 0008): ``source`` ``open311``, the client's own id for it, the status it
    #: reported (the council's status does not change), a photo, and who wrote it (private,
    #: as a request's contact).
    source: str | None = Field(default=None, max_length=20)
    external_id: str | None = Field(default=None, max_length=100)
    reported_status: str | None = Field(default=None, max_length=40)
    media_url: str | None = Field(default=None, max_length=2000)
    contact: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))


class ServiceRequestMedia(SQLModel, table=True):
    """A photo uploaded with an Open311 report or update (multipart/form-data), served at
    ``/open311/v2/media/{id}.{extension}`` while its request is public (migration 0008)."""

    __tablename__ = "service_request_media"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="service_request.id", index=True)
    content_type: str = Field(max_length=40)
    extension: str = Field(max_length=10)
    size: int
    data: bytes = Field(sa_column=sa.Column(sa.LargeBinary(), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class CatalogueImportJob(SQLModel, table=True):
    """A bulk import run in the background (migration 0009): the validated records, who
    asked, and where it is (``domain.imports.JobStatus``). Its rows are staged in
    ``catalogue_import_row`` and swapped into the catalogue in one transaction at the end."""

    __tablename__ = "catalogue_import_job"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    status: str = Field(default="queued", max_length=20, index=True)
    #: The records to import, as validated when the job was accepted (ServiceCreate, JSON).
    records: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(sa.JSON))
    rows_total: int = 0
    rows_done: int = 0
    created_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))
    finished_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))
    #: The claim: a token per claim, renewed (``heartbeat_at``) with every staged batch; a
    #: running job whose heartbeat is older than the stale time is claimed again.
    claim_token: uuid.UUID | None = None
    heartbeat_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))
    attempts: int = 0
    #: Succeeded: [{id, name, slug, service_code}] of the entries created, in file order.
    services: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(sa.JSON))
    #: Failed: why (one sentence) and the rows named ([{row, field, message}]).
    error: str | None = Field(default=None, max_length=1000)
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(sa.JSON))


#: A staged entry of an import job: the catalogue entry's columns as they will be inserted,
#: with the job and row, the entry's "created" history snapshot and who imported it. The swap
#: copies them into ``catalogue_service`` and ``catalogue_service_history`` with
#: ``INSERT .. SELECT``.
catalogue_import_row = sa.Table(
    "catalogue_import_row",
    SQLModel.metadata,
    sa.Column("job_id", sa.Uuid(), sa.ForeignKey("catalogue_import_job.id"), primary_key=True),
    sa.Column("row", sa.Integer(), primary_key=True),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.String(4000), nullable=False),
    sa.Column("slug", sa.String(120), nullable=False),
    sa.Column("service_code", sa.String(64), nullable=False),
    sa.Column("keywords", sa.JSON()),
    sa.Column("groups", sa.JSON()),
    sa.Column("department", sa.String(200)),
    sa.Column("lgsl_codes", sa.JSON()),
    sa.Column("channels", sa.JSON()),
    sa.Column("eligibility", sa.String(4000)),
    sa.Column("fees", sa.String(2000)),
    sa.Column("audience", sa.JSON()),
    sa.Column("opening_hours", sa.String(1000)),
    sa.Column("accessibility_statement_url", sa.String(500)),
    sa.Column("last_reviewed_on", sa.Date()),
    sa.Column("attributes", sa.JSON()),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("actor", sa.String(200)),
    sa.Column("changed_fields", sa.JSON()),
    sa.Column("snapshot", sa.JSON()),
)
