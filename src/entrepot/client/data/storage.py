"""One object space seen through a ``DataClient``: ``Storage`` (what it lists: :mod:`.items`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal, Protocol, overload

from entrepot.client.data._jobs import BytesSource, Downloader, PathSource, Source, StreamSource, Uploader
from entrepot.client.data._transport import SpacesTransport
from entrepot.client.data.items import FolderListing, ObjectItem
from entrepot.client.data.paths import object_path, space_path
from entrepot.client.data.transfer import Callback, TransferHandler

UploadSource = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO


class StorageClient(Protocol):
    """What a ``Storage`` needs of the ``DataClient`` it came from (which imports this module)."""

    @property
    def project(self) -> str: ...

    @property
    def part_size(self) -> int: ...

    @property
    def multipart_threshold(self) -> int: ...

    @property
    def parallel_parts(self) -> int: ...

    @property
    def _http(self) -> SpacesTransport: ...

    def _start(
        self, handler: TransferHandler, job: Callable[[TransferHandler], Any], callback: Callback | None
    ) -> TransferHandler: ...


def _seconds(expires: int | float | timedelta) -> int:
    seconds = expires.total_seconds() if isinstance(expires, timedelta) else expires
    return int(seconds)


class Storage:
    """A storage space of the client's project; get one with ``DataClient.storage(name)``."""

    def __init__(self, client: StorageClient, name: str):
        self.client = client
        self.name = name
        self._path = space_path(client.project, name)

    def __repr__(self) -> str:
        return f"Storage({self.name!r}, project={self.client.project!r})"

    @staticmethod
    def _key(key: str) -> str:
        if not isinstance(key, str):
            raise TypeError(f"an object key is a string, not {type(key).__name__}")
        key = key.lstrip("/")
        if not key:
            raise ValueError("an object key must not be empty")
        return key

    # -- the space ---------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """The space's details: name, project, description, public, createdAt, expiresAt, readOnly."""
        detail: dict[str, Any] = self.client._http.json("GET", self._path)
        return detail

    # -- transfers ---------------------------------------------------------------------------
    def upload(
        self,
        source: UploadSource,
        destination: str,
        length: int | None = None,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        part_size: int | None = None,
        multipart_threshold: int | None = None,
        resume: bool = True,
        callback: Callback | None = None,
    ) -> TransferHandler:
        """Upload a local file (path), bytes or a seekable binary file object to the key ``destination``.

        Returns a running :class:`TransferHandler` at once. ``destination`` ending in '/' gets the
        file's name appended. ``length`` limits a file object to that many bytes from its
        position. ``content_type`` defaults to a guess from the key; ``metadata`` is stored
        with the object (names: letters, digits, '-', '_'; values: printable ASCII).
        ``part_size`` and ``multipart_threshold`` override the client's; with ``resume`` a
        multipart upload continues an interrupted one of the same key. ``callback`` is
        registered before the transfer starts.
        """
        src: Source
        if isinstance(source, (bytes, bytearray, memoryview)):
            src = BytesSource(source if length is None else memoryview(source)[:length])
        elif isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.exists():
                raise FileNotFoundError(f"no such file: {path}")
            if not path.is_file():
                raise IsADirectoryError(f"not a file: {path} (upload the files of a folder one by one)")
            src = PathSource(path)
            if destination.endswith("/"):
                destination += path.name
        elif hasattr(source, "read") and hasattr(source, "seek"):
            src = StreamSource(source, length)
        else:
            raise TypeError(
                f"upload() takes a file path, bytes or a seekable binary file object, not {type(source).__name__}"
            )
        key = self._key(destination)
        cfg = self.client
        job = Uploader(
            cfg._http,
            self._path,
            src,
            key,
            content_type=content_type,
            metadata=dict(metadata or {}),
            part_size=part_size or cfg.part_size,
            threshold=cfg.multipart_threshold if multipart_threshold is None else multipart_threshold,
            parallel=cfg.parallel_parts,
            resume=resume,
        )
        return self.client._start(TransferHandler("upload", self.name, key, total=src.size), job, callback)

    def download(
        self,
        source: str,
        destination: str | os.PathLike[str] | IO[bytes] | None = None,
        force: bool = False,
        *,
        callback: Callback | None = None,
    ) -> TransferHandler:
        """Download the object ``source`` to a file, a binary file object, or memory (``destination=None``).

        Returns a running :class:`TransferHandler` at once; for a download to memory its
        ``data`` holds the bytes once finished. A destination folder gets the key's last
        segment as file name. An existing file is only replaced with ``force=True``; the bytes
        go to a temporary file next to it that replaces it at the end, so an interrupted
        download never leaves a partial file.
        """
        key = self._key(source)
        dest: Path | IO[bytes] | None
        if destination is None:
            dest = None
        elif isinstance(destination, (str, os.PathLike)):
            dest = Path(destination)
            if dest.is_dir():
                dest = dest / key.rsplit("/", 1)[-1]
            if dest.exists() and not force:
                raise FileExistsError(f"{dest} exists; pass force=True to replace it")
            if not dest.parent.is_dir():
                raise FileNotFoundError(f"the folder {dest.parent} does not exist")
        elif hasattr(destination, "write"):
            dest = destination
        else:
            raise TypeError(
                f"download() writes to a path or a binary file object, not {type(destination).__name__}"
            )
        job = Downloader(self.client._http, self._path, key, dest)
        return self.client._start(TransferHandler("download", self.name, key), job, callback)

    # -- listing -----------------------------------------------------------------------------
    def iter_objects(self, prefix: str = "", *, page_size: int = 1000) -> Iterator[ObjectItem]:
        """Every object whose key starts with ``prefix``, in key order, fetched page by page."""
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"prefix": prefix.lstrip("/"), "limit": page_size}
            if cursor:
                params["cursor"] = cursor
            page = self.client._http.json("GET", f"{self._path}/objects", params=params)
            for body in page.get("objects") or []:
                yield ObjectItem.from_json(body)
            cursor = page.get("nextCursor")
            if not cursor:
                return

    @overload
    def list_objects(self, prefix: str = "", items: Literal[False] = False) -> list[str]: ...

    @overload
    def list_objects(self, prefix: str = "", items: Literal[True] = ...) -> list[ObjectItem]: ...

    def list_objects(self, prefix: str = "", items: bool = False) -> list[str] | list[ObjectItem]:
        """The objects whose key starts with ``prefix`` (all levels, no folder entries), in key order.

        ``items=False`` gives their keys; ``items=True`` gives :class:`ObjectItem` objects with
        size, ETag, SHA-256, content type, modification time and metadata. ``"my_dir/"`` lists
        everything under the folder ``my_dir``. For one level with its sub-folders, use
        :meth:`list_folder`.
        """
        found = self.iter_objects(prefix)
        if items:
            return list(found)
        return [item.key for item in found]

    def list_folder(self, prefix: str = "") -> FolderListing:
        """One level below ``prefix`` (as given: pass ``"my_dir/"`` for the folder ``my_dir``).

        ``folders`` are the distinct next-level prefixes (each ending in '/'), ``objects`` the
        objects directly at this level.
        """
        folders: list[str] = []
        objects: list[ObjectItem] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"prefix": prefix.lstrip("/"), "delimiter": "/", "limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = self.client._http.json("GET", f"{self._path}/objects", params=params)
            folders.extend(page.get("prefixes") or [])
            objects.extend(ObjectItem.from_json(body) for body in page.get("objects") or [])
            cursor = page.get("nextCursor")
            if not cursor:
                return FolderListing(prefix, folders, objects)

    # -- single objects ----------------------------------------------------------------------
    def head(self, key: str) -> ObjectItem:
        """The object's size, ETag, content type, modification time and metadata (``NotFound`` if none)."""
        key = self._key(key)
        response = self.client._http.request("HEAD", object_path(self._path, key))
        return ObjectItem.from_headers(key, response.headers)

    def exists(self, key: str) -> bool:
        """Whether the object exists."""
        from entrepot.client.errors import NotFound

        try:
            self.head(key)
        except NotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        """Delete the object (``NotFound`` if there is none)."""
        self.client._http.request("DELETE", object_path(self._path, self._key(key)))

    def copy(
        self,
        source: str,
        destination: str,
        *,
        source_space: str | None = None,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectItem:
        """Copy an object on the server to ``destination`` in this space.

        ``source_space`` (default: this one) may be any space of the project the token can
        read; ``metadata`` and ``content_type`` replace the source's when given.
        """
        body: dict[str, Any] = {"source": {"key": self._key(source)}, "key": self._key(destination)}
        if source_space:
            body["source"]["space"] = source_space
        if metadata is not None:
            body["metadata"] = metadata
        if content_type:
            body["contentType"] = content_type
        return ObjectItem.from_json(self.client._http.json("POST", f"{self._path}/copy", json=body))

    def presign(self, key: str, method: str = "GET", expires: int | float | timedelta = 3600) -> str:
        """A URL that lets anyone do ``method`` (GET, HEAD, PUT, DELETE) on ``key`` for ``expires`` seconds.

        ``method="LIST"`` signs a listing of the objects under the prefix ``key`` (may be "").
        The URL needs no token; it stops working when it expires or the signing token is
        revoked or loses the permission.
        """
        method = method.upper()
        body: dict[str, Any] = {"method": method, "expiresIn": _seconds(expires)}
        if method == "LIST":
            body["prefix"] = key.lstrip("/")
        else:
            body["key"] = self._key(key)
        answer = self.client._http.json("POST", f"{self._path}/presign", json=body)
        return str(answer["url"])
