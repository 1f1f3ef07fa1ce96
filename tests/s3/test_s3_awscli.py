"""The AWS CLI (v1 from PyPI, run as ``python -m awscli``) against a real server over HTTP, configured
only by its environment: keys, region and AWS_ENDPOINT_URL_S3 (hermetic: no config files)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid

import pytest

MiB = 1024 * 1024


def aws(s3, *args: str, input: bytes | None = None, check: bool = True, env: dict | None = None):
    proc = subprocess.run(
        [sys.executable, "-m", "awscli", *args],
        env=env or s3.client_env(),
        input=input,
        capture_output=True,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"aws {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout!r}\n{proc.stderr!r}"
        )
    return proc


@pytest.fixture(scope="module")
def bucket(s3):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    aws(s3, "s3", "mb", f"s3://{name}")
    return name


def test_mb_and_ls(s3, bucket):
    listed = aws(s3, "s3", "ls").stdout.decode()
    assert bucket in listed and "private" in listed


def test_cp_up_and_down_small_and_multipart(s3, bucket, tmp_path):
    small = tmp_path / "small.csv"
    small.write_bytes(b"a,b\n1,2\n")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 * MiB))  # three 8 MiB-or-less parts
    aws(s3, "s3", "cp", str(small), f"s3://{bucket}/dir/small.csv")
    aws(s3, "s3", "cp", str(big), f"s3://{bucket}/dir/sub/big.bin")
    head = json.loads(aws(s3, "s3api", "head-object", "--bucket", bucket, "--key", "dir/sub/big.bin").stdout)
    assert head["ContentLength"] == 20 * MiB and head["ETag"].endswith('-3"')
    assert head["LastModified"]
    small_head = json.loads(
        aws(s3, "s3api", "head-object", "--bucket", bucket, "--key", "dir/small.csv").stdout
    )
    assert small_head["ContentType"] == "text/csv"  # the CLI guesses it from the name; kept as sent
    aws(s3, "s3", "cp", f"s3://{bucket}/dir/sub/big.bin", str(tmp_path / "back.bin"))
    assert (
        hashlib.md5((tmp_path / "back.bin").read_bytes()).digest() == hashlib.md5(big.read_bytes()).digest()
    )
    assert aws(s3, "s3", "cp", f"s3://{bucket}/dir/small.csv", "-").stdout == b"a,b\n1,2\n"


def test_stdin_upload_and_listings(s3, bucket):
    aws(s3, "s3", "cp", "-", f"s3://{bucket}/stdin/x.txt", input=b"from stdin\n")
    assert aws(s3, "s3", "cp", f"s3://{bucket}/stdin/x.txt", "-").stdout == b"from stdin\n"
    top = aws(s3, "s3", "ls", f"s3://{bucket}/").stdout.decode()
    assert "PRE stdin/" in top
    inner = aws(s3, "s3", "ls", f"s3://{bucket}/stdin/").stdout.decode()
    assert inner.strip().endswith("11 x.txt")
    recursive = aws(s3, "s3", "ls", "--recursive", f"s3://{bucket}").stdout.decode()
    assert "stdin/x.txt" in recursive
    listed = json.loads(aws(s3, "s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "stdin/").stdout)
    assert [o["Key"] for o in listed["Contents"]] == ["stdin/x.txt"]


def test_sync_rm_and_rb(s3, tmp_path):
    name = f"sync-{uuid.uuid4().hex[:8]}"
    aws(s3, "s3", "mb", f"s3://{name}")
    folder = tmp_path / "tree"
    (folder / "a" / "b").mkdir(parents=True)
    (folder / "top.txt").write_text("top")
    (folder / "a" / "b" / "deep name.txt").write_text("deep")
    (folder / "a" / "plus+eq=.txt").write_text("odd")
    aws(s3, "s3", "sync", str(folder), f"s3://{name}/t")
    recursive = aws(s3, "s3", "ls", "--recursive", f"s3://{name}").stdout.decode()
    for key in ("t/top.txt", "t/a/b/deep name.txt", "t/a/plus+eq=.txt"):
        assert key in recursive
    back = tmp_path / "back"
    aws(s3, "s3", "sync", f"s3://{name}/t", str(back))
    assert (back / "a" / "b" / "deep name.txt").read_text() == "deep"
    assert (back / "a" / "plus+eq=.txt").read_text() == "odd"
    assert aws(s3, "s3", "rb", f"s3://{name}", check=False).returncode != 0  # not empty
    aws(s3, "s3", "rm", f"s3://{name}/t/top.txt")
    aws(s3, "s3", "rm", "--recursive", f"s3://{name}/t/")
    assert aws(s3, "s3", "ls", "--recursive", f"s3://{name}", check=False).stdout == b""
    aws(s3, "s3", "rb", f"s3://{name}")
    assert name not in aws(s3, "s3", "ls").stdout.decode()


def test_errors_reach_the_user(s3, bucket):
    missing = aws(s3, "s3", "cp", f"s3://{bucket}/nope.txt", "-", check=False)
    assert missing.returncode != 0 and b"404" in missing.stderr
    wrong = s3.client_env(AWS_SECRET_ACCESS_KEY="x" * 40)
    denied = aws(s3, "s3", "ls", f"s3://{bucket}/", env=wrong, check=False)
    assert denied.returncode != 0 and b"SignatureDoesNotMatch" in denied.stderr
