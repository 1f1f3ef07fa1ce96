"""Bytes into files: an upload checked against the size it was prepared with, and finished local
files (export results, inline import data) recorded and moved into the blob store in one go.

A file's bytes land under ``projects/<project id>/files/<file id>/<name>``; landing sets
``size_bytes``, ``checksum`` (MD5 hex) and ``uploaded_at``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from entrepot.core.catalog import File
from entrepot.core.errors import InvalidInput, NotSupported
from entrepot.core.files.rows import expired, insert, is_expired, mark_uploaded, remove_row, safe_name
from entrepot.core.files.tags import clean_tags

if TYPE_CHECKING:
    from entrepot.core.services import Services


def store(services: Services, file: File, chunks: Iterable[bytes]) -> File:
    """Write a prepared file's bytes; the first upload must carry exactly the prepared ``sizeBytes``."""
    if file.is_sliced:
        raise NotSupported(
            f"file {file.id} is sliced; uploading sliced files (slices plus a manifest) needs the S3 "
            "gateway, which is not there yet. Prepare it with isSliced=0 and upload one file",
            code="files.slicedNotSupported",
        )
    if is_expired(file):
        raise expired(file.id)
    declared = file.size_bytes if file.uploaded_at is None else None
    info = services.blobs.put(file.blob_key, _checked_size(chunks, declared, file.id))
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


def _size_message(file_id: int, declared: int, got: str) -> str:
    return (
        f"file {file_id} was prepared with sizeBytes={declared} but the upload carried {got} bytes; "
        "nothing was stored. Upload the whole file, or prepare it again with the right sizeBytes"
    )
