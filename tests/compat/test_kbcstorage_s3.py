"""The official ``kbcstorage`` client, unmodified, moving Keboola files through entrepot's S3 face.

kbcstorage uploads and downloads every file with boto3, signing with the temporary credentials
of ``files/prepare`` and of the file's detail, and never passes an endpoint: the only thing set
is ``AWS_ENDPOINT_URL_S3=<server url>`` (plus ``AWS_CA_BUNDLE`` and ``REQUESTS_CA_BUNDLE`` for
the self-signed HTTPS server), exactly as docs/files.md tells a user. The AWS environment is
otherwise emptied (no config files, no instance metadata).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from kbcstorage.client import Client

from support.server import RunningServer, start_server


@pytest.fixture(scope="module", params=["http", "https"])
def kbc_server(request, tmp_path_factory) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    extra = {"tls": "self-signed"} if request.param == "https" else {}
    running = start_server(tmp_path_factory.mktemp(f"kbc-s3-{request.param}"), **extra)
    yield running
    running.stop()


@pytest.fixture
def client(kbc_server, monkeypatch, tmp_path) -> Client:  # type: ignore[no-untyped-def]
    for name in list(os.environ):
        if name.startswith("AWS_") or name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", kbc_server.url)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    if kbc_server.url.startswith("https://"):
        ca = str(kbc_server.settings.data_dir / "tls" / "ca.pem")
        monkeypatch.setenv("AWS_CA_BUNDLE", ca)  # boto3
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)  # kbcstorage's own calls (requests)
    monkeypatch.chdir(tmp_path)  # kbcstorage may write next to the CWD
    return Client(kbc_server.url, kbc_server.token)


@pytest.fixture
def bucket(client) -> Iterator[str]:  # type: ignore[no-untyped-def]
    try:
        client.buckets.delete("in.c-s3-test", force=True)
    except requests.HTTPError as exc:
        assert exc.response.status_code == 404
    bucket_id = client.buckets.create("s3-test")["id"]
    yield bucket_id
    client.buckets.delete(bucket_id, force=True)


def _csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("id", "name")) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_upload_file_then_download_exact_bytes(client, tmp_path):
    rng = random.Random(7)
    data = bytes(rng.getrandbits(8) for _ in range(9 * 1024 * 1024 + 123))  # > 8 MiB: ranged GETs
    source = tmp_path / "blob.bin"
    source.write_bytes(data)
    file_id = client.files.upload_file(str(source), tags=["s3-test"])
    detail = client.files.detail(file_id)
    assert detail["isUploaded"] is True and detail["sizeBytes"] == len(data)
    assert detail["name"] == "blob.bin" and "s3-test" in detail["tags"]
    assert "credentials" not in detail  # only with federation_token=True
    downloaded = Path(client.files.download(file_id, str(tmp_path / "down")))
    assert downloaded == tmp_path / "down" / "blob.bin"
    assert hashlib.sha256(downloaded.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_upload_file_compressed(client, tmp_path):
    source = _csv(tmp_path / "people.csv", [(str(i), f"name {i}") for i in range(5000)])
    file_id = client.files.upload_file(str(source), compress=True)
    detail = client.files.detail(file_id, federation_token=True)
    gz = tmp_path / "people.csv.gz"  # what kbcstorage wrote and sent
    assert detail["name"] == "people.csv.gz" and detail["sizeBytes"] == gz.stat().st_size
    assert detail["credentials"]["AccessKeyId"].startswith("ES")
    assert detail["s3Path"]["key"].endswith(f"/files/{file_id}/people.csv.gz")
    downloaded = Path(client.files.download(file_id, str(tmp_path / "down")))
    assert gzip.decompress(downloaded.read_bytes()) == source.read_bytes()


def test_create_load_and_export_to_file(client, bucket, tmp_path):
    table_id = client.tables.create(
        bucket, "people", str(_csv(tmp_path / "first.csv", [("1", "Ann"), ("2", "Bob")])), primary_key=["id"]
    )
    assert table_id == f"{bucket}.people"
    detail = client.tables.detail(table_id)
    assert detail["columns"] == ["id", "name"] and detail["primaryKey"] == ["id"] and detail["rowsCount"] == 2

    more = _csv(tmp_path / "more.csv", [("2", "Bobby"), ("3", "Cyd")])
    client.tables.load(table_id, str(more), is_incremental=True)
    assert client.tables.detail(table_id)["rowsCount"] == 3  # upsert on the primary key

    expected = [["1", "Ann"], ["2", "Bobby"], ["3", "Cyd"]]
    for is_gzip in (True, False):
        out = tmp_path / ("gz" if is_gzip else "plain")
        out.mkdir()
        exported = Path(client.tables.export_to_file(table_id, str(out), is_gzip=is_gzip))
        assert exported == out / "people"
        text = exported.read_text()
        assert text.startswith('"id","name"\n')  # kbcstorage's header, once: entrepot's file is headerless
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == ["id", "name"] and sorted(rows[1:]) == expected

    columns = tmp_path / "columns"
    columns.mkdir()
    exported = Path(
        client.tables.export_to_file(table_id, str(columns), columns=["name", "id"], is_gzip=False)
    )
    rows = list(csv.reader(io.StringIO(exported.read_text())))
    assert rows[0] == ["name", "id"] and sorted(rows[1:]) == sorted([r[::-1] for r in expected])

    client.tables.load(table_id, str(_csv(tmp_path / "full.csv", [("9", "Zed")])), is_incremental=False)
    assert client.tables.preview(table_id).splitlines() == ['"id","name"', '"9","Zed"']


def test_a_bad_file_is_a_clear_job_error(client, bucket, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text('id,name\n"unterminated,1\n')
    with pytest.raises(RuntimeError, match=r"(?i)line"):
        client.tables.create(bucket, "bad", str(bad))
