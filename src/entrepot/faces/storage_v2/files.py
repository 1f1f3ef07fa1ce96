"""Keboola files: prepare, upload, list, detail, delete, tags, download.

The bytes go up either through the S3 face, as Keboola's clients send them (``federationToken``:
``uploadParams.credentials`` are temporary S3 credentials that may PutObject ``uploadParams.key``
in ``uploadParams.bucket`` and nothing else), or to entrepot's own ``uploadParams.url``: a
signed, token-free URL that takes the raw body with PUT or POST (or a multipart ``file`` field
with POST). A file's detail with ``federationToken`` adds read credentials and ``s3Path``
(GetObject/HeadObject of that key, see ``faces/s3/ops_files.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from email.utils import formatdate
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.responses import JSONResponse, Response, StreamingResponse

from entrepot.core.auth import Principal
from entrepot.core.errors import InvalidInput, NotFound
from entrepot.core.files import service as files
from entrepot.core.files.links import SignedLink
from entrepot.core.files.views import FileView
from entrepot.core.ids import parse_id
from entrepot.core.sessions import SessionCredentials
from entrepot.faces.http import body_chunks, content_disposition, services_of
from entrepot.faces.objects_http import DOWNLOAD_SAFETY_HEADERS, quoted_etag, ranged_response
from entrepot.faces.storage_v2.deps import PREFIX, caller
from entrepot.faces.storage_v2.jobs import render_job
from entrepot.faces.storage_v2.params import Params, keboola_params
from entrepot.faces.storage_v2.render import ts

router = APIRouter(prefix=PREFIX)  # full paths: metrics and logs name the real route

ASYNC_DELETE_WAIT = 1.0  # let quick deletes finish inside the request (reference §1.7)


# -- rendering ----------------------------------------------------------------------------------


def file_json(file: FileView, region: str) -> dict[str, Any]:
    """The Keboola File object (reference §6.1) plus entrepot's ``isUploaded``/``uploaded``.

    ``region`` is the S3 face's (``s3_region``): Keboola's clients sign their S3 requests for it.
    """
    creator = file.creator
    return {
        "id": file.id,
        "name": file.name,
        "created": ts(file.created_at),
        "url": file.download_url,
        "provider": "aws",
        "region": region,
        "sizeBytes": file.size_bytes,
        "isPublic": file.is_public,
        "isSliced": file.is_sliced,
        "isEncrypted": file.is_encrypted,
        "isPermanent": file.is_permanent,
        "tags": list(file.tags),
        "creatorToken": {"id": str(creator.id), "description": creator.description} if creator else None,
        "maxAgeDays": file.max_age_days,
        "isExpired": file.is_expired,
        "runId": file.run_id,
        "runIds": [file.run_id] if file.run_id else [],
        "fileType": file.file_type,
        "contentType": file.content_type,
        # entrepot extensions: whether the bytes have landed, and when
        "isUploaded": file.uploaded_at is not None,
        "uploaded": ts(file.uploaded_at),
    }


def credentials_json(credentials: SessionCredentials) -> dict[str, str]:
    """Temporary S3 credentials in AWS STS's shape (what boto3 takes)."""
    return {
        "AccessKeyId": credentials.access_key_id,
        "SecretAccessKey": credentials.secret_access_key,
        "SessionToken": credentials.session_token,
        "Expiration": credentials.expiration.isoformat(),
    }


def _file_id(value: str) -> int:
    file_id = parse_id(value)
    if file_id is None:  # an id that does not parse names nothing: 404 (reference §1.1)
        raise NotFound(f"file {value!r} not found; file ids are numbers", code="storage.files.notFound")
    return file_id


def _optional_int(params: Params, name: str) -> int | None:
    if str(params.str(name) or "").lower() in ("null", "none"):  # clients that send None as text
        return None
    return params.int(name)


def _signed_link(request: Request) -> SignedLink:
    return SignedLink(request.query_params.get("expires"), request.query_params.get("signature"))


