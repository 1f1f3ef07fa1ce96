"""The file commands the faces call: typed inputs in, views out, one call per request.

Each command checks the caller (:class:`~entrepot.core.auth.Principal`) or the signed link it
presented, does its catalog and blob work, and answers a view from :mod:`.views`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from entrepot.core.auth import Principal
from entrepot.core.blobs import iter_chunks
from entrepot.core.catalog import File
from entrepot.core.clock import utcnow
from entrepot.core.errors import InvalidInput, NotFound, PermissionDenied
from entrepot.core.files.federation import credentials_for, may_upload, scoped_file
from entrepot.core.files.jobs import DELETE_JOB, delete_params
from entrepot.core.files.links import DOWNLOAD, UPLOAD, SignedLink, upload_url, verify
from entrepot.core.files.rows import delete_now, expired, get, insert, is_expired, live, safe_name, sees_all
from entrepot.core.files.sources import csv_with_header, require_bytes, served_export_size
from entrepot.core.files.tags import clean_tags, tag_file, tag_filter, untag_file
from entrepot.core.files.uploads import BodyCheck, store
from entrepot.core.files.views import (
    Download,
    FileObject,
    FileView,
    PreparedFile,
    StoredBytes,
    StoredFile,
    file_view,
    file_views,
)
from entrepot.core.jobs.service import submit
from entrepot.core.jobs.views import JobView
from entrepot.core.objects.objects import check_sha256_hex, decode_content_md5
from entrepot.core.s3_credentials import Credential

if TYPE_CHECKING:
    from entrepot.core.services import Services

MAX_LIST_LIMIT = 1000


@dataclass(frozen=True)
class NewFile:
    """A file to prepare: its record now, its bytes later (:func:`upload`)."""

    name: str | None
    size_bytes: int | None = None  # when given, the first upload must carry exactly this many bytes
    tags: tuple[str, ...] = ()
    is_public: bool = False
    is_permanent: bool = False
    is_encrypted: bool = True
    is_sliced: bool = False
    content_type: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class FileQuery:
    """Which files a listing returns, newest first."""

    tags: tuple[str, ...] = ()  # files with any of them
    q: str | None = None  # tags:"a" AND (tags:"b" OR tags:c)
    limit: int = 100
    offset: int = 0
    since_id: int | None = None  # ids above it
    max_id: int | None = None  # ids up to it
    show_expired: bool = False


# -- create and upload --------------------------------------------------------------------------


def prepare(
    services: Services, principal: Principal, new: NewFile, *, federation: bool = False
) -> PreparedFile:
    """Create a file record whose bytes come later, and the signed URL to send them to.

    ``federation`` (Keboola's ``federationToken``) adds temporary S3 credentials that may
    PutObject the file's key in the S3 face's files bucket, and nothing else.
    """
    principal.require_authenticated()
    name = safe_name(new.name)
    if new.size_bytes is not None and new.size_bytes < 0:
        raise InvalidInput("sizeBytes must not be negative")
    file = insert(
        services,
        principal.project_id or 0,
        principal.token_id,
        name=name,
        size_bytes=new.size_bytes,
        tags=clean_tags(new.tags),
        is_public=new.is_public,
        is_permanent=new.is_permanent,
        is_encrypted=new.is_encrypted,
        is_sliced=new.is_sliced,
        content_type=new.content_type,
        run_id=new.run_id,
    )
    credentials = credentials_for(services, principal, file, "w") if federation else None
    return PreparedFile(file_view(services, file), upload_url(services, file), credentials)


def upload(services: Services, principal: Principal, file_id: int, chunks: Iterable[bytes]) -> FileView:
    """Store a prepared file's bytes; only the token that prepared it (or a master token) may."""
    file = get(services, principal, file_id)
    if not may_upload(file, principal):
        raise PermissionDenied(
            f"only the token that prepared file {file_id} (or a master token) may upload it"
        )
    return file_view(services, store(services, file, chunks))


def upload_signed(services: Services, file_id: int, link: SignedLink, chunks: Iterable[bytes]) -> FileView:
    """Store a prepared file's bytes for a caller holding its signed upload URL."""
    verify(services, UPLOAD, file_id, link)
    return file_view(services, store(services, live(services, file_id), chunks))


# -- read ---------------------------------------------------------------------------------------


def detail(services: Services, principal: Principal, file_id: int, *, federation: bool = False) -> FileView:
    """A file the caller may see (expired ones included); ``NotFound`` otherwise.

    ``federation`` (Keboola's ``federationToken``) adds temporary S3 credentials that read the
    file (GetObject, HeadObject on its key); an expired file gets none (it cannot be read).
    """
    file = get(services, principal, file_id)
    view = file_view(services, file)
    if federation and not is_expired(file):
        view = dataclasses.replace(view, credentials=credentials_for(services, principal, file, "r"))
    return view


def list_files(services: Services, principal: Principal, query: FileQuery) -> list[FileView]:
    """Files the caller may see, newest first."""
    principal.require_authenticated()
    if query.limit < 1:
        raise InvalidInput("limit must be at least 1")
    if query.offset < 0:
        raise InvalidInput("offset must not be negative")
    limit = min(query.limit, MAX_LIST_LIMIT)
    keep = tag_filter(query.tags, query.q)
    stmt = select(File).where(File.project_id == principal.project_id, File.deleted_at.is_(None))
    if not sees_all(principal):
        stmt = stmt.where(File.token_id == principal.token_id)
    if query.since_id is not None:
        stmt = stmt.where(File.id > query.since_id)
    if query.max_id is not None:
        stmt = stmt.where(File.id <= query.max_id)
    if not query.show_expired:
        stmt = stmt.where((File.expires_at.is_(None)) | (File.expires_at > utcnow()))
    stmt = stmt.order_by(File.id.desc())
    if keep is None:
        stmt = stmt.limit(limit).offset(query.offset)
    found: list[File] = []
    skipped = 0
    with services.catalog.session(readonly=True) as s:
        for file in s.scalars(stmt.execution_options(yield_per=500)):
            if keep is not None:  # tags are a JSON column: filtered here, then paged
                if not keep(set(file.tags or [])):
                    continue
                if skipped < query.offset:
                    skipped += 1
                    continue
            found.append(file)
            if len(found) >= limit:
                break
    return file_views(services, found)


def open_download(services: Services, file_id: int, link: SignedLink) -> Download:
    """Verify a signed download URL and open what it serves.

    An export result (``columns`` set) is served as one uncompressed CSV with a quoted header row,
    gunzipped on the fly when stored compressed (reference §6.4); anything else as stored.
    """
    verify(services, DOWNLOAD, file_id, link)
    file = live(services, file_id)
    if is_expired(file):
        raise expired(file_id)
    require_bytes(file)
    if file.columns is not None:
        name = file.name[:-3] if file.name.lower().endswith(".gz") else file.name
        return Download(
            file.id,
            name,
            "text/csv; charset=utf-8",
            chunks=csv_with_header(services, file),
            size=served_export_size(services, file),
        )
    media = file.content_type or "application/octet-stream"
    blobs, key = services.blobs, file.blob_key
    local = blobs.path(key)
    if local is not None and local.is_file():
        stat = local.stat()
        stored = StoredBytes(
            stat.st_size, stat.st_mtime, stat.st_mtime_ns, lambda start, end: blobs.open(key, start, end)
        )
        return Download(file.id, file.name, media, stored=stored)
    return Download(file.id, file.name, media, chunks=iter_chunks(blobs.open(key)))


# -- the S3 face's files bucket -----------------------------------------------------------------


@dataclass(frozen=True)
class S3Body:
    """What an S3 PutObject announced about its body (checked while it streams)."""

    size: int | None = None  # the decoded length (Content-Length or x-amz-decoded-content-length)
    content_md5: str | None = None  # Content-MD5, base64 as sent
    sha256: str | None = None  # the signed payload hash (hex), when the body was signed


def s3_put(
    services: Services, credential: Credential, key: str, chunks: Iterable[bytes], body: S3Body
) -> StoredFile:
    """PutObject into the files bucket with a file's upload credentials: store its bytes.

    Only the key the credentials were minted for; a re-upload replaces the bytes (as
    :func:`upload` does); the first upload must carry the prepared ``sizeBytes``. ``chunks`` is
    read only after every check passed, and a failure leaves the file as it was.
    """
    file = scoped_file(services, credential, key, "w")
    check = BodyCheck(
        size=body.size, md5=decode_content_md5(body.content_md5), sha256=check_sha256_hex(body.sha256)
    )
    stored = store(services, file, chunks, check)
    return StoredFile(
        stored.id, stored.blob_key, stored.size_bytes or 0, stored.checksum or "", stored.is_encrypted
    )


def s3_open(services: Services, credential: Credential, key: str) -> FileObject:
    """GetObject/HeadObject in the files bucket with a file's read credentials: its bytes as stored.

    ``NotFound`` (``files.notUploaded``) until the bytes have landed.
    """
    file = scoped_file(services, credential, key, "r")
    if file.uploaded_at is None:
        raise NotFound(f"file {file.id} has not been uploaded yet", code="files.notUploaded")
    require_bytes(file)
    blobs, blob_key = services.blobs, file.blob_key
    info = blobs.head(blob_key)
    if info is None:
        raise NotFound(f"file {file.id} has not been uploaded yet", code="files.notUploaded")
    return FileObject(
        file_id=file.id,
        key=blob_key,
        size=info.size,
        etag=file.checksum or info.md5 or f"{file.id:x}-{info.size:x}",
        content_type=file.content_type or "application/octet-stream",
        modified_at=file.uploaded_at,
        is_encrypted=file.is_encrypted,
        open=lambda start, end: blobs.open(blob_key, start, end),
    )


# -- tags and deletion --------------------------------------------------------------------------


def add_tag(services: Services, principal: Principal, file_id: int, tag: str | None) -> None:
    """Add a tag to a visible file (no-op when it is there already)."""
    clean = clean_tags([tag or ""])
    if not clean:
        raise InvalidInput("parameter tag is required")
    get(services, principal, file_id)
    tag_file(services, file_id, clean[0])


def remove_tag(services: Services, principal: Principal, file_id: int, tag: str) -> None:
    """Remove a tag from a visible file (no-op when it is not there)."""
    get(services, principal, file_id)
    untag_file(services, file_id, tag)


def delete(services: Services, principal: Principal, file_id: int) -> None:
    """Delete a file now: it disappears from lists and details; its bytes are removed."""
    file = _deletable(services, principal, file_id)
    delete_now(services, file.project_id, file.id)


def delete_async(
    services: Services, principal: Principal, file_id: int, *, run_id: str | None = None, wait: float = 0.0
) -> JobView:
    """Queue the deletion as a ``files.delete`` job; answer the job after at most ``wait`` seconds
    (a quick deletion is then already finished)."""
    file = _deletable(services, principal, file_id)
    return submit(
        services,
        principal,
        DELETE_JOB,
        delete_params(file.id),
        subject=str(file.id),
        run_id=run_id,
        wait=wait,
    )


def _deletable(services: Services, principal: Principal, file_id: int) -> File:
    file = get(services, principal, file_id)
    if file.token_id != principal.token_id and not sees_all(principal):
        raise PermissionDenied(f"this token may not delete file {file_id}")
    return file
