"""Objects of a space: streaming put, ranged get, head, delete, copy and cursor listings.

An object is a catalog row (key, size, ETag, SHA-256, content type, user metadata) pointing at
an immutable blob ``spaces/<space id>/objects/<random>``. A put streams the body into a new
blob, checks the optional digests, then swaps the row in one transaction and removes the old
blob: a failed, truncated or mismatched upload leaves the previous version exactly as it was.

Listings walk the unique ``(space_id, key)`` index in byte order. A page costs one index seek
per returned entry (a common prefix is skipped with a single seek past it), so it takes the
same time at any depth and any offset; the cursor is the last key (or prefix) returned.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import mimetypes
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, BinaryIO

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from entrepot.core.catalog import StoredObject
from entrepot.core.clock import utcnow
from entrepot.core.errors import EntrepotError, InvalidInput, NotFound, PayloadTooLarge
from entrepot.core.objects import segments as segment_rows
from entrepot.core.objects.checksums import Checksum
from entrepot.core.objects.segments import Segment
from entrepot.core.objects.spaces import SpaceInfo

if TYPE_CHECKING:
    from entrepot.core.services import Services

log = logging.getLogger("entrepot.spaces")

MAX_KEY_BYTES = 1024
MAX_LIST_LIMIT = 1000
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# what S3 calls bytes nobody typed: an object stored with ``exact_content_type`` and no type
UNTYPED_CONTENT_TYPE = "binary/octet-stream"
# standard headers an object may keep and replay on every read (S3's PutObject stores them)
STORED_HEADERS = frozenset(
    {
        "cache-control",
        "content-disposition",
        "content-encoding",
        "content-language",
        "expires",
        "x-amz-server-side-encryption",
        "x-amz-website-redirect-location",
    }
)
MAX_HEADER_VALUE = 1024
_HEADER_VALUE_RE = re.compile(r"^[\x20-\x7e]*\Z")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_META_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}\Z")
_META_VALUE_RE = re.compile(r"^[\x20-\x7e]*\Z")
_CONTENT_TYPE_RE = re.compile(r"^[\x20-\x7e]{1,255}\Z")
# what clients send when they say nothing about the bytes (curl's --data-binary sends the first):
# such a type is replaced by a guess from the key's extension
GENERIC_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", DEFAULT_CONTENT_TYPE})


@dataclass(frozen=True)
class ObjectInfo:
    """One object's catalog entry."""

    space: str
    key: str
    size: int
    etag: str
    content_type: str
    modified_at: datetime
    sha256: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    blob_key: str = field(default="", repr=False)
    headers: dict[str, str] = field(default_factory=dict)  # stored standard headers, lowercase names
    checksum: Checksum | None = None  # an additional checksum the uploader announced (verified)
    segments: int = 0  # a multipart object stored as its parts: how many (0: the one blob ``blob_key``)

    @property
    def name(self) -> str:
        """The last segment of the key (a download's default file name)."""
        return self.key.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ObjectPage:
    objects: list[ObjectInfo]
    prefixes: list[str]
    next_cursor: str | None


