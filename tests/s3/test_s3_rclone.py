"""rclone (the Debian package, 1.60) against a real server, configured only by its environment: a
remote ``ent`` of type s3, provider Other, the endpoint, the key and a region, no config file.

rclone 1.60 refuses to start whenever ``AWS_CA_BUNDLE`` is set (``LoadCustomCABundleError ...
unsupported transport``), even over plain HTTP: the environment drops it, HTTPS uses ``--ca-cert``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

MiB = 1024 * 1024
JAN_2020 = 1577836800  # 2020-01-01T00:00:00Z

pytestmark = pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone is not installed")


def rclone_env(s3) -> dict[str, str]:
    env = {k: v for k, v in s3.client_env().items() if not k.startswith(("AWS_", "RCLONE_"))}
    env.update(
        RCLONE_CONFIG=os.devnull,
        RCLONE_CONFIG_ENT_TYPE="s3",
        RCLONE_CONFIG_ENT_PROVIDER="Other",
        RCLONE_CONFIG_ENT_ENDPOINT=s3.url,
        RCLONE_CONFIG_ENT_ACCESS_KEY_ID=s3.key.access_key_id,
        RCLONE_CONFIG_ENT_SECRET_ACCESS_KEY=s3.key.secret_access_key,
        RCLONE_CONFIG_ENT_REGION="us-east-1",
    )
    return env


def rclone(s3, *args: str, text: bool = True) -> subprocess.CompletedProcess:
    tls = ["--ca-cert", s3.ca] if s3.ca else []
    proc = subprocess.run(
        ["rclone", "--retries", "1", "--low-level-retries", "1", *tls, *args],
        env=rclone_env(s3),
        capture_output=True,
        text=text,
        timeout=120,
    )
    stderr = proc.stderr if text else proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise AssertionError(f"rclone {' '.join(args)} failed ({proc.returncode}):\n{stderr}")
    # a request the server refused that rclone worked around (a 501 on a probe) is logged as ERROR
    assert "ERROR" not in stderr, stderr
    return proc


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "a file.txt": b"hello from rclone\n",
        "sub/b.csv": b"id,name\n1,one\n",
        "big.bin": os.urandom(6 * MiB + 123),  # above 5 MiB, under rclone's upload cutoff: one PUT
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def keys(s3, bucket: str) -> dict[str, dict]:
    listed = s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: o for o in listed}


def test_copy_ls_check_sync_and_back(s3, tmp_path):
    bucket = f"rc-{uuid.uuid4().hex[:8]}"
    src = tmp_path / "src"
    files = make_tree(src)

    rclone(s3, "mkdir", f"ent:{bucket}")  # PUT /bucket with x-amz-acl: private
    s3.client().head_bucket(Bucket=bucket)
    rclone(s3, "copy", str(src), f"ent:{bucket}/data")

    stored = keys(s3, bucket)
    assert set(stored) == {f"data/{name}" for name in files}
    for name, data in files.items():  # single PUTs: the ETag is the MD5, what `check` compares
        assert stored[f"data/{name}"]["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        assert stored[f"data/{name}"]["Size"] == len(data)

    listed = rclone(s3, "ls", f"ent:{bucket}").stdout.splitlines()  # a recursive v1 listing
    assert sorted(line.split(None, 1)[1] for line in listed) == sorted(f"data/{n}" for n in files)
    assert f"{6 * MiB + 123} data/big.bin" in [" ".join(line.split()) for line in listed]
    # directories are common prefixes of a delimited listing
    assert rclone(s3, "lsd", f"ent:{bucket}").stdout.split()[-1] == "data"
    assert rclone(s3, "lsd", f"ent:{bucket}/data").stdout.split()[-1] == "sub"
    assert bucket in rclone(s3, "lsd", "ent:").stdout.split()  # ListBuckets

    checked = rclone(s3, "check", str(src), f"ent:{bucket}/data")
    assert "0 differences found" in checked.stderr and "3 matching files" in checked.stderr

    # only the modification time differs: rclone copies the object onto itself with
    # x-amz-metadata-directive: REPLACE and a new x-amz-meta-mtime, and transfers nothing
    before = s3.client().head_object(Bucket=bucket, Key="data/a file.txt")
    os.utime(src / "a file.txt", (JAN_2020, JAN_2020))
    synced = rclone(s3, "sync", "-v", str(src), f"ent:{bucket}/data")
    assert "a file.txt: Updated modification time in destination" in synced.stderr
    assert "There was nothing to transfer" in synced.stderr
    after = s3.client().head_object(Bucket=bucket, Key="data/a file.txt")
    assert float(after["Metadata"]["mtime"]) == JAN_2020 != float(before["Metadata"]["mtime"])
    assert after["ETag"] == before["ETag"] and after["ContentType"] == before["ContentType"]
    lsl = rclone(s3, "lsl", f"ent:{bucket}/data/a file.txt").stdout
    assert "2020-01-01 00:00:00" in lsl

    back = tmp_path / "back"
    rclone(s3, "copy", f"ent:{bucket}/data", str(back))
    for name, data in files.items():
        assert (back / name).read_bytes() == data
    assert (back / "a file.txt").stat().st_mtime == JAN_2020  # the mtime travelled both ways

    # delete removes the files under a path and keeps the rest; purge empties and removes the bucket
    rclone(s3, "delete", f"ent:{bucket}/data/sub")
    assert set(keys(s3, bucket)) == {"data/a file.txt", "data/big.bin"}
    rclone(s3, "purge", f"ent:{bucket}")  # probes GET ?versioning first
    assert bucket not in [b["Name"] for b in s3.client().list_buckets()["Buckets"]]


def test_multipart_upload(s3, tmp_path):
    """Above --s3-upload-cutoff rclone uploads in parts (cutoff and parts lowered to 5 MiB here)."""
    bucket = s3.bucket("rcmp")
    data = os.urandom(12 * MiB + 5)
    (tmp_path / "big.bin").write_bytes(data)
    cutoff = ["--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M"]
    rclone(s3, "copyto", *cutoff, str(tmp_path / "big.bin"), f"ent:{bucket}/mp/big.bin")
    head = s3.client().head_object(Bucket=bucket, Key="mp/big.bin")
    assert head["ContentLength"] == len(data) and head["ETag"].endswith('-3"')
    # the ETag of a multipart object is no MD5: rclone keeps the file's MD5 in its metadata
    md5 = hashlib.md5(data).hexdigest()
    assert head["Metadata"]["md5chksum"]
    listed = json.loads(rclone(s3, "lsjson", "--hash", f"ent:{bucket}/mp").stdout)
    assert [(e["Name"], e["Size"], e["Hashes"]["md5"]) for e in listed] == [("big.bin", len(data), md5)]
    checked = rclone(s3, "check", str(tmp_path), f"ent:{bucket}/mp")
    assert "0 differences found" in checked.stderr
    assert rclone(s3, "cat", f"ent:{bucket}/mp/big.bin", text=False).stdout == data


def test_over_https(s3_tls, tmp_path):
    """Over TLS with the server's self-signed CA (--ca-cert)."""
    bucket = f"rctls-{uuid.uuid4().hex[:8]}"
    src = tmp_path / "src"
    files = make_tree(src)
    rclone(s3_tls, "mkdir", f"ent:{bucket}")
    rclone(s3_tls, "copy", str(src), f"ent:{bucket}")
    assert "0 differences found" in rclone(s3_tls, "check", str(src), f"ent:{bucket}").stderr
    rclone(s3_tls, "copy", f"ent:{bucket}", str(tmp_path / "back"))
    for name, data in files.items():
        assert (tmp_path / "back" / name).read_bytes() == data
    rclone(s3_tls, "purge", f"ent:{bucket}")
    assert bucket not in [b["Name"] for b in s3_tls.client().list_buckets()["Buckets"]]
