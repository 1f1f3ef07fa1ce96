"""Multipart uploads: Create, UploadPart, UploadPartCopy, Complete, Abort, ListParts, ListMultipartUploads."""

from __future__ import annotations

import re

from starlette.requests import Request

from entrepot.core.errors import EntrepotError, InvalidInput
from entrepot.core.objects import checksums, service
from entrepot.core.objects.checksums import Checksum
from entrepot.core.objects.multipart import MAX_PARTS, UploadInfo, UploadPage
from entrepot.core.services import Services
from entrepot.faces.http import body_chunks
from entrepot.faces.objects_http import quoted_etag
from entrepot.faces.s3.auth import S3Caller
from entrepot.faces.s3.bodies import body_spec, decoded
from entrepot.faces.s3.common import (
    bucket_of,
    check_write_headers,
    object_key,
    read_small_body,
    run,
    stored_headers,
    user_metadata,
    xml,
)
from entrepot.faces.s3.errors import s3_error
from entrepot.faces.s3.ops_objects import checksum_echo, copy_source, refuse_copy_conditions, sse_echo
from entrepot.faces.s3.wire import BodyState, Reply, S3Request
from entrepot.faces.s3.xmlio import element, iso, parse_complete, url_encode

MAX_COMPLETE_BODY = 4 * 1024 * 1024
_COPY_RANGE_RE = re.compile(r"^bytes=(\d{1,19})-(\d{1,19})$")


def _upload_id(req: S3Request) -> str:
    upload_id = req.query("uploadId") or ""
    if not upload_id:
        raise s3_error("InvalidArgument", "uploadId must not be empty", ArgumentName="uploadId")
    return upload_id


def _part_number(req: S3Request) -> int:
    value = req.query("partNumber") or ""
    if not value.isdigit() or not 1 <= int(value[:6] or 0) <= MAX_PARTS or len(value) > 6:
        raise s3_error(
            "InvalidArgument",
            f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=value[:20],
        )
    return int(value)


async def create_multipart_upload(
    req: S3Request, caller: S3Caller, services: Services, state: BodyState
) -> Reply:
    project, space = bucket_of(req, caller, services)
    key = object_key(req)
    check_write_headers(req)
    algorithm = req.header("x-amz-checksum-algorithm")
    if algorithm:
        try:
            algorithm = checksums.check_algorithm(algorithm)
        except InvalidInput as exc:
            raise s3_error("InvalidRequest", exc.message) from None
    new = service.NewUpload(
        key,
        content_type=req.header("content-type"),
        metadata=user_metadata(req),
        headers=stored_headers(req),
        checksum_algorithm=algorithm or None,
        exact_content_type=True,
    )
    upload = await run(service.start_upload, services, caller.principal, project, space, new)
    headers = sse_echo(req)
    if upload.checksum_algorithm:
        headers.append(("x-amz-checksum-algorithm", upload.checksum_algorithm.upper()))
    parts = [element("Bucket", req.target.bucket), element("Key", key), element("UploadId", upload.id)]
    return xml(200, "InitiateMultipartUploadResult", parts, headers)


async def upload_part(req: S3Request, caller: S3Caller, services: Services, state: BodyState) -> Reply:
    project, space = bucket_of(req, caller, services)
    object_key(req)
    upload_id, number = _upload_id(req), _part_number(req)
    spec = body_spec(req, caller, services.settings.s3_max_part_bytes)
    body, checksum = decoded(body_chunks(Request(req.scope, state.receive)), spec, caller)
    upload = service.PartUpload(
        content_md5=spec.content_md5, sha256=spec.sha256_hex, size=spec.declared_size, checksum=checksum
    )
    part = await run(
        service.upload_part, services, caller.principal, project, space, upload_id, number, body, upload
    )
    return Reply(200, [("ETag", quoted_etag(part.etag)), *checksum_echo(part.checksum), *sse_echo(req)])


async def upload_part_copy(req: S3Request, caller: S3Caller, services: Services, state: BodyState) -> Reply:
    project, space = bucket_of(req, caller, services)
    object_key(req)
    upload_id, number = _upload_id(req), _part_number(req)
    refuse_copy_conditions(req)
    source_project, source_space, source_key = copy_source(req, caller, services)
    if source_project != project:
        raise s3_error("InvalidRequest", "parts can only be copied from objects of the same project")
    start = end = None
    byte_range = req.header("x-amz-copy-source-range")
    if byte_range is not None:
        m = _COPY_RANGE_RE.match(byte_range.strip())
        if m is None or int(m.group(2)) < int(m.group(1)):
            raise s3_error(
                "InvalidArgument",
                "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last "
                "are the zero-based offsets of the first and last bytes to copy",
            )
        start, end = int(m.group(1)), int(m.group(2)) + 1
    source = service.PartSource(source_key, space=source_space, start=start, end=end)
    part, _ = await run(
        service.put_part_copy, services, caller.principal, project, space, upload_id, number, source
    )
    parts = [element("LastModified", iso(part.created_at)), element("ETag", quoted_etag(part.etag))]
    return xml(200, "CopyPartResult", parts)


