"""What the faces render of files: frozen views built from the catalog rows, creators included."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, BinaryIO

from entrepot.core.auth import TokenRef, token_refs
from entrepot.core.catalog import File
from entrepot.core.files.links import download_url
from entrepot.core.files.rows import file_type, is_expired
from entrepot.core.sessions import SessionCredentials

if TYPE_CHECKING:
    from entrepot.core.services import Services


RangeOpener = Callable[[int | None, int | None], BinaryIO]


@dataclass(frozen=True)
class FileView:
    """A file as a caller sees it, with a fresh signed download URL."""

    id: int
    name: str
    key: str  # where its bytes are: the object key in the S3 face's files bucket
    created_at: datetime
    uploaded_at: datetime | None  # None until the bytes have landed
    size_bytes: int | None
    content_type: str | None
    file_type: str | None  # csv for data.csv and data.csv.gz
    tags: tuple[str, ...]
    is_public: bool
    is_sliced: bool
    is_encrypted: bool
    is_permanent: bool
    is_expired: bool
    max_age_days: int | None  # None for a permanent file
    run_id: str | None
    creator: TokenRef | None
    download_url: str
    # temporary S3 credentials that read this file (GetObject/HeadObject on ``key``), only in
    # the answer of ``detail(..., federation=True)``
    credentials: SessionCredentials | None = None


@dataclass(frozen=True)
class PreparedFile:
    """A new file record, the signed URL its bytes go to, and (``federation``) temporary S3
    credentials that may PutObject its ``key`` and nothing else."""

    file: FileView
    upload_url: str
    credentials: SessionCredentials | None = None


@dataclass(frozen=True)
class FileObject:
    """A file as the S3 files bucket serves it: its stored bytes, exactly as stored.

    Export results are stored headerless (and gzipped when asked); Keboola's clients add the
    header and inflate themselves, so nothing is transformed here (unlike the signed download).
    Fits :class:`entrepot.faces.objects_http.Representation` (size, etag, content_type, modified_at).
    """

    file_id: int
    key: str
    size: int
    etag: str  # hex MD5 of the bytes
    content_type: str
    modified_at: datetime
    is_encrypted: bool
    open: RangeOpener  # bytes [start, end), or everything for (None, None)


@dataclass(frozen=True)
class StoredFile:
    """What a PutObject into the files bucket stored."""

    file_id: int
    key: str
    size: int
    etag: str  # hex MD5 of the bytes
    is_encrypted: bool


@dataclass(frozen=True)
class StoredBytes:
    """A file's bytes as they are stored on the local disk: served with ranges and validators."""

    size: int
    modified: float  # unix seconds (Last-Modified)
    modified_ns: int  # changes with every rewrite (part of the ETag)
    open: RangeOpener  # bytes [start, end), or everything for (None, None)


@dataclass(frozen=True)
class Download:
    """What a signed download serves: stored bytes as they are, or a stream (an export CSV with a header)."""

    file_id: int
    filename: str
    media_type: str
    stored: StoredBytes | None = None
    chunks: Iterator[bytes] | None = None
    size: int | None = None  # bytes of ``chunks`` when known in advance (the Content-Length)


def file_views(services: Services, rows: Iterable[File]) -> list[FileView]:
    """Views of ``rows``, their creators looked up in one query."""
    rows = list(rows)
    creators = token_refs(services.catalog, {f.token_id for f in rows if f.token_id is not None})
    return [_view(services, f, creators.get(f.token_id or 0)) for f in rows]


def file_view(services: Services, row: File) -> FileView:
    return file_views(services, [row])[0]


def _view(services: Services, file: File, creator: TokenRef | None) -> FileView:
    return FileView(
        id=file.id,
        name=file.name,
        key=file.blob_key,
        created_at=file.created_at,
        uploaded_at=file.uploaded_at,
        size_bytes=file.size_bytes,
        content_type=file.content_type,
        file_type=file_type(file.name),
        tags=tuple(file.tags or ()),
        is_public=file.is_public,
        is_sliced=file.is_sliced,
        is_encrypted=file.is_encrypted,
        is_permanent=file.is_permanent,
        is_expired=is_expired(file),
        max_age_days=None if file.is_permanent else services.settings.file_max_age_days,
        run_id=file.run_id,
        creator=creator,
        download_url=download_url(services, file),
    )
