"""Hand-built S3 requests on a raw HTTP connection: the body encodings no client in the test venv
sends (signed aws-chunked streams), and hostile or broken requests. Each refusal is a clear S3
error, and nothing is written: no object, no temp blob left behind."""

from __future__ import annotations

import base64
import hashlib
import http.client
import socket
import time
import zlib
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from entrepot.faces.s3.awschunked import encode
from entrepot.faces.s3.sigv4 import ChunkSigner, Scope, signing_key
from entrepot.syntax import TEMP_PREFIX

EMPTY = hashlib.sha256(b"").hexdigest()


def sign(s3, method: str, target: str, headers: dict[str, str], payload: str) -> dict[str, str]:
    """Headers of a request botocore signs with ``payload`` as its x-amz-content-sha256."""

    class Signer(S3SigV4Auth):
        def payload(self, request):  # the literal of a streaming or unsigned body
            return payload

    request = AWSRequest(method=method, url=f"{s3.url}{target}", headers=headers)
    Signer(Credentials(s3.key.access_key_id, s3.key.secret_access_key), "s3", "us-east-1").add_auth(request)
    return {k: v for k, v in request.headers.items()}


def chunk_signer(s3, headers: dict[str, str]) -> ChunkSigner:
    auth = headers["Authorization"]
    seed = auth.rsplit("Signature=", 1)[1]
    date = headers["X-Amz-Date"]
    scope = Scope(s3.key.access_key_id, date[:8], "us-east-1", "s3")
    return ChunkSigner(signing_key(s3.key.secret_access_key, scope), date, scope.text, seed)


