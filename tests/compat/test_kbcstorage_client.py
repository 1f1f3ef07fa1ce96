"""The official ``kbcstorage`` client, unmodified, against entrepot.

Everything that does not go through cloud file storage (its boto3 uploads and downloads
through the S3 face are in test_kbcstorage_s3.py): buckets, tables created from a ``dataUrl``
and from a file uploaded through entrepot's own upload URL, full and incremental loads, detail
fields, previews with filters, exports and the export file's detail, deletes, jobs, files and
tokens.
"""

from __future__ import annotations

import csv
import functools
import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from kbcstorage.client import Client

from support.server import RunningServer, start_server


@pytest.fixture(scope="module")
def kbc_server(tmp_path_factory) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    running = start_server(tmp_path_factory.mktemp("kbc"), url_import_allowed_hosts=["127.0.0.1"])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def csv_host(tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A plain HTTP server on 127.0.0.1 serving CSV files for ``dataUrl``."""
    root = tmp_path_factory.mktemp("www")
    (root / "two.csv").write_text('"col1","col2"\n"foo","bar"\n"ping","pong"\n')
    (root / "more.csv").write_text("col1,col2\nnew,row\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture
def client(kbc_server) -> Client:  # type: ignore[no-untyped-def]
    return Client(kbc_server.url, kbc_server.token)


@pytest.fixture
def bucket(client) -> Iterator[str]:  # type: ignore[no-untyped-def]
    try:
        client.buckets.delete("in.c-py-test", force=True)
    except requests.HTTPError as exc:
        assert exc.response.status_code == 404
    bucket_id = client.buckets.create("py-test", description="from kbcstorage")["id"]
    yield bucket_id
    client.buckets.delete(bucket_id, force=True)


def _upload(client: Client, name: str, data: bytes) -> int:
    """Upload through entrepot's own upload URL (no cloud SDK): prepare, then PUT the bytes."""
    prepared = client.files.prepare_upload(name, size_bytes=len(data), tags=["py-test"])
    r = requests.put(prepared["uploadParams"]["url"], data=data)
    assert r.status_code < 300, r.text
    return prepared["id"]


def _create(client: Client, bucket: str, name: str, **kwargs) -> str:  # type: ignore[no-untyped-def]
    job = client.tables.create_raw(bucket, name, **kwargs)
    done = client.jobs.block_until_completed(job["id"])
    assert done["status"] == "success", done
    return done["results"]["id"]


def test_tokens_verify(client):
    token = client.tokens.verify()
    assert int(token["id"]) > 0
    assert {"description", "canManageBuckets", "owner"} <= set(token)


def test_bucket_create_list_detail_delete(client, bucket):
    assert bucket == "in.c-py-test"
    assert bucket in [b["id"] for b in client.buckets.list()]
    detail = client.buckets.detail(bucket)
    assert detail["name"] == "c-py-test"
    assert detail["description"] == "from kbcstorage"
    assert detail["tables"] == [] and detail["attributes"] == []
    assert detail["uri"] and detail["created"]
    with pytest.raises(requests.HTTPError) as info:
        client.buckets.detail("in.c-some-totally-non-existent-bucket")
    assert info.value.response.status_code == 404


def test_create_from_data_url_then_detail_list_preview(client, bucket, csv_host):
    table_id = _create(client, bucket, "some-table", data_url=f"{csv_host}/two.csv", primary_key=["col1"])
    assert table_id == "in.c-py-test.some-table"
    detail = client.tables.detail(table_id)
    assert detail["columns"] == ["col1", "col2"]
    assert detail["primaryKey"] == ["col1"]
    assert detail["rowsCount"] == 2
    assert detail["bucket"]["id"] == bucket
    assert table_id in detail["uri"]
    for key in ("created", "lastImportDate", "lastChangeDate", "metadata", "columnMetadata", "name"):
        assert key in detail
    assert [t["id"] for t in client.buckets.list_tables(bucket)] == [table_id]
    assert table_id in [t["id"] for t in client.tables.list()]

    lines = sorted(client.tables.preview(table_id).split("\n"))
    assert lines == ["", '"col1","col2"', '"foo","bar"', '"ping","pong"']
    filtered = client.tables.preview(
        table_id, where_column="col1", where_values=["ping"], where_operator="neq"
    )
    assert filtered.split("\n")[1:] == ['"foo","bar"', ""]
    assert client.tables.preview(table_id, columns=["col2"]).split("\n")[0] == '"col2"'


def test_create_from_uploaded_file_and_load_full_and_incremental(client, bucket):
    file_id = _upload(client, "data", b"col1,col2\na,1\n")
    table_id = _create(client, bucket, "loaded", data_file_id=file_id)
    assert client.tables.detail(table_id)["primaryKey"] == []

    more = _upload(client, "more", b"col1,col2\nb,2\n")
    job = client.tables.load_raw(table_id, data_file_id=more, is_incremental=True)
    assert client.jobs.block_until_completed(job["id"])["status"] == "success"
    assert client.tables.detail(table_id)["rowsCount"] == 2  # incremental without a key appends

    job = client.tables.load_raw(table_id, data_file_id=more, is_incremental=False)
    assert client.jobs.block_until_completed(job["id"])["status"] == "success"
    assert client.tables.detail(table_id)["rowsCount"] == 1  # full load replaces


def test_load_from_data_url(client, bucket, csv_host):
    table_id = _create(client, bucket, "from-url", data_url=f"{csv_host}/two.csv")
    job = client.tables.load_raw(table_id, data_url=f"{csv_host}/more.csv", is_incremental=True)
    assert client.jobs.block_until_completed(job["id"])["status"] == "success"
    assert client.tables.detail(table_id)["rowsCount"] == 3


def test_export_raw_gives_a_headerless_file_with_a_detail(client, bucket, csv_host):
    table_id = _create(client, bucket, "exported", data_url=f"{csv_host}/two.csv")
    job = client.tables.export_raw(table_id, columns=["col2", "col1"])
    done = client.jobs.block_until_completed(job["id"])
    assert done["status"] == "success", done
    file_id = done["results"]["file"]["id"]
    detail = client.files.detail(file_id)
    assert detail["id"] == file_id
    assert detail["name"].startswith(table_id)
    assert "credentials" not in detail
    assert "table-export" in detail["tags"]
    # the signed URL of the job result serves the CSV with the header the client would add
    body = requests.get(done["results"]["file"]["url"]).text
    assert list(csv.reader(io.StringIO(body))) == [["col2", "col1"], ["bar", "foo"], ["pong", "ping"]]


def test_jobs_list_and_detail(client, bucket, csv_host):
    table_id = _create(client, bucket, "jobs-table", data_url=f"{csv_host}/two.csv")
    jobs = client.jobs.list()
    assert len(jobs) >= 1
    newest = client.jobs.detail(jobs[0]["id"])
    assert newest["status"] in ("waiting", "processing", "success", "error")
    assert any(j.get("tableId") == table_id for j in jobs)


def test_files_list_detail_delete(client):
    file_id = _upload(client, "fooBar", b"fooBar")
    assert client.files.detail(file_id)["sizeBytes"] == 6
    assert [f["id"] for f in client.files.list(tags=["py-test"], limit=1)] == [file_id]
    client.files.delete(file_id)
    with pytest.raises(requests.HTTPError) as info:
        client.files.detail(file_id)
    assert info.value.response.status_code == 404


def test_table_delete_and_unknown_table(client, bucket, csv_host):
    table_id = _create(client, bucket, "doomed", data_url=f"{csv_host}/two.csv")
    client.tables.delete(table_id)
    with pytest.raises(requests.HTTPError) as info:
        client.tables.detail(table_id)
    assert info.value.response.status_code == 404
    with pytest.raises(requests.HTTPError) as info:
        client.tables.detail("in.c-py-test.some-totally-non-existent-table")
    assert info.value.response.status_code == 404


def test_invalid_create_is_a_clear_job_error(client, bucket, tmp_path: Path):
    file_id = _upload(client, "bad", b'col1,col2\n"unterminated,1\n')
    job = client.tables.create_raw(bucket, "bad", data_file_id=file_id)
    done = client.jobs.block_until_completed(job["id"])
    assert done["status"] == "error"
    assert "line" in done["error"]["message"].lower()
