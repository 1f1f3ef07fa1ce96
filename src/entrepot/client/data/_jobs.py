"""The work behind ``Storage.upload`` and ``Storage.download``, run in a handler's thread.

Uploads up to the multipart threshold are one PUT with ``Content-MD5`` and the SHA-256;
larger ones are multipart uploads whose parts go up in parallel, each checked by its MD5 and
retried on its own. Before creating a multipart upload, the uploader looks for one in
progress for the same key (same metadata and content type) and sends only the parts the
server does not already hold with the same size and MD5: an upload that was interrupted (a
crash, a lost connection, ``abort(keep_parts=True)``) resumes where it stopped.

Downloads stream into a temporary file next to the destination (renamed at the end) or into
memory; after a dropped connection they go on from the last byte received (``Range`` with
``If-Range``, so a changed object starts over).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import math
import os
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from entrepot.client.data._transport import RETRYABLE, SpacesTransport
from entrepot.client.data.items import ObjectItem
from entrepot.client.data.paths import object_path
from entrepot.client.data.transfer import TransferError, TransferHandler
from entrepot.client.errors import APIError, ConnectionFailed

MAX_PARTS = 10_000
MIN_CHUNK = 16 * 1024
MAX_CHUNK = 1024 * 1024


def chunk_size_for(total: int | None) -> int:
    """Bytes per read/write: small enough for a progress update at least every percent."""
    if not total:
        return 64 * 1024
    return max(MIN_CHUNK, min(MAX_CHUNK, total // 200))


def b64_md5(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def multipart_etag(part_md5s: list[str]) -> str:
    """The ETag the server gives a completed multipart upload: MD5 of the parts' MD5s, '-N'."""
    combined = hashlib.md5(b"".join(bytes.fromhex(m) for m in part_md5s), usedforsecurity=False)
    return f"{combined.hexdigest()}-{len(part_md5s)}"


# -- upload sources --------------------------------------------------------------------------
class Source:
    """Bytes to upload, readable again from any offset (for retries and parallel parts)."""

    size: int
    label: str

    def chunks(self, offset: int, length: int, chunk: int) -> Iterator[bytes]:
        raise NotImplementedError


class BytesSource(Source):
    def __init__(self, data: bytes | bytearray | memoryview):
        self._data = memoryview(data).cast("B")
        self.size = len(self._data)
        self.label = f"{self.size} bytes"

    def chunks(self, offset: int, length: int, chunk: int) -> Iterator[bytes]:
        end = offset + length
        for start in range(offset, end, chunk):
            yield bytes(self._data[start : min(start + chunk, end)])


class PathSource(Source):
    """A local file, opened anew by every reader (parts read in parallel)."""

    def __init__(self, path: Path):
        self.path = path
        self.size = path.stat().st_size
        self.label = str(path)

    def chunks(self, offset: int, length: int, chunk: int) -> Iterator[bytes]:
        with open(self.path, "rb") as f:
            f.seek(offset)
            remaining = length
            while remaining > 0:
                data = f.read(min(chunk, remaining))
                if not data:
                    raise TransferError(f"{self.path} became shorter while it was being uploaded")
                remaining -= len(data)
                yield data


class StreamSource(Source):
    """A seekable binary file object, from its current position; reads are serialised."""

    def __init__(self, stream: BinaryIO, length: int | None = None):
        self._stream = stream
        self._lock = threading.Lock()
        self._start = stream.tell()
        end = stream.seek(0, os.SEEK_END)
        stream.seek(self._start)
        available = end - self._start
        if length is not None and length > available:
            raise ValueError(f"length={length} but only {available} bytes are left in the file object")
        self.size = available if length is None else length
        name = getattr(stream, "name", None)
        self.label = name if isinstance(name, str) else "a file object"

    def chunks(self, offset: int, length: int, chunk: int) -> Iterator[bytes]:
        position = self._start + offset
        remaining = length
        while remaining > 0:
            with self._lock:
                self._stream.seek(position)
                data = self._stream.read(min(chunk, remaining))
            if not data:
                raise TransferError(f"{self.label} became shorter while it was being uploaded")
            position += len(data)
            remaining -= len(data)
            yield data


