"""ListObjectsV2, ListObjects (v1) and DeleteObjects: a bucket's keys, read or removed in batches."""

from __future__ import annotations

from entrepot.core.errors import EntrepotError
from entrepot.core.objects import service
from entrepot.core.objects.objects import MAX_LIST_LIMIT, ObjectInfo, ObjectPage, decode_cursor
from entrepot.core.services import Services
from entrepot.faces.s3.auth import S3Caller
from entrepot.faces.s3.common import bucket_of, read_small_body, run, xml
from entrepot.faces.s3.errors import from_core, s3_error
from entrepot.faces.s3.wire import BodyState, Reply, S3Request
from entrepot.faces.s3.xmlio import element, iso, parse_delete, url_encode

MAX_DELETE_BODY = 2 * 1024 * 1024


def _max_keys(req: S3Request, name: str = "max-keys") -> int:
    value = req.query(name)
    if value is None or value == "":
        return MAX_LIST_LIMIT
    if not value.isdigit() or len(value) > 9:
        raise s3_error("InvalidArgument", f"{name} must be a non-negative integer", ArgumentName=name)
    return min(int(value), MAX_LIST_LIMIT)


def _encoder(req: S3Request) -> tuple[bool, str]:
    encoding = req.query("encoding-type")
    if encoding in (None, ""):
        return False, ""
    if encoding != "url":
        raise s3_error(
            "InvalidArgument", "Invalid Encoding Method specified in Request", ArgumentName="encoding-type"
        )
    return True, element("EncodingType", "url")


async def _page(req: S3Request, caller: S3Caller, services: Services, listing: service.Listing) -> ObjectPage:
    """One page of the listing; ``max-keys=0`` lists nothing but still checks read access."""
    project, space = bucket_of(req, caller, services)
    if listing.limit == 0:
        await run(service.open_space, services, caller.principal, project, space, "read")
        return ObjectPage([], [], None)
    try:
        return await run(service.list_objects, services, caller.principal, project, space, listing)
    except EntrepotError as exc:
        if exc.code == "objects.invalidKey":  # a prefix no key can have: nothing matches
            return ObjectPage([], [], None)
        raise


def _contents(obj: ObjectInfo, enc: bool, owner: str) -> str:
    key = url_encode(obj.key) if enc else obj.key
    return (
        "<Contents>"
        + element("Key", key)
        + element("LastModified", iso(obj.modified_at))
        + element("ETag", f'"{obj.etag}"')
        + element("Size", obj.size)
        + element("StorageClass", "STANDARD")
        + owner
        + "</Contents>"
    )


def _owner(caller: S3Caller) -> str:
    p = caller.principal
    return (
        "<Owner>"
        + element("ID", p.project_id or "")
        + element("DisplayName", p.project_name or "")
        + "</Owner>"
    )


def _common(prefixes: list[str], enc: bool) -> str:
    return "".join(
        "<CommonPrefixes>" + element("Prefix", url_encode(p) if enc else p) + "</CommonPrefixes>"
        for p in prefixes
    )


async def list_objects_v2(req: S3Request, caller: S3Caller, services: Services, state: BodyState) -> Reply:
    max_keys = _max_keys(req)
    enc, enc_element = _encoder(req)
    prefix = req.query("prefix") or ""
    delimiter = req.query("delimiter") or None
    token = req.query("continuation-token")
    start_after = req.query("start-after")
    fetch_owner = (req.query("fetch-owner") or "").lower() == "true"
    listing = service.Listing(
        prefix=prefix,
        delimiter=delimiter,
        cursor=token or None,
        limit=max_keys,
        start_after=start_after or None,
    )
    page = await _page(req, caller, services, listing)

    def shown(value: str) -> str:
        return url_encode(value) if enc else value

    owner = _owner(caller) if fetch_owner else ""
    parts = [
        element("Name", req.target.bucket),
        element("Prefix", shown(prefix)),
        element("Delimiter", shown(delimiter)) if delimiter else "",
        element("MaxKeys", max_keys),
        enc_element,
        element("KeyCount", len(page.objects) + len(page.prefixes)),
        element("IsTruncated", "true" if page.next_cursor else "false"),
        element("ContinuationToken", token) if token is not None else "",
        element("NextContinuationToken", page.next_cursor) if page.next_cursor else "",
        element("StartAfter", shown(start_after)) if start_after is not None else "",
        *(_contents(o, enc, owner) for o in page.objects),
        _common(page.prefixes, enc),
    ]
    return xml(200, "ListBucketResult", parts)


async def list_objects_v1(req: S3Request, caller: S3Caller, services: Services, state: BodyState) -> Reply:
    max_keys = _max_keys(req)
    enc, enc_element = _encoder(req)
    prefix = req.query("prefix") or ""
    delimiter = req.query("delimiter") or None
    marker = req.query("marker") or ""
    listing = service.Listing(
        prefix=prefix,
        delimiter=delimiter,
        limit=max_keys,
        start_after=marker or None,
        after_prefix=bool(delimiter and marker.endswith(delimiter)),
    )
    page = await _page(req, caller, services, listing)

    def shown(value: str) -> str:
        return url_encode(value) if enc else value

    next_marker = ""
    if page.next_cursor:
        next_marker = element("NextMarker", shown(decode_cursor(page.next_cursor)[0]))
    owner = _owner(caller)
    parts = [
        element("Name", req.target.bucket),
        element("Prefix", shown(prefix)),
        element("Marker", shown(marker)),
        element("Delimiter", shown(delimiter)) if delimiter else "",
        element("MaxKeys", max_keys),
        enc_element,
        element("IsTruncated", "true" if page.next_cursor else "false"),
        next_marker,
        *(_contents(o, enc, owner) for o in page.objects),
        _common(page.prefixes, enc),
    ]
    return xml(200, "ListBucketResult", parts)


async def delete_objects(req: S3Request, caller: S3Caller, services: Services, state: BodyState) -> Reply:
    if req.header("content-md5") is None and not any(
        n.startswith("x-amz-checksum-") and n not in ("x-amz-checksum-algorithm", "x-amz-checksum-mode")
        for n in req.headers
    ):
        raise s3_error(
            "InvalidRequest",
            "Missing required header for this request: Content-MD5 (or an x-amz-checksum-* header)",
        )
    project, space = bucket_of(req, caller, services)
    await run(service.open_space, services, caller.principal, project, space, "write")
    request = parse_delete(await read_small_body(req, caller, state, MAX_DELETE_BODY))
    outcomes = await run(service.delete_objects, services, caller.principal, project, space, request.keys)
    parts = []
    for outcome in outcomes:
        if outcome.error is not None:
            error = from_core(outcome.error)
            parts.append(
                "<Error>"
                + element("Key", outcome.key)
                + element("Code", error.code)
                + element("Message", error.message)
                + "</Error>"
            )
        elif not request.quiet:
            parts.append("<Deleted>" + element("Key", outcome.key) + "</Deleted>")
    return xml(200, "DeleteResult", parts)
