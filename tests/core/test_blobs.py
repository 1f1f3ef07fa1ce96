"""The local blob store: streaming writes, ranged reads, listings, key validation, atomicity."""

from __future__ import annotations

import io

import pytest

from entrepot.core.blobs import BlobStore, open_store, validate_key
from entrepot.core.blobs.local import LocalBlobStore
from entrepot.core.errors import InvalidInput, NotFound


@pytest.fixture
def store(tmp_path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def test_open_store_opens_a_local_store_from_a_file_url(tmp_path):
    store = open_store((tmp_path / "b").as_uri())
    assert isinstance(store, LocalBlobStore) and isinstance(store, BlobStore)
    assert (tmp_path / "b").is_dir()


def test_put_streams_chunks_and_returns_size_and_checksums(store):
    info = store.put("a/b/c.txt", iter([b"hello ", b"", b"world"]))
    assert info.key == "a/b/c.txt" and info.size == 11
    assert info.md5 == "5eb63bbbe01eeed093cb22bb8f5acdc3"
    assert info.sha256 == "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    with store.open("a/b/c.txt") as f:
        assert f.read() == b"hello world"


def test_put_accepts_a_binary_file_object(store):
    data = b"x" * (3 * 1024 * 1024 + 5)
    assert store.put("big", io.BytesIO(data)).size == len(data)
    assert store.path("big").read_bytes() == data


def test_ranged_reads_return_the_requested_bytes(store):
    store.put("r", [b"0123456789"])
    with store.open("r", 2, 5) as f:
        assert f.read() == b"234"
    with store.open("r", start=7) as f:
        assert f.read() == b"789"
    with store.open("r", end=3) as f:
        assert f.read() == b"012"
    with store.open("r", 8, 100) as f:
        assert f.read() == b"89"


def test_head_reports_size_and_none_for_missing_blobs(store):
    store.put("h/x", [b"abc"])
    info = store.head("h/x")
    assert info is not None and info.size == 3 and info.modified is not None
    assert store.head("h/missing") is None
    assert store.head("h") is None  # a prefix is not a blob


def test_open_of_a_missing_blob_is_not_found(store):
    with pytest.raises(NotFound):
        store.open("nope")


def test_delete_removes_the_blob_and_empty_directories(store):
    store.put("d/e/f", [b"1"])
    assert store.delete("d/e/f") is True
    assert store.delete("d/e/f") is False
    assert store.head("d/e/f") is None
    assert not (store.root / "d").exists()


def test_put_file_copies_or_moves(store, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    assert store.put_file("copied", src).size == 7
    assert src.exists()
    info = store.put_file("moved/one", src, move=True)
    assert info.size == 7 and info.md5 is not None
    assert not src.exists()
    assert store.path("moved/one").read_bytes() == b"payload"


def test_list_with_prefix_delimiter_and_cursor(store):
    for key in ["p/a/1", "p/a/2", "p/b", "p/c/3", "q/z"]:
        store.put(key, [key.encode()])
    page = store.list("p/")
    assert [b.key for b in page.blobs] == ["p/a/1", "p/a/2", "p/b", "p/c/3"]
    assert page.next_cursor is None
    page = store.list("p/", delimiter="/")
    assert [b.key for b in page.blobs] == ["p/b"]
    assert page.prefixes == ["p/a/", "p/c/"]
    first = store.list("p/", limit=2)
    assert [b.key for b in first.blobs] == ["p/a/1", "p/a/2"] and first.next_cursor == "p/a/2"
    second = store.list("p/", cursor=first.next_cursor, limit=2)
    assert [b.key for b in second.blobs] == ["p/b", "p/c/3"]
    paged = store.list("p/", delimiter="/", limit=1)
    assert paged.prefixes == ["p/a/"] and paged.next_cursor == "p/a/"
    rest = store.list("p/", delimiter="/", cursor=paged.next_cursor)
    assert [b.key for b in rest.blobs] == ["p/b"] and rest.prefixes == ["p/c/"]
    assert [b.key for b in store.list("p/a").blobs] == ["p/a/1", "p/a/2"]  # a partial segment
    assert store.list("none/").blobs == []


@pytest.mark.parametrize(
    "key",
    ["../x", "a/../b", "/abs", "a//b", "a/", "", ".", "a/./b", "a\\b", "a\x00b", "a\nb", "a\x7f", "x" * 1025],
)
def test_invalid_keys_are_refused(store, key):
    with pytest.raises(InvalidInput):
        validate_key(key)
    with pytest.raises(InvalidInput):
        store.put(key, [b"x"])
    with pytest.raises(InvalidInput):
        store.open(key)


def test_unicode_keys_are_fine(store):
    store.put("données/été.csv", [b"1"])
    assert [b.key for b in store.list("données/").blobs] == ["données/été.csv"]


def test_a_failing_write_leaves_no_blob_and_no_temp_file(store):
    def chunks():
        yield b"partial"
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError):
        store.put("atomic/blob", chunks())
    assert store.head("atomic/blob") is None
    leftovers = [p for p in store.root.rglob("*") if p.is_file()]
    assert leftovers == []


def test_a_failing_overwrite_keeps_the_old_bytes(store):
    store.put("keep", [b"old"])

    def chunks():
        yield b"new"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.put("keep", chunks())
    assert store.path("keep").read_bytes() == b"old"
    assert [p.name for p in store.root.iterdir()] == ["keep"]
