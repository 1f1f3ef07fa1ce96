"""The S3 blob store: blobs as objects under ``s3://bucket/prefix`` on any S3-compatible service.

AWS S3, MinIO, Ceph RGW, Garage and the like, through boto3. Keys are validated exactly as on
the local store and stored as ``<prefix>/<key>``.

* ``put`` buffers at most one part: a stream that fits in one part (8 MiB) is one
  ``PutObject``; a longer one is a multipart upload, aborted on any exception (a source that
  breaks, a client that disconnects), so a failed put leaves no object. Parts grow (doubling
  every 2,000 parts) so that the 10,000-part limit allows objects of about 480 GiB while the
  buffer stays at most 128 MiB.
* ``copy`` is server-side (``CopyObject``; a multipart copy above 5 GiB).
* ``delete`` answers whether the object existed with a ``HeadObject`` first (S3's delete does
  not say).

Unlike the local store, S3 lets ``a`` and ``a/b`` both be blobs; the local store refuses the
second with ``Conflict``. Callers never rely on either.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import functools
import hashlib
import io
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

import boto3
import botocore.config
from botocore.exceptions import BotoCoreError, ClientError

from entrepot.core.blobs.base import (
    MAX_KEY_BYTES,
    BlobInfo,
    BlobPage,
    validate_key,
    validate_prefix,
)
from entrepot.core.blobs.digests import Digests
from entrepot.core.errors import EntrepotError, InvalidInput, NotFound, PayloadTooLarge, Unavailable

MiB = 1024 * 1024
GiB = 1024 * MiB

PART_SIZE = 8 * MiB  # put: the buffer, and the size of every part but the last
PART_GROWTH_EVERY = 2000  # put: parts double in size after this many
MIN_PART_SIZE = 5 * MiB  # S3: every part but the last has at least this
MAX_PART_SIZE = 5 * GiB  # S3: the largest part, and the largest single CopyObject
MAX_PARTS = 10_000
DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys

_MISSING_KEY_CODES = {"404", "NoSuchKey", "NotFound"}
_MISSING_BUCKET_CODES = {"NoSuchBucket"}
_BAD_REQUEST_CODES = {"KeyTooLongError", "InvalidArgument"}


_session_lock = threading.Lock()


@functools.cache
def _session() -> boto3.session.Session:
    """One boto3 session per process: it loads the service models once for every client."""
    return boto3.session.Session()


def _client_config(addressing_style: str) -> botocore.config.Config:
    options: dict[str, Any] = {
        "s3": {"addressing_style": addressing_style},
        "signature_version": "s3v4",
        "retries": {"max_attempts": 5, "mode": "standard"},
        "connect_timeout": 10,
        "read_timeout": 120,
        "max_pool_connections": 32,
    }
    # botocore >= 1.36 adds CRC checksums to every upload by default, which MinIO before 2025,
    # Ceph and other S3-compatible services may refuse: only send checksums an operation needs
    # (every put sends Content-MD5 instead, which all of them check).
    with_checksums = {
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
    }
    try:
        return botocore.config.Config(**options, **with_checksums)
    except TypeError:  # an older botocore: no such options, and no default checksums either
        return botocore.config.Config(**options)


class S3BlobStore:
    """Blobs as objects in ``bucket`` under ``prefix`` (joined with ``/``)."""

    part_size = PART_SIZE
    max_copy_size = MAX_PART_SIZE  # larger copies are multipart copies of copy_part_size parts
    copy_part_size = 1 * GiB

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        addressing_style: Literal["path", "virtual", "auto"] = "path",
    ):
        if not bucket:
            raise InvalidInput("an S3 blob store needs a bucket name")
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self._base = f"{prefix}/" if prefix else ""
        with _session_lock:  # a session is not thread-safe; its clients are
            self.client = _session().client(
                "s3",
                endpoint_url=endpoint_url or None,
                region_name=region or None,
                aws_access_key_id=access_key_id or None,
                aws_secret_access_key=secret_access_key or None,
                config=_client_config(addressing_style),
            )

    def __repr__(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"S3BlobStore('s3://{self.bucket}/{self.prefix}'{where})"

    # -- keys -----------------------------------------------------------------------------
    def _key(self, key: str) -> str:
        full = self._base + validate_key(key)
        if len(full.encode("utf-8")) > MAX_KEY_BYTES:
            raise InvalidInput(
                f"blob key {key!r} is too long: with the store's prefix it is over {MAX_KEY_BYTES} bytes",
                code="blobs.invalidKey",
            )
        return full

    def _strip(self, full: str) -> str:
        return full[len(self._base) :]

    def path(self, key: str) -> Path | None:
        """Always None: the bytes are remote (use :func:`entrepot.core.blobs.local_file`)."""
        validate_key(key)
        return None

    # -- writes ---------------------------------------------------------------------------
    def put(self, key: str, chunks: Iterable[bytes] | BinaryIO) -> BlobInfo:
        full = self._key(key)
        source: Iterable[bytes] = _read_chunks(chunks) if hasattr(chunks, "read") else chunks
        digests = Digests()
        buffer = bytearray()
        upload_id: str | None = None
        parts: builtins.list[dict[str, Any]] = []
        try:
            for chunk in source:
                if not chunk:
                    continue
                digests.update(chunk)
                buffer += chunk
                while len(buffer) >= (n := self._part_size(len(parts) + 1)):
                    if len(parts) + 1 >= MAX_PARTS:  # the last part must take the rest
                        raise PayloadTooLarge(
                            f"blob {key!r} is larger than one S3 upload of {MAX_PARTS} parts can hold",
                            code="blobs.tooLarge",
                        )
                    if upload_id is None:
                        upload_id = self._create_multipart(full, key)
                    with memoryview(buffer) as view:
                        part = bytes(view[:n])
                    del buffer[:n]
                    parts.append(self._upload_part(full, key, upload_id, len(parts) + 1, part))
            if upload_id is None:
                body = bytes(buffer)
                with self._errors(key):
                    self.client.put_object(Bucket=self.bucket, Key=full, Body=body, ContentMD5=_b64md5(body))
            else:
                if buffer:
                    parts.append(self._upload_part(full, key, upload_id, len(parts) + 1, bytes(buffer)))
                self._complete(full, key, upload_id, parts)
        except BaseException:  # GeneratorExit and client disconnects included
            digests.wait()
            if upload_id is not None:
                self._abort(full, upload_id)
            raise
        return BlobInfo(key, digests.size, digests.md5, digests.sha256, None)

    def _part_size(self, part_number: int) -> int:
        """Size of part ``part_number`` (1-based): doubles every PART_GROWTH_EVERY parts."""
        return min(MAX_PART_SIZE, self.part_size << ((part_number - 1) // PART_GROWTH_EVERY))

    def put_file(self, key: str, path: Path, *, move: bool = False, digests: bool = True) -> BlobInfo:
        # the upload reads every byte anyway: the digests come with it at no extra cost
        path = Path(path)
        if not path.is_file():
            raise InvalidInput(f"{path} is not a file")
        with open(path, "rb") as f:
            info = self.put(key, f)
        if move:
            path.unlink(missing_ok=True)
        return info

    def delete(self, key: str) -> bool:
        full = self._key(key)
        if self._head(full, key) is None:
            return False
        with self._errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=full)
        return True

    def delete_prefix(self, prefix: str) -> int:
        """Remove every blob under ``prefix/``; returns the number removed."""
        base = self._key(prefix.rstrip("/")) + "/"
        count = 0
        batch: builtins.list[dict[str, str]] = []
        for full in self._iter_keys(base):
            batch.append({"Key": full})
            if len(batch) == DELETE_BATCH:
                count += self._delete_batch(batch, prefix)
                batch = []
        if batch:
            count += self._delete_batch(batch, prefix)
        return count

    def _delete_batch(self, batch: builtins.list[dict[str, str]], prefix: str) -> int:
        with self._errors(prefix):
            response = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise Unavailable(
                f"S3 could not delete {len(errors)} blobs under {prefix!r}: "
                f"{first.get('Code')} {first.get('Message')} ({first.get('Key')})",
                code="blobs.unavailable",
            )
        return len(batch)

    def copy(self, src_key: str, dst_key: str) -> BlobInfo:
        """A server-side copy (CopyObject; a multipart copy above ``max_copy_size``)."""
        src, dst = self._key(src_key), self._key(dst_key)
        info = self._head(src, src_key)
        if info is None:
            raise NotFound(f"blob {src_key!r} does not exist", code="blobs.notFound")
        if src == dst:  # S3 refuses to copy an object onto itself unchanged
            return info
        if info.size <= self.max_copy_size:
            with self._errors(dst_key):
                response = self.client.copy_object(
                    Bucket=self.bucket,
                    Key=dst,
                    CopySource={"Bucket": self.bucket, "Key": src},
                    MetadataDirective="COPY",
                )
            modified = response.get("CopyObjectResult", {}).get("LastModified")
            return BlobInfo(dst_key, info.size, None, None, _utc(modified))
        self._multipart_copy(dst, dst_key, [(src, src_key, info.size)])
        return BlobInfo(dst_key, info.size, None, None, None)

    def _copy_ranges(self, size: int) -> builtins.list[tuple[int, int]]:
        """``[lo, hi)`` ranges of ``copy_part_size``; a short tail joins the range before it."""
        step = self.copy_part_size
        ranges = [(lo, min(lo + step, size)) for lo in range(0, size, step)]
        if len(ranges) > 1 and ranges[-1][1] - ranges[-1][0] < MIN_PART_SIZE:
            ranges[-2:] = [(ranges[-2][0], size)]
        return ranges

    def _multipart_copy(self, dst: str, dst_key: str, sources: builtins.list[tuple[str, str, int]]) -> None:
        """One multipart upload whose parts are server-side copies of ``sources`` (split when large)."""
        upload_id = self._create_multipart(dst, dst_key)
        parts: builtins.list[dict[str, Any]] = []
        try:
            for full, key, size in sources:
                ranges: builtins.list[str | None] = [None]
                if size > self.max_copy_size:
                    ranges = [f"bytes={lo}-{hi - 1}" for lo, hi in self._copy_ranges(size)]
                for byte_range in ranges:
                    number = len(parts) + 1
                    extra = {"CopySourceRange": byte_range} if byte_range else {}
                    with self._errors(key):
                        response = self.client.upload_part_copy(
                            Bucket=self.bucket,
                            Key=dst,
                            UploadId=upload_id,
                            PartNumber=number,
                            CopySource={"Bucket": self.bucket, "Key": full},
                            **extra,
                        )
                    parts.append({"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]})
            self._complete(dst, dst_key, upload_id, parts)
        except BaseException:
            self._abort(dst, upload_id)
            raise

    # -- multipart plumbing ------------------------------------------------------------------
    def _create_multipart(self, full: str, key: str) -> str:
        with self._errors(key):
            return str(self.client.create_multipart_upload(Bucket=self.bucket, Key=full)["UploadId"])

    def _upload_part(self, full: str, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        with self._errors(key):
            response = self.client.upload_part(
                Bucket=self.bucket,
                Key=full,
                UploadId=upload_id,
                PartNumber=number,
                Body=body,
                ContentMD5=_b64md5(body),
            )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def _complete(self, full: str, key: str, upload_id: str, parts: builtins.list[dict[str, Any]]) -> Any:
        with self._errors(key):
            return self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=full, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )

    def _abort(self, full: str, upload_id: str) -> None:
        """Best effort: a failed abort leaves parts that a bucket lifecycle rule should expire."""
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)

    # -- reads ----------------------------------------------------------------------------
    def open(self, key: str, start: int | None = None, end: int | None = None) -> BinaryIO:
        """The object's body as a stream (botocore's StreamingBody), ranged with ``Range``."""
        full = self._key(key)
        if start is None and end is None:
            return self._get(full, key, None)
        lo = start or 0
        if lo < 0 or (end is not None and end < lo):
            raise InvalidInput(f"invalid byte range {start}-{end} for blob {key!r}")
        if end == lo:  # an empty range: S3 has no way to ask for zero bytes
            info = self._head(full, key)
            if info is None:
                raise NotFound(f"blob {key!r} does not exist", code="blobs.notFound")
            if lo > info.size:
                raise InvalidInput(f"invalid byte range {start}-{end} for blob {key!r} of {info.size} bytes")
            return io.BytesIO(b"")
        byte_range = f"bytes={lo}-" if end is None else f"bytes={lo}-{end - 1}"
        try:
            return self._get(full, key, byte_range)
        except _RangeNotSatisfiable:
            info = self._head(full, key)
            if info is None:
                raise NotFound(f"blob {key!r} does not exist", code="blobs.notFound") from None
            if lo == info.size:  # reading from the very end (or an empty blob): nothing left
                return io.BytesIO(b"")
            raise InvalidInput(
                f"invalid byte range {start}-{end} for blob {key!r} of {info.size} bytes"
            ) from None

    def _get(self, full: str, key: str, byte_range: str | None) -> BinaryIO:
        extra = {"Range": byte_range} if byte_range else {}
        try:
            with self._errors(key):
                response = self.client.get_object(Bucket=self.bucket, Key=full, **extra)
        except InvalidInput as exc:
            if exc.code == "blobs.invalidRange":
                raise _RangeNotSatisfiable() from exc
            raise
        return response["Body"]  # type: ignore[no-any-return]

    def head(self, key: str) -> BlobInfo | None:
        return self._head(self._key(key), key)

    def _head(self, full: str, key: str) -> BlobInfo | None:
        try:
            with self._errors(key):
                response = self.client.head_object(Bucket=self.bucket, Key=full)
        except NotFound:
            return None
        return BlobInfo(key, int(response["ContentLength"]), None, None, _utc(response.get("LastModified")))

    def list(
        self, prefix: str = "", delimiter: str | None = None, cursor: str | None = None, limit: int = 1000
    ) -> BlobPage:
        validate_prefix(prefix)
        if limit < 1:
            raise InvalidInput("limit must be at least 1")
        if delimiter == "":
            delimiter = None
        blobs: builtins.list[BlobInfo] = []
        prefixes: builtins.list[str] = []
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self._base + prefix}
        if delimiter is not None:
            request["Delimiter"] = delimiter
        if cursor is not None:
            request["StartAfter"] = self._base + cursor
        skip_under = cursor if delimiter is not None and cursor and cursor.endswith(delimiter) else None
        while True:
            request["MaxKeys"] = min(1000, limit - len(blobs) - len(prefixes))
            with self._errors(prefix or "/"):
                response = self.client.list_objects_v2(**request)
            items: builtins.list[tuple[str, BlobInfo | None]] = []
            for obj in response.get("Contents") or []:
                key = self._strip(obj["Key"])
                if key.endswith("/") or (skip_under and key.startswith(skip_under)):
                    continue  # a console's "directory marker", or inside the cursor's prefix
                items.append(
                    (key, BlobInfo(key, int(obj["Size"]), None, None, _utc(obj.get("LastModified"))))
                )
            for common in response.get("CommonPrefixes") or []:
                key = self._strip(common["Prefix"])
                if skip_under and key.startswith(skip_under):
                    continue  # S3 rolls keys after a start-after prefix up into it again
                items.append((key, None))
            items.sort(key=lambda item: item[0].encode("utf-8"))
            for key, info in items:
                if info is None:
                    prefixes.append(key)
                else:
                    blobs.append(info)
            truncated = bool(response.get("IsTruncated"))
            if not truncated:
                return BlobPage(blobs, prefixes, None)
            if len(blobs) + len(prefixes) >= limit:
                last = max([b.key for b in blobs[-1:]] + prefixes[-1:], key=lambda k: k.encode("utf-8"))
                return BlobPage(blobs, prefixes, last)
            request.pop("StartAfter", None)
            request["ContinuationToken"] = response["NextContinuationToken"]

    def _iter_keys(self, full_prefix: str) -> Iterator[str]:
        """Every object key (with the store prefix) starting with ``full_prefix``."""
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors(self._strip(full_prefix)):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
                for obj in page.get("Contents") or []:
                    yield obj["Key"]

    # -- errors ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """Translate botocore failures into entrepot's error tree."""
        try:
            yield
        except ClientError as exc:
            raise self._translate(exc, key) from exc
        except BotoCoreError as exc:  # unreachable endpoint, timeouts, bad credentials config
            raise Unavailable(
                f"the S3 blob store {self!r} cannot be reached: {exc}", code="blobs.unavailable"
            ) from exc

    def _translate(self, exc: ClientError, key: str) -> EntrepotError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = error.get("Message") or str(exc)
        if code in _MISSING_BUCKET_CODES:
            return Unavailable(
                f"the S3 bucket {self.bucket!r} of the blob store does not exist{self._at()}",
                code="blobs.unavailable",
            )
        if code in _MISSING_KEY_CODES or status == 404:
            return NotFound(f"blob {key!r} does not exist", code="blobs.notFound")
        if code == "InvalidRange" or status == 416:
            return InvalidInput(f"invalid byte range for blob {key!r}", code="blobs.invalidRange")
        if code in _BAD_REQUEST_CODES:
            return InvalidInput(f"S3 refused blob {key!r}: {code}: {message}", code="blobs.invalidKey")
        return Unavailable(
            f"the S3 blob store failed on {key!r}{self._at()}: {code or status}: {message}",
            code="blobs.unavailable",
        )

    def _at(self) -> str:
        return f" at {self.endpoint_url}" if self.endpoint_url else ""


class _RangeNotSatisfiable(Exception):
    """A GetObject answered 416 (the range starts at or after the end)."""


def _read_chunks(f: Any, chunk_size: int = MiB) -> Iterator[bytes]:
    while chunk := f.read(chunk_size):
        yield chunk


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _b64md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode("ascii")


__all__ = ["S3BlobStore"]
