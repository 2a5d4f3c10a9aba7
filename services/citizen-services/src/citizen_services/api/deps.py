"""The repositories a route hands to ``application/``: built from the request's unit of work
(``...InUow``: the route's command writes through it, and it commits when the route
returns) or from its read session (``...Reads``: queries)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from citizen_services.persistence.catalogue import CatalogueRepository
from citizen_services.persistence.imports import ImportJobRepository
from citizen_services.persistence.requests import RequestRepository
from servicekit.deps import ReadDbDep, UowDep


async def _catalogue_in_uow(uow: UowDep) -> CatalogueRepository:
    return CatalogueRepository(uow.db)


async def _catalogue_reads(db: ReadDbDep) -> CatalogueRepository:
    return CatalogueRepository(db)


async def _requests_in_uow(uow: UowDep) -> RequestRepository:
    return RequestRepository(uow.db)


async def _request_reads(db: ReadDbDep) -> RequestRepository:
    return RequestRepository(db)


async def _import_jobs_in_uow(uow: UowDep) -> ImportJobRepository:
    return ImportJobRepository(uow.db)


async def _import_job_reads(db: ReadDbDep) -> ImportJobRepository:
    return ImportJobRepository(db)


CatalogueInUow = Annotated[CatalogueRepository, Depends(_catalogue_in_uow, scope="function")]
CatalogueReads = Annotated[CatalogueRepository, Depends(_catalogue_reads)]
RequestsInUow = Annotated[RequestRepository, Depends(_requests_in_uow, scope="function")]
RequestReads = Annotated[RequestRepository, Depends(_request_reads)]
ImportJobsInUow = Annotated[ImportJobRepository, Depends(_import_jobs_in_uow, scope="function")]
ImportJobReads = Annotated[ImportJobRepository, Depends(_import_job_reads)]
