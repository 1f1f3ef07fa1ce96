"""The SDK's files API against a real server: upload from bytes, paths and file objects, download."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from entrepot import Client
from entrepot.client import NotFound


@pytest.fixture
def client(server) -> Iterator[Client]:
    with Client(server.url, server.token) as c:
        yield c


def test_upload_bytes_and_download_to_a_path(client, tmp_path):
    uploaded = client.files.upload(b"a,b\n1,2\n", name="small.csv", tags=["sdk"])
    assert uploaded["sizeBytes"] == 8 and uploaded["isUploaded"] is True and uploaded["tags"] == ["sdk"]
    dest = client.files.download(uploaded["id"], tmp_path / "out.csv")
    assert dest == tmp_path / "out.csv" and dest.read_bytes() == b"a,b\n1,2\n"
    into_dir = client.files.download(uploaded["id"], tmp_path)
    assert into_dir == tmp_path / "small.csv" and into_dir.read_bytes() == b"a,b\n1,2\n"
    into_new_dir = client.files.download(uploaded["id"], f"{tmp_path}/new/")  # made, as docs/files.md says
    assert into_new_dir == tmp_path / "new" / "small.csv" and into_new_dir.read_bytes() == b"a,b\n1,2\n"
    assert not list(tmp_path.glob("*.part"))


def test_upload_a_path_with_progress(client, tmp_path):
    content = b"z" * (2 * 1024 * 1024 + 17)
    src = tmp_path / "big.bin"
    src.write_bytes(content)
    calls: list[tuple[int, int | None]] = []
    uploaded = client.files.upload(src, on_progress=lambda sent, total: calls.append((sent, total)))
    assert uploaded["name"] == "big.bin" and uploaded["sizeBytes"] == len(content)
    assert calls[-1] == (len(content), len(content)) and len(calls) == 3
    assert [sent for sent, _ in calls] == sorted(sent for sent, _ in calls)
    got: list[tuple[int, int | None]] = []
    out = io.BytesIO()
    assert client.files.download(uploaded["id"], out, on_progress=lambda n, t: got.append((n, t))) is None
    assert out.getvalue() == content
    assert got[-1] == (len(content), len(content))


def test_upload_a_file_object(client):
    stream = io.BytesIO(b"skip|payload")
    stream.seek(5)
    uploaded = client.files.upload(stream, name="obj.txt")
    assert uploaded["sizeBytes"] == 7
    out = io.BytesIO()
    client.files.download(uploaded["id"], out)
    assert out.getvalue() == b"payload"


def test_upload_of_bytes_needs_a_name(client):
    with pytest.raises(ValueError, match="name"):
        client.files.upload(b"x")


def test_get_list_tag_untag_and_delete(client):
    first = client.files.upload(b"1", name="one.txt", tags=["sdk-list"])
    second = client.files.upload(b"2", name="two.txt", tags=["sdk-list"])
    assert [f["id"] for f in client.files.list(tags=["sdk-list"])] == [second["id"], first["id"]]
    assert [f["id"] for f in client.files.list(tags=["sdk-list"], limit=1, offset=1)] == [first["id"]]
    client.files.tag(first["id"], "extra tag/x")
    assert "extra tag/x" in client.files.get(first["id"])["tags"]
    assert [f["id"] for f in client.files.list(q='tags:"extra tag/x"')] == [first["id"]]
    client.files.untag(first["id"], "extra tag/x")
    assert "extra tag/x" not in client.files.get(first["id"])["tags"]
    client.files.delete(first["id"])
    with pytest.raises(NotFound):
        client.files.get(first["id"])