# -- endpoints ----------------------------------------------------------------------------------


@router.post("/files/prepare", status_code=201, summary="Create a file record and get its upload parameters")
def prepare(
    request: Request, principal: Principal = Depends(caller), params: Params = Depends(keboola_params)
) -> JSONResponse:
    new = files.NewFile(
        name=params.str("name"),
        size_bytes=params.int("sizeBytes", minimum=0),
        tags=tuple(params.list("tags")),
        is_public=params.bool("isPublic"),
        is_permanent=params.bool("isPermanent"),
        is_encrypted=params.bool("isEncrypted", True),
        is_sliced=params.bool("isSliced"),
        content_type=params.str("contentType"),
        run_id=request.headers.get("x-kbc-runid") or params.str("runId"),
    )
    services = services_of(request)
    settings = services.settings
    prepared = files.prepare(services, principal, new, federation=params.bool("federationToken"))
    body = file_json(prepared.file, settings.s3_region)
    upload_params: dict[str, Any] = {
        "bucket": settings.s3_files_bucket,
        "key": prepared.file.key,
        "acl": "private",
        "x-amz-server-side-encryption": "AES256",
        # entrepot: PUT (or POST) the bytes here, no token needed until it expires
        "url": prepared.upload_url,
        "method": "PUT",
    }
    if prepared.credentials is not None:  # PutObject of key in bucket, through the S3 face
        upload_params["credentials"] = credentials_json(prepared.credentials)
    body["uploadParams"] = upload_params
    return JSONResponse(body, status_code=201)


@router.get("/files", summary="List files, newest first")
def list_files(
    request: Request, principal: Principal = Depends(caller), params: Params = Depends(keboola_params)
) -> list[dict[str, Any]]:
    query = files.FileQuery(
        tags=tuple(params.list("tags")),
        q=params.str("q"),
        limit=params.int("limit", 100, minimum=1) or 100,
        offset=params.int("offset", 0, minimum=0) or 0,
        since_id=_optional_int(params, "sinceId"),
        max_id=_optional_int(params, "maxId"),
        show_expired=params.bool("showExpired"),
    )
    services = services_of(request)
    return [file_json(f, services.settings.s3_region) for f in files.list_files(services, principal, query)]


@router.get("/files/{file_id}", summary="File detail")
def file_detail(
    file_id: str,
    request: Request,
    principal: Principal = Depends(caller),
    params: Params = Depends(keboola_params),
) -> dict[str, Any]:
    services = services_of(request)
    federation = params.bool("federationToken")
    file = files.detail(services, principal, _file_id(file_id), federation=federation)
    body = file_json(file, services.settings.s3_region)
    if federation:  # GetObject/HeadObject of s3Path through the S3 face
        body["s3Path"] = {"bucket": services.settings.s3_files_bucket, "key": file.key}
        if file.credentials is not None:  # none for an expired file
            body["credentials"] = credentials_json(file.credentials)
    return body


@router.delete("/files/{file_id}", status_code=204, summary="Delete a file (async=true: as a job)")
def delete_file(
    file_id: str,
    request: Request,
    principal: Principal = Depends(caller),
    params: Params = Depends(keboola_params),
) -> Response:
    services = services_of(request)
    fid = _file_id(file_id)
    if params.bool("async"):
        run_id = request.headers.get("x-kbc-runid")
        job = files.delete_async(services, principal, fid, run_id=run_id, wait=ASYNC_DELETE_WAIT)
        return JSONResponse(render_job(services, job), status_code=202)
    files.delete(services, principal, fid)
    return Response(status_code=204)


@router.post("/files/{file_id}/tags", status_code=204, summary="Add a tag to a file")
def add_tag(
    file_id: str,
    request: Request,
    principal: Principal = Depends(caller),
    params: Params = Depends(keboola_params),
) -> Response:
    files.add_tag(services_of(request), principal, _file_id(file_id), params.str("tag"))
    return Response(status_code=204)


