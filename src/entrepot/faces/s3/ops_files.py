"""The Keboola files bucket: what a request signed with a file's temporary credentials may do.

``files/prepare`` (with ``federationToken``) and a file's detail (``GET files/{id}?federationToken=1``)
hand out temporary credentials (access key id ``ES…`` with a session token) scoped to one file's
key in the bucket ``s3_files_bucket``. Every request signed with such a credential comes here,
whatever it addresses:

=====================================  ======================================================
PutObject on the file's key            upload credentials: the file's bytes (a re-upload
                                       replaces them); the prepared ``sizeBytes`` is enforced
GetObject / HeadObject on the file's   read credentials: the bytes exactly as stored (export
key                                    results headerless, gzipped when asked), with ranges
                                       and conditionals
multipart uploads                      ``501 NotImplemented``: a file takes one PutObject
anything else, another key, another    ``403 AccessDenied``
bucket
=====================================  ======================================================

A session credential never reaches a space, and a long-lived access key never reaches this
bucket (a space of the same name stays a space for it).
"""

from __future__ import annotations

from email.utils import format_datetime
from typing import NoReturn

from starlette.datastructures import Headers
from starlette.requests import Request

from entrepot.core.blobs import iter_chunks
from entrepot.core.errors import EntrepotError
from entrepot.core.files import service as files
from entrepot.core.files.views import FileObject
from entrepot.core.services import Services
from entrepot.faces.http import body_chunks
from entrepot.faces.objects_http import DOWNLOAD_SAFETY_HEADERS, not_modified, parse_range, quoted_etag
from entrepot.faces.s3.auth import S3Caller
from entrepot.faces.s3.bodies import body_spec, decoded
from entrepot.faces.s3.common import check_write_headers, object_key, run
from entrepot.faces.s3.errors import S3Error, from_core, s3_error
from entrepot.faces.s3.ops_objects import RESPONSE_OVERRIDES, checksum_echo, sse_echo
from entrepot.faces.s3.router import UNSUPPORTED, Operation
from entrepot.faces.s3.wire import BodyState, Reply, S3Request

# core codes the files bucket words its own way (the rest: errors.from_core)
_FILE_CODES = {
    "files.sizeMismatch": "IncompleteBody",
    "files.notUploaded": "NoSuchKey",
    "files.notFound": "NoSuchKey",
    "files.expired": "NoSuchKey",
}


def route(req: S3Request, services: Services) -> Operation:
    """The operation of a request signed with a session credential (only Put/Get/Head of an object
    of the files bucket; ``AccessDenied`` for everything else)."""
    bucket, key = req.target.bucket, req.target.key
    if bucket != services.settings.s3_files_bucket:
        _denied(
            "these temporary credentials reach only their Keboola file in the bucket "
            f"{services.settings.s3_files_bucket!r}"
        )
    if key is None:
        _denied("these temporary credentials reach only their Keboola file, not the bucket (no listing)")
    method = req.method
    if req.has("uploads") or req.has("uploadId") or (req.has("partNumber") and method == "PUT"):
        raise S3Error(
            "NotImplemented", "a Keboola file takes one PutObject; multipart uploads are not supported", 501
        )
    if any(name in UNSUPPORTED for name, _ in req.pairs):  # ?acl, ?tagging, ...: not for these credentials
        _denied("these temporary credentials only put, get and head their Keboola file")
    if method == "PUT" and req.header("x-amz-copy-source") is None:
        return Operation("KeboolaFilePut", put_file)
    if method == "GET":
        return Operation("KeboolaFileGet", get_file)
    if method == "HEAD":
        return Operation("KeboolaFileHead", head_file)
    _denied("these temporary credentials only put, get and head their Keboola file")


def _denied(message: str) -> NoReturn:
    raise s3_error("AccessDenied", message)


def _s3_error(exc: EntrepotError) -> S3Error:
    code = _FILE_CODES.get(exc.code)
    if code is None:
        return from_core(exc)
    return s3_error(code, exc.message)


async def put_file(req: S3Request, caller: S3Caller, services: Services, state: BodyState) -> Reply:
    assert caller.credential is not None
    key = object_key(req)
    check_write_headers(req)  # kbcstorage sends x-amz-acl: private and SSE AES256: both fine
    spec = body_spec(req, caller, services.settings.s3_max_put_bytes)
    body, checksum = decoded(body_chunks(Request(req.scope, state.receive)), spec, caller)
    announced = files.S3Body(size=spec.declared_size, content_md5=spec.content_md5, sha256=spec.sha256_hex)
    try:
        stored = await run(files.s3_put, services, caller.credential, key, body, announced)
    except EntrepotError as exc:
        raise _s3_error(exc) from None
    return Reply(200, [("ETag", quoted_etag(stored.etag)), *checksum_echo(checksum()), *sse_echo(req)])


async def get_file(req: S3Request, caller: S3Caller, services: Services, state: BodyState) -> Reply:
    return await _read(req, caller, services, head=False)


async def head_file(req: S3Request, caller: S3Caller, services: Services, state: BodyState) -> Reply:
    return await _read(req, caller, services, head=True)


async def _read(req: S3Request, caller: S3Caller, services: Services, *, head: bool) -> Reply:
    assert caller.credential is not None
    key = object_key(req)
    if req.has("partNumber"):
        raise S3Error("NotImplemented", "reading one part of an object (partNumber) is not supported", 501)
    try:
        found: FileObject = await run(files.s3_open, services, caller.credential, key)
    except EntrepotError as exc:
        raise _s3_error(exc) from None
    headers = [
        ("Content-Type", found.content_type),
        ("ETag", quoted_etag(found.etag)),
        ("Last-Modified", _http_date(found)),
        ("Accept-Ranges", "bytes"),
        *DOWNLOAD_SAFETY_HEADERS.items(),
    ]
    try:
        if not_modified(Headers(scope=req.scope), found):
            return Reply(304, [(n, v) for n, v in headers if n in ("ETag", "Last-Modified")])
        if_range = req.header("if-range")
        stale = if_range is not None and if_range.strip().strip('"') != found.etag
        byte_range = None if stale else parse_range(req.header("range"), found.size)
    except EntrepotError as exc:
        raise from_core(exc) from None
    status, length = 200, found.size
    if byte_range is not None:
        status, length = 206, byte_range.end - byte_range.start
        headers.append(("Content-Range", byte_range.content_range(found.size)))
    headers.append(("Content-Length", str(length)))
    overrides = [
        (header, req.query(param) or "") for param, header in RESPONSE_OVERRIDES.items() if req.has(param)
    ]
    if overrides:
        replaced = {h.lower() for h, _ in overrides}
        headers = [(n, v) for n, v in headers if n.lower() not in replaced] + overrides
    if head:
        return Reply(status, headers)
    start, end = (byte_range.start, byte_range.end) if byte_range is not None else (None, None)
    stream = await run(found.open, start, end)
    return Reply(status, headers, stream=iter_chunks(stream))


def _http_date(found: FileObject) -> str:
    return format_datetime(found.modified_at, usegmt=True)
