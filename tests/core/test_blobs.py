"""Blob stores: one backend-agnostic suite run on the local directory and on S3 (moto's server).

Then what only the local store has: the key→path mapping, temp files, hard-linked copies and
key conflicts. S3-only behaviour (multipart uploads, errors, settings) is in test_blobs_s3.py.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
from collections.abc import Iterator

import pytest

from entrepot.core.blobs import BlobStore, local_file, open_store, validate_key
from entrepot.core.blobs.local import LocalBlobStore
from entrepot.core.errors import Conflict, InvalidInput, NotFound

MiB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path) -> BlobStore:  # type: ignore[no-untyped-def]
    """Each backend-agnostic test runs on a local store and on an S3 store (fresh bucket, a prefix)."""
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    return request.getfixturevalue("s3_server").store(prefix="pre/fix")


@pytest.fixture
def local(tmp_path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def read(store: BlobStore, key: str, start: int | None = None, end: int | None = None) -> bytes:
    with store.open(key, start, end) as f:
        return f.read()


def pattern(size: int, seed: int = 0) -> bytes:
    """``size`` bytes that differ from position to position (so misplaced bytes show)."""
    block = hashlib.sha256(str(seed).encode()).digest() * 4096 + bytes(range(251))
    return (block * (size // len(block) + 1))[:size]


def in_chunks(data: bytes, size: int = MiB) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


class Disconnect(BaseException):
    """What a web server raises into a body iterator when the client goes away."""


# -- the protocol, on every backend ------------------------------------------------------------


def test_stores_implement_the_protocol(store):
    assert isinstance(store, BlobStore)


def test_put_streams_chunks_and_returns_size_and_checksums(store):
    info = store.put("a/b/c.txt", iter([b"hello ", b"", b"world"]))
    assert info.key == "a/b/c.txt" and info.size == 11
    assert info.md5 == "5eb63bbbe01eeed093cb22bb8f5acdc3"
    assert info.sha256 == "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    assert read(store, "a/b/c.txt") == b"hello world"


def test_put_accepts_a_binary_file_object(store):
    data = pattern(3 * MiB + 5)
    info = store.put("big", io.BytesIO(data))
    assert info.size == len(data) and info.sha256 == hashlib.sha256(data).hexdigest()
    assert read(store, "big") == data


def test_an_empty_blob(store):
    info = store.put("empty", [])
    assert info.size == 0 and info.md5 == hashlib.md5(b"").hexdigest()
    assert read(store, "empty") == b""
    assert read(store, "empty", 0) == b""
    assert store.head("empty").size == 0


def test_put_replaces_a_blob(store):
    store.put("k", [b"old bytes"])
    store.put("k", [b"new"])
    assert read(store, "k") == b"new" and store.head("k").size == 3


def test_large_streaming_put_in_one_mib_chunks(store):
    data = pattern(20 * MiB, seed=1)
    info = store.put("large/blob.bin", in_chunks(data))
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.md5 == hashlib.md5(data).hexdigest()
    digest = hashlib.sha256()
    with store.open("large/blob.bin") as f:
        while chunk := f.read(MiB):
            digest.update(chunk)
    assert digest.hexdigest() == info.sha256
    assert read(store, "large/blob.bin", 8 * MiB - 3, 8 * MiB + 5) == data[8 * MiB - 3 : 8 * MiB + 5]


def test_ranged_reads_return_the_requested_bytes(store):
    store.put("r", [b"0123456789"])
    assert read(store, "r", 2, 5) == b"234"
    assert read(store, "r", start=7) == b"789"
    assert read(store, "r", end=3) == b"012"
    assert read(store, "r", 8, 100) == b"89"
    assert read(store, "r", 0, 10) == b"0123456789"
    assert read(store, "r", 4, 4) == b""
    assert read(store, "r", start=10) == b""  # from the very end: nothing left


@pytest.mark.parametrize(("start", "end"), [(-1, None), (5, 3), (11, None), (11, 20)])
def test_invalid_ranges_are_refused(store, start, end):
    store.put("r", [b"0123456789"])
    with pytest.raises(InvalidInput):
        read(store, "r", start, end)


def test_head_reports_size_and_none_for_missing_blobs(store):
    store.put("h/x", [b"abc"])
    info = store.head("h/x")
    assert info is not None and info.key == "h/x" and info.size == 3 and info.modified is not None
    assert info.modified.utcoffset() is not None
    assert store.head("h/missing") is None
    assert store.head("h") is None  # a prefix is not a blob


def test_open_of_a_missing_blob_is_not_found(store):
    with pytest.raises(NotFound):
        store.open("nope")
    with pytest.raises(NotFound):
        store.open("nope", 1, 2)
    with pytest.raises(NotFound):
        store.open("nope", 0, 0)


def test_delete_says_whether_the_blob_existed(store):
    store.put("d/e/f", [b"1"])
    store.put("d/g", [b"2"])
    assert store.delete("d/e/f") is True
    assert store.delete("d/e/f") is False
    assert store.delete("d/e") is False  # a prefix is not a blob
    assert store.head("d/e/f") is None
    assert [b.key for b in store.list().blobs] == ["d/g"]


def test_put_file_copies_or_moves(store, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    info = store.put_file("copied", src)
    assert info.size == 7 and info.md5 == hashlib.md5(b"payload").hexdigest()
    assert src.exists()
    info = store.put_file("moved/one", src, move=True)
    assert info.size == 7 and info.sha256 == hashlib.sha256(b"payload").hexdigest()
    assert not src.exists()
    assert read(store, "moved/one") == b"payload" and read(store, "copied") == b"payload"
    with pytest.raises(InvalidInput):
        store.put_file("x", tmp_path / "missing")


def test_put_file_without_digests_still_stores_every_byte(store, tmp_path):
    src = tmp_path / "export.csv"
    payload = bytes(range(256)) * 5000
    src.write_bytes(payload)
    info = store.put_file("exports/1/export.csv", src, move=True, digests=False)
    assert info.size == len(payload) and not src.exists()
    assert read(store, "exports/1/export.csv") == payload
    assert store.head("exports/1/export.csv").size == len(payload)


def test_list_with_prefix_delimiter_and_cursor(store):
    for key in ["p/a/1", "p/a/2", "p/b", "p/c/3", "q/z"]:
        store.put(key, [key.encode()])
    page = store.list("p/")
    assert [b.key for b in page.blobs] == ["p/a/1", "p/a/2", "p/b", "p/c/3"]
    assert [b.size for b in page.blobs] == [5, 5, 3, 5]
    assert page.next_cursor is None and page.prefixes == []
    page = store.list("p/", delimiter="/")
    assert [b.key for b in page.blobs] == ["p/b"]
    assert page.prefixes == ["p/a/", "p/c/"]
    first = store.list("p/", limit=2)
    assert [b.key for b in first.blobs] == ["p/a/1", "p/a/2"] and first.next_cursor == "p/a/2"
    second = store.list("p/", cursor=first.next_cursor, limit=2)
    assert [b.key for b in second.blobs] == ["p/b", "p/c/3"]
    paged = store.list("p/", delimiter="/", limit=1)
    assert paged.prefixes == ["p/a/"] and paged.blobs == [] and paged.next_cursor == "p/a/"
    rest = store.list("p/", delimiter="/", cursor=paged.next_cursor)
    assert [b.key for b in rest.blobs] == ["p/b"] and rest.prefixes == ["p/c/"] and rest.next_cursor is None
    assert [b.key for b in store.list("p/a").blobs] == ["p/a/1", "p/a/2"]  # a partial segment
    assert store.list("p/a", delimiter="/").prefixes == ["p/a/"]
    assert store.list("none/").blobs == [] and store.list("none/").next_cursor is None
    top = store.list(delimiter="/")
    assert top.blobs == [] and top.prefixes == ["p/", "q/"]


def _walk(store: BlobStore, prefix: str, delimiter: str | None, limit: int) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    prefixes: list[str] = []
    cursor = None
    for _ in range(100):
        page = store.list(prefix, delimiter=delimiter, cursor=cursor, limit=limit)
        assert len(page.blobs) + len(page.prefixes) <= limit
        keys += [b.key for b in page.blobs]
        prefixes += page.prefixes
        if page.next_cursor is None:
            return keys, prefixes
        cursor = page.next_cursor
    raise AssertionError("the listing did not end")


@pytest.mark.parametrize("limit", [1, 3, 7, 1000])
def test_paging_through_a_listing_returns_everything_once_in_byte_order(store, limit):
    keys = sorted(
        [f"t/{i:02d}" for i in range(12)]
        + [f"t/d{i}/x" for i in range(4)]
        + ["t/d1/y", "t/é", "t/Z", "t/z/1", "u/other"],
        key=lambda k: k.encode(),
    )
    for key in keys:
        store.put(key, [b"."])
    under_t = [k for k in keys if k.startswith("t/")]
    assert _walk(store, "t/", None, limit) == (under_t, [])
    flat, common = _walk(store, "t/", "/", limit)
    assert flat == [k for k in under_t if "/" not in k[2:]]
    assert common == ["t/d0/", "t/d1/", "t/d2/", "t/d3/", "t/z/"]
    assert _walk(store, "", None, limit)[0] == keys


def test_list_refuses_bad_arguments(store):
    with pytest.raises(InvalidInput):
        store.list("../x")
    with pytest.raises(InvalidInput):
        store.list("p/", limit=0)


def test_delete_prefix_removes_a_whole_subtree(store):
    for key in ["x/1", "x/y/2", "x/y/z/3", "xy/4", "x2", "other/5"]:
        store.put(key, [b"."])
    assert store.delete_prefix("x/y") == 2
    assert [b.key for b in store.list().blobs] == ["other/5", "x/1", "x2", "xy/4"]
    assert store.delete_prefix("x/") == 1
    assert store.delete_prefix("x") == 0
    assert store.delete_prefix("missing") == 0
    assert [b.key for b in store.list().blobs] == ["other/5", "x2", "xy/4"]


def test_copy_makes_an_independent_blob(store):
    store.put("src/a", [b"original"])
    info = store.copy("src/a", "dst/b")
    assert info.key == "dst/b" and info.size == 8
    assert read(store, "dst/b") == b"original"
    store.put("src/a", [b"replaced"])  # a put after the copy does not change it
    assert read(store, "dst/b") == b"original"
    store.delete("src/a")
    assert read(store, "dst/b") == b"original"


def test_copy_replaces_the_destination_and_may_repeat(store):
    store.put("a", [b"aaa"])
    store.put("b", [b"bbbbbb"])
    assert store.copy("a", "b").size == 3
    assert store.copy("a", "b").size == 3
    assert store.copy("a", "a").size == 3  # onto itself: nothing changes
    assert read(store, "b") == b"aaa" and read(store, "a") == b"aaa"
    assert sorted(b.key for b in store.list().blobs) == ["a", "b"]


def test_copy_of_a_missing_blob_is_not_found(store):
    with pytest.raises(NotFound):
        store.copy("missing", "dst")
    assert store.head("dst") is None


@pytest.mark.parametrize("size", [10, 10 * MiB], ids=["small", "multipart"])
@pytest.mark.parametrize("error", [RuntimeError, Disconnect, GeneratorExit])
def test_a_failing_put_leaves_no_blob(store, size, error):
    def chunks():
        yield from in_chunks(pattern(size), 1024 * 1024 if size > MiB else 3)
        raise error("the source broke")

    with pytest.raises(error):
        store.put("atomic/blob", chunks())
    assert store.head("atomic/blob") is None
    assert store.list().blobs == []


def test_a_failing_overwrite_keeps_the_old_bytes(store):
    store.put("keep", [b"old"])

    def chunks():
        yield pattern(9 * MiB)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.put("keep", chunks())
    assert read(store, "keep") == b"old"
    assert [b.key for b in store.list().blobs] == ["keep"]


INVALID_KEYS = [
    "",
    "/abs",
    "/",
    "../x",
    "..",
    "a/../b",
    "a/..",
    ".",
    "./a",
    "a/./b",
    "a//b",
    "a/",
    "//a",
    "a\\b",
    "..\\x",
    "a\x00b",
    "\x00",
    "a\nb",
    "a\rb",
    "a\tb",
    "a\x1bb",
    "a\x7f",
    "x" * 1025,
    "é" * 513,  # 1,026 bytes in UTF-8
    "a/\ud800",  # a lone surrogate is not UTF-8
    ".entrepot-tmp-123",
    "a/.entrepot-tmp-x/b",
]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_are_refused_by_every_operation(store, key):
    with pytest.raises(InvalidInput):
        validate_key(key)
    store.put("ok", [b"x"])
    for call in (
        lambda: store.put(key, [b"x"]),
        lambda: store.open(key),
        lambda: store.head(key),
        lambda: store.delete(key),
        lambda: store.path(key),
        lambda: store.copy("ok", key),
        lambda: store.copy(key, "ok2"),
    ):
        with pytest.raises(InvalidInput):
            call()
    assert [b.key for b in store.list().blobs] == ["ok"]


VALID_KEYS = [
    "a",
    "a/b/c",
    "/".join(["x" * 199] * 5),  # 999 bytes: with the S3 store's prefix (pre/fix/) still under 1,024
    "/".join(["é" * 100] * 5),  # 1,004 bytes
    "x" * 255,  # the longest segment the local store can hold (a file name)
    "données/été.csv",
    "日本/表.csv",
    "a b/c+d=e&f%20",
    "..a/b..",
    "a/...",
    "a/.hidden",
    "~/x",
    "C:/x",
    "🙂",
]


@pytest.mark.parametrize("key", VALID_KEYS)
def test_valid_keys_round_trip(store, key):
    assert validate_key(key) == key
    store.put(key, [key.encode()])
    assert read(store, key) == key.encode()
    assert [b.key for b in store.list().blobs] == [key]
    assert store.delete(key) is True


def test_unicode_keys_list_in_byte_order(store):
    for key in ["données/été.csv", "données/eta.csv", "données/Z.csv", "données/ü"]:
        store.put(key, [b"1"])
    assert [b.key for b in store.list("données/").blobs] == [
        "données/Z.csv",
        "données/eta.csv",
        "données/été.csv",  # é is C3 A9, ü is C3 BC
        "données/ü",
    ]


def test_local_file_yields_the_bytes_as_a_file(store, tmp_path):
    store.put("lf/data.csv", [b"a,b\n1,2\n"])
    tmp = tmp_path / "tmp"
    with local_file(store, "lf/data.csv", tmp_dir=tmp, suffix=".csv") as path:
        assert path.read_bytes() == b"a,b\n1,2\n"
        assert path.name.endswith(".csv") or store.path("lf/data.csv") == path
    assert store.head("lf/data.csv") is not None
    assert not tmp.exists() or list(tmp.iterdir()) == []  # a temp copy is gone
    with pytest.raises(NotFound), local_file(store, "lf/missing", tmp_dir=tmp):
        pass
    assert not tmp.exists() or list(tmp.iterdir()) == []


def test_local_file_removes_the_temp_copy_when_the_block_fails(store, tmp_path):
    store.put("lf/x", [b"x"])
    tmp = tmp_path / "tmp"
    with pytest.raises(RuntimeError), local_file(store, "lf/x", tmp_dir=tmp):
        raise RuntimeError("reader failed")
    assert not tmp.exists() or list(tmp.iterdir()) == []
    assert store.head("lf/x") is not None


# -- the local store ------------------------------------------------------------------------------


def test_open_store_opens_a_local_store_from_a_file_url(tmp_path):
    store = open_store((tmp_path / "b").as_uri())
    assert isinstance(store, LocalBlobStore) and isinstance(store, BlobStore)
    assert (tmp_path / "b").is_dir()
    with pytest.raises(InvalidInput):
        open_store("file://otherhost/x")
    with pytest.raises(InvalidInput):
        open_store("ftp://host/x")


@pytest.mark.parametrize(
    ("key", "parts"),
    [
        ("a", ("a",)),
        ("a/b/c.txt", ("a", "b", "c.txt")),
        ("données/été.csv", ("données", "été.csv")),
        ("..a/b..", ("..a", "b..")),
        ("a/.hidden", ("a", ".hidden")),
        ("~/x", ("~", "x")),
        ("C:/x", ("C:", "x")),
        ("a b/c", ("a b", "c")),
    ],
)
def test_keys_map_to_paths_under_the_root(local, key, parts):
    path = local.path(key)
    assert path == local.root.joinpath(*parts)
    assert path.resolve().is_relative_to(local.root.resolve())


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_never_map_to_a_path(local, key):
    with pytest.raises(InvalidInput):
        local.path(key)


def test_no_valid_key_escapes_the_root(local):
    # every combination of awkward segments stays under the root
    segments = ["a", "..a", "a..", "...", ".a", "~", "C:", "é", " ", "-", "%2e%2e", "a\u2215b"]
    for first in segments:
        for second in segments:
            key = f"{first}/{second}"
            path = local.path(key)
            assert path.resolve().is_relative_to(local.root.resolve()), key
            assert path.relative_to(local.root).as_posix() == key


def test_segments_longer_than_a_file_name_are_refused_locally(local):
    for key in ["x" * 256, "a/" + "é" * 128, "x" * 1024]:
        validate_key(key)  # valid keys (S3 stores them) ...
        with pytest.raises(InvalidInput, match="255 bytes"):
            local.put(key, [b"1"])  # ... that a local file name cannot hold
        with pytest.raises(InvalidInput):
            local.head(key)
    assert local.path("a/" + "é" * 127).name == "é" * 127


def test_key_length_is_counted_in_utf8_bytes():
    assert validate_key("é" * 512) and validate_key("x" * 1024)
    for key in ["é" * 513, "x" * 1025, "🙂" * 257]:
        with pytest.raises(InvalidInput, match="1024 bytes"):
            validate_key(key)


def test_delete_removes_empty_directories(local):
    local.put("d/e/f", [b"1"])
    local.put("d/g", [b"1"])
    assert local.delete("d/e/f") is True
    assert not (local.root / "d" / "e").exists() and (local.root / "d").is_dir()
    assert local.delete("d/g") is True
    assert not (local.root / "d").exists() and local.root.is_dir()


def test_a_key_through_a_blob_or_onto_a_prefix_conflicts(local):
    local.put("a", [b"1"])
    with pytest.raises(Conflict):
        local.put("a/b", [b"2"])
    local.put("p/q", [b"3"])
    with pytest.raises(Conflict):
        local.put("p", [b"4"])
    with pytest.raises(Conflict):
        local.copy("a", "p")
    assert read(local, "a") == b"1" and read(local, "p/q") == b"3"


def _files(store: LocalBlobStore) -> list[str]:
    return sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file())


def test_a_failing_write_leaves_no_temp_file(local):
    local.put("keep", [b"old"])

    def chunks():
        yield b"partial"
        raise RuntimeError("source broke")

    for key in ("atomic/blob", "keep"):
        with pytest.raises(RuntimeError):
            local.put(key, chunks())
    assert _files(local) == ["keep"] and local.path("keep").read_bytes() == b"old"


def test_temp_files_are_never_listed(local):
    local.put("v/a", [b"1"])
    (local.root / "v" / ".entrepot-tmp-abc").write_bytes(b"in flight")
    (local.root / ".entrepot-tmp-dir").mkdir()
    (local.root / ".entrepot-tmp-dir" / "x").write_bytes(b"in flight")
    assert [b.key for b in local.list().blobs] == ["v/a"]


def test_copy_is_a_hard_link_when_possible(local):
    local.put("src", [b"linked"])
    local.copy("src", "dst/one")
    assert os.path.samefile(local.path("src"), local.path("dst/one"))
    local.copy("src", "dst/one")  # renaming a link onto the same file is a no-op: no leftovers
    assert _files(local) == ["dst/one", "src"]
    local.put("src", [b"new"])  # put replaces the file: the copy keeps the old bytes
    assert local.path("dst/one").read_bytes() == b"linked"


def test_copy_falls_back_to_a_streamed_copy(local, monkeypatch):
    local.put("src", [b"bytes"])

    def no_links(*args, **kwargs):
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    info = local.copy("src", "dst")
    assert info.size == 5 and info.sha256 == hashlib.sha256(b"bytes").hexdigest()
    assert not os.path.samefile(local.path("src"), local.path("dst"))
    assert _files(local) == ["dst", "src"]
