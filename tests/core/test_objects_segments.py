"""Multipart objects are stored as their parts: reads, replaces, copies and deletes of such objects.

Run on every catalog (SQLite and PostgreSQL) through the ``catalog_url`` fixture.
"""

from __future__ import annotations

import os
import random

import pytest
from sqlalchemy import func, select

from entrepot.core.catalog import ObjectSegment
from entrepot.core.objects import multipart, objects, spaces
from entrepot.core.objects.objects import ObjectChanged
from entrepot.core.projects import create_project
from entrepot.core.services import Services

SIZES = [3000, 1, 4096, 2500]  # uneven parts, one of a single byte


@pytest.fixture
def space(services: Services) -> spaces.SpaceInfo:
    new = create_project(services.catalog, "parts")
    return spaces.get_space(services.catalog, new.project, "private")


def _upload(services: Services, space: spaces.SpaceInfo, key: str, bodies: list[bytes]) -> objects.ObjectInfo:
    up = multipart.create_upload(services, space, key)
    for n, body in enumerate(bodies, 1):
        multipart.put_part(services, space, up.id, n, [body])
    return multipart.complete_upload(services, space, up.id)


def _blobs(services: Services, prefix: str) -> list[str]:
    found, cursor = [], None
    while True:
        page = services.blobs.list(prefix, cursor=cursor)
        found += [b.key for b in page.blobs]
        cursor = page.next_cursor
        if cursor is None:
            return found


def _segment_rows(services: Services) -> int:
    with services.catalog.session(readonly=True) as s:
        return int(s.scalar(select(func.count()).select_from(ObjectSegment)) or 0)


def _read(
    services: Services, info: objects.ObjectInfo, lo: int | None = None, hi: int | None = None
) -> bytes:
    with objects.open_version(services, info, lo, hi) as stream:
        return stream.read()


def test_every_range_of_a_multipart_object_reads_the_right_bytes(services, space):
    bodies = [os.urandom(n) for n in SIZES]
    whole = b"".join(bodies)
    info = _upload(services, space, "a/parts.bin", bodies)
    assert info.segments == len(SIZES) and info.size == len(whole) and info.sha256 is None
    assert info.etag.endswith(f"-{len(SIZES)}")
    assert _read(services, info) == whole
    boundaries = [0, 3000, 3001, 7097, len(whole)]
    edges = sorted({max(0, min(len(whole), b + d)) for b in boundaries for d in (-1, 0, 1)})
    for lo in edges:
        for hi in edges:
            if lo <= hi:
                assert _read(services, info, lo, hi) == whole[lo:hi], (lo, hi)
    rng = random.Random(7)
    for _ in range(50):
        lo = rng.randrange(len(whole))
        hi = rng.randrange(lo, len(whole) + 1)
        assert _read(services, info, lo, hi) == whole[lo:hi]
    assert _read(services, info, 5, None) == whole[5:]


def test_completion_writes_no_copy_and_drops_only_the_parts_not_chosen(services, space):
    up = multipart.create_upload(services, space, "chosen.bin")
    bodies = {n: os.urandom(100 * n) for n in (1, 2, 3)}
    for n, body in bodies.items():
        multipart.put_part(services, space, up.id, n, [body])
    folder = f"spaces/{space.id}/uploads/{up.id}"
    parts_before = _blobs(services, folder)
    info = multipart.complete_upload(services, space, up.id, [(1, ""), (3, "")])
    # the chosen parts' blobs are the object's bytes: same keys, nothing under objects/
    assert sorted(_blobs(services, folder)) == sorted(k for k in parts_before if "/00002-" not in k)
    assert _blobs(services, f"spaces/{space.id}/objects") == []
    assert _read(services, info) == bodies[1] + bodies[3]


def test_replacing_a_multipart_object_removes_its_parts_and_stale_readers_see_a_change(services, space):
    info = _upload(services, space, "doc.bin", [b"a" * 10, b"b" * 10])
    folder = f"spaces/{space.id}/uploads"
    assert len(_blobs(services, folder)) == 2 and _segment_rows(services) == 2
    stale = info
    new = objects.put_object(services, space, "doc.bin", [b"plain"])
    assert new.segments == 0
    assert _blobs(services, folder) == [] and _segment_rows(services) == 0
    with pytest.raises(ObjectChanged):
        objects.open_version(services, stale)
    info2, stream = objects.open_object(services, space, "doc.bin")
    with stream:
        assert stream.read() == b"plain"
    # and the other way round: a plain object replaced by a multipart one
    third = _upload(services, space, "doc.bin", [b"c" * 3, b"d" * 4])
    assert _read(services, third) == b"ccc" + b"dddd"
    assert _blobs(services, f"spaces/{space.id}/objects") == []
    with pytest.raises(ObjectChanged):
        objects.open_version(services, info2)


def test_a_copy_of_a_multipart_object_outlives_its_source(services, space):
    bodies = [os.urandom(2000), os.urandom(1500)]
    src = _upload(services, space, "src.bin", bodies)
    copy = objects.copy_object(services, space, "src.bin", space, "dst.bin")
    assert copy.segments == 2 and copy.etag == src.etag and copy.size == src.size
    objects.delete_object(services, space, "src.bin")
    assert _blobs(services, f"spaces/{space.id}/uploads") == []
    assert _read(services, objects.head_object(services, space, "dst.bin")) == b"".join(bodies)
    assert _read(services, copy, 1999, 2001) == b"".join(bodies)[1999:2001]
    objects.delete_objects(services, space, ["dst.bin", "missing.bin"])
    assert _blobs(services, f"spaces/{space.id}") == [] and _segment_rows(services) == 0


def test_deleting_a_space_deletes_its_segment_rows(services, space):
    _upload(services, space, "x.bin", [b"1", b"2"])
    assert _segment_rows(services) == 2
    from entrepot.core.catalog import Space

    with services.catalog.session() as s:
        s.delete(s.get(Space, space.id))
    assert _segment_rows(services) == 0


def test_a_failed_completion_leaves_the_upload_and_its_parts(services, space):
    up = multipart.create_upload(services, space, "again.bin")
    multipart.put_part(services, space, up.id, 1, [b"one"])
    multipart.put_part(services, space, up.id, 2, [b"two"])
    with pytest.raises(Exception, match="ETag"):
        multipart.complete_upload(services, space, up.id, [(1, "0" * 32)])
    assert len(_blobs(services, f"spaces/{space.id}/uploads/{up.id}")) == 2
    info = multipart.complete_upload(services, space, up.id)
    assert _read(services, info) == b"onetwo"