async def complete_multipart_upload(
    req: S3Request, caller: S3Caller, services: Services, state: BodyState
) -> Reply:
    project, space = bucket_of(req, caller, services)
    object_key(req)
    upload_id = _upload_id(req)
    await run(service.open_space, services, caller.principal, project, space, "write")
    listed = parse_complete(await read_small_body(req, caller, state, MAX_COMPLETE_BODY))
    wanted: dict[int, Checksum] = {}
    for part in listed:
        for algorithm, value in part.checksums.items():
            try:
                wanted[part.number] = checksums.check_value(algorithm, value)
            except InvalidInput:
                raise s3_error(
                    "InvalidPart",
                    f"part {part.number} lists a malformed or unsupported checksum ({algorithm})",
                ) from None
    info = await run(
        service.complete_upload,
        services,
        caller.principal,
        project,
        space,
        upload_id,
        [(p.number, p.etag) for p in listed],
        min_part_size=services.settings.s3_min_part_bytes,
        checksums=wanted,
    )
    scheme = "https" if req.scope.get("scheme") == "https" else "http"
    location = f"{scheme}://{req.host}/{req.target.bucket}/{url_encode(info.key)}"
    parts = [
        element("Location", location),
        element("Bucket", req.target.bucket),
        element("Key", info.key),
        element("ETag", quoted_etag(info.etag)),
    ]
    return xml(200, "CompleteMultipartUploadResult", parts)


async def abort_multipart_upload(
    req: S3Request, caller: S3Caller, services: Services, state: BodyState
) -> Reply:
    project, space = bucket_of(req, caller, services)
    object_key(req)
    await run(service.abort_upload, services, caller.principal, project, space, _upload_id(req))
    return Reply(204)


def _bounded(req: S3Request, name: str, default: int = 1000) -> int:
    value = req.query(name)
    if value in (None, ""):
        return default
    assert value is not None
    if not value.isdigit() or len(value) > 9:
        raise s3_error("InvalidArgument", f"{name} must be a non-negative integer", ArgumentName=name)
    return min(int(value), default)


def _owner(caller: S3Caller) -> str:
    p = caller.principal
    who = element("ID", p.project_id or "") + element("DisplayName", p.project_name or "")
    return f"<Initiator>{who}</Initiator><Owner>{who}</Owner>"


async def list_parts(req: S3Request, caller: S3Caller, services: Services, state: BodyState) -> Reply:
    project, space = bucket_of(req, caller, services)
    key = object_key(req)
    upload_id = _upload_id(req)
    max_parts = _bounded(req, "max-parts")
    marker_text = req.query("part-number-marker") or "0"
    if not marker_text.isdigit() or len(marker_text) > 6:
        raise s3_error(
            "InvalidArgument", "part-number-marker must be a part number", ArgumentName="part-number-marker"
        )
    marker = int(marker_text)
    upload: UploadInfo = await run(service.get_upload, services, caller.principal, project, space, upload_id)
    if upload.key != key:
        raise s3_error(
            "NoSuchUpload", "The specified upload does not exist for this key.", UploadId=upload_id
        )
    after = [p for p in upload.parts if p.part_number > marker]
    shown, truncated = after[:max_parts], len(after) > max_parts
    body = [
        element("Bucket", req.target.bucket),
        element("Key", key),
        element("UploadId", upload_id),
        _owner(caller),
        element("StorageClass", "STANDARD"),
        element("PartNumberMarker", marker),
        element("NextPartNumberMarker", shown[-1].part_number if shown else marker),
        element("MaxParts", max_parts),
        element("IsTruncated", "true" if truncated else "false"),
        element("ChecksumAlgorithm", upload.checksum_algorithm.upper()) if upload.checksum_algorithm else "",
    ]
    for p in shown:
        extra = element(f"Checksum{p.checksum.algorithm.upper()}", p.checksum.value) if p.checksum else ""
        body.append(
            "<Part>"
            + element("PartNumber", p.part_number)
            + element("LastModified", iso(p.created_at))
            + element("ETag", quoted_etag(p.etag))
            + element("Size", p.size)
            + extra
            + "</Part>"
        )
    return xml(200, "ListPartsResult", body)


async def list_multipart_uploads(
    req: S3Request, caller: S3Caller, services: Services, state: BodyState
) -> Reply:
    project, space = bucket_of(req, caller, services)
    prefix = req.query("prefix") or ""
    delimiter = req.query("delimiter") or None
    key_marker = req.query("key-marker") or ""
    id_marker = req.query("upload-id-marker") or ""
    max_uploads = _bounded(req, "max-uploads")
    encode = req.query("encoding-type") == "url"
    try:
        page = await run(
            service.list_upload_page,
            services,
            caller.principal,
            project,
            space,
            prefix=prefix,
            delimiter=delimiter,
            key_marker=key_marker,
            upload_id_marker=id_marker,
            limit=max(1, max_uploads),  # max-uploads=0 lists nothing but still checks access
        )
    except EntrepotError as exc:
        if exc.code != "objects.invalidKey":
            raise
        page = UploadPage([], [], False)  # a prefix no key can have: nothing matches

    def show(text: str) -> str:
        return url_encode(text) if encode else text

    entries = [
        "<Upload>"
        + element("Key", show(u.key))
        + element("UploadId", u.id)
        + _owner(caller)
        + element("StorageClass", "STANDARD")
        + element("Initiated", iso(u.created_at))
        + (element("ChecksumAlgorithm", u.checksum_algorithm.upper()) if u.checksum_algorithm else "")
        + "</Upload>"
        for u in (page.uploads if max_uploads else [])
    ]
    prefixes = page.prefixes if max_uploads else []
    truncated = page.truncated if max_uploads else False
    body = [
        element("Bucket", req.target.bucket),
        element("KeyMarker", key_marker),
        element("UploadIdMarker", id_marker),
        element("NextKeyMarker", show(page.next_key or "") if truncated else ""),
        element("NextUploadIdMarker", page.next_id or "" if truncated else ""),
        element("Prefix", prefix),
        element("Delimiter", delimiter) if delimiter else "",
        element("MaxUploads", max_uploads),
        element("EncodingType", "url") if encode else "",
        element("IsTruncated", "true" if truncated else "false"),
        *entries,
        *("<CommonPrefixes>" + element("Prefix", show(p)) + "</CommonPrefixes>" for p in prefixes),
    ]
    return xml(200, "ListMultipartUploadsResult", body)
