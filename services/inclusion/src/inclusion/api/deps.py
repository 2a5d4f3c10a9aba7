"""Dependency aliases of the inclusion API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from inclusion.application.unit_of_work import InclusionUnitOfWork
from inclusion.persistence.repositories import Repositories
from servicekit.deps import ReadDbDep, UowDep
from servicekit.identity import Principal, Role, require_roles

#: A citizen (their own things) or staff (everyone's).
CitizenOrStaff = Annotated[Principal, require_roles(Role.CITIZEN, Role.STAFF, Role.ADMIN)]


def _unit_of_work(uow: UowDep) -> InclusionUnitOfWork:
    return InclusionUnitOfWork(uow)


def _reading(db: ReadDbDep) -> Repositories:
    return Repositories(db)


#: The request's unit of work with inclusion's repositories (commits when the endpoint
#: returns; what commands take, and what a command's endpoint reads its answer through).
InclusionUowDep = Annotated[InclusionUnitOfWork, Depends(_unit_of_work, scope="function")]
#: The repositories over a read-only session (GET endpoints).
ReadDep = Annotated[Repositories, Depends(_reading)]
