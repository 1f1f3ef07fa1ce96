"""The S3 face over HTTPS (``--tls self-signed``, clients trusting its CA): the only place boto3 and
the AWS CLI send ``aws-chunked`` bodies with a checksum trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import socket
import subprocess
import sys
import time
import zlib
from unittest import mock

import duckdb

from entrepot.core.engine.extensions import extension_path

MiB = 1024 * 1024


def recording(client):
    """Record the payload mode of every request the client sends (to know which path was exercised)."""
    seen: list[tuple[str, str]] = []

    def record(request, **_):
        seen.append((request.method, request.headers.get("x-amz-content-sha256", b"").decode()))

    client.meta.events.register("before-send.s3", record)
    return seen


def test_boto3_puts_arrive_aws_chunked_with_a_verified_trailer(s3_tls):
    c = s3_tls.client()
    seen = recording(c)
    body = os.urandom(300_000)
    put = c.put_object(Bucket="private", Key="tls/chunked.bin", Body=body)
    assert seen[-1] == ("PUT", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    assert put["ChecksumCRC32"] == base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    got = c.get_object(Bucket="private", Key="tls/chunked.bin", ChecksumMode="ENABLED")
    assert got["Body"].read() == body and got["ChecksumCRC32"] == put["ChecksumCRC32"]
    assert got["ContentLength"] == len(body)  # the decoded size, not the encoded one
    sha = c.put_object(Bucket="private", Key="tls/sha.bin", Body=body, ChecksumAlgorithm="SHA256")
    assert sha["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    empty = c.put_object(Bucket="private", Key="tls/empty", Body=b"")
    assert c.head_object(Bucket="private", Key="tls/empty")["ContentLength"] == 0 and empty["ETag"]
    c.put_object(Bucket="private", Key="tls/meta", Body=b"m", Metadata={"k": "v"}, ContentEncoding="gzip")
    head = c.head_object(Bucket="private", Key="tls/meta")
    assert head["Metadata"] == {"k": "v"} and head["ContentEncoding"] == "gzip"  # aws-chunked is not stored
    c.close()


def test_boto3_multipart_parts_arrive_chunked_too(s3_tls):
    c = s3_tls.client()
    seen = recording(c)
    data = os.urandom(20 * MiB)
    c.upload_fileobj(io.BytesIO(data), "private", "tls/multi.bin")
    assert ("PUT", "STREAMING-UNSIGNED-PAYLOAD-TRAILER") in seen
    out = io.BytesIO()
    c.download_fileobj("private", "tls/multi.bin", out)
    assert out.getvalue() == data
    assert c.head_object(Bucket="private", Key="tls/multi.bin")["ETag"].endswith('-3"')
    c.close()


def test_other_payload_modes_over_https(s3_tls):
    unsigned = s3_tls.client(
        s3={"payload_signing_enabled": False}, request_checksum_calculation="when_required"
    )
    seen = recording(unsigned)
    unsigned.put_object(Bucket="private", Key="tls/unsigned", Body=b"u" * 1000)
    assert seen[-1] == ("PUT", "UNSIGNED-PAYLOAD")
    hexed = s3_tls.client(s3={"payload_signing_enabled": True}, request_checksum_calculation="when_required")
    seen = recording(hexed)
    hexed.put_object(Bucket="private", Key="tls/hex", Body=b"h" * 1000)
    assert seen[-1] == ("PUT", hashlib.sha256(b"h" * 1000).hexdigest())
    assert unsigned.get_object(Bucket="private", Key="tls/hex")["Body"].read() == b"h" * 1000
    unsigned.close()
    hexed.close()


def test_a_small_put_over_https_gets_100_continue(s3_tls):
    c = s3_tls.client()
    c.put_object(Bucket="private", Key="tls/warm", Body=b"1")
    started = time.perf_counter()
    c.put_object(Bucket="private", Key="tls/one", Body=b"1")
    assert time.perf_counter() - started < 0.5  # without 100 Continue botocore waits a full second
    c.close()


def test_the_aws_cli_over_https(s3_tls, tmp_path):
    source = tmp_path / "f.bin"
    source.write_bytes(os.urandom(9 * MiB))  # two parts
    env = s3_tls.client_env()
    for args in (
        ["s3", "cp", str(source), "s3://private/tls/cli.bin"],
        ["s3", "cp", "s3://private/tls/cli.bin", str(tmp_path / "back.bin")],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "awscli", *args], env=env, capture_output=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()


def test_duckdb_over_https(s3_tls):
    con = duckdb.connect(
        config={"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}
    )
    con.execute(f"LOAD '{extension_path('httpfs')}'")
    con.execute(f"SET ca_cert_file = '{s3_tls.ca}'")
    endpoint = s3_tls.url.split("://", 1)[1]
    con.execute(
        f"""CREATE SECRET tls (TYPE s3, KEY_ID '{s3_tls.key.access_key_id}',
            SECRET '{s3_tls.key.secret_access_key}', REGION 'us-east-1', ENDPOINT '{endpoint}',
            URL_STYLE 'path', USE_SSL true)"""
    )
    con.execute("COPY (SELECT range AS id FROM range(1000)) TO 's3://private/tls/duck.parquet'")
    assert con.execute("SELECT sum(id) FROM 's3://private/tls/duck.parquet'").fetchone() == (499500,)


def test_virtual_host_style_over_https_is_covered_by_the_certificate(s3_tls):
    s3_tls.client().put_object(Bucket="public", Key="vhost/tls.txt", Body=b"secure")
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):  # <bucket>.s3.localhost without a DNS wildcard record
        if isinstance(host, str) and host.endswith(".s3.localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    port = s3_tls.s3_url.rsplit(":", 1)[1]
    with mock.patch("socket.getaddrinfo", resolve):
        # verify=ca.pem: the handshake checks public.s3.localhost against the certificate
        c = s3_tls.client(url=f"https://s3.localhost:{port}", s3={"addressing_style": "virtual"})
        assert c.get_object(Bucket="public", Key="vhost/tls.txt")["Body"].read() == b"secure"
