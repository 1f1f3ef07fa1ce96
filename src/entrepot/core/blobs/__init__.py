"""Blob stores: the bytes of files, keyed by validated ``/``-separated keys.

One protocol, :class:`BlobStore`, and one implementation per backend, chosen by the blob store
URL (:func:`open_store`): the local directory (:class:`~entrepot.core.blobs.local.LocalBlobStore`,
``file://``, the default) and any S3-compatible service
(:class:`~entrepot.core.blobs.s3.S3BlobStore`, ``s3://bucket/prefix``). The protocol follows S3's
vocabulary (keys, prefixes, delimiters, start-after cursors, exclusive-end ranges mapped to
``Range: bytes=start-(end-1)``) so that the S3 store is a thin adapter.

Code that needs the bytes as a local file (DuckDB reading CSV or Parquet) uses
:func:`local_file`, which hands out the blob's own file on a local store and a temporary copy
otherwise.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol, runtime_checkable
from urllib.parse import unquote, urlparse

from entrepot.core.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from entrepot.config import Settings

CHUNK_SIZE = 1024 * 1024  # every stream moves 1 MiB at a time
MAX_KEY_BYTES = 1024
TEMP_PREFIX = ".entrepot-tmp-"  # in-flight writes; never a valid key segment, never listed

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_BUCKET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


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

    def compose(self, dst_key: str, source_keys: builtins.list[str]) -> BlobInfo:
        """Create ``dst_key`` atomically as the concatenation of the sources, in order.

        Completes multipart uploads whose parts are stored as ordinary blobs; the sources are kept
        (the caller deletes them). ``NotFound`` when a source is missing, ``InvalidInput`` for an
        empty list. ``size`` is always right; ``md5`` and ``sha256`` are those of the whole on the
        local store and may be None on S3 when the bytes were copied server-side.
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


@contextlib.contextmanager
def local_file(
    store: BlobStore, key: str, *, tmp_dir: Path | None = None, suffix: str = ""
) -> Iterator[Path]:
    """The blob as a local file for as long as the block runs (DuckDB reads files by path).

    A local store yields the blob's own file (read it, never change it); a remote one streams the
    blob into a temp file in ``tmp_dir`` (ending in ``suffix``), removed when the block ends.
    ``NotFound`` when the blob does not exist.
    """
    local = store.path(key)
    if local is not None:
        if not local.is_file():
            raise NotFound(f"blob {key!r} does not exist", code="blobs.notFound")
        yield local
        return
    if tmp_dir is not None:
        tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="blob-", suffix=suffix, dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as out, store.open(key) as source:
            shutil.copyfileobj(source, out, CHUNK_SIZE)
        yield Path(name)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def open_store(url: str, settings: Settings | None = None) -> BlobStore:
    """Open the blob store named by ``url``: ``file:///path`` or ``s3://bucket/prefix``.

    An S3 store takes its endpoint, region, credentials and addressing style from ``settings``
    (the ``blob_s3_*`` settings); without settings, boto3's defaults (AWS endpoint, the usual
    ``AWS_*`` variables and credential files) apply.
    """
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from entrepot.core.blobs.local import LocalBlobStore

        if parsed.netloc not in ("", "localhost"):
            raise InvalidInput(f"file:// blob URL must name a local path, not host {parsed.netloc!r}")
        return LocalBlobStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        from entrepot.core.blobs.s3 import S3BlobStore

        bucket, prefix = parse_s3_url(url)
        if settings is None:
            return S3BlobStore(bucket, prefix)
        secret = settings.blob_s3_secret_access_key
        return S3BlobStore(
            bucket,
            prefix,
            endpoint_url=settings.blob_s3_endpoint_url,
            region=settings.blob_s3_region,
            access_key_id=settings.blob_s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
            addressing_style=settings.blob_s3_addressing_style,
        )
    raise InvalidInput(f"unsupported blob store URL {url!r}; use file:///path or s3://bucket/prefix")


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` as ``("bucket", "some/prefix")``; the prefix may be empty."""
    parsed = urlparse(url)
    if parsed.scheme != "s3":
        raise InvalidInput(f"{url!r} is not an s3:// URL")
    bucket = parsed.netloc
    if not _BUCKET_RE.fullmatch(bucket):
        raise InvalidInput(
            f"s3 blob URL {url!r} must name a bucket: s3://bucket or s3://bucket/prefix "
            "(endpoint and credentials are separate settings)"
        )
    if parsed.query or parsed.fragment:
        raise InvalidInput(f"s3 blob URL {url!r} may not have a query or fragment")
    prefix = unquote(parsed.path).strip("/")
    if prefix:
        validate_key(prefix)
    return bucket, prefix


__all__ = [
    "CHUNK_SIZE",
    "BlobInfo",
    "BlobPage",
    "BlobStore",
    "iter_chunks",
    "local_file",
    "open_store",
    "parse_s3_url",
    "validate_key",
    "validate_prefix",
]