def send(
    s3,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    expect: bool = False,
    hang_up: bool = False,
):
    """(status, headers, body) of one request on a fresh connection; with ``expect`` the body is only
    sent after a 100 Continue (as botocore does); with ``hang_up`` the client stops sending after
    ``body`` (shorter than announced) and closes its side."""
    parts = urlsplit(s3.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if expect:
            conn.putheader("Expect", "100-continue")
        conn.endheaders()
        if expect:
            # the server answers 100 Continue, or a final status without reading the body
            response = http.client.HTTPResponse(conn.sock, method=method)
            _, status, reason = response._read_status()
            if status != 100:
                response.status, response.reason, response.version = status, reason, 11
                response.headers = response.msg = http.client.parse_headers(response.fp)
                response.length = int(response.headers.get("content-length") or 0)
                response.chunked = False
                response.will_close = True
                return status, response.headers, response.read()
            while response.fp.readline() not in (b"\r\n", b"\n", b""):
                pass
        if body:
            conn.send(body)
        if hang_up:
            conn.sock.shutdown(socket.SHUT_WR)
            return 0, None, conn.sock.recv(65536)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def code_of(body: bytes) -> str:
    text = body.decode()
    return text.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in text else ""


def temp_blobs(s3) -> list[str]:
    root = s3.server.settings.data_dir / "blobs"
    return [str(p) for p in root.rglob(f"{TEMP_PREFIX}*")]


def eventually(condition, timeout: float = 10.0) -> bool:
    """Whether ``condition()`` holds within ``timeout`` seconds (polled: the server cleans up after the
    client has gone, on its own time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def exists(s3, key: str) -> bool:
    try:
        s3.client().head_object(Bucket="private", Key=key)
        return True
    except Exception:
        return False


def streaming_put(
    s3,
    key: str,
    data: bytes,
    *,
    trailer: dict[str, str] | None = None,
    chunk: int = 65536,
    tamper=None,
    decoded_length: int | None = None,
    hang_up: bool = False,
):
    mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")
    target = f"/private/{key}"
    headers = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(len(data) if decoded_length is None else decoded_length),
    }
    if trailer:
        headers["X-Amz-Trailer"] = ",".join(trailer)
    # the encoded length is signed too: encode once with a throw-away signature to know it
    probe = encode(data, chunk, ChunkSigner(b"k", "d", "s", "0" * 64), trailer)
    headers["Content-Length"] = str(len(probe))
    signed = sign(s3, "PUT", target, headers, mode)
    body = encode(data, chunk, chunk_signer(s3, signed), trailer)
    assert len(body) == len(probe)
    if tamper is not None:
        body = tamper(body)
    return send(s3, "PUT", target, signed, body, hang_up=hang_up)


def test_signed_chunked_bodies_are_verified_chunk_by_chunk(s3):
    data = bytes(range(256)) * 1000
    status, headers, body = streaming_put(s3, "wire/signed.bin", data)
    assert status == 200, body
    assert headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert s3.client().get_object(Bucket="private", Key="wire/signed.bin")["Body"].read() == data


def test_signed_chunked_bodies_with_a_signed_checksum_trailer(s3):
    data = b"t" * 100_000
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    status, headers, body = streaming_put(s3, "wire/trailer.bin", data, trailer={"x-amz-checksum-crc32": crc})
    assert status == 200, body
    assert headers["x-amz-checksum-crc32"] == crc
    head = s3.client().head_object(Bucket="private", Key="wire/trailer.bin", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("flip", "SignatureDoesNotMatch"),
        ("truncate", "IncompleteBody"),
        ("length", "IncompleteBody"),
        ("small", "InvalidChunkSizeError"),
        ("trailer", "SignatureDoesNotMatch"),
    ],
)
def test_broken_signed_streams_store_nothing(s3, case, expected):
    data = b"s" * 150_000
    key = f"wire/broken-{case}.bin"
    kwargs: dict = {}
    if case == "flip":
        kwargs["tamper"] = lambda b: b[:5000] + bytes([b[5000] ^ 1]) + b[5001:]
    elif case == "truncate":
        kwargs["tamper"] = lambda b: b[: len(b) // 2]
    elif case == "length":
        kwargs["decoded_length"] = len(data) - 1
    elif case == "small":
        kwargs["chunk"] = 4096
    elif case == "trailer":
        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        kwargs["trailer"] = {"x-amz-checksum-crc32": crc}
        kwargs["tamper"] = lambda b: b.replace(crc.encode(), b"AAAAAA==")
    if case == "truncate":
        # the client goes away mid-body: the server drops what it received
        streaming_put(s3, key, data, hang_up=True, **kwargs)
        assert eventually(lambda: temp_blobs(s3) == [])
    else:
        status, _, body = streaming_put(s3, key, data, **kwargs)
        assert (status, code_of(body)) == (403 if expected == "SignatureDoesNotMatch" else 400, expected)
    assert not exists(s3, key)
    assert temp_blobs(s3) == []


def unsigned_trailer_put(s3, key: str, data: bytes, trailer: dict[str, str], announced: str | None = None):
    target = f"/private/{key}"
    body = encode(data, 8192, None, trailer)
    headers = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(len(data)),
        "X-Amz-Trailer": announced or ",".join(trailer) or "x-amz-checksum-crc32",
        "Content-Length": str(len(body)),
    }
    return send(
        s3, "PUT", target, sign(s3, "PUT", target, headers, "STREAMING-UNSIGNED-PAYLOAD-TRAILER"), body
    )


def test_unsigned_trailer_bodies_over_plain_http(s3):
    data = b"u" * 50_000
    good = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    status, headers, _ = unsigned_trailer_put(s3, "wire/ut.bin", data, {"x-amz-checksum-crc32": good})
    assert status == 200 and headers["x-amz-checksum-crc32"] == good
    status, _, body = unsigned_trailer_put(s3, "wire/ut-bad.bin", data, {"x-amz-checksum-crc32": "AAAAAA=="})
    assert (status, code_of(body)) == (400, "BadDigest")
    status, _, body = unsigned_trailer_put(s3, "wire/ut-missing.bin", data, {})
    assert (status, code_of(body)) == (400, "IncompleteBody")
    status, _, body = unsigned_trailer_put(
        s3, "wire/ut-nvme.bin", data, {"x-amz-checksum-crc64nvme": "AAAAAAAAAAA="}
    )
    assert (status, code_of(body)) == (400, "InvalidRequest")
    assert not any(exists(s3, f"wire/{k}") for k in ("ut-bad.bin", "ut-missing.bin", "ut-nvme.bin"))
    assert temp_blobs(s3) == []


def test_a_wrong_payload_hash_stores_nothing(s3):
    target = "/private/wire/hex.bin"
    headers = {"Content-Length": "5"}
    signed = sign(s3, "PUT", target, headers, hashlib.sha256(b"other").hexdigest())
    status, _, body = send(s3, "PUT", target, signed, b"hello")
    assert (status, code_of(body)) == (400, "XAmzContentSHA256Mismatch")
    assert not exists(s3, "wire/hex.bin") and temp_blobs(s3) == []


def test_unsigned_amz_headers_are_refused(s3):
    target = "/private/wire/meta.bin"
    signed = sign(s3, "PUT", target, {"Content-Length": "1"}, hashlib.sha256(b"x").hexdigest())
    signed["x-amz-meta-injected"] = "yes"
    status, _, body = send(s3, "PUT", target, signed, b"x")
    assert (status, code_of(body)) == (403, "AccessDenied")
    assert b"x-amz-meta-injected" in body and not exists(s3, "wire/meta.bin")


def test_refusals_before_the_body_do_not_wait_for_it(s3):
    """With Expect: 100-continue a refused request is answered at once, and the connection closed."""
    target = "/private/wire/huge.bin"
    headers = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(6 * 1024**3),  # over s3_max_put_bytes (5 GiB)
        "Content-Length": str(6 * 1024**3 + 1000),
    }
    signed = sign(s3, "PUT", target, headers, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    status, response_headers, body = send(s3, "PUT", target, signed, expect=True)
    assert (status, code_of(body)) == (400, "EntityTooLarge")
    assert response_headers["Connection"] == "close"
    nosuch = "/nosuchbucket/x"
    signed = sign(s3, "PUT", nosuch, {"Content-Length": "1000000"}, "UNSIGNED-PAYLOAD")
    status, response_headers, body = send(s3, "PUT", nosuch, signed, expect=True)
    assert (status, code_of(body)) == (404, "NoSuchBucket") and response_headers["Connection"] == "close"


def test_head_problems(s3):
    target = "/private/wire/nolength"
    signed = sign(s3, "PUT", target, {}, EMPTY)
    status, _, body = send(s3, "PUT", target, signed)
    assert (status, code_of(body)) == (411, "MissingContentLength")
    signed = sign(
        s3, "PUT", target, {"Content-Length": "1", "Content-MD5": "short"}, hashlib.sha256(b"x").hexdigest()
    )
    status, _, body = send(s3, "PUT", target, signed, b"x")
    assert (status, code_of(body)) == (400, "InvalidDigest")
    for raw in ("/private/a/../b", "/private/a%01b", "/private/a//b", "/private/a/./b"):
        signed = sign(s3, "PUT", raw, {"Content-Length": "1"}, hashlib.sha256(b"x").hexdigest())
        status, _, body = send(s3, "PUT", raw, signed, b"x")
        assert (status, code_of(body)) == (400, "InvalidArgument"), raw


def test_delete_objects_needs_an_integrity_header_and_plain_xml(s3):
    target = "/private?delete"
    xml = b"<Delete><Object><Key>x</Key></Object></Delete>"
    signed = sign(s3, "POST", target, {"Content-Length": str(len(xml))}, hashlib.sha256(xml).hexdigest())
    status, _, body = send(s3, "POST", target, signed, xml)
    assert (status, code_of(body)) == (400, "InvalidRequest")
    evil = b'<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><Delete><Object><Key>&e;</Key></Object></Delete>'
    md5 = base64.b64encode(hashlib.md5(evil).digest()).decode()
    signed = sign(
        s3,
        "POST",
        target,
        {"Content-Length": str(len(evil)), "Content-MD5": md5},
        hashlib.sha256(evil).hexdigest(),
    )
    status, _, body = send(s3, "POST", target, signed, evil)
    assert (status, code_of(body)) == (400, "MalformedXML") and b"root:" not in body
    wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    signed = sign(
        s3,
        "POST",
        target,
        {"Content-Length": str(len(xml)), "Content-MD5": wrong_md5},
        hashlib.sha256(xml).hexdigest(),
    )
    status, _, body = send(s3, "POST", target, signed, xml)
    assert (status, code_of(body)) == (400, "BadDigest")


def test_internal_errors_are_xml_without_details(s3):
    """A request whose error the face cannot foresee still gets S3's envelope (never a traceback)."""
    target = "/private/wire/x?uploadId=" + "z" * 32
    signed = sign(s3, "GET", target, {}, EMPTY)
    status, headers, body = send(s3, "GET", target, signed)
    assert (status, code_of(body)) == (404, "NoSuchUpload")
    assert headers["Content-Type"] == "application/xml" and b"Traceback" not in body


def test_bodies_stream_in_bounded_memory(s3):
    """A 128 MiB PUT and GET move through the server (in this process) holding a few MiB at a time."""
    import tracemalloc

    size, piece = 128 * 1024 * 1024, b"m" * (1024 * 1024)
    c = s3.client()
    put_url = urlsplit(
        c.generate_presigned_url("put_object", Params={"Bucket": "private", "Key": "wire/huge"})
    )
    get_url = urlsplit(
        c.generate_presigned_url("get_object", Params={"Bucket": "private", "Key": "wire/huge"})
    )
    conn = http.client.HTTPConnection(put_url.hostname, put_url.port, timeout=60)
    tracemalloc.start()
    try:
        conn.putrequest("PUT", f"{put_url.path}?{put_url.query}")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        for _ in range(size // len(piece)):
            conn.send(piece)
        response = conn.getresponse()
        assert response.status == 200, response.read()
        response.read()
        put_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        conn.request("GET", f"{get_url.path}?{get_url.query}")
        response = conn.getresponse()
        received = 0
        while chunk := response.read(1024 * 1024):
            received += len(chunk)
        get_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        conn.close()
    assert received == size
    assert put_peak < 48 * 1024 * 1024, put_peak
    assert get_peak < 48 * 1024 * 1024, get_peak
    c.delete_object(Bucket="private", Key="wire/huge")


def test_an_abandoned_download_stops_reading(s3):
    """A client that goes away mid-download: the server stops streaming and stays healthy."""
    c = s3.client()
    c.put_object(Bucket="private", Key="wire/abandon", Body=b"a" * (32 * 1024 * 1024))
    url = urlsplit(
        c.generate_presigned_url("get_object", Params={"Bucket": "private", "Key": "wire/abandon"})
    )
    for _ in range(5):
        sock = socket.create_connection((url.hostname, url.port), timeout=10)
        sock.sendall(f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.close()
    assert c.get_object(Bucket="private", Key="wire/abandon", Range="bytes=0-1")["Body"].read() == b"aa"
