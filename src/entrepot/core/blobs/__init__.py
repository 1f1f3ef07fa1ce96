"""Blob stores: the bytes of files, keyed by validated ``/``-separated keys.

One protocol, :class:`BlobStore`, and one implementation per backend: the local directory
(:class:`~entrepot.core.blobs.local.LocalBlobStore`, ``file://``) now, S3 later. The protocol
follows S3's vocabulary (keys, prefixes, delimiters, start-after cursors, exclusive-end ranges
mapped to ``Range: bytes=start-(end-1)``) so that an S3 store is a thin adapter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable
from urllib.parse import unquote, urlparse

from entrepot.core.errors import InvalidInput, NotSupported

CHUNK_SIZE = 1024 * 1024  # every stream moves 1 MiB at a time
MAX_KEY_BYTES = 1024
TEMP_PREFIX = ".entrepot-tmp-"  # in-flight writes; never a valid key segment, never listed

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


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
        """Store a blob atomically from chunks or a binary file; a failure leaves no blob behind."""
        ...

    def put_file(self, key: str, path: Path, *, move: bool = False) -> BlobInfo:
        """Store a local file; with ``move`` the file is taken over (renamed when possible)."""
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

    def list(
        self, prefix: str = "", delimiter: str | None = None, cursor: str | None = None, limit: int = 1000
    ) -> BlobPage:
        """Keys starting with ``prefix`` in byte order, after ``cursor`` (S3 start-after)."""
        ...


def validate_key(key: str) -> str:
    """Check a blob key and return it; raise ``InvalidInput`` saying what is wrong.

    A key is ``/``-separated segments: no empty segment (no leading or trailing ``/``, no ``//``),
    no ``.`` or ``..``, no backslash, no control character, at most 1024 bytes in UTF-8.
    """
    if not isinstance(key, str) or key == "":
        raise InvalidInput("a blob key must be a non-empty string", code="blobs.invalidKey")
    if len(key.encode("utf-8", errors="surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidInput(f"blob key is longer than {MAX_KEY_BYTES} bytes", code="blobs.invalidKey")
    if _CONTROL_RE.search(key):
        raise InvalidInput("blob key contains a control character", code="blobs.invalidKey")
    if "\\" in key:
        raise InvalidInput(f"blob key {key!r} contains a backslash; use '/'", code="blobs.invalidKey")
    if key.startswith("/"):
        raise InvalidInput(f"blob key {key!r} must be relative, not start with '/'", code="blobs.invalidKey")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput("blob key is not valid UTF-8", code="blobs.invalidKey") from exc
    for segment in key.split("/"):
        if segment == "":
            raise InvalidInput(
                f"blob key {key!r} has an empty segment ('//' or a trailing '/')", code="blobs.invalidKey"
            )
        if segment in (".", ".."):
            raise InvalidInput(
                f"blob key {key!r} may not contain '.' or '..' segments", code="blobs.invalidKey"
            )
        if segment.startswith(TEMP_PREFIX):
            raise InvalidInput(
                f"blob key segments may not start with {TEMP_PREFIX!r}", code="blobs.invalidKey"
            )
    return key


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


def open_store(url: str) -> BlobStore:
    """Open the blob store named by ``url``: ``file:///path`` (s3:// comes with the S3 store)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from entrepot.core.blobs.local import LocalBlobStore

        if parsed.netloc not in ("", "localhost"):
            raise InvalidInput(f"file:// blob URL must name a local path, not host {parsed.netloc!r}")
        return LocalBlobStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        raise NotSupported("s3:// blob stores are not implemented yet (they come with the S3 store)")
    raise InvalidInput(f"unsupported blob store URL {url!r}; use file:///path")


__all__ = [
    "CHUNK_SIZE",
    "BlobInfo",
    "BlobPage",
    "BlobStore",
    "iter_chunks",
    "open_store",
    "validate_key",
    "validate_prefix",
]
