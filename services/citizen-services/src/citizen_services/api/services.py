"""The catalogue API: ``/api/v1/services``.

Staff create and publish entries; anyone may read a published entry; drafts, suspended and
retired entries are visible to staff only (others get 404, not a hint that they exist).
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from citizen_services.api.schemas import ServiceCreate, ServicePublic
from citizen_services.application import catalogue
from servicekit.app import problem_responses
from servicekit.deps import ReadSessionDep, UowDep
from servicekit.identity import CurrentPrincipal, Role, StaffPrincipal

router = APIRouter(prefix="/api/v1/services", tags=["catalogue"])

ETAG = {"ETag": {"description": "The entry's version, for conditional requests.",
                 "required": True, "schema": {"type": "string"}}}
LOCATION = {"Location": {"description": "Where the new entry is.", "required": True,
                         "schema": {"type": "string"}}}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ServicePublic,
             summary="Create a catalogue entry (draft)",
             responses={201: {"headers": {**ETAG, **LOCATION}}, **problem_responses(
                 (409, "A service with this slug or service_code already exists"))})
async def create_service(body: ServiceCreate, uow: UowDep, response: Response,
                         staff: StaffPrincipal) -> ServicePublic:
    service = await catalogue.create_service(
        uow=uow, command=catalogue.CreateService(**body.model_dump()))
    response.headers["Location"] = f"/api/v1/services/{service.id}"
    response.headers["ETag"] = f'"{service.version}"'
    return ServicePublic.model_validate(service)


@router.get("/{service_id}", response_model=ServicePublic, summary="Read a catalogue entry",
            responses={200: {"headers": ETAG}})
async def read_service(service_id: uuid.UUID, session: ReadSessionDep, response: Response,
                       principal: CurrentPrincipal) -> ServicePublic:
    service = await catalogue.find_service(session=session, service_id=service_id)
    if service.status != "published" and not principal.has_role(Role.STAFF, Role.ADMIN):
        raise catalogue.ServiceNotFound(f"No service with id {service_id}.")
    response.headers["ETag"] = f'"{service.version}"'
    return ServicePublic.model_validate(service)


@router.post("/{service_id}/publish", response_model=ServicePublic,
             summary="Publish a draft or suspended entry (emits ServicePublished)",
             responses={200: {"headers": ETAG}, **problem_responses(
                 (409, "The entry's status does not allow publishing (e.g. retired)"))})
async def publish_service(service_id: uuid.UUID, uow: UowDep, response: Response,
                          staff: StaffPrincipal) -> ServicePublic:
    service = await catalogue.publish_service(
        uow=uow, command=catalogue.PublishService(service_id=service_id, actor=staff.subject))
    response.headers["ETag"] = f'"{service.version}"'
    return ServicePublic.model_validate(service)
