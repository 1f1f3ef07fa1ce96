"""HTTP semantics of object reads shared by the object faces (native spaces API, S3 gateway):
byte ranges (RFC 9110 §14), conditional requests (§13) and the streamed response."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import BinaryIO

from starlette.datastructures import Headers
from starlette.responses import Response, StreamingResponse

from entrepot.core.blobs import iter_chunks
from entrepot.core.errors import Conflict, EntrepotError
from entrepot.core.objects.objects import ObjectInfo

_RANGE_RE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")


class RangeNotSatisfiable(EntrepotError):
    """The requested byte range lies outside the object (416)."""

    default_code = "objects.rangeNotSatisfiable"
    status = 416
    headers: dict[str, str] | None = None


class PreconditionFailed(Conflict):
    """An If-Match / If-Unmodified-Since condition does not hold (412)."""

    default_code = "objects.preconditionFailed"
    status = 412


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # exclusive

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range a ``Range`` header asks for; None means the whole object.

    Several ranges, or a header that is not a byte range, are ignored (the whole object is
    sent), as RFC 9110 allows. A range that starts beyond the end raises 416.
    """
    if not header:
        return None
    m = _RANGE_RE.match(header.strip().replace(" ", ""))
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return None
    if first == "":  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return _unsatisfiable(header, size)
        return ByteRange(max(0, size - n), size)
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if last != "" and int(last) < start:
        return None  # invalid range: ignore
    if start >= size:
        _unsatisfiable(header, size)
    return ByteRange(start, end)


def _unsatisfiable(header: str, size: int) -> ByteRange:
    error = RangeNotSatisfiable(
        f"the range {header!r} starts beyond the end of the object ({size} bytes)", details={"size": size}
    )
    error.headers = {"Content-Range": f"bytes */{size}"}
    raise error


def quoted_etag(etag: str) -> str:
    return f'"{etag}"'


def _etag_matches(header: str, etag: str, *, strong: bool = False) -> bool:
    """Whether an If-Match / If-None-Match list names ``etag`` (weak comparison unless ``strong``)."""
    tags = [t.strip() for t in header.split(",")]
    if "*" in tags:
        return True
    if strong:
        return any(not t.startswith("W/") and t.strip('"') == etag for t in tags)
    return any(t.removeprefix("W/").strip('"') == etag for t in tags)


def _http_date(value: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment  # "-0000" means UTC


def not_modified(headers: Headers, info: ObjectInfo) -> bool:
    """Check the preconditions of a read: True means answer 304; a failed If-Match raises 412."""
    modified = info.modified_at.replace(microsecond=0)
    if_match = headers.get("if-match")
    if if_match is not None and not _etag_matches(if_match, info.etag, strong=True):
        raise PreconditionFailed(f"the object's ETag is {quoted_etag(info.etag)}, not {if_match}")
    if if_match is None and (since := headers.get("if-unmodified-since")):
        date = _http_date(since)
        if date is not None and modified > date:
            raise PreconditionFailed(f"the object changed after {since}")
    if (none_match := headers.get("if-none-match")) is not None:
        return _etag_matches(none_match, info.etag)
    if since := headers.get("if-modified-since"):
        date = _http_date(since)
        return date is not None and modified <= date
    return False


def object_headers(info: ObjectInfo, meta_prefix: str) -> dict[str, str]:
    headers = {
        "ETag": quoted_etag(info.etag),
        "Last-Modified": format_datetime(info.modified_at, usegmt=True),
        "Accept-Ranges": "bytes",
        "Content-Type": info.content_type,
        "X-Content-Type-Options": "nosniff",  # user-chosen types are never sniffed into HTML
    }
    for name, value in info.metadata.items():
        headers[f"{meta_prefix}{name}"] = value
    return headers


def object_response(
    info: ObjectInfo,
    request_headers: Headers,
    opener: Callable[[int | None, int | None], BinaryIO],
    *,
    meta_prefix: str,
    extra_headers: dict[str, str] | None = None,
    head: bool = False,
) -> Response:
    """The response to a GET or HEAD of an object: 200, 206 with a range, or 304."""
    headers = object_headers(info, meta_prefix) | (extra_headers or {})
    if not_modified(request_headers, info):
        headers.pop("Content-Type", None)
        return Response(status_code=304, headers=headers)
    if_range = request_headers.get("if-range")
    stale = if_range is not None and not (
        if_range.startswith('"') and _etag_matches(if_range, info.etag, strong=True)
    )
    # a stale If-Range (or a date, which we do not compare) means: send everything
    byte_range = None if stale else parse_range(request_headers.get("range"), info.size)
    status, length = 200, info.size
    if byte_range is not None:
        status, length = 206, byte_range.end - byte_range.start
        headers["Content-Range"] = byte_range.content_range(info.size)
    headers["Content-Length"] = str(length)
    if head:
        return Response(status_code=status, headers=headers)
    stream = opener(byte_range.start, byte_range.end) if byte_range else opener(None, None)
    return StreamingResponse(_chunks(stream), status_code=status, headers=headers)


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    return iter_chunks(stream)