@router.delete("/files/{file_id}/tags/{tag:path}", status_code=204, summary="Remove a tag from a file")
def remove_tag(file_id: str, tag: str, request: Request, principal: Principal = Depends(caller)) -> Response:
    files.remove_tag(services_of(request), principal, _file_id(file_id), tag)
    return Response(status_code=204)


async def upload(file_id: str, request: Request) -> JSONResponse:
    services = services_of(request)
    fid = _file_id(file_id)
    query = request.query_params
    chunks: Iterator[bytes] = body_chunks(request)
    media, options = parse_options_header(request.headers.get("content-type", ""))
    if media == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise InvalidInput("multipart upload without a boundary in Content-Type")
        chunks = multipart_field(chunks, boundary, "file")
    if "signature" in query or "expires" in query:
        file = await anyio.to_thread.run_sync(
            files.upload_signed, services, fid, _signed_link(request), chunks
        )
    else:
        principal = await caller(request)
        file = await anyio.to_thread.run_sync(files.upload, services, principal, fid, chunks)
    return JSONResponse(file_json(file, services.settings.s3_region))


_UPLOAD_SUMMARY = "Upload a prepared file's bytes (signed URL or token; raw body, or multipart field 'file')"
for _method in ("PUT", "POST"):
    router.add_api_route(
        "/files/{file_id}/upload",
        upload,
        methods=[_method],
        operation_id=f"storage_file_upload_{_method.lower()}",
        summary=_UPLOAD_SUMMARY,
    )


@router.get("/files/{file_id}/download", summary="Download a file with its signed URL (no token)")
def download(file_id: str, request: Request) -> Response:
    found = files.open_download(services_of(request), _file_id(file_id), _signed_link(request))
    headers = {
        "Content-Type": found.media_type,
        "Content-Disposition": content_disposition(found.filename),
        **DOWNLOAD_SAFETY_HEADERS,
    }
    stored = found.stored
    if stored is not None:  # stored bytes as they are: ranges through the shared parser
        headers["Last-Modified"] = formatdate(stored.modified, usegmt=True)
        etag = f"{found.file_id:x}-{stored.size:x}-{stored.modified_ns:x}"
        headers["ETag"] = quoted_etag(etag)
        return ranged_response(stored.size, request.headers, stored.open, headers=headers, etag=etag)
    assert found.chunks is not None
    if found.size is not None:  # clients show a download's progress against it
        headers["Content-Length"] = str(found.size)
    return StreamingResponse(found.chunks, headers=headers)


# -- streaming helpers --------------------------------------------------------------------------


def multipart_field(chunks: Iterable[bytes], boundary: bytes, field: str) -> Iterator[bytes]:
    """Stream the bytes of one field of a ``multipart/form-data`` body without buffering it."""
    out: list[bytes] = []
    state: dict[str, Any] = {
        "name": b"",
        "value": b"",
        "headers": {},
        "target": False,
        "found": False,
        "ended": False,
    }
    wanted = field.encode()

    def on_part_begin() -> None:
        state["headers"] = {}
        state["target"] = False

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["name"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["name"].lower()] = state["value"]
        state["name"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, opts = parse_options_header(state["headers"].get(b"content-disposition", b""))
        if opts.get(b"name") == wanted and not state["found"]:
            state["target"] = state["found"] = True

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["target"]:
            out.append(bytes(data[start:end]))

    def on_part_end() -> None:
        state["target"] = False

    def on_end() -> None:
        state["ended"] = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_end": on_end,
        },
    )
    try:
        for chunk in chunks:
            parser.write(chunk)
            if out:
                yield b"".join(out)
                out.clear()
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidInput(f"the multipart body is malformed: {exc}") from exc
    if out:
        yield b"".join(out)
    if not state["ended"]:
        raise InvalidInput("the multipart body ends before its closing boundary; nothing was stored")
    if not state["found"]:
        raise InvalidInput(f"the multipart body has no {field!r} field; send the bytes as -F {field}=@path")
