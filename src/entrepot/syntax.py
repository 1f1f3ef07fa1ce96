"""Syntax of values both the settings and the core check: failpoint specs, blob keys, s3:// URLs.

A leaf: it imports nothing from entrepot, so ``config`` can check a setting when it loads
without importing the core. Each check raises ``ValueError`` saying what to fix; the core
turns that into its typed errors (``core/blobs``, ``core/failpoints``).
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlparse

MAX_KEY_BYTES = 1024
TEMP_PREFIX = ".entrepot-tmp-"  # in-flight writes; never a valid key segment, never listed

_ACTION = re.compile(r"pause\((\d+(?:\.\d+)?)\)")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_BUCKET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


class BlobKeyError(ValueError):
    """A blob key (or an s3:// URL's prefix) breaks the key rules."""


def parse_failpoints(spec: str) -> dict[str, float]:
    """``"a=pause(1),b=pause(2.5)"`` → ``{"a": 1.0, "b": 2.5}``; ValueError on anything else."""
    points: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, action = item.partition("=")
        match = _ACTION.fullmatch(action.strip())
        if not sep or not name.strip() or match is None:
            raise ValueError(f"failpoint {item!r}: expected name=pause(seconds)")
        points[name.strip()] = float(match.group(1))
    return points


def check_blob_key(key: str) -> str:
    """Check a blob key and return it; raise ``BlobKeyError`` saying what is wrong.

    A key is ``/``-separated segments: no empty segment (no leading or trailing ``/``, no ``//``),
    no ``.`` or ``..``, no backslash, no control character, at most 1024 bytes in UTF-8.
    """
    if not isinstance(key, str) or key == "":
        raise BlobKeyError("a blob key must be a non-empty string")
    if len(key.encode("utf-8", errors="surrogatepass")) > MAX_KEY_BYTES:
        raise BlobKeyError(f"blob key is longer than {MAX_KEY_BYTES} bytes")
    if _CONTROL_RE.search(key):
        raise BlobKeyError("blob key contains a control character")
    if "\\" in key:
        raise BlobKeyError(f"blob key {key!r} contains a backslash; use '/'")
    if key.startswith("/"):
        raise BlobKeyError(f"blob key {key!r} must be relative, not start with '/'")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BlobKeyError("blob key is not valid UTF-8") from exc
    for segment in key.split("/"):
        if segment == "":
            raise BlobKeyError(f"blob key {key!r} has an empty segment ('//' or a trailing '/')")
        if segment in (".", ".."):
            raise BlobKeyError(f"blob key {key!r} may not contain '.' or '..' segments")
        if segment.startswith(TEMP_PREFIX):
            raise BlobKeyError(f"blob key segments may not start with {TEMP_PREFIX!r}")
    return key


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` as ``("bucket", "some/prefix")``; the prefix may be empty.

    ``ValueError`` for a URL that is not one; ``BlobKeyError`` (a ValueError) for a bad prefix.
    """
    parsed = urlparse(url)
    if parsed.scheme != "s3":
        raise ValueError(f"{url!r} is not an s3:// URL")
    bucket = parsed.netloc
    if not _BUCKET_RE.fullmatch(bucket):
        raise ValueError(
            f"s3 blob URL {url!r} must name a bucket: s3://bucket or s3://bucket/prefix "
            "(endpoint and credentials are separate settings)"
        )
    if parsed.query or parsed.fragment:
        raise ValueError(f"s3 blob URL {url!r} may not have a query or fragment")
    prefix = unquote(parsed.path).strip("/")
    if prefix:
        check_blob_key(prefix)
    return bucket, prefix
