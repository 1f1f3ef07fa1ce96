"""Objects: list, put (streamed), get (ranges, conditionals), head, delete.

Every route also accepts a presigned URL (``expires``, ``signature``, ``signer`` query
parameters) instead of a token.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from entrepot.core.objects import objects as core
from entrepot.faces.http import body_chunks, content_disposition, raw_path_tail, services_of
from entrepot.faces.objects_http import disposition_kind, object_response, quoted_etag
from entrepot.faces.spaces.deps import META_PREFIX, PREFIX, open_space, user_metadata

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
    info, _ = await open_space(request, project, space, "read", presign_target=("LIST", prefix))
    page = await run_in_threadpool(
        lambda: core.list_objects(
            services_of(request), info, prefix=prefix, delimiter=delimiter, cursor=cursor, limit=limit
        )
    )
    return {
        "space": info.name,
        "prefix": prefix,
        "delimiter": delimiter,
        "objects": [core.object_summary(o) for o in page.objects],
        "prefixes": page.prefixes,
        "nextCursor": page.next_cursor,
        "isTruncated": page.next_cursor is not None,
    }


@router.put(
    "/{project}/{space}/objects/{key:path}", status_code=201, summary="Upload an object (streamed body)"
)
async def put_object(project: str, space: str, key: str, request: Request) -> Response:
    key = _key(request, key)
    info, _ = await open_space(request, project, space, "write", presign_target=("PUT", key))
    services = services_of(request)
    headers = request.headers
    declared = headers.get("content-length")
    md5 = core.decode_content_md5(headers.get("content-md5"))
    meta = user_metadata(request)
    stored = await anyio.to_thread.run_sync(
        lambda: core.put_object(
            services,
            info,
            key,
            body_chunks(request),
            content_type=headers.get("content-type"),
            metadata=meta,
            content_md5=md5,
            sha256=headers.get("x-entrepot-content-sha256"),
            expected_size=int(declared) if declared and declared.isdigit() else None,
        )
    )
    return JSONResponse(
        core.object_summary(stored), status_code=201, headers={"ETag": quoted_etag(stored.etag)}
    )


def _key(request: Request, key: str) -> str:
    """The object key of the URL, checked (invalid UTF-8 in it is a 400, not U+FFFD)."""
    return core.validate_object_key(raw_path_tail(request, key))


def _read(request: Request, info: Any, key: str, *, head: bool) -> Response:
    for _ in range(3):  # a version replaced between its headers and its bytes: read the new one
        try:
            return _read_once(request, info, key, head=head)
        except core.ObjectChanged:
            continue
    return _read_once(request, info, key, head=head)


def _read_once(request: Request, info: Any, key: str, *, head: bool) -> Response:
    services = services_of(request)
    obj = core.head_object(services, info, key)

    def opener(start: int | None, end: int | None) -> Any:
        return core.open_version(services, obj, start, end)

    wants_inline = request.query_params.get("download", "").lower() not in _TRUE
    kind = disposition_kind(obj.content_type, inline=wants_inline)  # never HTML, SVG, ... inline
    return object_response(
        obj,
        request.headers,
        opener,
        meta_prefix=META_PREFIX,
        extra_headers={
            "Content-Disposition": content_disposition(obj.name, kind),
            **({"X-Entrepot-Content-SHA256": obj.sha256} if obj.sha256 else {}),
        },
        head=head,
    )


@router.get("/{project}/{space}/objects/{key:path}", summary="Download an object (Range, If-None-Match, ...)")
async def get_object(project: str, space: str, key: str, request: Request) -> Response:
    key = _key(request, key)
    info, _ = await open_space(request, project, space, "read", presign_target=("GET", key))
    return await run_in_threadpool(_read, request, info, key, head=False)


@router.head("/{project}/{space}/objects/{key:path}", summary="An object's size, ETag, type and metadata")
async def head_object(project: str, space: str, key: str, request: Request) -> Response:
    key = _key(request, key)
    info, _ = await open_space(request, project, space, "read", presign_target=("HEAD", key))
    return await run_in_threadpool(_read, request, info, key, head=True)


@router.delete("/{project}/{space}/objects/{key:path}", status_code=204, summary="Delete an object")
async def delete_object(project: str, space: str, key: str, request: Request) -> Response:
    key = _key(request, key)
    info, _ = await open_space(request, project, space, "write", presign_target=("DELETE", key))
    await run_in_threadpool(core.delete_object, services_of(request), info, key)
    return Response(status_code=204)
