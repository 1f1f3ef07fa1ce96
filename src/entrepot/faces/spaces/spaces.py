"""Spaces: list, create, detail, update, delete; presigned URLs and copies within a project."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from entrepot.core.objects import service
from entrepot.faces.http import resolve_principal, services_of
from entrepot.faces.spaces.deps import PREFIX
from entrepot.faces.spaces.render import object_json, presigned_json, space_json

router = APIRouter(prefix=PREFIX)


class SpaceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="1-63 lowercase letters, digits and hyphens")
    description: str = ""
    public: bool = Field(False, description="anyone may read its objects without a token")
    expiresAt: datetime | None = Field(None, description="turns read-only then; removed after a grace period")


class SpaceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str | None = None
    public: bool | None = None
    expiresAt: datetime | None = None


@router.get("/{project}", summary="List the spaces the caller can read (anonymous: public ones)")
async def list_spaces(project: str, request: Request) -> dict[str, Any]:
    principal = await resolve_principal(request)
    found = await run_in_threadpool(service.list_spaces, services_of(request), principal, project)
    return {"spaces": [space_json(s.space, s) for s in found]}


@router.post("/{project}", status_code=201, summary="Create a space (needs canManageSpaces)")
async def create_space(project: str, body: SpaceCreate, request: Request) -> dict[str, Any]:
    principal = await resolve_principal(request)
    new = service.NewSpace(
        name=body.name, description=body.description, public=body.public, expires_at=body.expiresAt
    )
    space = await run_in_threadpool(service.create_space, services_of(request), principal, project, new)
    return space_json(space)


@router.get("/{project}/{space}", summary="A space's details")
async def space_detail(project: str, space: str, request: Request) -> dict[str, Any]:
    principal = await resolve_principal(request)
    info = await run_in_threadpool(
        service.open_space, services_of(request), principal, project, space, "read"
    )
    return space_json(info)


@router.patch("/{project}/{space}", summary="Change a space's description, visibility or expiry")
async def update_space(project: str, space: str, body: SpaceUpdate, request: Request) -> dict[str, Any]:
    principal = await resolve_principal(request)
    changes = service.SpaceChanges(description=body.description, public=body.public)
    if "expiresAt" in body.model_fields_set:  # null removes the expiry; absent leaves it
        changes = service.SpaceChanges(
            description=body.description, public=body.public, expires_at=body.expiresAt
        )
    info = await run_in_threadpool(
        service.update_space, services_of(request), principal, project, space, changes
    )
    return space_json(info)


@router.delete("/{project}/{space}", status_code=204, summary="Delete a space (force=true: with its objects)")
async def delete_space(project: str, space: str, request: Request, force: bool = False) -> Response:
    principal = await resolve_principal(request)
    await run_in_threadpool(
        lambda: service.delete_space(services_of(request), principal, project, space, force=force)
    )
    return Response(status_code=204)


class PresignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["GET", "PUT", "HEAD", "DELETE", "LIST", "get", "put", "head", "delete", "list"]
    key: str | None = None
    prefix: str | None = None
    expiresIn: int = Field(3600, description="seconds (at most the setting presign_max_ttl)")


@router.post(
    "/{project}/{space}/presign", summary="A time-limited URL for one operation, usable without a token"
)
async def presign(project: str, space: str, body: PresignRequest, request: Request) -> dict[str, Any]:
    principal = await resolve_principal(request)
    wanted = service.PresignRequest(
        method=body.method, key=body.key, prefix=body.prefix, expires_in=body.expiresIn
    )
    url = await run_in_threadpool(
        service.presign_url, services_of(request), principal, project, space, wanted
    )
    return presigned_json(url)


class ObjectRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    space: str | None = Field(None, description="default: the target space")
    key: str


class CopyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: ObjectRef
    key: str = Field(description="the new object's key in this space")
    metadata: dict[str, str] | None = Field(None, description="replaces the source's metadata when given")
    contentType: str | None = None


@router.post(
    "/{project}/{space}/copy", status_code=201, summary="Copy an object (from any space of the project)"
)
async def copy_object(project: str, space: str, body: CopyRequest, request: Request) -> dict[str, Any]:
    principal = await resolve_principal(request)
    wanted = service.CopyRequest(
        source_key=body.source.key,
        key=body.key,
        source_space=body.source.space,
        metadata=body.metadata,
        content_type=body.contentType,
    )
    info = await run_in_threadpool(
        service.copy_object, services_of(request), principal, project, space, wanted
    )
    return object_json(info)
