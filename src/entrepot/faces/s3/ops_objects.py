"""Objects: PutObject, GetObject, HeadObject, CopyObject, DeleteObject."""

from __future__ import annotations

from collections.abc import Callable
from email.utils import format_datetime
from typing import BinaryIO
from urllib.parse import unquote_to_bytes

from starlette.datastructures import Headers
from starlette.requests import Request

from entrepot.core.blobs import iter_chunks
from entrepot.core.errors import EntrepotError
from entrepot.core.objects import service
from entrepot.core.objects.checksums import Checksum
from entrepot.core.objects.objects import ObjectInfo, validate_object_key
from entrepot.core.services import Services
from entrepot.faces.http import body_chunks
from entrepot.faces.objects_http import DOWNLOAD_SAFETY_HEADERS, not_modified, parse_range, quoted_etag
from entrepot.faces.s3.addressing import bucket_ref
from entrepot.faces.s3.auth import S3Caller
from entrepot.faces.s3.bodies import body_spec, decoded
from entrepot.faces.s3.common import (
    META_PREFIX,
    SMALL_BODY,
    bucket_of,
    check_write_headers,
    is_small_body,
    object_key,
    reply_headers,
    run,
    run_short,
    stored_headers,
    user_metadata,
    whole_body,
    xml,
)
from entrepot.faces.s3.errors import S3Error, from_core, s3_error
from entrepot.faces.s3.wire import BodyState, Reply, S3Request
from entrepot.faces.s3.xmlio import element, iso

RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def checksum_echo(checksum: Checksum | None) -> list[tuple[str, str]]:
    return [(f"x-amz-checksum-{checksum.algorithm}", checksum.value)] if checksum is not None else []


def sse_echo(req: S3Request) -> list[tuple[str, str]]:
    sse = req.header("x-amz-server-side-encryption")
    return [("x-amz-server-side-encryption", sse)] if sse else []


async def put_object(req: S3Request, caller: S3Caller, services: Services, state: BodyState) -> Reply:
    project, space = bucket_of(req, caller, services)
    key = object_key(req)
    check_write_headers(req)
    spec = body_spec(req, caller, services.settings.s3_max_put_bytes)
    raw = whole_body(state) if is_small_body(req) else body_chunks(Request(req.scope, state.receive))
    body, checksum = decoded(raw, spec, caller)
    upload = service.ObjectUpload(
        content_type=req.header("content-type"),
        metadata=user_metadata(req),
        content_md5=spec.content_md5,
        sha256=spec.sha256_hex,
        size=spec.declared_size,
        headers=stored_headers(req),
        checksum=checksum,
        exact_content_type=True,
    )
    info = await run(service.put_object, services, caller.principal, project, space, key, body, upload)
    return Reply(200, [("ETag", quoted_etag(info.etag)), *checksum_echo(info.checksum), *sse_echo(req)])


def _object_headers(info: ObjectInfo) -> list[tuple[str, str]]:
    headers = [
        ("Content-Type", info.content_type),
        ("ETag", quoted_etag(info.etag)),
        ("Last-Modified", format_datetime(info.modified_at, usegmt=True)),
        ("Accept-Ranges", "bytes"),
        *reply_headers(info.headers),
        *((f"{META_PREFIX}{name}", value) for name, value in sorted(info.metadata.items())),
    ]
    names = {n.lower() for n, _ in headers}
    headers += [(n, v) for n, v in DOWNLOAD_SAFETY_HEADERS.items() if n.lower() not in names]
    return headers


def _respond(
    req: S3Request, caller: S3Caller, *, head: bool
) -> Callable[[ObjectInfo, service.Opener], Reply]:
    """How a read is answered, given the object's entry and an opener of exactly that version."""
    overrides = [(header, req.query(param)) for param, header in RESPONSE_OVERRIDES.items() if req.has(param)]
    if overrides and caller.anonymous:
        raise s3_error(
            "InvalidRequest", "Request specific response headers cannot be used for anonymous GET requests."
        )
    if req.has("partNumber"):
        raise S3Error("NotImplemented", "reading one part of an object (partNumber) is not supported", 501)
    request_headers = Headers(scope=req.scope)
    checksum_mode = (req.header("x-amz-checksum-mode") or "").upper() == "ENABLED"

    def respond(info: ObjectInfo, opener: service.Opener) -> Reply:
        headers = _object_headers(info)
        if not_modified(request_headers, info):
            kept = [(n, v) for n, v in headers if n in ("ETag", "Last-Modified") or n.startswith(META_PREFIX)]
            return Reply(304, kept)
        if_range = req.header("if-range")
        stale = if_range is not None and if_range.strip().strip('"') != info.etag
        byte_range = None if stale else parse_range(req.header("range"), info.size)
        status, length = 200, info.size
        if byte_range is not None:
            status, length = 206, byte_range.end - byte_range.start
            headers.append(("Content-Range", byte_range.content_range(info.size)))
        elif checksum_mode and info.checksum is not None:
            headers += checksum_echo(info.checksum)  # only with the whole object: it is the whole's checksum
        headers.append(("Content-Length", str(length)))
        if overrides:
            replaced = {h.lower() for h, _ in overrides}
            headers = [(n, v) for n, v in headers if n.lower() not in replaced]
            headers += [(h, v or "") for h, v in overrides]
        if head:
            return Reply(status, headers)
        stream = opener(byte_range.start, byte_range.end) if byte_range else opener(None, None)
        if length <= SMALL_BODY:  # read here, in the worker thread, and sent as one message
            return Reply(status, headers, body=_read_exactly(stream, length))
        return Reply(status, headers, stream=iter_chunks(stream))

    return respond


