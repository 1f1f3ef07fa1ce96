"""The fast path of small objects: credentials held in memory (and dropped at once on revocation),
small GET bodies sent as one message (ranges and conditions still right), small PUT bodies read in
one go."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import anyio
import httpx
import pytest
from botocore.exceptions import ClientError

from entrepot.app import create_app
from entrepot.core import auth
from entrepot.core.s3_credentials import cached
from entrepot.faces.s3.common import SMALL_BODY


def error_of(call: Any, *args: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    response = caught.value.response
    return response["Error"].get("Code", ""), response["ResponseMetadata"]["HTTPStatusCode"]


def test_revoking_a_key_over_http_refuses_its_next_request(s3):
    token = s3.server.token_for(can_manage_spaces=True)
    key = s3.new_key(token)
    c = s3.client(key)
    c.put_object(Bucket="private", Key="held.txt", Body=b"x")
    assert c.get_object(Bucket="private", Key="held.txt")["Body"].read() == b"x"
    assert cached(s3.server.services, key.access_key_id, None) is not None  # answered from memory
    r = httpx.delete(f"{s3.url}/s3/v1/keys/{key.access_key_id}", headers=s3.server.headers(token))
    assert r.status_code == 204, r.text
    assert error_of(c.get_object, Bucket="private", Key="held.txt") == ("InvalidAccessKeyId", 403)
    assert error_of(c.head_object, Bucket="private", Key="held.txt")[1] == 403
    assert error_of(c.put_object, Bucket="private", Key="held.txt", Body=b"y") == ("InvalidAccessKeyId", 403)


def test_revoking_the_token_over_http_refuses_its_keys_next_request(s3):
    token = s3.server.token_for(can_manage_spaces=True)
    key = s3.new_key(token)
    c = s3.client(key)
    c.put_object(Bucket="private", Key="token-held.txt", Body=b"x")
    c.head_object(Bucket="private", Key="token-held.txt")
    assert cached(s3.server.services, key.access_key_id, None) is not None
    token_id = auth.authenticate(s3.server.services.catalog, token).token_id
    r = httpx.delete(f"{s3.url}/v2/storage/tokens/{token_id}", headers=s3.server.headers())
    assert r.status_code == 204, r.text
    assert error_of(c.get_object, Bucket="private", Key="token-held.txt") == ("InvalidAccessKeyId", 403)
    assert s3.client().get_object(Bucket="private", Key="token-held.txt")["Body"].read() == b"x"  # others


def test_a_token_losing_a_permission_loses_it_for_its_keys_at_once(s3):
    token = s3.server.token_for(space_permissions={"private": "write"})
    c = s3.client(s3.new_key(token))
    c.put_object(Bucket="private", Key="perm-held.txt", Body=b"x")
    assert c.get_object(Bucket="private", Key="perm-held.txt")["Body"].read() == b"x"
    from entrepot.core.catalog import Token  # the test changes the row as an administrator would

    with s3.server.services.catalog.session() as s:
        row = s.get(Token, auth.authenticate(s3.server.services.catalog, token).token_id)
        assert row is not None
        row.space_permissions = {}
    assert error_of(c.get_object, Bucket="private", Key="perm-held.txt") == ("AccessDenied", 403)


# -- one message for a small GET, at the ASGI level ---------------------------------------------------


class Exchange:
    """One request through the ASGI app, with the messages it sent back."""

    def __init__(self, status: int, headers: dict[str, str], bodies: list[bytes]):
        self.status, self.headers, self.bodies = status, headers, bodies

    @property
    def body(self) -> bytes:
        return b"".join(self.bodies)


def asgi(app: Any, method: str, url: str, headers: dict[str, str] | None = None) -> Exchange:
    """``method url`` (a presigned URL) straight into ``app``, as uvicorn would hand it over."""
    parts = urlsplit(url)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote_to_bytes(parts.path).decode("utf-8"),
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "root_path": "",
        "headers": [
            (b"host", parts.netloc.encode()),
            *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
        ],
        "server": (parts.hostname, parts.port),
        "client": ("127.0.0.1", 50000),
    }
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        done = anyio.Event()
        received = False

        async def receive() -> dict[str, Any]:
            nonlocal received
            if not received:
                received = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()  # the client stays until the reply is complete
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                done.set()

        await app(scope, receive, send)

    anyio.run(run)
    start, *bodies = sent
    assert start["type"] == "http.response.start"
    assert all(m["type"] == "http.response.body" for m in bodies)
    assert not bodies[-1].get("more_body", False)
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return Exchange(start["status"], headers, [m.get("body", b"") for m in bodies])


@pytest.fixture(scope="module")
def app(s3):
    return create_app(s3.server.settings, s3.server.services)


@pytest.fixture(scope="module")
def objects(s3):
    """Presigned GET/HEAD URLs of a 4 KiB object, one of exactly SMALL_BODY bytes and one a byte larger."""
    c = s3.client(url="http://127.0.0.1:9")  # signed for a host the ASGI scope names too
    made = {}
    for name, size in (("small", 4096), ("edge", SMALL_BODY), ("large", SMALL_BODY + 1)):
        data = os.urandom(size)
        s3.client().put_object(Bucket="private", Key=f"one-message/{name}", Body=data)
        params = {"Bucket": "private", "Key": f"one-message/{name}"}
        made[name] = (
            data,
            c.generate_presigned_url("get_object", Params=params, ExpiresIn=600),
            c.generate_presigned_url("head_object", Params=params, ExpiresIn=600),
        )
    return made


@pytest.mark.parametrize("name", ["small", "edge"])
def test_a_small_get_is_one_body_message(app, objects, name):
    data, get_url, _ = objects[name]
    reply = asgi(app, "GET", get_url)
    assert reply.status == 200
    assert reply.bodies == [data]  # the whole body, in the one message that ends the reply
    assert reply.headers["content-length"] == str(len(data))
    assert reply.headers["accept-ranges"] == "bytes" and reply.headers["etag"]


def test_a_larger_get_is_still_streamed(app, objects):
    data, get_url, _ = objects["large"]
    reply = asgi(app, "GET", get_url)
    assert reply.status == 200 and reply.body == data
    assert len(reply.bodies) > 1  # chunks, then the empty message that ends the body
    assert reply.headers["content-length"] == str(len(data))


def test_ranges_of_a_small_object(app, objects):
    data, get_url, _ = objects["small"]
    cases = {
        "bytes=0-0": (0, 1),
        "bytes=100-199": (100, 200),
        "bytes=-10": (len(data) - 10, len(data)),
        "bytes=4000-": (4000, len(data)),
        "bytes=4000-999999": (4000, len(data)),
    }
    for header, (start, end) in cases.items():
        reply = asgi(app, "GET", get_url, {"Range": header})
        assert reply.status == 206, header
        assert reply.bodies == [data[start:end]], header
        assert reply.headers["content-range"] == f"bytes {start}-{end - 1}/{len(data)}", header
        assert reply.headers["content-length"] == str(end - start), header
    beyond = asgi(app, "GET", get_url, {"Range": "bytes=5000-6000"})
    assert beyond.status == 416 and b"InvalidRange" in beyond.body


def test_conditional_gets_of_a_small_object(app, objects):
    data, get_url, head_url = objects["small"]
    etag = asgi(app, "HEAD", head_url).headers["etag"]
    modified = asgi(app, "HEAD", head_url).headers["last-modified"]

    not_modified = asgi(app, "GET", get_url, {"If-None-Match": etag})
    assert not_modified.status == 304 and not_modified.body == b""
    assert not_modified.headers["etag"] == etag
    assert asgi(app, "GET", get_url, {"If-Modified-Since": modified}).status == 304
    assert asgi(app, "GET", get_url, {"If-None-Match": '"other"'}).bodies == [data]

    failed = asgi(app, "GET", get_url, {"If-Match": '"other"'})
    assert failed.status == 412 and b"PreconditionFailed" in failed.body
    assert asgi(app, "GET", get_url, {"If-Match": etag}).bodies == [data]
    assert asgi(app, "GET", get_url, {"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status == 412

    # If-Range: a range of the version named, else the whole (current) object
    same = asgi(app, "GET", get_url, {"Range": "bytes=0-9", "If-Range": etag})
    assert same.status == 206 and same.bodies == [data[:10]]
    stale = asgi(app, "GET", get_url, {"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert stale.status == 200 and stale.bodies == [data]


def test_head_of_a_small_object_has_the_length_and_no_body(app, objects):
    data, _, head_url = objects["small"]
    reply = asgi(app, "HEAD", head_url)
    assert reply.status == 200 and reply.body == b""
    assert reply.headers["content-length"] == str(len(data))
    ranged = asgi(app, "HEAD", head_url, {"Range": "bytes=0-99"})
    assert ranged.status == 206 and ranged.headers["content-length"] == "100" and ranged.body == b""


def test_an_empty_object_is_one_empty_message(s3, app):
    s3.client().put_object(Bucket="private", Key="one-message/empty", Body=b"")
    url = s3.client(url="http://127.0.0.1:9").generate_presigned_url(
        "get_object", Params={"Bucket": "private", "Key": "one-message/empty"}, ExpiresIn=600
    )
    reply = asgi(app, "GET", url)
    assert reply.status == 200 and reply.bodies == [b""] and reply.headers["content-length"] == "0"


def test_small_puts_of_every_body_kind_round_trip(s3):
    """Bodies up to SMALL_BODY are read in one trip to the event loop: plain, presigned, aws-chunked."""
    c = s3.client()
    for size in (0, 1, 4096, SMALL_BODY - 1, SMALL_BODY, SMALL_BODY + 1):
        data = os.urandom(size)
        c.put_object(Bucket="private", Key=f"small-put/{size}", Body=data)
        assert c.get_object(Bucket="private", Key=f"small-put/{size}")["Body"].read() == data
    url = c.generate_presigned_url(
        "put_object", Params={"Bucket": "private", "Key": "small-put/presigned"}, ExpiresIn=600
    )
    data = os.urandom(3000)
    assert httpx.put(url, content=data).status_code == 200
    assert c.get_object(Bucket="private", Key="small-put/presigned")["Body"].read() == data
    checked = s3.client(request_checksum_calculation="when_supported")
    checked.put_object(Bucket="private", Key="small-put/crc", Body=data, ChecksumAlgorithm="CRC32")
    assert c.get_object(Bucket="private", Key="small-put/crc")["Body"].read() == data
