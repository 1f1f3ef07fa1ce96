"""Additional checksums of an object's bytes: CRC32, CRC32C, SHA-1 and SHA-256 (S3's ``x-amz-checksum-*``).

MD5 (the ETag) and SHA-256 of every object are computed by the blob store anyway; these are the
checksums a client may announce besides them. The S3 face verifies them while the body streams
(a header, or an aws-chunked trailer known only after the last byte) and the core stores the
verified value with the object or part, so reads can return it.

A value is the base64 of the big-endian digest (4 bytes for the CRCs), as S3 writes it. CRC64NVME
is known but not supported (no maintained C implementation outside the AWS CRT).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from dataclasses import dataclass
from typing import Protocol

import google_crc32c

from entrepot.core.errors import InvalidInput

ALGORITHMS = ("crc32", "crc32c", "sha1", "sha256")
KNOWN_UNSUPPORTED = ("crc64nvme",)
_DIGEST_SIZES = {"crc32": 4, "crc32c": 4, "sha1": 20, "sha256": 32}


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes, /) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


class _Crc32c:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes, /) -> None:
        self._value = int(google_crc32c.extend(self._value, data))

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


@dataclass(frozen=True)
class Checksum:
    """One checksum of some bytes: ``algorithm`` (lowercase, one of :data:`ALGORITHMS`) and its value."""

    algorithm: str
    value: str  # base64 of the big-endian digest

    def text(self) -> str:
        """How the catalog stores it: ``<algorithm>:<base64>``."""
        return f"{self.algorithm}:{self.value}"

    @classmethod
    def parse(cls, text: str | None) -> Checksum | None:
        if not text or ":" not in text:
            return None
        algorithm, _, value = text.partition(":")
        return cls(algorithm, value)


def check_algorithm(algorithm: str) -> str:
    """The algorithm's canonical (lowercase) name; ``InvalidInput`` when it is unknown or unsupported."""
    name = algorithm.strip().lower()
    if name in ALGORITHMS:
        return name
    if name in KNOWN_UNSUPPORTED:
        raise InvalidInput(
            f"checksum algorithm {algorithm.upper()} is not supported here; use CRC32, CRC32C, SHA1 or SHA256",
            code="objects.checksumUnsupported",
        )
    raise InvalidInput(
        f"unknown checksum algorithm {algorithm[:40]!r}; use CRC32, CRC32C, SHA1 or SHA256",
        code="objects.checksumUnsupported",
    )


def hasher(algorithm: str) -> Hasher:
    """A running hash of ``algorithm`` (checked with :func:`check_algorithm`)."""
    name = check_algorithm(algorithm)
    if name == "crc32":
        return _Crc32()
    if name == "crc32c":
        return _Crc32c()
    return hashlib.new(name)


def encode(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def checksum_of(algorithm: str, data: bytes) -> Checksum:
    """The checksum of ``data`` (small, in-memory bodies)."""
    h = hasher(algorithm)
    h.update(data)
    return Checksum(check_algorithm(algorithm), encode(h.digest()))


def check_value(algorithm: str, value: str) -> Checksum:
    """A checksum as a client announced it; ``InvalidInput`` unless it is base64 of the right length."""
    name = check_algorithm(algorithm)
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != _DIGEST_SIZES[name]:
        raise InvalidInput(
            f"the {name.upper()} checksum must be the base64 of its {_DIGEST_SIZES[name]}-byte digest",
            code="objects.invalidChecksum",
        )
    return Checksum(name, encode(raw))


__all__ = [
    "ALGORITHMS",
    "KNOWN_UNSUPPORTED",
    "Checksum",
    "Hasher",
    "check_algorithm",
    "check_value",
    "checksum_of",
    "encode",
    "hasher",
]