def _read_exactly(stream: BinaryIO, length: int) -> bytes:
    """All ``length`` bytes of a small body (then the stream is closed)."""
    parts: list[bytes] = []
    left = length
    try:
        while left > 0:
            part = stream.read(left)
            if not part:
                raise OSError(f"the stored object ended {left} bytes early")
            parts.append(part)
            left -= len(part)
    finally:
        stream.close()
    return b"".join(parts)


async def _read(req: S3Request, caller: S3Caller, services: Services, *, head: bool) -> Reply:
    project, space = bucket_of(req, caller, services)
    key = object_key(req)
    respond = _respond(req, caller, head=head)
    return await run_short(
        services,
        service.read_object,
        services,
        caller.principal,
        project,
        space,
        key,
        head=head,
        respond=respond,
    )


async def get_object(req: S3Request, caller: S3Caller, services: Services, state: BodyState) -> Reply:
    return await _read(req, caller, services, head=False)


async def head_object(req: S3Request, caller: S3Caller, services: Services, state: BodyState) -> Reply:
    return await _read(req, caller, services, head=True)


async def delete_object(req: S3Request, caller: S3Caller, services: Services, state: BodyState) -> Reply:
    project, space = bucket_of(req, caller, services)
    key = object_key(req)
    try:
        await run(service.delete_object, services, caller.principal, project, space, key)
    except EntrepotError as exc:
        if exc.code != "objects.notFound":  # deleting a missing key succeeds, as in S3
            raise
    return Reply(204)


def copy_source(req: S3Request, caller: S3Caller, services: Services) -> tuple[str, str, str]:
    """(project, space, key) of ``x-amz-copy-source``: ``[/]bucket/key[?versionId=null]``, percent-encoded."""
    value = req.header("x-amz-copy-source") or ""
    path, _, query = value.partition("?")
    if query:
        name, _, version = query.partition("=")
        if name != "versionId" or version != "null":
            raise S3Error(
                "NotImplemented", "object versions are not supported; versioning is never enabled", 501
            )
    raw = unquote_to_bytes(path.lstrip("/"))
    bucket_raw, slash, key_raw = raw.partition(b"/")
    if not slash or not bucket_raw or not key_raw:
        raise s3_error("InvalidArgument", "x-amz-copy-source must be <bucket>/<key>, URL-encoded")
    project, space = bucket_ref(bucket_raw.decode("utf-8", "replace"))
    if project is None:
        project = caller.principal.project_name or services.settings.default_project
    try:
        key = validate_object_key(key_raw)
    except EntrepotError as exc:
        raise from_core(exc) from None
    return project, space, key


def refuse_copy_conditions(req: S3Request) -> None:
    for name in req.headers:
        if name.startswith("x-amz-copy-source-if-"):
            raise S3Error("NotImplemented", f"{name} is not supported", 501)
        if name.startswith("x-amz-copy-source-server-side-encryption-customer-"):
            raise S3Error(
                "NotImplemented", "server-side encryption with customer keys (SSE-C) is not supported", 501
            )


async def copy_object(req: S3Request, caller: S3Caller, services: Services, state: BodyState) -> Reply:
    project, space = bucket_of(req, caller, services)
    key = object_key(req)
    check_write_headers(req)
    refuse_copy_conditions(req)
    source_project, source_space, source_key = copy_source(req, caller, services)
    if source_project != project:
        raise s3_error("InvalidRequest", "objects can only be copied within one project")
    directive = (req.header("x-amz-metadata-directive") or "COPY").strip().upper()
    if directive not in ("COPY", "REPLACE"):
        raise s3_error("InvalidArgument", "x-amz-metadata-directive must be COPY or REPLACE")
    replace = directive == "REPLACE"
    request = service.CopyRequest(
        source_key=source_key,
        key=key,
        source_space=source_space,
        metadata=user_metadata(req) if replace else None,
        content_type=req.header("content-type") if replace else None,
        directive="REPLACE" if replace else "COPY",
        headers=stored_headers(req) if replace else None,
    )
    info = await run(service.copy_object, services, caller.principal, project, space, request)
    parts = [element("LastModified", iso(info.modified_at)), element("ETag", quoted_etag(info.etag))]
    return xml(200, "CopyObjectResult", parts, sse_echo(req))
