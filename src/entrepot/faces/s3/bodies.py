"""Request bodies: how one is framed and checked, decided from the head before a byte is read.

The framing follows the *signed* ``x-amz-content-sha256`` (never ``Content-Encoding`` alone):

========================================== ==================================================
``x-amz-content-sha256``                   body
========================================== ==================================================
64 hex digits                              the bytes; their SHA-256 is checked by the core
``UNSIGNED-PAYLOAD`` (and presigned URLs)  the bytes, unchecked
``STREAMING-UNSIGNED-PAYLOAD-TRAILER``     aws-chunked, a checksum in the trailer (boto3 over HTTPS)
``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``     aws-chunked with chunk signatures
``...-PAYLOAD-TRAILER``                    the same with a signed trailer
========================================== ==================================================

:func:`body_spec` refuses what is wrong with the head (no length, too large, a malformed
digest, an unsupported checksum) before the body is read, so the client is answered instead of
``100 Continue``. :func:`decoded` is the generator chain the core's blob store consumes in a
worker thread: aws-chunked decoding, the size cap, and the ``x-amz-checksum-*`` check; it
raises at the first problem, inside the store's ``put``, which then drops the temp blob. MD5
(``Content-MD5``), SHA-256 and the announced length are checked by the core, which computes them
anyway.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum

from entrepot.core.errors import InvalidInput
from entrepot.core.objects import checksums
from entrepot.core.objects.checksums import Checksum
from entrepot.faces.s3.auth import S3Caller
from entrepot.faces.s3.awschunked import AwsChunkedDecoder
from entrepot.faces.s3.errors import S3Error, s3_error
from entrepot.faces.s3.wire import S3Request

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
CHECKSUM_PREFIX = "x-amz-checksum-"
_NOT_CHECKSUMS = frozenset({"x-amz-checksum-mode", "x-amz-checksum-algorithm", "x-amz-checksum-type"})


class PayloadMode(Enum):
    SHA256 = "sha256"
    UNSIGNED = "UNSIGNED-PAYLOAD"
    CHUNKED_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    CHUNKED_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    CHUNKED_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"

    @property
    def chunked(self) -> bool:
        return self.value.startswith("STREAMING-")


SIGNED_CHUNKED = (PayloadMode.CHUNKED_SIGNED, PayloadMode.CHUNKED_SIGNED_TRAILER)


@dataclass(frozen=True)
class BodySpec:
    mode: PayloadMode
    declared_size: int | None  # the decoded size announced (x-amz-decoded-content-length or Content-Length)
    content_md5: str | None  # base64, as received (checked to be 16 bytes)
    sha256_hex: str | None  # the signed payload hash (hex mode)
    checksum: Checksum | None  # an x-amz-checksum-<alg> header
    trailer: str | None  # the checksum trailer's name (x-amz-checksum-<alg>)
    trailer_names: tuple[str, ...]
    limit: int

    @property
    def algorithm(self) -> str | None:
        if self.checksum is not None:
            return self.checksum.algorithm
        if self.trailer is not None:
            return self.trailer.removeprefix(CHECKSUM_PREFIX)
        return None


def payload_mode(caller: S3Caller) -> tuple[PayloadMode, str | None]:
    value = caller.signed.payload_hash if caller.signed is not None else "UNSIGNED-PAYLOAD"
    if _HEX64.match(value):
        return PayloadMode.SHA256, value.lower()
    for mode in PayloadMode:
        if mode is not PayloadMode.SHA256 and value == mode.value:
            return mode, None
    if value.startswith("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"):
        raise S3Error("NotImplemented", "Signature Version 4A streaming bodies are not supported", 501)
    raise s3_error(
        "InvalidArgument",
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-... value or the SHA-256 of the body",
    )


def _number(req: S3Request, name: str) -> int | None:
    value = req.header(name)
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 18:
        raise s3_error("InvalidArgument", f"{name} must be a number of bytes")
    return int(value)


def check_content_md5(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise s3_error(
            "InvalidDigest", "The Content-MD5 you specified was invalid: it must be the base64 of 16 bytes"
        )
    return value.strip()


def checksum_header(req: S3Request) -> Checksum | None:
    """The one ``x-amz-checksum-<alg>`` header of a request (None without one)."""
    found = [n for n in req.headers if n.startswith(CHECKSUM_PREFIX) and n not in _NOT_CHECKSUMS]
    if not found:
        return None
    if len(found) > 1:
        raise s3_error(
            "InvalidRequest", "Expecting a single x-amz-checksum- header; multiple checksums are not allowed"
        )
    name = found[0]
    try:
        return checksums.check_value(name.removeprefix(CHECKSUM_PREFIX), req.header(name) or "")
    except InvalidInput as exc:
        raise s3_error("InvalidRequest", exc.message) from None


def body_spec(req: S3Request, caller: S3Caller, limit: int) -> BodySpec:
    """What the body of a PutObject or UploadPart will be, and everything checkable before it is read."""
    mode, sha = payload_mode(caller)
    transfer_chunked = req.header("transfer-encoding") is not None
    length = _number(req, "content-length")
    if mode.chunked:
        declared = _number(req, "x-amz-decoded-content-length")
        if declared is None:
            raise S3Error(
                "MissingContentLength", "an aws-chunked body needs x-amz-decoded-content-length", 411
            )
    else:
        if length is None and not transfer_chunked:
            raise S3Error("MissingContentLength", "You must provide the Content-Length HTTP header.", 411)
        declared = length
    if declared is not None and declared > limit:
        raise s3_error(
            "EntityTooLarge",
            f"Your proposed upload ({declared} bytes) exceeds the maximum allowed size ({limit} bytes)",
            ProposedSize=str(declared),
            MaxSizeAllowed=str(limit),
        )
    md5 = check_content_md5(req.header("content-md5"))
    header = checksum_header(req)
    trailer_names = tuple(
        t.strip().lower() for t in (req.header("x-amz-trailer") or "").split(",") if t.strip()
    )
    trailer = None
    if trailer_names:
        if mode not in (PayloadMode.CHUNKED_UNSIGNED_TRAILER, PayloadMode.CHUNKED_SIGNED_TRAILER):
            raise s3_error(
                "InvalidRequest", "x-amz-trailer needs a STREAMING-...-TRAILER x-amz-content-sha256"
            )
        if len(trailer_names) > 1 or not trailer_names[0].startswith(CHECKSUM_PREFIX):
            raise s3_error("InvalidRequest", "the only trailer supported is one x-amz-checksum-<algorithm>")
        if header is not None:
            raise s3_error("InvalidRequest", "send a checksum either as a header or as a trailer, not both")
        trailer = trailer_names[0]
        try:
            checksums.check_algorithm(trailer.removeprefix(CHECKSUM_PREFIX))
        except InvalidInput as exc:
            raise s3_error("InvalidRequest", exc.message) from None
    spec = BodySpec(mode, declared, md5, sha, header, trailer, trailer_names, limit)
    sdk = req.header("x-amz-sdk-checksum-algorithm")
    if sdk and spec.algorithm is not None and sdk.strip().lower() != spec.algorithm:
        raise s3_error(
            "InvalidRequest",
            f"x-amz-sdk-checksum-algorithm says {sdk[:20]} but the checksum sent is {spec.algorithm.upper()}",
        )
    return spec


class Decoded:
    """The body as the core stores it, and the checksum it was verified against (after the last byte)."""

    def __init__(self, raw: Iterator[bytes], spec: BodySpec, caller: S3Caller):
        self._raw = raw
        self._spec = spec
        self._signer = caller.signer if spec.mode in SIGNED_CHUNKED else None
        self.checksum: Checksum | None = None

    def result(self) -> Checksum | None:
        """The verified checksum (None when none was sent); valid once the body was read."""
        return self.checksum

    def close(self) -> None:
        """Stop reading the request body (the store calls this when it gives up)."""
        close = getattr(self._raw, "close", None)
        if close is not None:
            close()

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._decode()
        finally:
            self.close()

    def _decode(self) -> Iterator[bytes]:
        spec = self._spec
        algorithm = spec.algorithm
        hasher = checksums.hasher(algorithm) if algorithm is not None else None
        size = 0
        decoder = None
        if spec.mode.chunked:
            if spec.mode in SIGNED_CHUNKED and self._signer is None:
                raise s3_error("InvalidRequest", "a signed aws-chunked body needs a header-signed request")
            decoder = AwsChunkedDecoder(spec.declared_size, spec.trailer_names, self._signer)
        for piece in self._raw:
            pieces = decoder.feed(piece) if decoder is not None else [piece]
            for out in pieces:
                if not out:
                    continue
                size += len(out)
                if size > spec.limit:
                    raise s3_error(
                        "EntityTooLarge",
                        f"the body is larger than the maximum allowed size ({spec.limit} bytes)",
                    )
                if hasher is not None:
                    hasher.update(out)
                yield out
        want: str | None = spec.checksum.value if spec.checksum is not None else None
        if decoder is not None:
            trailers = decoder.finish()
            if spec.trailer is not None:
                sent = trailers.get(spec.trailer, "")
                try:
                    want = checksums.check_value(spec.trailer.removeprefix(CHECKSUM_PREFIX), sent).value
                except InvalidInput as exc:
                    raise s3_error("InvalidRequest", exc.message) from None
        if hasher is not None and algorithm is not None:
            got = checksums.encode(hasher.digest())
            if got != want:
                raise s3_error(
                    "BadDigest",
                    f"The {algorithm.upper()} you specified did not match the calculated checksum.",
                )
            self.checksum = Checksum(algorithm, got)


def decoded(
    raw: Iterator[bytes], spec: BodySpec, caller: S3Caller
) -> tuple[Decoded, Callable[[], Checksum | None]]:
    body = Decoded(raw, spec, caller)
    return body, body.result
