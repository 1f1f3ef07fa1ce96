"""HTTP semantics of byte downloads shared by the faces (spaces objects, Export API files, Keboola
files): byte ranges (RFC 9110 §14), conditional requests (§13), the streamed response, and the
headers that keep stored content from running in the browser (nosniff, CSP sandbox, active
types as attachments)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import BinaryIO, NoReturn, Protocol

from starlette.datastructures import Headers
from starlette.responses import Response, StreamingResponse

from entrepot.core.blobs import iter_chunks
from entrepot.core.errors import Kind
from entrepot.faces.errors import HTTPError

_RANGE_RE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$", re.IGNORECASE)
_BIG_DIGITS = 30  # a position with more digits than this lies beyond any object (and int() stays cheap)


class RangeNotSatisfiable(HTTPError):
    """The requested byte range lies outside the object (416)."""

    default_code = "objects.rangeNotSatisfiable"
    status = 416


class PreconditionFailed(HTTPError):
    """An If-Match / If-Unmodified-Since condition does not hold (412)."""

    default_code = "objects.preconditionFailed"
    kind = Kind.CONFLICT
    status = 412


class Representation(Protocol):
    """What a download's headers say of the bytes (an object's entry, an export's file)."""

    @property
    def size(self) -> int: ...

    @property
    def etag(self) -> str: ...

    @property
    def content_type(self) -> str: ...

    @property
    def modified_at(self) -> datetime: ...


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # exclusive

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{size}"


def _position(digits: str) -> int:
    """A byte position of a ``Range`` header; absurdly long ones count as "beyond every end"."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _BIG_DIGITS else 10**_BIG_DIGITS


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range a ``Range`` header asks for (RFC 9110 §14.1.2); None means the whole object.

    Several ranges, or a header that is not a valid byte range (``bytes=5-2``, ``items=0-1``),
    are ignored: the whole object is sent, as RFC 9110 allows. A last position at or beyond
    the end is clamped to the last byte; a first position at or beyond the end, or a suffix of
    zero bytes, cannot be satisfied (416 with ``Content-Range: bytes */<size>``).
    """
    if not header:
        return None
    m = _RANGE_RE.match(header.strip().replace(" ", ""))
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return None
    if first == "":  # suffix: the last N bytes (the whole object when it is shorter)
        n = _position(last)
        if n == 0 or size == 0:
            _unsatisfiable(
                header, size, "asks for no bytes" if n == 0 else "asks for bytes of an empty object"
            )
        return ByteRange(max(0, size - n), size)
    start = _position(first)
    if last != "" and _position(last) < start:
        return None  # invalid range: ignore
    if start >= size:
        _unsatisfiable(header, size, "starts beyond the end of the object")
    end = size if last == "" else min(_position(last) + 1, size)
    return ByteRange(start, end)


def _unsatisfiable(header: str, size: int, why: str) -> NoReturn:
    shown = header if len(header) <= 100 else header[:100] + "…"
    error = RangeNotSatisfiable(f"the range {shown!r} {why} ({size} bytes)", details={"size": size})
    error.headers = {"Content-Range": f"bytes */{size}"}
    raise error


# Types a browser runs (or renders as a document that can run script) when shown inline:
# HTML, XML of any kind (XHTML, SVG, XSLT, RSS, ...), script, plug-ins, multipart streams.
_ACTIVE_SUBTYPE_RE = re.compile(r"html|xml|xsl|script|shockwave|futuresplash")
_MEDIA_TYPE_RE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")


def is_active_content(content_type: str | None) -> bool:
    """Whether a browser could run content of ``content_type`` served inline (unknown types count)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if not _MEDIA_TYPE_RE.match(media):
        return True
    kind, subtype = media.split("/", 1)
    return kind == "multipart" or _ACTIVE_SUBTYPE_RE.search(subtype) is not None


def disposition_kind(content_type: str | None, *, inline: bool) -> str:
    """``inline`` only if asked for and the content is passive; active content is always an attachment."""
    return "inline" if inline and not is_active_content(content_type) else "attachment"


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


def not_modified(headers: Headers, info: Representation) -> bool:
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


# user-chosen types are never sniffed into HTML, and a document opened from an object runs
# in a sandbox (no script, a unique origin: it cannot act on this server with the user's session)
DOWNLOAD_SAFETY_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}


def object_headers(info: Representation, metadata: Mapping[str, str], meta_prefix: str) -> dict[str, str]:
    headers = {
        "ETag": quoted_etag(info.etag),
        "Last-Modified": format_datetime(info.modified_at, usegmt=True),
        "Accept-Ranges": "bytes",
        "Content-Type": info.content_type,
        **DOWNLOAD_SAFETY_HEADERS,
    }
    for name, value in metadata.items():
        headers[f"{meta_prefix}{name}"] = value
    return headers


def object_response(
    info: Representation,
    request_headers: Headers,
    opener: Callable[[int | None, int | None], BinaryIO],
    *,
    metadata: Mapping[str, str] | None = None,
    meta_prefix: str = "",
    extra_headers: dict[str, str] | None = None,
    head: bool = False,
) -> Response:
    """The response to a GET or HEAD of an object: 200, 206 with a range, or 304.

    ``metadata`` (user metadata) is sent as headers named ``meta_prefix`` + name.
    """
    headers = object_headers(info, metadata or {}, meta_prefix) | (extra_headers or {})
    if not_modified(request_headers, info):
        headers.pop("Content-Type", None)
        return Response(status_code=304, headers=headers)
    return ranged_response(info.size, request_headers, opener, headers=headers, etag=info.etag, head=head)


def ranged_response(
    size: int,
    request_headers: Headers,
    opener: Callable[[int | None, int | None], BinaryIO],
    *,
    headers: dict[str, str],
    etag: str | None = None,
    head: bool = False,
) -> Response:
    """200 with the ``size`` bytes ``opener`` gives, or 206 with the part a ``Range`` header asks for.

    ``If-Range`` must name ``etag`` exactly (a date, or any tag without ``etag``, means: send
    everything). Every byte download (objects, exports, Keboola files) answers through here, so
    there is one range parser.
    """
    headers = {**headers, "Accept-Ranges": "bytes"}
    if_range = request_headers.get("if-range")
    stale = if_range is not None and not (
        etag is not None and if_range.startswith('"') and _etag_matches(if_range, etag, strong=True)
    )
    byte_range = None if stale else parse_range(request_headers.get("range"), size)
    status, length = 200, size
    if byte_range is not None:
        status, length = 206, byte_range.end - byte_range.start
        headers["Content-Range"] = byte_range.content_range(size)
    headers["Content-Length"] = str(length)
    if head:
        return Response(status_code=status, headers=headers)
    stream = opener(byte_range.start, byte_range.end) if byte_range else opener(None, None)
    return StreamingResponse(_chunks(stream), status_code=status, headers=headers)


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    return iter_chunks(stream)
