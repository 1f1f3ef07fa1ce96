"""Gzip bombs for tests, built in a fraction of a second and a few MB of memory.

A bomb is one gzip member whose deflate stream repeats one segment: a 1 MiB block compressed
once and ended with a full flush (which resets the compressor's history, so the next block
would compress to the very same bytes). 3 GiB of ``1\\tx\\n`` make a 3.1 MB bomb.
"""

from __future__ import annotations

import struct
import zlib

MiB = 1024 * 1024
GiB = 1024 * MiB
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # gzip, deflate, no name, no mtime, level 9, Unix
_FINAL_EMPTY_BLOCK = b"\x03\x00"  # a final, empty fixed-Huffman block


def gzip_bomb(inflated: int, pattern: bytes = b"1\tx\n", block: int = MiB) -> bytes:
    """A gzip member of ``pattern`` repeated: ``inflated`` bytes (rounded down to whole blocks of
    whole patterns, ~``block`` bytes each; exact for a pattern whose length divides ``block``)."""
    data = pattern * (block // len(pattern))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)  # raw deflate
    segment = compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)
    count = inflated // len(data)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(data, crc)
    trailer = struct.pack("<II", crc, (count * len(data)) & 0xFFFFFFFF)
    return _HEADER + segment * count + _FINAL_EMPTY_BLOCK + trailer


def chunked(data: bytes, size: int = MiB) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]
