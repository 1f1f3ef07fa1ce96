"""Spaces: list, create, detail, update, delete; presigned URLs and copies within a project."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from entrepot.core.objects import objects as core_objects
from entrepot.core.objects import presign as core_presign
from entrepot.core.objects import spaces as core_spaces
from entrepot.core.objects.objects import iso, object_summary
from entrepot.faces.http import resolve_principal, services_of
from entrepot.faces.spaces.deps import PREFIX, open_space

router = APIRouter(prefix=PREFIX)


def space_json(
    space: core_spaces.SpaceInfo, summary: core_spaces.SpaceSummary | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": space.name,
        "project": space.project_name,
        "description": space.description,
        "public": space.is_public,
        "createdAt": iso(space.created_at),
        "expiresAt": iso(space.expires_at) if space.expires_at else None,
        "readOnly": space.is_expired(),
    }
    if summary is not None:
        body.update(access=summary.access, objects=summary.objects, bytes=summary.bytes)
    return body


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
    found = await run_in_threadpool(core_spaces.list_spaces, services_of(request).catalog, project, principal)
    return {"spaces": [space_json(s.space, s) for s in found]}


@router.post("/{project}", status_code=201, summary="Create a space (needs canManageSpaces)")
async def create_space(project: str, body: SpaceCreate, request: Request) -> dict[str, Any]:
    principal = await resolve_principal(request)
    space = await run_in_threadpool(
        lambda: core_spaces.create_space(
            services_of(request).catalog,
            project,
            principal,
            body.name,
            description=body.description,
            public=body.public,
            expires_at=body.expiresAt,
        )
    )
    return space_json(space)


@router.get("/{project}/{space}", summary="A space's details")
async def space_detail(project: str, space: str, request: Request) -> dict[str, Any]:
    info, _ = await open_space(request, project, space, "read")
    return space_json(info)


@router.patch("/{project}/{space}", summary="Change a space's description, visibility or expiry")
async def update_space(project: str, space: str, body: SpaceUpdate, request: Request) -> dict[str, Any]:
    principal = await resolve_principal(request)
    changes: dict[str, Any] = {"description": body.description, "public": body.public}
    if "expiresAt" in body.model_fields_set:
        changes["expires_at"] = body.expiresAt
    info = await run_in_threadpool(
        lambda: core_spaces.update_space(services_of(request).catalog, project, principal, space, **changes)
    )
    return space_json(info)


@router.delete("/{project}/{space}", status_code=204, summary="Delete a space (force=true: with its objects)")
async def delete_space(project: str, space: str, request: Request, force: bool = False) -> Response:
    principal = await resolve_principal(request)
    await run_in_threadpool(
        core_spaces.delete_space, services_of(request), project, principal, space, force=force
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
    access = core_presign.METHODS.get(body.method.upper(), "read")  # the core re-checks the method
    info, principal = await open_space(request, project, space, access)
    url = await run_in_threadpool(
        lambda: core_presign.presign(
            services_of(request),
            info,
            principal,
            body.method,
            key=body.key,
            prefix=body.prefix,
            expires_in=body.expiresIn,
        )
    )
    return {
        "url": url.url,
        "method": url.method,
        "expiresAt": iso(datetime.fromtimestamp(url.expires_at, UTC)),
    }


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
    target, _ = await open_space(request, project, space, "write")
    if body.source.space in (None, space):
        source = target
    else:
        source, _ = await open_space(request, project, body.source.space, "read")
    info = await run_in_threadpool(
        lambda: core_objects.copy_object(
            services_of(request),
            source,
            body.source.key,
            target,
            body.key,
            metadata=body.metadata,
            content_type=body.contentType,
        )
    )
    return object_summary(info)
