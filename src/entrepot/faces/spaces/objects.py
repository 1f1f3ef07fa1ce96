"""Objects: list, put (streamed), get (ranges, conditionals), head, delete.

Every route also accepts a presigned URL (``expires``, ``signature``, ``signer`` query
parameters) instead of a token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from entrepot.core.objects import service
from entrepot.core.objects.objects import ObjectInfo
from entrepot.faces.http import body_chunks, content_disposition, services_of
from entrepot.faces.objects_http import disposition_kind, object_response, quoted_etag
from entrepot.faces.spaces.deps import META_PREFIX, PREFIX, caller_of, object_key, user_metadata
from entrepot.faces.spaces.render import listing_json, object_json

router = APIRouter(prefix=PREFIX)
_TRUE = ("1", "true", "yes")


@router.get(
    "/{project}/{space}/objects", summary="List objects by prefix; folders with a delimiter; cursor pages"
)
async def list_objects(
    project: str,
    space: str,
    request: Request,
    prefix: str = "",
    delimiter: str | None = None,
    cursor: str | None = None,
    limit: int = 1000,
) -> dict[str, Any]:
    caller = await caller_of(request)
    listing = service.Listing(prefix=prefix, delimiter=delimiter, cursor=cursor, limit=limit)
    page = await run_in_threadpool(
        service.list_objects, services_of(request), caller, project, space, listing
    )
    return listing_json(space, prefix, delimiter, page)


@router.put(
    "/{project}/{space}/objects/{key:path}", status_code=201, summary="Upload an object (streamed body)"
)
async def put_object(project: str, space: str, key: str, request: Request) -> Response:
    key = object_key(request, key)
    caller = await caller_of(request)
    services = services_of(request)
    headers = request.headers
    declared = headers.get("content-length")
    upload = service.ObjectUpload(
        content_type=headers.get("content-type"),
        metadata=user_metadata(request),
        content_md5=headers.get("content-md5"),
        sha256=headers.get("x-entrepot-content-sha256"),
        size=int(declared) if declared and declared.isdigit() else None,
    )
    stored = await anyio.to_thread.run_sync(
        lambda: service.put_object(services, caller, project, space, key, body_chunks(request), upload)
    )
    return JSONResponse(object_json(stored), status_code=201, headers={"ETag": quoted_etag(stored.etag)})


def _respond(request: Request, *, head: bool) -> Callable[[ObjectInfo, service.Opener], Response]:
    """How a read of an object is answered, given its entry and an opener of its bytes."""

    def respond(obj: ObjectInfo, opener: service.Opener) -> Response:
        wants_inline = request.query_params.get("download", "").lower() not in _TRUE
        kind = disposition_kind(obj.content_type, inline=wants_inline)  # never HTML, SVG, ... inline
        return object_response(
            obj,
            request.headers,
            opener,
            metadata=obj.metadata,
            meta_prefix=META_PREFIX,
            extra_headers={
                "Content-Disposition": content_disposition(obj.name, kind),
                **({"X-Entrepot-Content-SHA256": obj.sha256} if obj.sha256 else {}),
            },
            head=head,
        )

    return respond


async def _read(project: str, space: str, key: str, request: Request, *, head: bool) -> Response:
    key = object_key(request, key)
    caller = await caller_of(request)
    services = services_of(request)
    respond = _respond(request, head=head)
    return await run_in_threadpool(
        lambda: service.read_object(services, caller, project, space, key, head=head, respond=respond)
    )


@router.get("/{project}/{space}/objects/{key:path}", summary="Download an object (Range, If-None-Match, ...)")
async def get_object(project: str, space: str, key: str, request: Request) -> Response:
    return await _read(project, space, key, request, head=False)


@router.head("/{project}/{space}/objects/{key:path}", summary="An object's size, ETag, type and metadata")
async def head_object(project: str, space: str, key: str, request: Request) -> Response:
    return await _read(project, space, key, request, head=True)


@router.delete("/{project}/{space}/objects/{key:path}", status_code=204, summary="Delete an object")
async def delete_object(project: str, space: str, key: str, request: Request) -> Response:
    key = object_key(request, key)
    caller = await caller_of(request)
    await run_in_threadpool(service.delete_object, services_of(request), caller, project, space, key)
    return Response(status_code=204)
