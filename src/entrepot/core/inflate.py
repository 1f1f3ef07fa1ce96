"""Bounded gunzip: the one place where entrepot inflates gzip data that came from outside.

A gzip stream can expand about 1,000 times (3 MB of gzip make 3 GB of ``1\\tx\\n``), so no
inflate call may be unbounded: :func:`gunzip` calls ``decompressobj.decompress(data,
max_length)`` with at most ``step`` bytes of room (1 MiB), loops on ``unconsumed_tail`` and
on output that filled the room, and checks the running total against ``max_bytes`` before
it asks for more, never producing more than one byte past the limit. Each chunk it yields is
at most ``step`` bytes, so memory stays at one chunk whatever the ratio.

Concatenated members (``cat a.gz b.gz``) are one stream, as for ``gzip``/``zcat``; zero bytes
after a member are padding (tape archives), as in Python's ``gzip`` module. Errors are
:class:`~entrepot.core.errors.InvalidInput` (not gzip, corrupt, truncated) and
:class:`~entrepot.core.errors.PayloadTooLarge` (inflates past ``max_bytes``), with a message
that says what to fix; callers pass the words (``what``, ``fix``, the error code) and may
shape the too-large error themselves (``too_large``), e.g. to name their setting.

Used by COPY FROM with ``Content-Encoding: gzip`` (``core.sql.copy``), table imports from
gzipped CSV (``core.tables.load``) and gzipped export downloads (``core.files``). DuckDB
reads staged CSV with ``compression='none'`` (``core.engine.csv``), so it never inflates a
``.gz``/``.zst`` by file name behind these bounds (its own decompression streams with bounded
buffers, but no limit of ours would apply to its output).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from entrepot.core import errors as E

__all__ = ["GZIP_MAGIC", "STEP", "gunzip", "gunzip_file", "starts_with_gzip_magic"]

GZIP_MAGIC = b"\x1f\x8b"
STEP = 1024 * 1024  # most bytes one inflate call may produce, and the size of the chunks yielded
_READ_SIZE = 256 * 1024  # compressed bytes read at a time from a file
_FEED = 64 * 1024  # compressed bytes fed per inflate call: bounds the unconsumed_tail copied per step
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer, not raw deflate or zlib


def gunzip(
    chunks: Iterable[bytes],
    *,
    max_bytes: int | None,
    what: str = "the compressed data",
    fix: str = "send a complete gzip file, or the data uncompressed",
    code: str = "validation.invalidGzip",
    too_large: Callable[[int], E.EntrepotError] | None = None,
    step: int = STEP,
) -> Iterator[bytes]:
    """The inflated bytes of the gzip stream ``chunks``, in chunks of at most ``step`` bytes.

    Raises ``too_large(max_bytes)`` (by default a :class:`~entrepot.core.errors.PayloadTooLarge`
    naming the limit) as soon as the output would pass ``max_bytes`` (None: no limit), and an
    :class:`~entrepot.core.errors.InvalidInput` with ``code`` when the data is not gzip, is
    corrupt or ends inside a member. An empty input inflates to nothing.
    """
    if step < 1:
        raise ValueError("step must be positive")
    produced = 0
    members = 0  # gzip members finished so far
    decoder: zlib._Decompress | None = None  # None between members
    for chunk in chunks:
        for piece in _slices(chunk):
            data: bytes | memoryview = piece
            while data:
                if decoder is None:
                    if members:  # NUL padding after a member is allowed, as in Python's gzip module
                        data = bytes(data).lstrip(b"\x00")
                        if not data:
                            break
                    decoder = zlib.decompressobj(_GZIP_WBITS)
                while True:
                    room = step
                    if max_bytes is not None:  # one byte past the limit tells
                        room = min(step, max_bytes - produced + 1)
                    try:
                        out = decoder.decompress(data, room)
                    except zlib.error as exc:
                        where = f" after {members} complete gzip member(s)" if members else ""
                        raise E.InvalidInput(
                            f"{what} is not valid gzip data{where} ({exc}): {fix}", code=code
                        ) from exc
                    data = decoder.unconsumed_tail
                    if out:
                        produced += len(out)
                        if max_bytes is not None and produced > max_bytes:
                            raise _too_large(max_bytes, what, too_large)
                        yield out
                    if decoder.eof:
                        data = decoder.unused_data
                        decoder = None
                        members += 1
                        break
                    # more may be pending when the room filled up, even with all input consumed
                    if not data and len(out) < room:
                        break
    if decoder is not None:
        raise E.InvalidInput(
            f"{what} is truncated (it ends in the middle of a gzip member, after {produced} bytes "
            f"inflated): {fix}",
            code=code,
        )


def _slices(chunk: bytes) -> Iterator[memoryview]:
    view = memoryview(chunk)
    for start in range(0, len(view), _FEED):
        yield view[start : start + _FEED]


def _too_large(
    max_bytes: int, what: str, factory: Callable[[int], E.EntrepotError] | None
) -> E.EntrepotError:
    if factory is not None:
        return factory(max_bytes)
    return E.PayloadTooLarge(
        f"{what} is larger than {max_bytes} bytes once decompressed; send less data at a time",
        code="validation.tooLarge",
    )


def starts_with_gzip_magic(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes (whatever its name says)."""
    with path.open("rb") as f:
        return f.read(2) == GZIP_MAGIC


def gunzip_file(
    source: Path,
    target: Path,
    *,
    max_bytes: int | None,
    what: str = "the gzip file",
    fix: str = "upload a complete gzip file, or the file uncompressed",
    code: str = "validation.invalidGzip",
    too_large: Callable[[int], E.EntrepotError] | None = None,
) -> int:
    """Inflate the gzip file ``source`` into ``target`` (created or truncated); return its size.

    Same bounds and errors as :func:`gunzip`; on an error ``target`` is removed.
    """
    size = 0
    try:
        with source.open("rb") as src, target.open("wb") as dst:
            compressed = iter(lambda: src.read(_READ_SIZE), b"")
            for out in gunzip(
                compressed, max_bytes=max_bytes, what=what, fix=fix, code=code, too_large=too_large
            ):
                dst.write(out)
                size += len(out)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return size
