"""Multipart uploads: create, upload parts (in parallel, in any order), list, complete, abort."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from entrepot.core.objects import service
from entrepot.faces.http import body_chunks, resolve_principal, services_of
from entrepot.faces.objects_http import quoted_etag
from entrepot.faces.spaces.deps import PREFIX
from entrepot.faces.spaces.render import object_json, part_json, upload_json

router = APIRouter(prefix=PREFIX)


class UploadCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str
    contentType: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class CompletedPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    partNumber: int
    etag: str = ""


class UploadComplete(BaseModel):
    model_config = ConfigDict(extra="forbid")
    parts: list[CompletedPart] | None = Field(None, description="default: every part received, in order")


@router.post("/{project}/{space}/uploads", status_code=201, summary="Start a multipart upload")
async def create_upload(project: str, space: str, body: UploadCreate, request: Request) -> dict[str, Any]:
    principal = await resolve_principal(request)
    upload = await run_in_threadpool(
        lambda: service.create_upload(
            services_of(request),
            principal,
            project,
            space,
            body.key,
            content_type=body.contentType,
            metadata=body.metadata,
        )
    )
    return upload_json(upload)


@router.get("/{project}/{space}/uploads", summary="Multipart uploads in progress (optionally for one key)")
async def list_uploads(project: str, space: str, request: Request, key: str | None = None) -> dict[str, Any]:
    principal = await resolve_principal(request)
    found = await run_in_threadpool(
        service.list_uploads, services_of(request), principal, project, space, key
    )
    return {"uploads": [upload_json(u) for u in found]}


@router.get("/{project}/{space}/uploads/{upload_id}", summary="An upload and the parts received so far")
async def get_upload(project: str, space: str, upload_id: str, request: Request) -> dict[str, Any]:
    principal = await resolve_principal(request)
    upload = await run_in_threadpool(
        service.get_upload, services_of(request), principal, project, space, upload_id
    )
    return upload_json(upload, parts=True)


@router.put("/{project}/{space}/uploads/{upload_id}/parts/{part_number}", summary="Upload one part (1-10000)")
async def put_part(
    project: str, space: str, upload_id: str, part_number: int, request: Request
) -> JSONResponse:
    principal = await resolve_principal(request)
    services = services_of(request)
    md5 = request.headers.get("content-md5")
    part = await anyio.to_thread.run_sync(
        lambda: service.put_part(
            services, principal, project, space, upload_id, part_number, body_chunks(request), content_md5=md5
        )
    )
    return JSONResponse(part_json(part), headers={"ETag": quoted_etag(part.etag)})


@router.post(
    "/{project}/{space}/uploads/{upload_id}/complete",
    status_code=201,
    summary="Join the parts into the object (it becomes visible now)",
)
async def complete_upload(
    project: str, space: str, upload_id: str, request: Request, body: UploadComplete | None = None
) -> dict[str, Any]:
    principal = await resolve_principal(request)
    parts = None if body is None or body.parts is None else [(p.partNumber, p.etag) for p in body.parts]
    obj = await run_in_threadpool(
        service.complete_upload, services_of(request), principal, project, space, upload_id, parts
    )
    return object_json(obj)


@router.delete(
    "/{project}/{space}/uploads/{upload_id}", status_code=204, summary="Abort an upload, dropping its parts"
)
async def abort_upload(project: str, space: str, upload_id: str, request: Request) -> Response:
    principal = await resolve_principal(request)
    await run_in_threadpool(service.abort_upload, services_of(request), principal, project, space, upload_id)
    return Response(status_code=204)
