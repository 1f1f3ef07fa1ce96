"""Multipart objects stored as their parts: the segment rows and a reader that chains them.

Completing a multipart upload does not join its parts into one new blob (a second write of
every byte). The object row points at a *manifest* (the upload's blob folder) and has one
``object_segments`` row per part: ``seq``, the offset ``start`` of its bytes in the object, its
``size`` and its blob. A read of ``[lo, hi)`` looks up the overlapping segments (one indexed
query) and streams them one blob after the other; a copy links or copies each part; discarding
the version removes the folder.

A manifest names one version: replacing or deleting the object deletes its segment rows in the
same transaction, so a reader that looked the old version up finds no segments (or a missing
part blob) and reports the object as changed instead of mixing two versions.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO, cast

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from entrepot.core.blobs import CHUNK_SIZE, BlobStore
from entrepot.core.catalog import ObjectSegment
from entrepot.core.errors import NotFound


@dataclass(frozen=True)
class Segment:
    """One part of a stored object: the blob ``blob_key`` of ``size`` bytes."""

    blob_key: str
    size: int


@dataclass(frozen=True)
class Slice:
    """Bytes ``[lo, hi)`` of the blob ``blob_key`` (offsets within that blob)."""

    blob_key: str
    lo: int
    hi: int


def store(s: Session, space_id: int, manifest: str, segments: Sequence[Segment]) -> None:
    """Write the segment rows of a new version (inside the transaction that commits it)."""
    rows = []
    start = 0
    for seq, segment in enumerate(segments):
        rows.append(
            {
                "manifest": manifest,
                "seq": seq,
                "space_id": space_id,
                "start": start,
                "size": segment.size,
                "blob_key": segment.blob_key,
            }
        )
        start += segment.size
    for i in range(0, len(rows), 1000):  # bounded statements: 10,000 parts are 10 inserts
        s.execute(insert(ObjectSegment), rows[i : i + 1000])


def forget(s: Session, manifests: Sequence[str]) -> None:
    """Delete the segment rows of versions being replaced or deleted (in their transaction)."""
    for i in range(0, len(manifests), 500):
        s.execute(delete(ObjectSegment).where(ObjectSegment.manifest.in_(manifests[i : i + 500])))


def listed(s: Session, manifest: str) -> list[Segment]:
    """Every segment of a version, in order."""
    return [
        Segment(blob_key, size)
        for blob_key, size in s.execute(
            select(ObjectSegment.blob_key, ObjectSegment.size)
            .where(ObjectSegment.manifest == manifest)
            .order_by(ObjectSegment.seq)
        )
    ]


def slices(s: Session, manifest: str, lo: int, hi: int) -> list[Slice]:
    """The blob ranges that make up bytes ``[lo, hi)`` of a version, in order (empty: no such version)."""
    rows = s.execute(
        select(ObjectSegment.blob_key, ObjectSegment.start, ObjectSegment.size)
        .where(
            ObjectSegment.manifest == manifest,
            ObjectSegment.start < hi,
            ObjectSegment.start + ObjectSegment.size > lo,
        )
        .order_by(ObjectSegment.seq)
    )
    return [
        Slice(blob_key, max(lo, start) - start, min(hi, start + size) - start)
        for blob_key, start, size in rows
        if size > 0
    ]


class SegmentReader(io.RawIOBase):
    """A read-only stream over slices of several blobs, opening one blob at a time.

    A blob that vanished (the version was replaced while it was read) raises ``changed()`` from
    ``read``; the bytes delivered before are the old version's.
    """

    def __init__(self, blobs: BlobStore, parts: Sequence[Slice], changed: Callable[[], Exception]):
        super().__init__()
        self._blobs = blobs
        self._changed = changed
        self._parts = list(parts)
        self._next = 0
        self._current: BinaryIO | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer)
        while True:
            if self._current is None:
                if self._next >= len(self._parts):
                    return 0
                part = self._parts[self._next]
                self._next += 1
                try:
                    self._current = self._blobs.open(part.blob_key, part.lo, part.hi)
                except NotFound as exc:
                    raise self._changed() from exc
            data = self._current.read(len(view))  # stores' streams have read(); not all readinto()
            if data:
                view[: len(data)] = data
                return len(data)
            self._current.close()
            self._current = None

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
        super().close()


def reader(blobs: BlobStore, parts: Sequence[Slice], changed: Callable[[], Exception]) -> BinaryIO:
    """A buffered stream of ``parts`` (what ``open_version`` returns for a multipart object)."""
    return cast(BinaryIO, io.BufferedReader(SegmentReader(blobs, parts, changed), buffer_size=CHUNK_SIZE))


__all__ = ["Segment", "SegmentReader", "Slice", "forget", "listed", "reader", "slices", "store"]