# -- upload ----------------------------------------------------------------------------------
class _Stopped(Exception):
    """Another part failed: this part stops too (internal)."""


class Uploader:
    def __init__(
        self,
        http: SpacesTransport,
        space: str,
        source: Source,
        key: str,
        *,
        content_type: str | None,
        metadata: dict[str, str],
        part_size: int,
        threshold: int,
        parallel: int,
        resume: bool,
    ):
        self.http = http
        self.space = space  # the space's path
        self.source = source
        self.key = key
        self.content_type = content_type
        self.metadata = {str(k).lower(): v for k, v in metadata.items()}
        self.part_size = part_size
        self.threshold = threshold
        self.parallel = max(1, parallel)
        self.resume = resume

    def __call__(self, handler: TransferHandler) -> ObjectItem:
        handler.set_total(self.source.size)
        if self.source.size <= self.threshold or self.source.size == 0:
            return self._single(handler)
        return self._multipart(handler)

    def _body(
        self, handler: TransferHandler, offset: int, length: int, halt: Callable[[], None]
    ) -> tuple[Callable[[], Iterator[bytes]], Callable[[], None]]:
        """A body factory for ``send_body``, and the take-back of a failed attempt's progress."""
        counted = [0]
        chunk = chunk_size_for(self.source.size)

        def body() -> Iterator[bytes]:
            counted[0] = 0
            for data in self.source.chunks(offset, length, chunk):
                halt()
                yield data
                counted[0] += len(data)
                handler.advance(len(data))

        def take_back() -> None:
            handler.advance(-counted[0])
            counted[0] = 0
            halt()

        return body, take_back

    def _digests(
        self, offset: int, length: int, halt: Callable[[], None], *, sha: bool
    ) -> tuple[str, str | None]:
        md5 = hashlib.md5(usedforsecurity=False)
        sha256 = hashlib.sha256() if sha else None
        for data in self.source.chunks(offset, length, MAX_CHUNK):
            halt()
            md5.update(data)
            if sha256 is not None:
                sha256.update(data)
        return md5.hexdigest(), sha256.hexdigest() if sha256 is not None else None

    def _single(self, handler: TransferHandler) -> ObjectItem:
        size = self.source.size
        md5, sha = self._digests(0, size, handler.check_abort, sha=True)
        headers = {
            "Content-Length": str(size),
            "Content-MD5": b64_md5(md5),
            "X-Entrepot-Content-SHA256": sha or "",
            **{f"X-Entrepot-Meta-{k}": v for k, v in self.metadata.items()},
        }
        if self.content_type:
            headers["Content-Type"] = self.content_type
        body, take_back = self._body(handler, 0, size, handler.check_abort)
        answer = self.http.send_body(
            "PUT", object_path(self.space, self.key), body, headers, sleep=handler.sleep, on_retry=take_back
        )
        item = ObjectItem.from_json(answer)
        if item.sha256 and item.sha256 != sha:
            raise TransferError(f"the server stored SHA-256 {item.sha256} for {self.key}, not {sha}")
        return item

    # multipart -----------------------------------------------------------------------------
    def _part_length(self, number: int, part_size: int) -> int:
        return min(part_size, self.source.size - (number - 1) * part_size)

    def _find_resumable(self) -> tuple[str, int, dict[int, dict[str, Any]]] | None:
        """(upload id, part size, parts) of the best upload in progress of this key, if any."""
        listed = self.http.json("GET", f"{self.space}/uploads", params={"key": self.key}) or {}
        candidates = [
            u
            for u in reversed(listed.get("uploads") or [])  # newest first
            if (u.get("metadata") or {}) == self.metadata
            and (self.content_type is None or u.get("contentType") == self.content_type)
        ][:5]
        best: tuple[int, tuple[str, int, dict[int, dict[str, Any]]]] | None = None
        for upload in candidates:
            detail = self.http.json("GET", f"{self.space}/uploads/{upload['uploadId']}") or {}
            parts = {int(p["partNumber"]): p for p in detail.get("parts") or []}
            if not parts:
                continue
            # the part size of that attempt: every part but the last has it
            part_size = max(int(p["size"]) for p in parts.values())
            if part_size <= 0 or math.ceil(self.source.size / part_size) > MAX_PARTS:
                continue
            count = math.ceil(self.source.size / part_size)
            score = sum(
                int(p["size"])
                for n, p in parts.items()
                if n <= count and int(p["size"]) == self._part_length(n, part_size)
            )
            if score and (best is None or score > best[0]):
                best = (score, (upload["uploadId"], part_size, parts))
        return best[1] if best else None

    def _multipart(self, handler: TransferHandler) -> ObjectItem:
        size = self.source.size
        part_size = max(self.part_size, math.ceil(size / MAX_PARTS))
        found = self._find_resumable() if self.resume else None
        if found is not None:
            upload_id, part_size, remote = found
        else:
            body: dict[str, Any] = {"key": self.key, "metadata": self.metadata}
            if self.content_type:
                body["contentType"] = self.content_type
            created = self.http.json("POST", f"{self.space}/uploads", json=body)
            upload_id, remote = created["uploadId"], {}
        try:
            md5s = self._send_parts(handler, upload_id, part_size, remote)
            handler.check_abort()
            return ObjectItem.from_json(self._complete(upload_id, md5s))
        except BaseException:
            if handler.aborted and not handler.keep_parts:
                with contextlib.suppress(APIError):  # else the maintenance sweep removes it later
                    self.http.request("DELETE", f"{self.space}/uploads/{upload_id}")
            raise

    def _send_parts(
        self, handler: TransferHandler, upload_id: str, part_size: int, remote: dict[int, dict[str, Any]]
    ) -> list[str]:
        count = math.ceil(self.source.size / part_size)
        todo = deque(range(1, count + 1))
        md5s: dict[int, str] = {}
        failures: list[BaseException] = []
        lock = threading.Lock()
        stop = threading.Event()

        def halt() -> None:
            handler.check_abort()
            if stop.is_set():
                raise _Stopped

        def work() -> None:
            while True:
                with lock:
                    if stop.is_set() or not todo:
                        return
                    number = todo.popleft()
                try:
                    md5s[number] = self._part(handler, upload_id, number, part_size, remote.get(number), halt)
                except BaseException as exc:
                    with lock:
                        failures.append(exc)
                        stop.set()
                    return

        threads = [
            threading.Thread(target=work, name="entrepot-part", daemon=False)
            for _ in range(min(self.parallel, count))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        real = [f for f in failures if not isinstance(f, _Stopped)]
        if real:
            raise real[0]
        return [md5s[n] for n in range(1, count + 1)]

    def _part(
        self,
        handler: TransferHandler,
        upload_id: str,
        number: int,
        part_size: int,
        remote: dict[str, Any] | None,
        halt: Callable[[], None],
    ) -> str:
        offset = (number - 1) * part_size
        length = self._part_length(number, part_size)
        md5, _ = self._digests(offset, length, halt, sha=False)
        if remote is not None and int(remote.get("size", -1)) == length and remote.get("etag") == md5:
            handler.advance(length, moved=False)  # the server has this part already
            return md5
        body, take_back = self._body(handler, offset, length, halt)
        headers = {"Content-Length": str(length), "Content-MD5": b64_md5(md5)}
        path = f"{self.space}/uploads/{upload_id}/parts/{number}"
        answer = self.http.send_body("PUT", path, body, headers, sleep=handler.sleep, on_retry=take_back)
        if (answer or {}).get("etag") != md5:
            raise TransferError(f"part {number} of {self.key}: the server kept ETag {answer!r}, not {md5}")
        return md5

    def _complete(self, upload_id: str, md5s: list[str]) -> dict[str, Any]:
        expected = multipart_etag(md5s)
        parts = [{"partNumber": n, "etag": m} for n, m in enumerate(md5s, start=1)]
        path = f"{self.space}/uploads/{upload_id}/complete"
        try:
            answer: dict[str, Any] = self.http.json("POST", path, json={"parts": parts})
        except RETRYABLE:
            # the answer may have been lost after the server completed the upload
            try:
                head = self.http.request("HEAD", object_path(self.space, self.key))
                item = ObjectItem.from_headers(self.key, head.headers)
            except APIError:
                item = None
            if item is None or item.etag != expected:
                raise
            return item.to_json()
        if answer.get("etag") != expected:
            raise TransferError(
                f"{self.key}: the server's ETag {answer.get('etag')} is not the expected {expected}"
            )
        return answer


# -- download --------------------------------------------------------------------------------
def parse_content_range(value: str | None) -> tuple[int, int | None]:
    """(first byte, full size or None) of ``bytes a-b/size``."""
    if not value or not value.startswith("bytes "):
        raise TransferError(f"the server answered a range request without a usable Content-Range ({value!r})")
    span, _, full = value[len("bytes ") :].partition("/")
    first = int(span.split("-", 1)[0])
    return first, (int(full) if full.isdigit() else None)


class Downloader:
    def __init__(self, http: SpacesTransport, space: str, key: str, destination: Path | IO[bytes] | None):
        self.http = http
        self.space = space  # the space's path
        self.key = key
        self.destination = destination

    def __call__(self, handler: TransferHandler) -> Path | bytes | IO[bytes]:
        dest = self.destination
        if dest is None:
            buffer = io.BytesIO()
            self._fetch(handler, buffer, restartable=True)
            return buffer.getvalue()
        if not isinstance(dest, Path):
            self._fetch(handler, dest, restartable=False)
            return dest
        fd, temp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                self._fetch(handler, out, restartable=True)
            os.replace(temp, dest)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return dest

    def _fetch(self, handler: TransferHandler, out: IO[bytes], *, restartable: bool) -> None:
        path = object_path(self.space, self.key)
        received = 0
        etag: str | None = None
        attempt = 0

        def restart(reason: str) -> None:
            nonlocal received
            if not restartable:
                raise TransferError(f"{self.key}: {reason}, and the destination cannot be rewound")
            out.seek(0)
            out.truncate()
            handler.advance(-received)
            received = 0

        while True:
            handler.check_abort()
            headers = {"Accept-Encoding": "identity"}
            if received:
                headers["Range"] = f"bytes={received}-"
                if etag:
                    headers["If-Range"] = etag
            progressed = False
            total: int | None = None
            try:
                with self.http.stream("GET", path, headers=headers) as response:
                    if response.status_code == 206:
                        first, total = parse_content_range(response.headers.get("content-range"))
                        if first != received:
                            raise TransferError(
                                f"{self.key}: asked for bytes from {received}, got from {first}"
                            )
                    else:
                        if received:
                            restart("the object changed while it was being downloaded")
                        length = response.headers.get("content-length")
                        total = int(length) if length and length.isdigit() else None
                    etag = response.headers.get("etag") or etag
                    handler.set_total(total)
                    for data in response.iter_bytes(chunk_size_for(total)):
                        handler.check_abort()
                        out.write(data)
                        received += len(data)
                        handler.advance(len(data))
                        progressed = True
                if total is not None and received < total:
                    raise ConnectionFailed(f"GET {path}: the answer ended after {received} of {total} bytes")
                return
            except RETRYABLE as exc:
                handler.check_abort()
                if progressed:
                    attempt = 0  # a flaky connection that makes progress may go on
                wait = self.http.retry_wait(exc, attempt)
                if wait is None:
                    raise
                handler.sleep(wait)
                attempt += 1
            except APIError as exc:
                if exc.status == 416 and received:  # the object shrank: start over
                    restart("the object changed while it was being downloaded")
                    continue
                raise