# -- validation ---------------------------------------------------------------------------------
def validate_object_key(key: str | bytes) -> str:
    """Check an object key and return it; ``InvalidInput`` says what is wrong.

    Keys are ``/``-separated paths: no leading ``/``, no empty, ``.`` or ``..`` segment, no
    backslash or control character, at most 1024 bytes of UTF-8. A key given as bytes (as a
    URL carried it, percent-decoded) must be valid UTF-8: replacing bad bytes with U+FFFD
    would make different keys name the same object.
    """
    if isinstance(key, bytes):
        try:
            key = key.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"the object key is not valid UTF-8 (byte 0x{key[exc.start]:02x} at byte {exc.start}); "
                "percent-encode the UTF-8 bytes of the key",
                code="objects.invalidKey",
            ) from None
    if not isinstance(key, str) or key == "":
        raise InvalidInput("an object key must be a non-empty string", code="objects.invalidKey")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidInput("the object key is not valid UTF-8", code="objects.invalidKey") from exc
    if size > MAX_KEY_BYTES:
        raise InvalidInput(
            f"the object key is {size} bytes long; at most {MAX_KEY_BYTES} are allowed",
            code="objects.invalidKey",
        )
    if _CONTROL_RE.search(key):
        raise InvalidInput("the object key contains a control character", code="objects.invalidKey")
    if "\\" in key:
        raise InvalidInput(f"the object key {key!r} contains a backslash; use '/'", code="objects.invalidKey")
    if key.startswith("/"):
        raise InvalidInput(f"the object key {key!r} must not start with '/'", code="objects.invalidKey")
    for segment in key.split("/"):
        if segment == "":
            raise InvalidInput(
                f"the object key {key!r} has an empty segment ('//' or a trailing '/')",
                code="objects.invalidKey",
            )
        if segment in (".", ".."):
            raise InvalidInput(
                f"the object key {key!r} may not contain '.' or '..' segments", code="objects.invalidKey"
            )
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix: any leading part of a valid key (possibly ending with '/'), or empty.

    Its complete segments follow the key rules; the last, partial one may be anything a
    segment may start with (``.`` lists ``.hidden``).
    """
    if prefix == "":
        return prefix
    *complete, partial = prefix.split("/")
    if complete:
        validate_object_key("/".join(complete))
    if partial:
        validate_object_key(partial if partial not in (".", "..") else "x")
        if len(prefix.encode("utf-8")) > MAX_KEY_BYTES:
            raise InvalidInput(f"the prefix is longer than {MAX_KEY_BYTES} bytes", code="objects.invalidKey")
    return prefix


def validate_metadata(metadata: dict[str, str] | None, max_bytes: int) -> dict[str, str]:
    """Normalise user metadata: lowercase names of letters, digits, '-' and '_'; printable ASCII values."""
    out: dict[str, str] = {}
    total = 0
    for name, value in (metadata or {}).items():
        lname = str(name).lower()
        if not _META_NAME_RE.match(lname):
            raise InvalidInput(
                f"invalid metadata name {name!r}: use letters, digits, '-' and '_' (at most 128)",
                code="objects.invalidMetadata",
            )
        if not isinstance(value, str) or not _META_VALUE_RE.match(value):
            raise InvalidInput(
                f"metadata {name!r} must be printable ASCII text (encode other text, e.g. as URL-escaped)",
                code="objects.invalidMetadata",
            )
        out[lname] = value
        total += len(lname) + len(value)
    if total > max_bytes:
        raise PayloadTooLarge(
            f"user metadata is {total} bytes; at most {max_bytes} are allowed (setting object_metadata_max_bytes)",
            code="objects.metadataTooLarge",
        )
    return out


def validate_headers(headers: dict[str, str] | None) -> dict[str, str]:
    """Standard headers to keep with an object: names of :data:`STORED_HEADERS`, printable ASCII values."""
    out: dict[str, str] = {}
    for name, value in (headers or {}).items():
        lname = str(name).lower()
        if lname not in STORED_HEADERS:
            raise InvalidInput(
                f"header {name!r} cannot be stored with an object", code="objects.invalidHeader"
            )
        if not isinstance(value, str) or len(value) > MAX_HEADER_VALUE or not _HEADER_VALUE_RE.match(value):
            raise InvalidInput(
                f"the {name} header must be printable ASCII of at most {MAX_HEADER_VALUE} characters",
                code="objects.invalidHeader",
            )
        out[lname] = value
    return out


def exact_content_type(given: str | None) -> str:
    """The content type exactly as given (checked), ``binary/octet-stream`` when none was (S3's rule)."""
    if not given:
        return UNTYPED_CONTENT_TYPE
    if not _CONTENT_TYPE_RE.match(given):
        raise InvalidInput("Content-Type must be printable ASCII of at most 255 characters")
    return given


def content_type_for(key: str, given: str | None) -> str:
    """The given content type (checked), else a guess from the key's extension.

    A generic type (none, ``application/octet-stream``, ``application/x-www-form-urlencoded``) is
    no statement about the bytes, so the key's extension decides; without a known extension the
    object is ``application/octet-stream``.
    """
    if given:
        if not _CONTENT_TYPE_RE.match(given):
            raise InvalidInput("Content-Type must be printable ASCII of at most 255 characters")
        if given.split(";", 1)[0].strip().lower() not in GENERIC_CONTENT_TYPES:
            return given
    guessed, _ = mimetypes.guess_type(key, strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


def decode_content_md5(value: str | None) -> str | None:
    """``Content-MD5`` (base64 of the 16-byte digest, as HTTP and S3 send it) as hex."""
    if value is None or value == "":
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _malformed_md5() from exc
    if len(raw) != 16:
        raise _malformed_md5()
    return raw.hex()


def _malformed_md5() -> InvalidInput:
    return InvalidInput(
        "Content-MD5 must be the base64 of the body's 16-byte MD5",
        code="objects.badDigest",
        details={"digest": "md5", "problem": "malformed"},
    )


def digest_mismatch(message: str, digest: str) -> InvalidInput:
    """A body whose digest is not the one announced; ``digest`` says which (md5, sha256, checksum).

    The code is ``objects.badDigest`` for all of them (what the spaces face has always said);
    ``details`` tell a face that words them apart (S3: BadDigest, XAmzContentSHA256Mismatch).
    """
    return InvalidInput(message, code="objects.badDigest", details={"digest": digest, "problem": "mismatch"})


def check_sha256_hex(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    value = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise InvalidInput(
            "the SHA-256 checksum must be 64 hex digits",
            code="objects.badDigest",
            details={"digest": "sha256", "problem": "malformed"},
        )
    return value


# -- rows ----------------------------------------------------------------------------------------
def _info(space: SpaceInfo, row: StoredObject) -> ObjectInfo:
    return ObjectInfo(
        space=space.name,
        key=row.key,
        size=row.size,
        etag=row.etag,
        content_type=row.content_type,
        modified_at=row.modified_at,
        sha256=row.sha256,
        metadata=dict(row.user_metadata or {}),
        blob_key=row.blob_key,
        headers=dict(row.headers or {}),
        checksum=Checksum.parse(row.checksum),
        segments=row.segments,
    )


def new_blob_key(space: SpaceInfo) -> str:
    return f"spaces/{space.id}/objects/{uuid.uuid4().hex}"


def commit_object(
    services: Services,
    space: SpaceInfo,
    key: str,
    *,
    blob_key: str,
    size: int,
    etag: str,
    sha256: str | None,
    content_type: str,
    metadata: dict[str, str],
    headers: dict[str, str] | None = None,
    checksum: Checksum | None = None,
    in_transaction: Callable[[Session], None] | None = None,
    segments: Sequence[Segment] | None = None,
    owns_blobs: bool = True,
) -> ObjectInfo:
    """Point ``key`` at a freshly written blob (insert or replace) and drop the replaced version.

    With ``segments`` the object is stored as those blobs in order (a multipart object) and
    ``blob_key`` is their folder, the version's manifest. ``in_transaction`` runs first inside
    the same catalog transaction (a multipart completion claims its upload there), so both
    happen or neither. If the row cannot be written (the space was deleted meanwhile, or the
    callback raises) the new blobs are removed, unless ``owns_blobs`` is false (the parts of a
    multipart upload stay with the upload).
    """
    now = utcnow()
    old: tuple[str, int] | None = None
    try:
        for attempt in (1, 2):
            old = None
            try:
                with services.catalog.session() as s:
                    if in_transaction is not None:
                        in_transaction(s)
                    row = s.scalar(
                        select(StoredObject)
                        .where(StoredObject.space_id == space.id, StoredObject.key == key)
                        .with_for_update()
                    )
                    if row is None:
                        row = StoredObject(space_id=space.id, key=key)
                        s.add(row)
                    else:
                        old = (row.blob_key, row.segments)
                    row.segments = len(segments or ())
                    row.blob_key = blob_key
                    row.size = size
                    row.etag = etag
                    row.sha256 = sha256
                    row.content_type = content_type
                    row.user_metadata = metadata
                    row.headers = headers or None
                    row.checksum = checksum.text() if checksum is not None else None
                    row.modified_at = now
                    # the row's fields are set: the segment statements may flush it
                    if old is not None and old[1]:
                        segment_rows.forget(s, [old[0]])
                    if segments:
                        segment_rows.store(s, space.id, blob_key, segments)
                    s.flush()
                    info = _info(space, row)
                break
            except IntegrityError as exc:
                # a concurrent first put of the same key won (PostgreSQL), or the space is gone
                if attempt == 2 or not _space_exists(services, space):
                    raise NotFound(f"space {space.name!r} no longer exists", code="spaces.notFound") from exc
    except BaseException:
        if owns_blobs:
            discard_version(services, blob_key, bool(segments))
        raise
    if old is not None and old[0] != blob_key:
        discard_version(services, *old)
    return info


def discard_version(services: Services, blob_key: str, segmented: int | bool) -> None:
    """Delete the bytes of a version nobody points at any more: its blob, or its parts' folder."""
    if not segmented:
        discard_blob(services, blob_key)
        return
    try:
        services.blobs.delete_prefix(blob_key)
    except Exception:
        log.warning(
            "could not delete the parts under %s; they stay until removed by hand", blob_key, exc_info=True
        )


def discard_blob(services: Services, blob_key: str) -> None:
    """Delete a blob nobody points at any more; a failure is logged, never raised (the change is done)."""
    try:
        services.blobs.delete(blob_key)
    except Exception:
        log.warning(
            "could not delete the unreferenced blob %s; it stays until removed by hand",
            blob_key,
            exc_info=True,
        )


def _space_exists(services: Services, space: SpaceInfo) -> bool:
    from entrepot.core.catalog import Space

    with services.catalog.session(readonly=True) as s:
        return s.get(Space, space.id) is not None


# -- operations ----------------------------------------------------------------------------------
def put_object(
    services: Services,
    space: SpaceInfo,
    key: str,
    body: Iterable[bytes] | BinaryIO,
    *,
    content_type: str | None = None,
    metadata: dict[str, str] | None = None,
    content_md5: str | None = None,
    sha256: str | None = None,
    expected_size: int | None = None,
    headers: dict[str, str] | None = None,
    checksum: Checksum | Callable[[], Checksum | None] | None = None,
    exact_type: bool = False,
) -> ObjectInfo:
    """Store ``body`` under ``key``; ``content_md5``/``sha256`` (hex) and the size are checked before
    it becomes visible.

    ``headers`` are standard headers kept with the object (:data:`STORED_HEADERS`); ``checksum`` an
    additional checksum the caller verified while the body streamed, or a callable that gives it
    once the body has been read (a trailer); ``exact_type`` stores the content type as given
    instead of guessing one from the key.
    """
    validate_object_key(key)
    ctype = exact_content_type(content_type) if exact_type else content_type_for(key, content_type)
    meta = validate_metadata(metadata, services.settings.object_metadata_max_bytes)
    kept = validate_headers(headers)
    want_sha = check_sha256_hex(sha256)
    blob_key = new_blob_key(space)
    blob = services.blobs.put(blob_key, body)  # a failure mid-stream leaves no blob
    try:
        check_body(blob.size, blob.md5, blob.sha256, expected_size, content_md5, want_sha)
        extra = checksum() if callable(checksum) else checksum
    except BaseException:
        services.blobs.delete(blob_key)
        raise
    return commit_object(
        services,
        space,
        key,
        blob_key=blob_key,
        size=blob.size,
        etag=blob.md5 or hashlib.md5(blob_key.encode(), usedforsecurity=False).hexdigest(),
        sha256=blob.sha256,
        content_type=ctype,
        metadata=meta,
        headers=kept,
        checksum=extra,
    )


def check_body(
    size: int,
    md5: str | None,
    sha256: str | None,
    expected_size: int | None,
    content_md5: str | None,
    want_sha: str | None,
    what: str = "the body",
) -> None:
    """Raise unless a stored body has the announced size, MD5 (hex) and SHA-256 (hex)."""
    if expected_size is not None and size != expected_size:
        raise InvalidInput(
            f"{what} has {size} bytes, not the {expected_size} announced; nothing was stored",
            code="request.incomplete",
        )
    if content_md5 is not None and md5 != content_md5:
        raise digest_mismatch(
            f"{what}'s MD5 is {md5}, not the Content-MD5 sent ({content_md5}); nothing was stored", "md5"
        )
    if want_sha is not None and sha256 != want_sha:
        raise digest_mismatch(
            f"{what}'s SHA-256 is {sha256}, not the checksum sent ({want_sha}); nothing was stored", "sha256"
        )


def head_object(services: Services, space: SpaceInfo, key: str) -> ObjectInfo:
    validate_object_key(key)
    with services.catalog.session(readonly=True) as s:
        row = s.scalar(select(StoredObject).where(StoredObject.space_id == space.id, StoredObject.key == key))
        if row is None:
            raise NotFound(f"object {key!r} does not exist in space {space.name!r}", code="objects.notFound")
        return _info(space, row)


def open_object(
    services: Services, space: SpaceInfo, key: str, start: int | None = None, end: int | None = None
) -> tuple[ObjectInfo, BinaryIO]:
    """The object's entry and a stream of its bytes ``[start, end)`` (whole object by default)."""
    for _ in range(3):  # a concurrent replace may remove the blob between the lookup and the open
        info = head_object(services, space, key)
        try:
            return info, open_version(services, info, start, end)
        except ObjectChanged:
            continue
    raise NotFound(f"object {key!r} does not exist in space {space.name!r}", code="objects.notFound")


class ObjectChanged(NotFound):
    """The version whose headers were read was replaced before its bytes were opened."""

    default_code = "objects.changed"


def open_version(
    services: Services, info: ObjectInfo, start: int | None = None, end: int | None = None
) -> BinaryIO:
    """The bytes of exactly the version ``info`` describes; ``ObjectChanged`` if it was replaced.

    A multipart object is read part after part; if it is replaced while it is read, the part
    that is gone raises ``ObjectChanged`` from ``read`` (what was delivered is the old version).
    """
    if not info.segments:
        try:
            return services.blobs.open(info.blob_key, start, end)
        except NotFound as exc:
            raise ObjectChanged(f"object {info.key!r} was replaced while it was being read") from exc
    lo = start or 0
    hi = info.size if end is None else min(end, info.size)
    if lo < 0 or hi < lo:
        raise InvalidInput(f"invalid byte range {start}-{end} for object {info.key!r} of {info.size} bytes")
    if lo == hi:
        return io.BytesIO(b"")
    with services.catalog.session(readonly=True) as s:
        parts = segment_rows.slices(s, info.blob_key, lo, hi)
    if not parts:
        raise ObjectChanged(f"object {info.key!r} was replaced while it was being read")

    def changed() -> ObjectChanged:
        return ObjectChanged(f"object {info.key!r} was replaced while it was being read")

    return segment_rows.reader(services.blobs, parts, changed)


def delete_object(services: Services, space: SpaceInfo, key: str) -> ObjectInfo:
    validate_object_key(key)
    with services.catalog.session() as s:
        row = s.scalar(
            select(StoredObject)
            .where(StoredObject.space_id == space.id, StoredObject.key == key)
            .with_for_update()
        )
        if row is None:
            raise NotFound(f"object {key!r} does not exist in space {space.name!r}", code="objects.notFound")
        info = _info(space, row)
        if row.segments:
            segment_rows.forget(s, [row.blob_key])
        s.delete(row)
    discard_version(services, info.blob_key, info.segments)
    return info


@dataclass(frozen=True)
class DeleteOutcome:
    """What deleting one key of a batch did: ``existed`` tells whether there was an object;
    ``error`` is set instead when the key could not be deleted (an invalid key)."""

    key: str
    existed: bool = False
    error: EntrepotError | None = None


def delete_objects(services: Services, space: SpaceInfo, keys: list[str]) -> list[DeleteOutcome]:
    """Delete many keys in one transaction (in the order given); a missing key counts as deleted.

    Invalid keys get an outcome with their error and do not stop the others. The blobs are
    removed after the commit.
    """
    outcomes: dict[int, DeleteOutcome] = {}
    valid: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        try:
            validate_object_key(key)
        except InvalidInput as exc:
            outcomes[i] = DeleteOutcome(key, error=exc)
            continue
        valid.setdefault(key, []).append(i)
    versions: list[tuple[str, int]] = []
    existed: set[str] = set()
    if valid:
        with services.catalog.session() as s:
            rows = list(
                s.scalars(
                    select(StoredObject)
                    .where(StoredObject.space_id == space.id, StoredObject.key.in_(list(valid)))
                    .with_for_update()
                )
            )
            for row in rows:
                existed.add(row.key)
                versions.append((row.blob_key, row.segments))
                s.delete(row)
            segment_rows.forget(s, [blob_key for blob_key, segmented in versions if segmented])
    for key, positions in valid.items():
        for n, i in enumerate(positions):
            outcomes[i] = DeleteOutcome(key, existed=key in existed and n == 0)
    for blob_key, segmented in versions:
        discard_version(services, blob_key, segmented)
    return [outcomes[i] for i in range(len(keys))]


def copy_object(
    services: Services,
    source: SpaceInfo,
    source_key: str,
    target: SpaceInfo,
    target_key: str,
    *,
    metadata: dict[str, str] | None = None,
    content_type: str | None = None,
    directive: str | None = None,
    headers: dict[str, str] | None = None,
) -> ObjectInfo:
    """Copy an object (within one project).

    Without a ``directive``, new metadata/content type replace the source's if given. With S3's
    ``COPY`` the copy keeps the source's metadata, content type and headers (and copying an object
    onto itself is refused: it would change nothing); with ``REPLACE`` it gets exactly
    ``metadata``, ``content_type`` (as given, ``binary/octet-stream`` if none) and ``headers``,
    which is also how an object's metadata is changed in place.
    """
    if source.project_id != target.project_id:
        raise InvalidInput("objects can only be copied within one project", code="objects.crossProject")
    if directive not in (None, "COPY", "REPLACE"):
        raise InvalidInput(f"unknown metadata directive {directive!r}; use COPY or REPLACE")
    validate_object_key(target_key)
    if directive == "COPY" and source.id == target.id and source_key == target_key:
        raise InvalidInput(
            "copying an object onto itself without changing its metadata changes nothing; "
            "replace the metadata (directive REPLACE) instead",
            code="objects.copyOntoItself",
        )
    meta = (
        None if metadata is None else validate_metadata(metadata, services.settings.object_metadata_max_bytes)
    )
    kept = validate_headers(headers) if directive == "REPLACE" else None
    ctype = exact_content_type(content_type) if directive == "REPLACE" else None
    for _ in range(3):
        src = head_object(services, source, source_key)
        blob_key = new_blob_key(target)
        try:
            parts = _copy_bytes(services, src, blob_key)
        except NotFound:
            continue  # replaced meanwhile: copy the new version
        if directive == "REPLACE":
            assert ctype is not None
            new_type, new_meta, new_headers = ctype, meta or {}, kept
        else:
            new_type = content_type_for(target_key, content_type) if content_type else src.content_type
            new_meta, new_headers = (src.metadata if meta is None else meta), src.headers
        return commit_object(
            services,
            target,
            target_key,
            blob_key=blob_key,
            size=src.size,
            etag=src.etag,
            sha256=src.sha256,
            content_type=new_type,
            metadata=new_meta,
            headers=new_headers,
            checksum=src.checksum,
            segments=parts,
        )
    raise NotFound(f"object {source_key!r} does not exist in space {source.name!r}", code="objects.notFound")


def _copy_bytes(services: Services, src: ObjectInfo, blob_key: str) -> list[Segment] | None:
    """Copy a version's bytes to ``blob_key``: the blob (a hard link or a server-side copy), or,
    for a multipart object, each part into the folder ``blob_key`` (returned as its segments).
    ``NotFound`` if the version was replaced meanwhile (nothing is left behind)."""
    if not src.segments:
        services.blobs.copy(src.blob_key, blob_key)
        return None
    with services.catalog.session(readonly=True) as s:
        parts = segment_rows.listed(s, src.blob_key)
    if not parts:
        raise NotFound(f"object {src.key!r} was replaced", code="objects.changed")
    copies: list[Segment] = []
    try:
        for seq, part in enumerate(parts):
            copy_key = f"{blob_key}/{seq:05d}"
            services.blobs.copy(part.blob_key, copy_key)
            copies.append(Segment(copy_key, part.size))
    except BaseException:
        discard_version(services, blob_key, True)
        raise
    return copies


# -- listing -------------------------------------------------------------------------------------
def successor(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix`` (None: no bound)."""
    chars = list(prefix)
    while chars:
        last = ord(chars[-1])
        if last < 0x10FFFF:
            nxt = last + 1
            if 0xD800 <= nxt <= 0xDFFF:  # skip surrogates, which UTF-8 cannot carry
                nxt = 0xE000
            chars[-1] = chr(nxt)
            return "".join(chars)
        chars.pop()
    return None


def encode_cursor(position: str, is_prefix: bool) -> str:
    raw = ("p" if is_prefix else "k").encode() + position.encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> tuple[str, bool]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        kind, position = raw[:1], raw[1:].decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("invalid listing cursor; pass back the nextCursor of the previous page") from exc
    if kind not in (b"k", b"p") or not position or _CONTROL_RE.search(position):
        raise InvalidInput("invalid listing cursor; pass back the nextCursor of the previous page")
    return position, kind == b"p"


def list_objects(
    services: Services,
    space: SpaceInfo,
    *,
    prefix: str = "",
    delimiter: str | None = None,
    cursor: str | None = None,
    limit: int = MAX_LIST_LIMIT,
    start_after: str | None = None,
    after_prefix: bool = False,
) -> ObjectPage:
    """A page of objects under ``prefix`` in key order; with ``delimiter``, folders as common prefixes.

    ``start_after`` (S3's start-after and marker) lists only keys after it; with ``after_prefix``
    it names a common prefix, and every key under it is skipped too. A ``cursor`` wins over it.
    """
    validate_prefix(prefix)
    if start_after and not cursor:
        if _CONTROL_RE.search(start_after) or len(start_after.encode("utf-8")) > MAX_KEY_BYTES:
            raise InvalidInput("start-after must be a key: printable, at most 1024 bytes")
        cursor = encode_cursor(start_after, after_prefix)
    if delimiter == "":
        delimiter = None
    if delimiter is not None and (len(delimiter) > 16 or _CONTROL_RE.search(delimiter)):
        raise InvalidInput("the delimiter must be 1-16 printable characters (usually '/')")
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIST_LIMIT}")
    upper = successor(prefix) if prefix else None
    lower: str = prefix
    inclusive = True
    if cursor:
        position, is_prefix = decode_cursor(cursor)
        if is_prefix:
            bound = successor(position)
            if bound is None:
                return ObjectPage([], [], None)
            lower, inclusive = max(lower, bound), True
        elif position >= lower:
            lower, inclusive = position, False
    objects: list[ObjectInfo] = []
    prefixes: list[str] = []
    last: tuple[str, bool] | None = None
    with services.catalog.session(readonly=True) as s:
        jumped = False
        while len(objects) + len(prefixes) <= limit:
            want = limit + 1 - len(objects) - len(prefixes)
            if jumped:  # past a folder the next one may follow at once: fetch a few rows, not a page
                want = min(want, 8)
            q = select(StoredObject).where(StoredObject.space_id == space.id)
            q = q.where(StoredObject.key >= lower if inclusive else StoredObject.key > lower)
            if upper is not None:
                q = q.where(StoredObject.key < upper)
            rows = list(s.scalars(q.order_by(StoredObject.key).limit(want)))
            if not rows:
                break
            asked, jumped = want, False
            for row in rows:
                if len(objects) + len(prefixes) == limit:
                    return ObjectPage(objects, prefixes, encode_cursor(*last) if last else None)
                if delimiter is not None:
                    idx = row.key.find(delimiter, len(prefix))
                    if idx >= 0:
                        common = row.key[: idx + len(delimiter)]
                        prefixes.append(common)
                        last = (common, True)
                        nxt = successor(common)
                        if nxt is None:
                            return ObjectPage(objects, prefixes, None)
                        lower, inclusive, jumped = nxt, True, True
                        break  # seek past the whole folder
                objects.append(_info(space, row))
                last = (row.key, False)
                lower, inclusive = row.key, False
            if not jumped and len(rows) < asked:
                break
    return ObjectPage(objects, prefixes, None)
