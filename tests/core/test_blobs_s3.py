"""What only the S3 blob store has: the prefix, multipart uploads and copies, error translation,
its settings, and a whole entrepot server whose files and table exports live in S3."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import time

import pytest
import requests
from botocore.exceptions import ClientError
from pydantic import ValidationError

from entrepot.config import Settings
from entrepot.core.blobs import open_store, parse_s3_url
from entrepot.core.blobs.s3 import MAX_PARTS, S3BlobStore
from entrepot.core.errors import InvalidInput, NotFound, Unavailable
from support.jobs import wait_kbc_job
from support.server import free_port, start_server

MiB = 1024 * 1024


@pytest.fixture
def bucket(s3_server) -> str:
    return s3_server.create_bucket()


@pytest.fixture
def store(s3_server, bucket) -> S3BlobStore:
    return s3_server.store(bucket, "pre/fix")


def data(size: int) -> bytes:
    return (hashlib.sha256(str(size).encode()).digest() * (size // 32 + 1))[:size]


def chunks(payload: bytes, size: int = MiB):
    for i in range(0, len(payload), size):
        yield payload[i : i + size]


def read(store: S3BlobStore, key: str) -> bytes:
    with store.open(key) as f:
        return f.read()


class Calls:
    """Counts the calls a store makes to some client operations."""

    def __init__(self, store: S3BlobStore, monkeypatch: pytest.MonkeyPatch, *names: str):
        self.counts = dict.fromkeys(names, 0)
        for name in names:
            original = getattr(store.client, name)

            def counting(*args, _name=name, _original=original, **kwargs):
                self.counts[_name] += 1
                return _original(*args, **kwargs)

            monkeypatch.setattr(store.client, name, counting)


# -- layout -----------------------------------------------------------------------------------


def test_keys_live_under_the_prefix_and_listings_strip_it(s3_server, bucket, store):
    store.put("a/b", [b"1"])
    s3_server.client().put_object(Bucket=bucket, Key="outside/x", Body=b"2")
    s3_server.client().put_object(Bucket=bucket, Key="pre/fixture", Body=b"3")
    assert sorted(s3_server.keys(bucket)) == ["outside/x", "pre/fix/a/b", "pre/fixture"]
    assert [b.key for b in store.list().blobs] == ["a/b"]
    assert store.delete_prefix("a") == 1
    assert sorted(s3_server.keys(bucket)) == ["outside/x", "pre/fixture"]


def test_a_store_without_prefix_uses_the_whole_bucket(s3_server, bucket):
    store = s3_server.store(bucket)
    store.put("top", [b"1"])
    assert s3_server.keys(bucket) == ["top"] and store.prefix == ""


def test_path_is_none_and_still_validates(store):
    assert store.path("a/b") is None
    with pytest.raises(InvalidInput):
        store.path("../a")


def test_directory_markers_are_not_listed(s3_server, bucket, store):
    s3_server.client().put_object(Bucket=bucket, Key="pre/fix/dir/", Body=b"")
    store.put("dir/file", [b"1"])
    assert [b.key for b in store.list().blobs] == ["dir/file"]
    assert store.list(delimiter="/").prefixes == ["dir/"]


def test_a_key_too_long_with_the_prefix_is_invalid(store):
    key = "/".join(["x" * 200] * 5) + "/" + "y" * 15  # 1,020 bytes: valid, but not under pre/fix/
    with pytest.raises(InvalidInput, match="prefix"):
        store.put(key, [b"1"])


# -- uploads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 8 * MiB - 1, 8 * MiB, 8 * MiB + 1, 16 * MiB, 17 * MiB + 5])
def test_put_uses_one_request_or_a_multipart_upload(store, monkeypatch, size):
    calls = Calls(store, monkeypatch, "put_object", "upload_part", "complete_multipart_upload")
    payload = data(size)
    info = store.put("k", chunks(payload, 3 * MiB + 7))
    assert info.size == size and info.sha256 == hashlib.sha256(payload).hexdigest()
    assert info.md5 == hashlib.md5(payload).hexdigest()
    parts = -(-size // (8 * MiB))
    if size < 8 * MiB:
        assert calls.counts == {"put_object": 1, "upload_part": 0, "complete_multipart_upload": 0}
    else:
        assert calls.counts == {"put_object": 0, "upload_part": parts, "complete_multipart_upload": 1}
    assert read(store, "k") == payload


def test_parts_grow_so_that_ten_thousand_parts_hold_almost_half_a_terabyte(store):
    sizes = [store._part_size(n) for n in range(1, MAX_PARTS + 1)]
    assert sizes[0] == sizes[1999] == 8 * MiB and sizes[2000] == 16 * MiB
    assert max(sizes) == 128 * MiB
    assert sum(sizes) > 480 * 1024 * MiB  # 484 GiB


class Disconnect(BaseException):
    pass


@pytest.mark.parametrize("error", [RuntimeError, Disconnect, GeneratorExit])
def test_a_failed_multipart_put_is_aborted(s3_server, bucket, store, monkeypatch, error):
    calls = Calls(store, monkeypatch, "upload_part", "abort_multipart_upload")

    def body():
        yield from chunks(data(20 * MiB))
        raise error("client went away")

    with pytest.raises(error):
        store.put("gone", body())
    assert calls.counts == {"upload_part": 2, "abort_multipart_upload": 1}
    assert s3_server.multipart_uploads(bucket) == []
    assert s3_server.keys(bucket) == []


def test_a_part_the_server_refuses_aborts_the_upload(s3_server, bucket, store, monkeypatch):
    original = store.client.upload_part
    seen = []

    def flaky(**kwargs):
        seen.append(kwargs["PartNumber"])
        if kwargs["PartNumber"] == 2:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "UploadPart")
        return original(**kwargs)

    monkeypatch.setattr(store.client, "upload_part", flaky)
    with pytest.raises(Unavailable, match="InternalError"):
        store.put("refused", chunks(data(20 * MiB)))
    assert seen == [1, 2]
    assert s3_server.multipart_uploads(bucket) == [] and s3_server.keys(bucket) == []


# -- copies and composition ----------------------------------------------------------------------


def test_copy_is_server_side(store, monkeypatch):
    store.put("src", [b"payload"])
    calls = Calls(store, monkeypatch, "copy_object", "get_object", "upload_part_copy")
    assert store.copy("src", "dst").size == 7
    assert calls.counts == {"copy_object": 1, "get_object": 0, "upload_part_copy": 0}
    assert read(store, "dst") == b"payload"


def test_a_copy_above_the_single_copy_limit_is_a_multipart_copy(s3_server, bucket, store, monkeypatch):
    store.max_copy_size = 6 * MiB  # stands in for S3's 5 GiB
    store.copy_part_size = 5 * MiB
    payload = data(11 * MiB + 3)
    store.put("big", chunks(payload))
    calls = Calls(store, monkeypatch, "copy_object", "upload_part_copy")
    info = store.copy("big", "big-copy")
    assert info.size == len(payload)
    assert calls.counts == {"copy_object": 0, "upload_part_copy": 2}  # 5 MiB, then 6 MiB + 3 (tail merged)
    assert read(store, "big-copy") == payload
    assert s3_server.multipart_uploads(bucket) == []


# -- errors -----------------------------------------------------------------------------------


def test_a_missing_bucket_is_unavailable_with_its_name(s3_server):
    store = s3_server.store("no-such-bucket-here")
    with pytest.raises(Unavailable, match="no-such-bucket-here"):
        store.put("k", [b"1"])
    with pytest.raises(Unavailable, match="no-such-bucket-here"):
        store.open("k")
    with pytest.raises(Unavailable, match="no-such-bucket-here"):
        store.list()


def test_an_unreachable_endpoint_is_unavailable():
    store = S3BlobStore(
        "b",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key_id="x",
        secret_access_key="y",
    )
    started = time.monotonic()
    with pytest.raises(Unavailable, match="cannot be reached"):
        store.head("k")
    assert time.monotonic() - started < 60


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, NotFound),
        ("AccessDenied", 403, Unavailable),
        ("SlowDown", 503, Unavailable),
        ("InvalidRange", 416, InvalidInput),
        ("KeyTooLongError", 400, InvalidInput),
    ],
)
def test_client_errors_are_translated(store, code, status, expected):
    exc = ClientError(
        {"Error": {"Code": code, "Message": "msg"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )
    assert type(store._translate(exc, "k")) is expected


# -- opening and settings -----------------------------------------------------------------------


def test_open_store_builds_an_s3_store_from_the_url_and_settings(tmp_path, s3_server, bucket):
    settings = Settings(data_dir=tmp_path, **s3_server.settings(bucket, "inst/one"))
    store = open_store(settings.effective_blob_url, settings)
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix, store.endpoint_url) == (bucket, "inst/one", s3_server.endpoint_url)
    store.put("k", [b"v"])
    assert s3_server.keys(bucket) == ["inst/one/k"]
    plain = open_store("s3://some-bucket")  # without settings: boto3's defaults
    assert isinstance(plain, S3BlobStore) and plain.prefix == ""


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [("s3://b", "b", ""), ("s3://b/", "b", ""), ("s3://my.bucket-1/a/b/", "my.bucket-1", "a/b")],
)
def test_s3_urls_name_a_bucket_and_a_prefix(url, bucket, prefix):
    assert parse_s3_url(url) == (bucket, prefix)


@pytest.mark.parametrize(
    "url",
    [
        "s3://",
        "s3:///x",
        "s3://key:secret@b/x",
        "s3://b:9000/x",
        "s3://b/../x",
        "s3://b/a//c",
        "s3://b/x?y=1",
    ],
)
def test_bad_s3_urls_are_refused(tmp_path, url):
    with pytest.raises(InvalidInput):
        parse_s3_url(url)
    with pytest.raises(ValidationError, match="blob_url"):
        Settings(data_dir=tmp_path, blob_url=url)


def test_s3_settings_from_the_environment_and_masked(tmp_path, monkeypatch):
    monkeypatch.setenv("ENTREPOT_BLOB_URL", "s3://data/entrepot")
    monkeypatch.setenv("ENTREPOT_BLOB_S3_ENDPOINT_URL", "http://minio:9000")
    monkeypatch.setenv("ENTREPOT_BLOB_S3_REGION", "eu-west-1")
    monkeypatch.setenv("ENTREPOT_BLOB_S3_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("ENTREPOT_BLOB_S3_SECRET_ACCESS_KEY", "very-secret")
    monkeypatch.setenv("ENTREPOT_BLOB_S3_ADDRESSING_STYLE", "virtual")
    settings = Settings(data_dir=tmp_path)
    assert settings.effective_blob_url == "s3://data/entrepot"
    assert settings.blob_s3_endpoint_url == "http://minio:9000" and settings.blob_s3_region == "eu-west-1"
    assert settings.blob_s3_secret_access_key.get_secret_value() == "very-secret"
    assert settings.blob_s3_addressing_style == "virtual"
    masked = settings.masked()
    assert masked["blob_s3_secret_access_key"] == "********" and "very-secret" not in repr(masked)
    assert masked["blob_s3_access_key_id"] == "AKIAEXAMPLE"
    with pytest.raises(ValidationError, match="blob_s3_addressing_style"):
        Settings(data_dir=tmp_path, blob_s3_addressing_style="sideways")


def test_defaults_stay_local(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert settings.blob_s3_region == "us-east-1" and settings.blob_s3_addressing_style == "path"
    assert settings.blob_s3_secret_access_key is None
    assert settings.effective_blob_url.startswith("file://")


# -- a whole server on S3 -------------------------------------------------------------------------


def _upload(server, name: str, content: bytes) -> dict:
    r = requests.post(
        f"{server.url}/v2/storage/files/prepare",
        headers=server.headers(),
        data={"name": name, "sizeBytes": str(len(content))},
    )
    assert r.status_code == 201, r.text
    r = requests.put(r.json()["uploadParams"]["url"], data=content)
    assert r.status_code == 200, r.text
    return r.json()


def _detail(server, file_id: int) -> dict:
    r = requests.get(f"{server.url}/v2/storage/files/{file_id}", headers=server.headers())
    assert r.status_code == 200, r.text
    return r.json()


def test_a_server_keeps_files_and_table_exports_in_s3(tmp_path, s3_server, bucket):
    data_dir = tmp_path / "data"
    server = start_server(data_dir, **s3_server.settings(bucket, "entrepot"))
    try:
        assert isinstance(server.services.blobs, S3BlobStore)
        api = f"{server.url}/v2/storage"

        # a Keboola file: upload through the signed URL, download through the signed URL
        content = b"id,name\n1,Ann\n2,Bob\n"
        uploaded = _upload(server, "people.csv", content)
        assert uploaded["sizeBytes"] == len(content) and uploaded["isUploaded"] is True
        detail = _detail(server, uploaded["id"])
        download = requests.get(detail["url"])
        assert download.status_code == 200 and download.content == content
        file_key = f"entrepot/projects/{server.project_id}/files/{uploaded['id']}/people.csv"
        assert file_key in s3_server.keys(bucket)

        # a table created from that file, rows added from inline CSV, then exported
        r = requests.post(f"{api}/buckets", headers=server.headers(), data={"name": "s3", "stage": "in"})
        assert r.status_code == 201, r.text
        created = wait_kbc_job(
            server,
            requests.post(
                f"{api}/buckets/in.c-s3/tables-async",
                headers=server.headers(),
                data={"name": "people", "dataFileId": str(uploaded["id"]), "primaryKey[]": "id"},
            ),
            status="success",
        )
        table_id = created["results"]["id"]
        wait_kbc_job(
            server,
            requests.post(
                f"{api}/tables/{table_id}/import-async",
                headers=server.headers(),
                data={"dataString": "id,name\n3,Cyd\n", "incremental": "1"},
            ),
            status="success",
        )
        gz = _upload(server, "more.csv.gz", gzip.compress(b"id,name\n4,Dee\n"))
        wait_kbc_job(
            server,
            requests.post(
                f"{api}/tables/{table_id}/import-async",
                headers=server.headers(),
                data={"dataFileId": str(gz["id"]), "incremental": "1"},
            ),
            status="success",
        )
        exported = wait_kbc_job(
            server,
            requests.post(f"{api}/tables/{table_id}/export-async", headers=server.headers()),
            status="success",
        )
        export_file = exported["results"]["file"]["id"]
        export = requests.get(_detail(server, export_file)["url"])
        assert export.status_code == 200, export.text
        header, *rows = list(csv.reader(io.StringIO(export.text)))
        assert header == ["id", "name"]
        assert sorted(rows) == [["1", "Ann"], ["2", "Bob"], ["3", "Cyd"], ["4", "Dee"]]

        keys = s3_server.keys(bucket, f"entrepot/projects/{server.project_id}/files/")
        assert any(k.startswith(f"entrepot/projects/{server.project_id}/files/{export_file}/") for k in keys)
        assert any(k.endswith("/table-import-inline.csv") for k in keys)  # the inline rows went through S3
        assert not (data_dir / "blobs").exists()  # nothing was written to the local blob store

        # deleting a file removes its object
        assert requests.delete(f"{api}/files/{uploaded['id']}", headers=server.headers()).status_code == 204
        assert file_key not in s3_server.keys(bucket)
        leftovers = (
            [p for p in (data_dir / "tmp").rglob("*") if p.is_file()] if (data_dir / "tmp").exists() else []
        )
        assert leftovers == []  # the temp copies DuckDB read are gone
    finally:
        server.stop()
