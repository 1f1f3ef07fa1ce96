"""What every blob store shares: the :class:`BlobStore` protocol, its records and key checks.

The backends (:mod:`.local`, :mod:`.s3`) and the package (``open_store``, ``local_file``) build
on this module; it imports none of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from entrepot.core.errors import InvalidInput
from entrepot.syntax import MAX_KEY_BYTES, TEMP_PREFIX, BlobKeyError, check_blob_key

CHUNK_SIZE = 1024 * 1024  # every stream moves 1 MiB at a time

__all__ = [
    "CHUNK_SIZE",
    "MAX_KEY_BYTES",
    "TEMP_PREFIX",
    "BlobInfo",
    "BlobPage",
    "BlobStore",
    "iter_chunks",
    "validate_key",
    "validate_prefix",
]


@dataclass(frozen=True)
class BlobInfo:
    """What a store knows about one blob. ``md5`` and ``sha256`` are hex digests when known."""

    key: str
    size: int
    md5: str | None = None
    sha256: str | None = None
    modified: datetime | None = None


@dataclass(frozen=True)
class BlobPage:
    """One page of a listing: blobs, common prefixes (with a delimiter) and the next cursor."""

    blobs: list[BlobInfo] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    next_cursor: str | None = None


@runtime_checkable
class BlobStore(Protocol):
    """Streaming byte storage. Every method validates its key with :func:`validate_key`."""

    def put(self, key: str, chunks: Iterable[bytes] | BinaryIO) -> BlobInfo:
        """Store a blob atomically from chunks or a binary file; a failure leaves no blob behind.

        Memory stays bounded whatever the size. The result has ``md5`` and ``sha256`` of the bytes.
        """
        ...

    def put_file(self, key: str, path: Path, *, move: bool = False, digests: bool = True) -> BlobInfo:
        """Store a local file; with ``move`` the file is taken over (renamed when possible).

        ``digests=False`` lets a store skip computing MD5 and SHA-256 when that costs a read of
        the whole file (a local move); the result's digests may then be None.
        """
        ...

    def open(self, key: str, start: int | None = None, end: int | None = None) -> BinaryIO:
        """A readable binary stream of the blob, or of bytes ``[start, end)`` of it."""
        ...

    def path(self, key: str) -> Path | None:
        """The blob as a local file (DuckDB reads it directly), or None for remote stores."""
        ...

    def head(self, key: str) -> BlobInfo | None:
        """Size and time of a blob, None when it does not exist."""
        ...

    def delete(self, key: str) -> bool:
        """Remove a blob; True if it existed."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every blob under ``prefix/``; returns how many were removed."""
        ...

    def copy(self, src_key: str, dst_key: str) -> BlobInfo:
        """Copy a blob (replacing ``dst_key`` atomically); ``NotFound`` when ``src_key`` is missing.

        Checksums in the result may be None (the copy need not read the bytes).
        """
        ...

    def list(
        self, prefix: str = "", delimiter: str | None = None, cursor: str | None = None, limit: int = 1000
    ) -> BlobPage:
        """Keys starting with ``prefix`` in byte order, after ``cursor`` (S3 start-after)."""
        ...


def validate_key(key: str) -> str:
    """Check a blob key and return it; raise ``InvalidInput`` saying what is wrong.

    A key is ``/``-separated segments: no empty segment (no leading or trailing ``/``, no ``//``),
    no ``.`` or ``..``, no backslash, no control character, at most 1024 bytes in UTF-8
    (the rules live in :func:`entrepot.syntax.check_blob_key`, which the settings use too).
    """
    try:
        return check_blob_key(key)
    except BlobKeyError as exc:
        raise InvalidInput(str(exc), code="blobs.invalidKey") from exc.__cause__


def validate_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a key possibly ending with ``/`` (or partway into a segment)."""
    if prefix == "":
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def iter_chunks(stream: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Read a binary stream in chunks and close it at the end (or when the consumer stops)."""
    try:
        while chunk := stream.read(chunk_size):
            yield chunk
    finally:
        stream.close()
