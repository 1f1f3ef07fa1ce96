"""Blob stores: the bytes of files, keyed by validated ``/``-separated keys.

One protocol, :class:`BlobStore` (in :mod:`.base`, with what the backends share), and one
implementation per backend, chosen by the blob store URL (:func:`open_store`): the local
directory (:class:`~entrepot.core.blobs.local.LocalBlobStore`, ``file://``, the default) and any
S3-compatible service (:class:`~entrepot.core.blobs.s3.S3BlobStore`, ``s3://bucket/prefix``). The
protocol follows S3's vocabulary (keys, prefixes, delimiters, start-after cursors, exclusive-end
ranges mapped to ``Range: bytes=start-(end-1)``) so that the S3 store is a thin adapter.

Code that needs the bytes as a local file (DuckDB reading CSV or Parquet) uses
:func:`local_file`, which hands out the blob's own file on a local store and a temporary copy
otherwise.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from entrepot.core.blobs.base import (
    CHUNK_SIZE,
    MAX_KEY_BYTES,
    TEMP_PREFIX,
    BlobInfo,
    BlobPage,
    BlobStore,
    iter_chunks,
    validate_key,
    validate_prefix,
)
from entrepot.core.errors import InvalidInput, NotFound
from entrepot.syntax import BlobKeyError
from entrepot.syntax import parse_s3_url as split_s3_url

if TYPE_CHECKING:
    from entrepot.config import Settings


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
    try:
        return split_s3_url(url)
    except BlobKeyError as exc:
        raise InvalidInput(str(exc), code="blobs.invalidKey") from exc.__cause__
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


__all__ = [
    "CHUNK_SIZE",
    "MAX_KEY_BYTES",
    "TEMP_PREFIX",
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
