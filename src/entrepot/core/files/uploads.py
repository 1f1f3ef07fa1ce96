"""Bytes into files: an upload checked against the size it was prepared with, and finished local
files (export results, inline import data) recorded and moved into the blob store in one go.

A file's bytes land under ``projects/<project id>/files/<file id>/<name>``; landing sets
``size_bytes``, ``checksum`` (MD5 hex) and ``uploaded_at``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from entrepot.core.catalog import File
from entrepot.core.errors import InvalidInput, NotSupported
from entrepot.core.files.rows import expired, insert, is_expired, mark_uploaded, remove_row, safe_name
from entrepot.core.files.tags import clean_tags
from entrepot.core.objects.objects import digest_mismatch

if TYPE_CHECKING:
    from entrepot.core.services import Services


@dataclass(frozen=True)
class BodyCheck:
    """What a client announced about the bytes it sends (an S3 PutObject): their length, MD5 and
    SHA-256 (hex). They are checked while the bytes stream, so a mismatch fails the blob store's
    ``put`` and the file keeps what it had."""

    size: int | None = None
    md5: str | None = None
    sha256: str | None = None


def store(services: Services, file: File, chunks: Iterable[bytes], check: BodyCheck | None = None) -> File:
    """Write a prepared file's bytes; the first upload must carry exactly the prepared ``sizeBytes``.

    A re-upload replaces the bytes. Whatever fails (the size, a digest, the stream) leaves the
    file as it was: the blob store replaces the blob only once the last byte was checked.
    """
    if file.is_sliced:
        raise NotSupported(
            f"file {file.id} is sliced; entrepot stores no sliced files (slices plus a manifest). "
            "Prepare it with isSliced=0 and upload one file",
            code="files.slicedNotSupported",
        )
    if is_expired(file):
        raise expired(file.id)
    declared = file.size_bytes if file.uploaded_at is None else None
    if check is not None and check.size is not None and declared is not None and check.size != declared:
        raise InvalidInput(_size_message(file.id, declared, str(check.size)), code="files.sizeMismatch")
    stream = _checked_size(chunks, declared, file.id)
    if check is not None:
        stream = _checked_body(stream, check)
    info = services.blobs.put(file.blob_key, stream)
    return mark_uploaded(services, file.id, info.size, info.md5)


def create_from_path(
    services: Services,
    project_id: int,
    token_id: int | None,
    path: Path,
    *,
    name: str,
    tags: Iterable[str] = (),
    columns: list[str] | None = None,
    content_type: str | None = None,
    run_id: str | None = None,
) -> File:
    """Record a finished local file (an export result) and move it into the blob store, uploaded.

    ``columns`` is stored so that the signed download can prepend a CSV header (export files
    themselves are headerless).
    """
    file = insert(
        services,
        project_id,
        token_id,
        name=safe_name(name),
        size_bytes=None,
        tags=clean_tags(tags),
        is_public=False,
        is_permanent=False,
        is_encrypted=True,
        is_sliced=False,
        content_type=content_type,
        run_id=run_id,
        columns=[*columns] if columns is not None else None,
    )
    try:
        info = services.blobs.put_file(file.blob_key, Path(path), move=True)
    except BaseException:
        remove_row(services, file.id)
        raise
    return mark_uploaded(services, file.id, info.size, info.md5)


def _checked_size(chunks: Iterable[bytes], declared: int | None, file_id: int) -> Iterator[bytes]:
    """Pass chunks through; raise (so the blob store keeps nothing) when the total is not ``declared``."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if declared is not None and total > declared:
            raise InvalidInput(
                _size_message(file_id, declared, f"more than {declared}"), code="files.sizeMismatch"
            )
        yield chunk
    if declared is not None and total != declared:
        raise InvalidInput(_size_message(file_id, declared, str(total)), code="files.sizeMismatch")


def _checked_body(chunks: Iterable[bytes], check: BodyCheck) -> Iterator[bytes]:
    """Pass chunks through; after the last one raise (so the blob store keeps nothing) unless the
    bytes have the announced length, MD5 and SHA-256. Digests are computed only when announced."""
    md5 = hashlib.md5(usedforsecurity=False) if check.md5 is not None else None
    sha = hashlib.sha256() if check.sha256 is not None else None
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if check.size is not None and total > check.size:
            raise InvalidInput(
                f"the body is longer than the {check.size} bytes announced; nothing was stored",
                code="request.incomplete",
            )
        if md5 is not None:
            md5.update(chunk)
        if sha is not None:
            sha.update(chunk)
        yield chunk
    if check.size is not None and total != check.size:
        raise InvalidInput(
            f"the body has {total} bytes, not the {check.size} announced; nothing was stored",
            code="request.incomplete",
        )
    if md5 is not None and md5.hexdigest() != check.md5:
        raise digest_mismatch(
            f"the body's MD5 is {md5.hexdigest()}, not the Content-MD5 sent ({check.md5}); nothing was stored",
            "md5",
        )
    if sha is not None and sha.hexdigest() != check.sha256:
        raise digest_mismatch(
            f"the body's SHA-256 is {sha.hexdigest()}, not the checksum sent ({check.sha256}); nothing was stored",
            "sha256",
        )


def _size_message(file_id: int, declared: int, got: str) -> str:
    return (
        f"file {file_id} was prepared with sizeBytes={declared} but the upload carried {got} bytes; "
        "nothing was stored. Upload the whole file, or prepare it again with the right sizeBytes"
    )
