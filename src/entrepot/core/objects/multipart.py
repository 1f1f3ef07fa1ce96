"""Multipart uploads: a large object sent as numbered parts, in parallel and resumable.

``create`` returns an upload id; each ``put_part`` streams one part into its own blob (sending
a number again replaces that part); ``list`` tells a resuming client which parts already
arrived (with their MD5s); ``complete`` makes the chosen parts the object in one transaction,
without copying a byte: the object is stored as its parts (:mod:`.segments`), the upload's
folder becomes the version's manifest and only the parts not chosen are deleted; ``abort``
drops everything. Parts are never visible as
objects, and uploads nobody completes are aborted by the maintenance sweep after
``multipart_max_age_hours``.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, BinaryIO

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from entrepot.core.catalog import MultipartPart, MultipartUpload, affected
from entrepot.core.clock import utcnow
from entrepot.core.errors import Conflict, InvalidInput, NotFound
from entrepot.core.objects.checksums import Checksum, check_algorithm
from entrepot.core.objects.objects import (
    ObjectInfo,
    commit_object,
    content_type_for,
    digest_mismatch,
    discard_blob,
    exact_content_type,
    successor,
    validate_headers,
    validate_metadata,
    validate_object_key,
    validate_prefix,
)
from entrepot.core.objects.segments import Segment
from entrepot.core.objects.spaces import SpaceInfo

if TYPE_CHECKING:
    from entrepot.core.services import Services

log = logging.getLogger("entrepot.spaces")

MAX_PARTS = 10_000


@dataclass(frozen=True)
class PartInfo:
    part_number: int
    size: int
    etag: str
    created_at: datetime
    checksum: Checksum | None = None


@dataclass(frozen=True)
class UploadInfo:
    id: str
    space: str
    key: str
    content_type: str
    metadata: dict[str, str]
    created_at: datetime
    parts: list[PartInfo] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    checksum_algorithm: str | None = None


def _upload_info(
    space: SpaceInfo, row: MultipartUpload, parts: list[MultipartPart] | None = None
) -> UploadInfo:
    return UploadInfo(
        id=row.id,
        space=space.name,
        key=row.key,
        content_type=row.content_type,
        metadata=dict(row.user_metadata or {}),
        created_at=row.created_at,
        parts=[
            PartInfo(p.part_number, p.size, p.etag, p.created_at, Checksum.parse(p.checksum))
            for p in (parts or [])
        ],
        headers=dict(row.headers or {}),
        checksum_algorithm=row.checksum_algorithm,
    )


def _parts_prefix(space_id: int, upload_id: str) -> str:
    return f"spaces/{space_id}/uploads/{upload_id}"


def create_upload(
    services: Services,
    space: SpaceInfo,
    key: str,
    *,
    content_type: str | None = None,
    metadata: dict[str, str] | None = None,
    token_id: int | None = None,
    headers: dict[str, str] | None = None,
    checksum_algorithm: str | None = None,
    exact_type: bool = False,
) -> UploadInfo:
    """Start an upload; the object will get the content type, metadata and ``headers`` given here.

    ``checksum_algorithm`` is what the parts' checksums will be (S3's x-amz-checksum-algorithm);
    ``exact_type`` keeps the content type as given instead of guessing one from the key.
    """
    validate_object_key(key)
    row = MultipartUpload(
        id=secrets.token_hex(16),
        space_id=space.id,
        key=key,
        content_type=exact_content_type(content_type) if exact_type else content_type_for(key, content_type),
        user_metadata=validate_metadata(metadata, services.settings.object_metadata_max_bytes),
        token_id=token_id,
        created_at=utcnow(),
        headers=validate_headers(headers) or None,
        checksum_algorithm=check_algorithm(checksum_algorithm) if checksum_algorithm else None,
    )
    with services.catalog.session() as s:
        s.add(row)
        s.flush()
        return _upload_info(space, row)


def _get_upload(s: Session, space: SpaceInfo, upload_id: str, *, lock: bool = False) -> MultipartUpload:
    q = select(MultipartUpload).where(MultipartUpload.id == upload_id, MultipartUpload.space_id == space.id)
    row = s.scalar(q.with_for_update() if lock else q)
    if row is None:
        raise NotFound(
            f"multipart upload {upload_id!r} does not exist in space {space.name!r} "
            "(it was completed, aborted or expired)",
            code="uploads.notFound",
        )
    return row


def get_upload(services: Services, space: SpaceInfo, upload_id: str) -> UploadInfo:
    """An upload with the parts received so far (number order)."""
    _check_id(upload_id)
    with services.catalog.session(readonly=True) as s:
        row = _get_upload(s, space, upload_id)
        parts = list(
            s.scalars(
                select(MultipartPart)
                .where(MultipartPart.upload_id == upload_id)
                .order_by(MultipartPart.part_number)
            )
        )
        return _upload_info(space, row, parts)


def list_uploads(services: Services, space: SpaceInfo, *, key: str | None = None) -> list[UploadInfo]:
    """Uploads in progress in a space (optionally for one key), oldest first."""
    q = select(MultipartUpload).where(MultipartUpload.space_id == space.id)
    if key is not None:
        validate_object_key(key)
        q = q.where(MultipartUpload.key == key)
    with services.catalog.session(readonly=True) as s:
        return [
            _upload_info(space, row) for row in s.scalars(q.order_by(MultipartUpload.created_at).limit(1000))
        ]


@dataclass(frozen=True)
class UploadPage:
    """One page of uploads in progress, in key order (then oldest first), S3's ListMultipartUploads.

    ``prefixes`` are the common prefixes a delimiter folded; ``next_key``/``next_id`` say where
    the next page starts when ``truncated``.
    """

    uploads: list[UploadInfo]
    prefixes: list[str]
    truncated: bool
    next_key: str | None = None
    next_id: str | None = None


def list_upload_page(
    services: Services,
    space: SpaceInfo,
    *,
    prefix: str = "",
    delimiter: str | None = None,
    key_marker: str = "",
    upload_id_marker: str = "",
    limit: int = 1000,
) -> UploadPage:
    """Uploads whose key starts with ``prefix``, after the markers, at most ``limit`` entries.

    ``key_marker`` alone lists keys after it; with ``upload_id_marker`` also the uploads of that
    key started after that one. With a ``delimiter`` the keys that continue past it after the
    prefix are folded into one common prefix each (one entry of the page), skipped with one seek.
    """
    validate_prefix(prefix)
    if delimiter == "":
        delimiter = None
    if not 1 <= limit <= 1000:
        raise InvalidInput("max-uploads must be between 1 and 1000")
    upper = successor(prefix) if prefix else None
    uploads: list[UploadInfo] = []
    prefixes: list[str] = []
    with services.catalog.session(readonly=True) as s:
        base = select(MultipartUpload).where(MultipartUpload.space_id == space.id)
        if prefix:
            base = base.where(MultipartUpload.key >= prefix)
        if upper is not None:
            base = base.where(MultipartUpload.key < upper)
        ordered = (MultipartUpload.key, MultipartUpload.created_at, MultipartUpload.id)
        # the position after the markers: (key, created_at, id) strictly greater
        lower_key = max(prefix, key_marker) if key_marker else prefix
        after: tuple[str, datetime, str] | None = None
        if key_marker and upload_id_marker:
            marked = s.get(MultipartUpload, upload_id_marker)
            if marked is not None and marked.space_id == space.id and marked.key == key_marker:
                after = (marked.key, marked.created_at, marked.id)
        strict_key = bool(key_marker) and after is None and key_marker >= prefix
        if (
            strict_key
            and delimiter is not None
            and key_marker.startswith(prefix)
            and key_marker.find(delimiter, len(prefix)) == len(key_marker) - len(delimiter)
        ):  # the marker is a common prefix of an earlier page: skip everything under it
            folder_end = successor(key_marker)
            if folder_end is None:
                return UploadPage([], [], False)
            lower_key, strict_key = folder_end, False
        last: tuple[str, str] | None = None
        while True:
            q = base
            if after is not None:
                k, c, i = after
                q = q.where(
                    (MultipartUpload.key > k)
                    | ((MultipartUpload.key == k) & (MultipartUpload.created_at > c))
                    | (
                        (MultipartUpload.key == k)
                        & (MultipartUpload.created_at == c)
                        & (MultipartUpload.id > i)
                    )
                )
            elif strict_key:
                q = q.where(MultipartUpload.key > lower_key)
            else:
                q = q.where(MultipartUpload.key >= lower_key)
            want = limit + 1 - len(uploads) - len(prefixes)
            rows = list(s.scalars(q.order_by(*ordered).limit(want)))
            if not rows:
                return UploadPage(uploads, prefixes, False)
            for row in rows:
                if len(uploads) + len(prefixes) == limit:
                    return UploadPage(uploads, prefixes, True, *(last or (None, None)))
                cut = row.key.find(delimiter, len(prefix)) if delimiter else -1
                if delimiter is not None and cut >= 0:
                    common = row.key[: cut + len(delimiter)]
                    prefixes.append(common)
                    last = (common, "")
                    nxt = successor(common)
                    if nxt is None:
                        return UploadPage(uploads, prefixes, False)
                    after, strict_key, lower_key = None, False, nxt
                    break  # seek past the folder
                uploads.append(_upload_info(space, row))
                last = (row.key, row.id)
                after = (row.key, row.created_at, row.id)
            else:  # every row taken and the page not full: there are no more
                return UploadPage(uploads, prefixes, False)


def put_part(
    services: Services,
    space: SpaceInfo,
    upload_id: str,
    part_number: int,
    body: Iterable[bytes] | BinaryIO,
    *,
    content_md5: str | None = None,
    sha256: str | None = None,
    expected_size: int | None = None,
    checksum: Checksum | Callable[[], Checksum | None] | None = None,
) -> PartInfo:
    """Store one part (1-10000); a part sent again replaces the earlier one.

    ``content_md5`` and ``sha256`` (hex) and ``expected_size`` are checked before the part
    counts; ``checksum`` is an additional checksum the caller verified (or a callable giving it
    after the body was read), stored with the part.
    """
    _check_id(upload_id)
    if not 1 <= part_number <= MAX_PARTS:
        raise InvalidInput(
            f"part numbers run from 1 to {MAX_PARTS}, not {part_number}", code="uploads.badPart"
        )
    with services.catalog.session(readonly=True) as s:
        _get_upload(s, space, upload_id)
    blob_key = f"{_parts_prefix(space.id, upload_id)}/{part_number:05d}-{uuid.uuid4().hex[:12]}"
    blob = services.blobs.put(blob_key, body)
    old: str | None = None
    try:
        if content_md5 is not None and blob.md5 != content_md5:
            raise digest_mismatch(
                f"the part's MD5 is {blob.md5}, not the Content-MD5 sent ({content_md5}); the part was not stored",
                "md5",
            )
        if expected_size is not None and blob.size != expected_size:
            raise InvalidInput(
                f"the part has {blob.size} bytes, not the {expected_size} announced; it was not stored",
                code="request.incomplete",
            )
        if sha256 is not None and blob.sha256 != sha256.lower():
            raise digest_mismatch(
                f"the part's SHA-256 is {blob.sha256}, not the checksum sent ({sha256}); it was not stored",
                "sha256",
            )
        extra = checksum() if callable(checksum) else checksum
        now = utcnow()
        with services.catalog.session() as s:
            _get_upload(s, space, upload_id, lock=True)
            row = s.get(MultipartPart, (upload_id, part_number))
            if row is None:
                row = MultipartPart(upload_id=upload_id, part_number=part_number)
                s.add(row)
            else:
                old = row.blob_key
            row.blob_key = blob_key
            row.size = blob.size
            row.etag = blob.md5 or ""
            row.created_at = now
            row.checksum = extra.text() if extra is not None else None
    except BaseException:
        services.blobs.delete(blob_key)
        raise
    if old:
        discard_blob(services, old)
    return PartInfo(part_number, blob.size, blob.md5 or "", now, extra)


def complete_upload(
    services: Services,
    space: SpaceInfo,
    upload_id: str,
    parts: list[tuple[int, str]] | None = None,
    *,
    min_part_size: int = 0,
    checksums: dict[int, Checksum] | None = None,
) -> ObjectInfo:
    """Join the listed parts (number, ETag) in order into the object; ``None`` takes every part received.

    The object's ETag is S3's multipart form: MD5 of the parts' binary MD5s, ``-<count>``. Every
    part but the last must have at least ``min_part_size`` bytes (S3: 5 MiB); a part listed with
    a checksum in ``checksums`` must have been stored with that checksum.
    """
    _check_id(upload_id)
    with services.catalog.session(readonly=True) as s:
        upload = _get_upload(s, space, upload_id)
        stored = {
            p.part_number: p
            for p in s.scalars(select(MultipartPart).where(MultipartPart.upload_id == upload_id))
        }
        key, content_type, metadata = upload.key, upload.content_type, dict(upload.user_metadata or {})
        headers = dict(upload.headers or {})
    if parts is None:
        chosen = [stored[n] for n in sorted(stored)]
    else:
        chosen = []
        previous = 0
        for number, etag in parts:
            if number <= previous:
                raise InvalidInput(
                    "list the parts in ascending order of part number, each once", code="uploads.badOrder"
                )
            previous = number
            part = stored.get(number)
            if part is None:
                raise InvalidInput(f"part {number} was never uploaded", code="uploads.badPart")
            if etag and etag.strip('"') != part.etag:
                raise InvalidInput(
                    f"part {number} has ETag {part.etag}, not {etag.strip(chr(34))}; upload it again",
                    code="uploads.badPart",
                )
            want = (checksums or {}).get(number)
            have = Checksum.parse(part.checksum)
            if want is not None and have is not None and want.algorithm == have.algorithm and want != have:
                raise InvalidInput(
                    f"part {number} has {have.algorithm.upper()} {have.value}, not {want.value}; upload it again",
                    code="uploads.badPart",
                )
            chosen.append(part)
    if not chosen:
        raise InvalidInput(
            "a multipart upload needs at least one part before it can complete", code="uploads.empty"
        )
    for part in chosen[:-1]:
        if part.size < min_part_size:
            raise InvalidInput(
                f"part {part.part_number} has {part.size} bytes; every part but the last needs at least "
                f"{min_part_size}",
                code="uploads.partTooSmall",
                details={"part": part.part_number, "size": part.size, "minimum": min_part_size},
            )
    combined = hashlib.md5(b"".join(bytes.fromhex(p.etag) for p in chosen), usedforsecurity=False)
    etag = f"{combined.hexdigest()}-{len(chosen)}"
    used = {p.part_number: p.blob_key for p in chosen}
    unused: list[str] = []

    def claim(s: Session) -> None:
        # in the object's transaction: whoever deletes the upload row completes it, and only
        # if its parts are still the ones chosen
        current = {
            p.part_number: p.blob_key
            for p in s.scalars(select(MultipartPart).where(MultipartPart.upload_id == upload_id))
        }
        if affected(s, delete(MultipartUpload).where(MultipartUpload.id == upload_id)) != 1:
            raise NotFound(
                f"multipart upload {upload_id!r} was completed or aborted meanwhile", code="uploads.notFound"
            )
        if any(current.get(n) != k for n, k in used.items()):
            raise Conflict(
                f"a part of upload {upload_id!r} was sent again while it was completing; complete it again",
                code="uploads.changed",
            )
        unused[:] = [k for n, k in current.items() if n not in used]

    info = commit_object(
        services,
        space,
        key,
        blob_key=_parts_prefix(space.id, upload_id),  # the parts' folder is the version's manifest
        size=sum(p.size for p in chosen),
        etag=etag,
        sha256=None,  # nobody read the object's bytes in one pass; each part's MD5 was checked
        content_type=content_type,
        metadata=metadata,
        headers=headers,
        in_transaction=claim,
        segments=[Segment(p.blob_key, p.size) for p in chosen],
        owns_blobs=False,  # until the claim commits, the parts are the upload's
    )
    for blob_key in unused:
        discard_blob(services, blob_key)
    return info


def abort_upload(services: Services, space: SpaceInfo, upload_id: str) -> None:
    _check_id(upload_id)
    with services.catalog.session() as s:
        row = _get_upload(s, space, upload_id, lock=True)
        blobs = [
            p.blob_key for p in s.scalars(select(MultipartPart).where(MultipartPart.upload_id == upload_id))
        ]
        s.delete(row)
    _drop_part_blobs(services, space.id, upload_id, blobs)


def abort_stale_uploads(services: Services, max_age: timedelta) -> int:
    """Abort uploads created more than ``max_age`` ago; returns how many."""
    cutoff = utcnow() - max_age
    with services.catalog.session(readonly=True) as s:
        stale = list(
            s.execute(
                select(MultipartUpload.id, MultipartUpload.space_id).where(
                    MultipartUpload.created_at < cutoff
                )
            )
        )
    count = 0
    for upload_id, space_id in stale:
        with services.catalog.session() as s:
            blobs = [
                p.blob_key
                for p in s.scalars(select(MultipartPart).where(MultipartPart.upload_id == upload_id))
            ]
            removed = affected(s, delete(MultipartUpload).where(MultipartUpload.id == upload_id))
        if removed:
            _drop_part_blobs(services, space_id, upload_id, blobs)
            count += 1
    return count


def _drop_part_blobs(services: Services, space_id: int, upload_id: str, blob_keys: list[str]) -> None:
    for key in blob_keys:
        discard_blob(services, key)
    # parts replaced by a concurrent put_part may not be in the list: clear the folder too
    try:
        services.blobs.delete_prefix(_parts_prefix(space_id, upload_id))
    except Exception:
        log.warning("could not delete the parts of upload %s; they stay until removed by hand", upload_id)


def _check_id(upload_id: str) -> None:
    if not (
        isinstance(upload_id, str)
        and len(upload_id) == 32
        and all(c in "0123456789abcdef" for c in upload_id)
    ):
        raise NotFound(f"multipart upload {upload_id!r} does not exist", code="uploads.notFound")


__all__ = [
    "MAX_PARTS",
    "PartInfo",
    "UploadInfo",
    "UploadPage",
    "abort_stale_uploads",
    "abort_upload",
    "complete_upload",
    "create_upload",
    "get_upload",
    "list_upload_page",
    "list_uploads",
    "put_part",
]
