"""The SDK's buckets and tables against a real server: sources as paths, bytes and file objects."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io

import pytest

from entrepot.client import Client, JobFailed, NotFound


@pytest.fixture
def client(server):
    with Client(server.url, server.token) as c:
        yield c


@pytest.fixture
def bucket(client):
    with contextlib.suppress(NotFound):
        client.buckets.delete("in.c-sdk", force=True)
    bucket_id = client.buckets.create("sdk", description="sdk tests")["id"]
    yield bucket_id
    client.buckets.delete(bucket_id, force=True)


def test_bucket_round_trip(client, bucket):
    assert bucket == "in.c-sdk"
    assert client.buckets.get(bucket)["description"] == "sdk tests"
    assert bucket in [b["id"] for b in client.buckets.list()]
    with pytest.raises(NotFound):
        client.buckets.get("in.c-nope")


def test_create_from_path_load_incremental_preview_and_export(client, bucket, tmp_path):
    source = tmp_path / "people.csv"
    source.write_text("id,name\n1,Ann\n2,Bob\n")
    uploads: list[tuple[int, int | None]] = []
    table = client.tables.create(
        bucket, "people", source, primary_key=["id"], on_upload=lambda d, t: uploads.append((d, t))
    )
    assert table["id"] == "in.c-sdk.people"
    assert table["columns"] == ["id", "name"] and table["primaryKey"] == ["id"] and table["rowsCount"] == 2
    assert uploads and uploads[-1][0] == source.stat().st_size

    results = client.tables.load(table["id"], b"id,name\n2,Bobby\n3,Cyd\n", incremental=True)
    assert results["totalRowsCount"] == 3
    rows = client.tables.preview(table["id"])
    assert sorted((r["id"], r["name"]) for r in rows) == [("1", "Ann"), ("2", "Bobby"), ("3", "Cyd")]
    assert client.tables.preview(table["id"], where={"name": ["Cyd"]}) == [{"id": "3", "name": "Cyd"}]

    dest = tmp_path / "out.csv"
    client.tables.export(table["id"], dest, columns=["name", "id"], where={"id": ["1", "3"]})
    header, *rows = list(csv.reader(dest.open()))
    assert header == ["name", "id"]
    assert sorted(rows) == [["Ann", "1"], ["Cyd", "3"]]  # exports keep no particular row order

    buffer = io.BytesIO()
    client.tables.export(table["id"], buffer)
    assert next(csv.reader(io.StringIO(buffer.getvalue().decode()))) == ["id", "name"]


def test_load_gzip_file_object_and_delete_rows(client, bucket):
    client.tables.create(bucket, "events", io.BytesIO(b"id,kind\n1,a\n2,b\n3,a\n"), primary_key=["id"])
    client.tables.load("in.c-sdk.events", io.BytesIO(gzip.compress(b"id,kind\n4,a\n")), incremental=True)
    assert client.tables.get("in.c-sdk.events")["rowsCount"] == 4
    assert client.tables.delete_rows("in.c-sdk.events", where={"kind": ["a"]}) == 3
    assert client.tables.get("in.c-sdk.events")["rowsCount"] == 1


def test_bad_csv_is_a_job_failure_and_changes_nothing(client, bucket):
    client.tables.create(bucket, "stable", b"id,v\n1,x\n", primary_key=["id"])
    with pytest.raises(JobFailed) as info:
        client.tables.load("in.c-sdk.stable", b'id,v\n2,"unterminated\n', incremental=True)
    assert "line" in str(info.value).lower()
    assert client.tables.preview("in.c-sdk.stable") == [{"id": "1", "v": "x"}]


def test_set_primary_key_and_delete_table(client, bucket):
    client.tables.create(bucket, "keyed", b"a,b\n1,2\n")
    assert client.tables.set_primary_key("in.c-sdk.keyed", ["a"])["primaryKey"] == ["a"]
    client.tables.delete("in.c-sdk.keyed")
    with pytest.raises(NotFound):
        client.tables.get("in.c-sdk.keyed")
