"""Storage files (``/v2/storage/files``): upload, download, list, detail, delete, tags.

Uploads prepare a file record, then stream the bytes in 1 MiB chunks to the signed
``uploadParams.url`` the server hands out; downloads stream the detail's signed ``url``.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from entrepot.client._http import Transport, local_target

FileDict = dict[str, Any]
ProgressCallback = Callable[[int, "int | None"], None]
Source = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]
CHUNK_SIZE = 1024 * 1024


class Files:
    """Files of the caller's project, as Keboola File objects."""

    def __init__(self, http: Transport):
        self._http = http

    def upload(
        self,
        source: Source,
        *,
        name: str | None = None,
        tags: Iterable[str] = (),
        is_permanent: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> FileDict:
        """Upload a path, bytes or binary file object; return the uploaded File object.

        ``name`` defaults to the path's basename (required for bytes and file objects without a
        ``name``). ``on_progress(bytes_sent, total)`` is called after every chunk; ``total`` is None
        when the size of a file object cannot be known in advance. Uploads are not retried.
        """
        with _open_source(source) as (stream, default_name, total):
            file_name = name or default_name
            if not file_name:
                raise ValueError("name=... is required when uploading bytes or an unnamed file object")
            body: dict[str, Any] = {
                "name": file_name,
                "tags": list(tags),
                "isPermanent": is_permanent,
                "isEncrypted": True,
            }
            if total is not None:
                body["sizeBytes"] = total
            prepared: FileDict = self._http.json("POST", "/v2/storage/files/prepare", json=body)
            url = prepared["uploadParams"]["url"]
            headers = {"Content-Type": "application/octet-stream"}
            if total is not None:
                headers["Content-Length"] = str(total)
            content = _chunks(stream, total, on_progress)
            with self._http.stream("PUT", url, content=content, headers=headers) as response:
                response.read()
                uploaded: FileDict = response.json()
        return uploaded

    def download(
        self,
        file_id: int | str,
        dest: str | os.PathLike[str] | IO[bytes],
        on_progress: ProgressCallback | None = None,
    ) -> Path | None:
        """Download a file's bytes into ``dest``: a path (a directory, or a path ending in ``/`` that is
        made if missing, gets the file's name) or a binary file object.

        Returns the path written, or None for a file object. ``on_progress(bytes_received, total)``
        is called after every chunk. A path is written to ``<path>.part`` and renamed when complete.
        """
        detail = self.get(file_id)
        if hasattr(dest, "write"):
            self._fetch(detail["url"], dest, on_progress)  # type: ignore[arg-type]
            return None
        path = local_target(dest, Path(detail["name"]).name)
        part = path.with_name(path.name + ".part")
        try:
            with open(part, "wb") as out:
                self._fetch(detail["url"], out, on_progress)
            os.replace(part, path)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return path

    def _fetch(self, url: str, out: IO[bytes], on_progress: ProgressCallback | None) -> None:
        with self._http.stream("GET", url) as response:
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            for chunk in response.iter_bytes(CHUNK_SIZE):
                out.write(chunk)
                received += len(chunk)
                if on_progress is not None:
                    on_progress(received, total)

    def get(self, file_id: int | str) -> FileDict:
        """One file's details, including a fresh signed download ``url``."""
        file: FileDict = self._http.json("GET", f"/v2/storage/files/{file_id}")
        return file

    def list(
        self,
        tags: Iterable[str] | None = None,
        limit: int = 100,
        offset: int = 0,
        q: str | None = None,
        show_expired: bool = False,
    ) -> list[FileDict]:
        """Files visible to the token, newest first; ``tags`` matches files with any of them."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if tags:
            params["tags[]"] = list(tags)
        if q:
            params["q"] = q
        if show_expired:
            params["showExpired"] = "1"
        files: list[FileDict] = self._http.json("GET", "/v2/storage/files", params=params)
        return files

    def delete(self, file_id: int | str) -> None:
        """Delete a file; its detail answers 404 afterwards."""
        self._http.request("DELETE", f"/v2/storage/files/{file_id}")

    def tag(self, file_id: int | str, tag: str) -> None:
        """Add a tag to a file."""
        self._http.request("POST", f"/v2/storage/files/{file_id}/tags", data={"tag": tag})

    def untag(self, file_id: int | str, tag: str) -> None:
        """Remove a tag from a file."""
        self._http.request("DELETE", f"/v2/storage/files/{file_id}/tags/{_quote(tag)}")


def _quote(value: str) -> str:
    return quote(value, safe="")


@contextlib.contextmanager
def _open_source(source: Source) -> Iterator[tuple[IO[bytes], str | None, int | None]]:
    """(stream, default name, size or None) of an upload source."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        yield io.BytesIO(data), None, len(data)
        return
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        with open(path, "rb") as f:
            yield f, path.name, os.fstat(f.fileno()).st_size
        return
    name = getattr(source, "name", None)
    default = Path(name).name if isinstance(name, str) and name and not name.startswith("<") else None
    yield source, default, _remaining(source)


def _remaining(stream: IO[bytes]) -> int | None:
    try:
        pos = stream.tell()
        end = stream.seek(0, os.SEEK_END)
        stream.seek(pos)
        return end - pos
    except (AttributeError, OSError, ValueError):
        return None


def _chunks(stream: IO[bytes], total: int | None, on_progress: ProgressCallback | None) -> Iterator[bytes]:
    sent = 0
    while chunk := stream.read(CHUNK_SIZE):
        yield chunk
        sent += len(chunk)
        if on_progress is not None:
            on_progress(sent, total)
