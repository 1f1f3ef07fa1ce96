"""A streaming decoder of S3's ``aws-chunked`` body encoding, in bounded memory.

Input: the request body after HTTP/1.1 de-chunking (uvicorn does that), in pieces of any size
(the two framings' boundaries do not line up). Output: the payload, as it arrives; never a whole
chunk is buffered, only a chunk header line (≤ 4 KiB) or the trailer section (≤ 16 KiB).

Grammar (S3 API reference, "Signature Calculations for the Authorization Header: Transferring
Payload in Multiple Chunks")::

    <hex size>[;chunk-signature=<64 hex>]\\r\\n<data>\\r\\n     repeated
    0[;chunk-signature=<64 hex>]\\r\\n                        the final chunk
    [<trailer name>:<value>\\r\\n ...]                        trailers (x-amz-trailer)
    [x-amz-trailer-signature:<64 hex>\\r\\n]                   signed trailers only
    \\r\\n

Signed streams (``STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]``): each chunk's signature chains
from the previous one (the seed is the request's signature) and is checked when the chunk ends,
the final empty chunk included; every chunk but the last carries at least 8 KiB. Unsigned
streams must carry no signatures. The decoder checks the framing, the signatures, the decoded
length and that the announced trailers (and only those) arrived; verifying a checksum trailer's
value is the caller's job (:mod:`.bodies`).

A chunk's bytes are handed on before its signature is checked: the caller stores them in a temp
blob that only becomes visible after the last byte, and an error removes it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from entrepot.faces.s3.errors import S3Error, s3_error
from entrepot.faces.s3.sigv4 import ChunkSigner

MAX_LINE = 4096  # a chunk header: hex size + ";chunk-signature=" + 64 hex
MAX_TRAILER = 16 * 1024
MAX_CHUNK = 64 * 1024 * 1024  # absurd chunk sizes are refused (S3 documents no cap)
MIN_SIGNED_CHUNK = 8192
_HEX = frozenset(b"0123456789abcdefABCDEF")
_SIG_PREFIX = b"chunk-signature="


class AwsChunkedDecoder:
    """Push pieces of an aws-chunked body with :meth:`feed`; call :meth:`finish` at its end."""

    def __init__(
        self,
        decoded_length: int | None,
        trailer_names: tuple[str, ...] = (),
        signer: ChunkSigner | None = None,
    ):
        self.decoded_length = decoded_length  # x-amz-decoded-content-length
        self.trailer_names = trailer_names  # x-amz-trailer, lowercased
        self.signer = signer
        self.size = 0  # payload bytes decoded so far
        self.trailers: dict[str, str] = {}
        self._buf = bytearray()
        self._state = "header"  # header | data | data_crlf | trailer | done
        self._left = 0  # bytes of the current chunk still to come
        self._chunk_sig = ""
        self._chunk_hash: Any = None
        self._prev_sig = signer.seed if signer is not None else ""
        self._last_len = -1
        self._trailer_raw = b""

    def feed(self, piece: bytes) -> list[bytes]:
        """Decode a piece of the body; returns the payload bytes it completed (possibly none)."""
        out: list[bytes] = []
        view = memoryview(piece)
        pos = 0
        while pos < len(view):
            if self._state == "data":
                take = min(self._left, len(view) - pos)
                data = piece if take == len(piece) else view[pos : pos + take].tobytes()
                self._consume(data)
                out.append(data)
                pos += take
                self._left -= take
                if self._left == 0:
                    self._state = "data_crlf"
                continue
            if self._state == "done":
                if bytes(view[pos:]).strip(b"\r\n"):
                    raise s3_error("IncompleteBody", "bytes follow the end of the aws-chunked body")
                return out
            limit = MAX_TRAILER if self._state == "trailer" else MAX_LINE
            nl = bytes(view[pos : pos + limit + 1]).find(b"\n")
            if nl < 0:
                self._buf += view[pos:]
                if len(self._buf) > limit:
                    raise s3_error("IncompleteBody", "an aws-chunked line is too long")
                return out
            line = bytes(self._buf) + bytes(view[pos : pos + nl + 1])
            self._buf.clear()
            if len(line) > limit + 2:
                raise s3_error("IncompleteBody", "an aws-chunked line is too long")
            pos += nl + 1
            self._line(line)
        return out

    def _consume(self, data: bytes) -> None:
        if self._chunk_hash is not None:
            self._chunk_hash.update(data)
        self.size += len(data)
        if self.decoded_length is not None and self.size > self.decoded_length:
            raise s3_error(
                "IncompleteBody", "the body holds more bytes than x-amz-decoded-content-length says"
            )

    def _line(self, line: bytes) -> None:
        if self._state == "data_crlf":
            if line not in (b"\r\n", b"\n"):
                raise s3_error("IncompleteBody", "aws-chunked chunk data is not followed by CRLF")
            self._end_chunk()
            self._state = "header"
            return
        if self._state == "trailer":
            self._trailer_line(line)
            return
        text = line.rstrip(b"\r\n")
        size_hex, _, ext = text.partition(b";")
        if not size_hex or len(size_hex) > 16 or any(c not in _HEX for c in size_hex):
            raise s3_error("IncompleteBody", f"bad aws-chunked chunk size line {text[:40]!r}")
        size = int(size_hex, 16)
        if size > MAX_CHUNK:
            raise s3_error("InvalidRequest", f"an aws-chunked chunk is larger than {MAX_CHUNK} bytes")
        if self.signer is not None:
            if not ext.startswith(_SIG_PREFIX) or len(ext) != len(_SIG_PREFIX) + 64:
                raise s3_error(
                    "SignatureDoesNotMatch", "a chunk of a signed aws-chunked body lacks its chunk-signature"
                )
            if size > 0 and 0 <= self._last_len < MIN_SIGNED_CHUNK:
                raise s3_error(
                    "InvalidChunkSizeError", "only the last chunk of a signed body may be smaller than 8 KiB"
                )
            self._chunk_sig = ext[len(_SIG_PREFIX) :].decode("ascii", "replace")
            self._chunk_hash = hashlib.sha256()
        elif ext:
            raise s3_error("IncompleteBody", "an unsigned aws-chunked body carries a chunk extension")
        self._last_len = size
        if size == 0:
            self._end_chunk()  # the final chunk's signature covers the empty payload
            self._state = "trailer"
            return
        self._left = size
        self._state = "data"

    def _end_chunk(self) -> None:
        if self.signer is None:
            return
        want = self.signer.chunk(self._prev_sig, self._chunk_hash.hexdigest())
        if not hmac.compare_digest(want, self._chunk_sig):
            raise s3_error(
                "SignatureDoesNotMatch", "a chunk signature of the aws-chunked body does not match"
            )
        self._prev_sig = want
        self._chunk_hash = None

    def _trailer_line(self, line: bytes) -> None:
        text = line.rstrip(b"\r\n")
        if text == b"":
            self._finish_trailer()
            self._state = "done"
            return
        name, sep, value = text.partition(b":")
        if not sep:
            raise s3_error("MalformedTrailerError", f"malformed aws-chunked trailer line {text[:60]!r}")
        lname = name.strip().lower().decode("latin-1")
        if lname == "x-amz-trailer-signature":
            if self.signer is None:
                raise s3_error("MalformedTrailerError", "a trailer signature on an unsigned aws-chunked body")
            want = self.signer.trailer(self._prev_sig, self._trailer_raw)
            if not hmac.compare_digest(want, value.strip().decode("latin-1")):
                raise s3_error(
                    "SignatureDoesNotMatch", "the trailer signature of the aws-chunked body does not match"
                )
            self.trailers[lname] = "verified"
            return
        if lname in self.trailers:
            raise s3_error("MalformedTrailerError", f"the trailer {lname!r} appears twice")
        self._trailer_raw += name.strip() + b":" + value.strip() + b"\n"
        self.trailers[lname] = value.strip().decode("latin-1")

    def _finish_trailer(self) -> None:
        if self.signer is not None and self._trailer_raw and "x-amz-trailer-signature" not in self.trailers:
            raise s3_error("SignatureDoesNotMatch", "signed trailers need an x-amz-trailer-signature")
        for name in self.trailer_names:
            if name not in self.trailers:
                raise s3_error(
                    "IncompleteBody", f"the trailer {name!r} announced in x-amz-trailer is missing"
                )
        for name in self.trailers:
            if name not in self.trailer_names and name != "x-amz-trailer-signature":
                raise s3_error(
                    "MalformedTrailerError", f"the trailer {name!r} was not announced in x-amz-trailer"
                )

    def finish(self) -> dict[str, str]:
        """At the end of the body: check it was complete and as long as announced; the trailers."""
        if self._state != "done":
            # botocore ends with "0\r\n" + trailers + "\r\n"; some writers omit the last CRLF
            if self._state == "trailer" and not self._buf:
                self._finish_trailer()
                self._state = "done"
            else:
                raise s3_error("IncompleteBody", "the aws-chunked body ended early")
        if self.decoded_length is not None and self.size != self.decoded_length:
            raise s3_error(
                "IncompleteBody",
                f"the body decoded to {self.size} bytes; x-amz-decoded-content-length said {self.decoded_length}",
            )
        return self.trailers


def encode(
    data: bytes, chunk: int, signer: ChunkSigner | None = None, trailer: dict[str, str] | None = None
) -> bytes:
    """An aws-chunked body of ``data`` (tests: botocore does not write the signed form)."""
    out = bytearray()
    prev = signer.seed if signer is not None else ""
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] + [b""]
    for p in pieces:
        if signer is not None:
            prev = signer.chunk(prev, hashlib.sha256(p).hexdigest())
            out += f"{len(p):x};chunk-signature={prev}\r\n".encode()
        else:
            out += f"{len(p):x}\r\n".encode()
        if p:
            out += p + b"\r\n"
    if trailer:
        raw = b"".join(f"{k}:{v}\n".encode() for k, v in trailer.items())
        for k, v in trailer.items():
            out += f"{k}:{v}\r\n".encode()
        if signer is not None:
            out += f"x-amz-trailer-signature:{signer.trailer(prev, raw)}\r\n".encode()
    out += b"\r\n"
    return bytes(out)


__all__ = ["MIN_SIGNED_CHUNK", "AwsChunkedDecoder", "S3Error", "encode"]
