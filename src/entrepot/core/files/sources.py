"""A file's stored bytes, read back: a local path or a stream for importers, a headed CSV for exports.

Export results are stored headerless (kbcstorage prepends the header itself); the signed
download serves them as one CSV with a header row, gunzipped on the fly when stored compressed.
Every inflation goes through :mod:`entrepot.core.inflate`, 1 MiB per step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from entrepot.core import inflate
from entrepot.core.blobs import CHUNK_SIZE, iter_chunks, local_file
from entrepot.core.catalog import File
from entrepot.core.errors import InvalidInput, NotFound, NotSupported
from entrepot.core.files.rows import of_project

if TYPE_CHECKING:
    from entrepot.core.services import Services

GZIP_MAGIC = inflate.GZIP_MAGIC


def require_bytes(file: File) -> None:
    """``InvalidInput`` before the upload, ``NotSupported`` for sliced files (no reader yet)."""
    if file.uploaded_at is None:
        raise InvalidInput(f"file {file.id} has not been uploaded yet", code="files.notUploaded")
    if file.is_sliced:
        raise NotSupported(f"file {file.id} is sliced; reading sliced files is not supported yet")


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes (whatever its name says)."""
    return inflate.starts_with_gzip_magic(path)


@contextlib.contextmanager
def open_local(services: Services, project_id: int, file_id: int) -> Iterator[Path]:
    """The bytes of an uploaded file as a local path, for importers (DuckDB reads it directly).

    Remote stores are streamed to a temp file that is removed on exit.
    """
    file = of_project(services, project_id, file_id)
    require_bytes(file)
    tmp_dir = services.settings.data_dir / "tmp"
    with contextlib.ExitStack() as stack:
        try:
            path = stack.enter_context(
                local_file(services.blobs, file.blob_key, tmp_dir=tmp_dir, suffix=f"-{file.name}")
            )
        except NotFound as exc:
            raise InvalidInput(f"file {file_id} has not been uploaded yet", code="files.notUploaded") from exc
        yield path


def open_stream(
    services: Services, project_id: int, file_id: int, *, start: int | None = None, end: int | None = None
) -> Iterator[bytes]:
    """The stored bytes of an uploaded file (or of ``[start, end)``) in 1 MiB chunks."""
    file = of_project(services, project_id, file_id)
    require_bytes(file)
    return iter_chunks(services.blobs.open(file.blob_key, start, end))


# -- export results: one CSV with a header ------------------------------------------------------


def csv_header(columns: Iterable[str]) -> bytes:
    """``"c1","c2"\\n`` with embedded quotes doubled."""
    return (",".join('"' + c.replace('"', '""') + '"' for c in columns) + "\n").encode("utf-8")


def served_export_size(services: Services, file: File) -> int | None:
    """Bytes :func:`csv_with_header` serves for an export stored uncompressed (header + stored CSV);
    None for a gzipped one, inflated on the fly to a size known only at the end."""
    info = services.blobs.head(file.blob_key)
    if info is None:
        return None
    if info.size >= len(GZIP_MAGIC):
        with contextlib.closing(services.blobs.open(file.blob_key, 0, len(GZIP_MAGIC))) as probe:
            if probe.read(len(GZIP_MAGIC)) == GZIP_MAGIC:
                return None
    return len(csv_header(file.columns or [])) + info.size


def csv_with_header(services: Services, file: File) -> Iterator[bytes]:
    """The header row, then the stored CSV (inflated when it is gzipped), 1 MiB at a time."""
    yield csv_header(file.columns or [])
    stream = services.blobs.open(file.blob_key)
    try:
        first = stream.read(CHUNK_SIZE)
        if not first.startswith(GZIP_MAGIC):
            if first:
                yield first
            while chunk := stream.read(CHUNK_SIZE):
                yield chunk
            return
        yield from _gunzip(first, stream)
    finally:
        stream.close()


def _gunzip(first: bytes, stream: BinaryIO) -> Iterator[bytes]:
    """Inflate (possibly concatenated) gzip members step by step (``core.inflate``, 1 MiB at a time).

    The file is an export this service wrote, so no size limit applies beyond the bounded steps.
    """

    def source() -> Iterator[bytes]:
        yield first
        while chunk := stream.read(CHUNK_SIZE):
            yield chunk

    yield from inflate.gunzip(source(), max_bytes=None, what="the stored export file", step=CHUNK_SIZE)
