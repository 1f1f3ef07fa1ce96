"""s3fs (fsspec's S3 filesystem, on aiobotocore) and pandas' ``s3://`` paths against a real server,
configured with the endpoint, the key and a region only. What they send that boto3 does not:
``delimiter=`` (empty) for a recursive listing, DeleteObjects for ``rm``, a ``prefix=<key>/``
listing for ``exists``/``info`` of a pseudo-directory."""

from __future__ import annotations

import hashlib
import os
import uuid

import pandas as pd
import pytest
import s3fs

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def _no_aws_environment(monkeypatch):
    """Only what the test passes: no key, endpoint or CA bundle from this machine's environment."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)


def options(s3) -> dict:
    """What a user writes: pandas' storage_options, the same arguments as S3FileSystem's."""
    client_kwargs: dict = {"region_name": "us-east-1"}
    if s3.ca:
        client_kwargs["verify"] = s3.ca
    return {
        "key": s3.key.access_key_id,
        "secret": s3.key.secret_access_key,
        "endpoint_url": s3.url,
        "client_kwargs": client_kwargs,
    }


def filesystem(s3) -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(skip_instance_cache=True, **options(s3))


def test_pipe_cat_ls_info_find(s3):
    fs = filesystem(s3)
    bucket = s3.bucket("fs")
    fs.pipe(f"{bucket}/dir/a.txt", b"hello s3fs")
    fs.pipe(
        {f"{bucket}/dir/sub/b.txt": b"b", f"{bucket}/dir/sub/deeper/c.txt": b"c", f"{bucket}/top.txt": b""}
    )
    assert fs.cat(f"{bucket}/dir/a.txt") == b"hello s3fs"
    assert s3.client().get_object(Bucket=bucket, Key="dir/a.txt")["Body"].read() == b"hello s3fs"

    # one level: files and the common prefixes of a delimited listing, as directories
    assert sorted(fs.ls(bucket, detail=False)) == [f"{bucket}/dir", f"{bucket}/top.txt"]
    entries = {e["name"]: e for e in fs.ls(f"{bucket}/dir/", detail=True)}
    assert entries[f"{bucket}/dir/a.txt"]["type"] == "file" and entries[f"{bucket}/dir/a.txt"]["size"] == 10
    assert entries[f"{bucket}/dir/sub"]["type"] == "directory"
    assert set(entries) == {f"{bucket}/dir/a.txt", f"{bucket}/dir/sub"}

    fresh = filesystem(s3)  # no listing cached: info of a pseudo-directory asks the server
    assert fresh.info(f"{bucket}/dir/sub")["type"] == "directory"
    assert fresh.isdir(f"{bucket}/dir/sub") and not fresh.isfile(f"{bucket}/dir/sub")
    info = fresh.info(f"{bucket}/dir/a.txt")
    assert info["type"] == "file" and info["ETag"] == f'"{hashlib.md5(b"hello s3fs").hexdigest()}"'

    # recursive: one listing without a delimiter (s3fs sends delimiter= empty)
    assert fresh.find(f"{bucket}/dir") == [
        f"{bucket}/dir/a.txt",
        f"{bucket}/dir/sub/b.txt",
        f"{bucket}/dir/sub/deeper/c.txt",
    ]
    assert fresh.du(bucket) == 12


def test_multipart_write_and_ranged_reads(s3):
    fs = filesystem(s3)
    bucket = s3.bucket("fsmp")
    data = os.urandom(12 * MiB + 7)
    with fs.open(f"{bucket}/big.bin", "wb", block_size=5 * MiB) as f:  # parts of 5 MiB
        for i in range(0, len(data), MiB):
            f.write(data[i : i + MiB])
    head = s3.client().head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(data) and head["ETag"].endswith('-3"')

    with fs.open(f"{bucket}/big.bin", "rb", block_size=MiB) as f:
        f.seek(5 * MiB - 3)  # across the first part boundary
        assert f.read(6) == data[5 * MiB - 3 : 5 * MiB + 3]
        f.seek(-10, os.SEEK_END)
        assert f.read() == data[-10:]
        assert f.tell() == len(data)
    assert (
        fs.cat_file(f"{bucket}/big.bin", start=10 * MiB, end=10 * MiB + 100)
        == data[10 * MiB : 10 * MiB + 100]
    )
    assert hashlib.sha256(fs.cat(f"{bucket}/big.bin")).digest() == hashlib.sha256(data).digest()


def test_rm_recursive_and_exists(s3):
    fs = filesystem(s3)
    bucket = s3.bucket("fsrm")
    fs.pipe({f"{bucket}/gone/{i}.txt": b"x" for i in range(5)} | {f"{bucket}/kept.txt": b"k"})
    assert fs.exists(f"{bucket}/gone/3.txt") and fs.exists(f"{bucket}/gone")
    fs.rm(f"{bucket}/gone", recursive=True)  # DeleteObjects
    listed = s3.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == ["kept.txt"]
    fresh = filesystem(s3)
    assert not fresh.exists(f"{bucket}/gone/3.txt")  # HEAD 404, then an empty prefix listing
    assert not fresh.exists(f"{bucket}/gone")
    assert fresh.exists(f"{bucket}/kept.txt")
    fs.rm(f"{bucket}/kept.txt")
    assert not filesystem(s3).exists(f"{bucket}/kept.txt")
    with pytest.raises(FileNotFoundError):
        filesystem(s3).cat(f"{bucket}/kept.txt")


def test_pandas_parquet_and_csv(s3):
    bucket = s3.bucket("pd")
    frame = pd.DataFrame({"id": range(2000), "team": [f"team {i % 7}" for i in range(2000)]})
    frame.to_parquet(f"s3://{bucket}/t/frame.parquet", storage_options=options(s3))
    back = pd.read_parquet(f"s3://{bucket}/t/frame.parquet", storage_options=options(s3))
    pd.testing.assert_frame_equal(back, frame)
    # a column and a filter: pyarrow reads the footer and the column chunks by ranges
    teams = pd.read_parquet(
        f"s3://{bucket}/t/frame.parquet",
        columns=["team"],
        filters=[("id", "<", 10)],
        storage_options=options(s3),
    )
    assert teams["team"].tolist() == [f"team {i % 7}" for i in range(10)]

    frame.to_csv(f"s3://{bucket}/t/frame.csv", index=False, storage_options=options(s3))
    body = s3.client().get_object(Bucket=bucket, Key="t/frame.csv")["Body"].read()
    assert body.startswith(b"id,team\n0,team 0\n")
    pd.testing.assert_frame_equal(
        pd.read_csv(f"s3://{bucket}/t/frame.csv", storage_options=options(s3)), frame
    )


def test_over_https(s3_tls):
    """Over TLS (client_kwargs verify= the server's CA): s3fs sends aws-chunked bodies there."""
    fs = filesystem(s3_tls)
    bucket = f"fstls-{uuid.uuid4().hex[:8]}"
    fs.mkdir(bucket)
    data = os.urandom(11 * MiB)
    with fs.open(f"{bucket}/big.bin", "wb", block_size=5 * MiB) as f:
        for i in range(0, len(data), MiB):
            f.write(data[i : i + MiB])
    fs.pipe(f"{bucket}/small.txt", b"over tls")
    assert s3_tls.client().head_object(Bucket=bucket, Key="big.bin")["ETag"].endswith('-3"')
    assert fs.cat(f"{bucket}/small.txt") == b"over tls"
    assert fs.cat(f"{bucket}/big.bin") == data
    frame = pd.DataFrame({"x": [1, 2, 3]})
    frame.to_parquet(f"s3://{bucket}/x.parquet", storage_options=options(s3_tls))
    pd.testing.assert_frame_equal(
        pd.read_parquet(f"s3://{bucket}/x.parquet", storage_options=options(s3_tls)), frame
    )
    fs.rm(bucket, recursive=True)
    assert bucket not in [b["Name"] for b in s3_tls.client().list_buckets()["Buckets"]]
