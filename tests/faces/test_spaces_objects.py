"""The native spaces API over HTTP, on a real server, once with the local and once with the S3 blob store."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlparse

import httpx
import pytest

from entrepot.core import projects
from support.server import RunningServer, start_server


class Blobs:
    """Look behind the blob store's back: which blob keys exist under ``spaces/``."""

    def __init__(self, server: RunningServer, s3=None, bucket: str | None = None):  # type: ignore[no-untyped-def]
        self.server, self.s3, self.bucket = server, s3, bucket

    def keys(self, prefix: str = "spaces/") -> list[str]:
        if self.s3 is not None:
            return [k for k in self.s3.keys(self.bucket, "") if k.startswith(prefix)]
        root = self.server.services.blobs.root  # type: ignore[attr-defined]
        found = []
        for dirpath, _, files in os.walk(root):
            for name in files:
                rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
                if rel.startswith(prefix):
                    found.append(rel)
        return sorted(found)


@pytest.fixture(scope="module", params=["local", "s3"])
def env(request, tmp_path_factory) -> Iterator[tuple[RunningServer, Blobs]]:  # type: ignore[no-untyped-def]
    if request.param == "s3":
        s3 = request.getfixturevalue("s3_server")
        bucket = s3.create_bucket()
        srv = start_server(tmp_path_factory.mktemp("spaces-s3"), **s3.settings(bucket))
        blobs = Blobs(srv, s3, bucket)
    else:
        srv = start_server(tmp_path_factory.mktemp("spaces-local"))
        blobs = Blobs(srv)
    yield srv, blobs
    srv.stop()


@pytest.fixture
def server(env) -> RunningServer:  # type: ignore[no-untyped-def]
    return env[0]


@pytest.fixture
def blobs(env) -> Blobs:  # type: ignore[no-untyped-def]
    return env[1]


def base(server: RunningServer, space: str = "private") -> str:
    return f"{server.url}/spaces/v1/default/{space}"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def put(
    server: RunningServer, key: str, data: bytes, space: str = "private", token: str | None = None, **headers
):
    r = httpx.put(
        f"{base(server, space)}/objects/{key}",
        content=data,
        headers={**auth(token or server.token), **headers},
    )
    return r


def unique(name: str) -> str:
    return f"{name}-{time.monotonic_ns()}"


# -- spaces --------------------------------------------------------------------------------------
def test_every_project_has_public_and_private_and_anonymous_sees_only_public(server):
    r = httpx.get(f"{server.url}/spaces/v1/default", headers=auth(server.token))
    assert r.status_code == 200
    names = {s["name"]: s for s in r.json()["spaces"]}
    assert {"public", "private"} <= set(names)
    assert names["public"]["public"] is True and names["private"]["public"] is False
    anon = httpx.get(f"{server.url}/spaces/v1/default").json()["spaces"]
    assert [s["name"] for s in anon if s["name"] in ("public", "private")] == ["public"]
    assert anon[0]["access"] == "read"


def test_space_management_needs_manage_spaces(server):
    plain = server.token_for(space_permissions={"private": "write"})
    r = httpx.post(f"{server.url}/spaces/v1/default", json={"name": "nope"}, headers=auth(plain))
    assert r.status_code == 403 and "canManageSpaces" in r.json()["error"]["message"]
    manager = server.token_for(can_manage_spaces=True)
    name = unique("event")
    r = httpx.post(
        f"{server.url}/spaces/v1/default",
        json={"name": name, "description": "contest"},
        headers=auth(manager),
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == name and r.json()["public"] is False
    again = httpx.post(f"{server.url}/spaces/v1/default", json={"name": name}, headers=auth(manager))
    assert again.status_code == 409
    # a manager reads and writes every space
    assert put(server, "x.txt", b"x", space=name, token=manager).status_code == 201
    # plain token has no permission on the new space
    assert httpx.get(f"{base(server, name)}/objects/x.txt", headers=auth(plain)).status_code == 403


@pytest.mark.parametrize("name", ["UPPER", "under_score", "-lead", "trail-", "a" * 64, "sp ace", "..", "é"])
def test_invalid_space_names_are_refused(server, name):
    r = httpx.post(f"{server.url}/spaces/v1/default", json={"name": name}, headers=auth(server.token))
    assert r.status_code == 400, r.text
    assert "space name" in r.json()["error"]["message"]


def test_default_spaces_cannot_be_deleted_and_nonempty_needs_force(server, blobs):
    assert (
        httpx.delete(f"{server.url}/spaces/v1/default/public", headers=auth(server.token)).status_code == 409
    )
    name = unique("tmp")
    assert (
        httpx.post(
            f"{server.url}/spaces/v1/default", json={"name": name}, headers=auth(server.token)
        ).status_code
        == 201
    )
    assert put(server, "a/b.bin", os.urandom(1000), space=name).status_code == 201
    r = httpx.delete(f"{server.url}/spaces/v1/default/{name}", headers=auth(server.token))
    assert r.status_code == 409 and "force" in r.json()["error"]["message"]
    space_id = _space_id(server, name)
    assert blobs.keys(f"spaces/{space_id}/")
    r = httpx.delete(
        f"{server.url}/spaces/v1/default/{name}", params={"force": "true"}, headers=auth(server.token)
    )
    assert r.status_code == 204
    assert httpx.get(f"{server.url}/spaces/v1/default/{name}", headers=auth(server.token)).status_code == 404
    deadline = time.monotonic() + 20
    while blobs.keys(f"spaces/{space_id}/") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert blobs.keys(f"spaces/{space_id}/") == []  # the purge job removed the bytes


def _space_id(server: RunningServer, name: str) -> int:
    from entrepot.core.objects.spaces import get_space, resolve_project

    catalog = server.services.catalog
    return get_space(catalog, resolve_project(catalog, "default"), name).id


def test_expired_space_is_read_only_then_swept(server):
    from entrepot.core.objects.jobs import sweep

    name = unique("event")
    h = auth(server.token)
    assert (
        httpx.post(
            f"{server.url}/spaces/v1/default",
            json={"name": name, "expiresAt": "2999-01-01T00:00:00Z"},
            headers=h,
        ).status_code
        == 201
    )
    assert put(server, "result.json", b"{}", space=name).status_code == 201
    r = httpx.patch(
        f"{server.url}/spaces/v1/default/{name}", json={"expiresAt": "2001-01-01T00:00:00Z"}, headers=h
    )
    assert r.status_code == 400 and "future" in r.json()["error"]["message"]
    expire_now(server, name)
    assert httpx.get(f"{server.url}/spaces/v1/default/{name}", headers=h).json()["readOnly"] is True
    r = put(server, "late.json", b"{}", space=name)
    assert r.status_code == 409 and "read-only" in r.json()["error"]["message"]
    assert httpx.get(f"{base(server, name)}/objects/result.json", headers=h).content == b"{}"
    sweep(server.services)  # the grace period (7 days by default) has long passed
    assert httpx.get(f"{server.url}/spaces/v1/default/{name}", headers=h).status_code == 404


def expire_now(server: RunningServer, name: str, ago: timedelta = timedelta(days=30)) -> None:
    """Let a space's expiry lie in the past (the API only accepts future ones)."""
    from entrepot.core.catalog import Space
    from entrepot.core.clock import utcnow

    with server.services.catalog.session() as s:
        space = s.get(Space, _space_id(server, name))
        space.expires_at = utcnow() - ago


def test_default_spaces_cannot_expire_or_change_visibility(server):
    h = auth(server.token)
    r = httpx.patch(f"{server.url}/spaces/v1/default/private", json={"public": True}, headers=h)
    assert r.status_code == 409
    r = httpx.patch(
        f"{server.url}/spaces/v1/default/public", json={"expiresAt": "2030-01-01T00:00:00Z"}, headers=h
    )
    assert r.status_code == 409


# -- objects -------------------------------------------------------------------------------------
def test_put_get_head_delete_round_trip(server):
    data = os.urandom(300_000)
    key = f"{unique('dir')}/file.bin"
    r = put(server, key, data, **{"Content-Type": "application/x-thing", "X-Entrepot-Meta-Author": "Ada"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["size"] == len(data)
    assert body["etag"] == hashlib.md5(data).hexdigest()
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["metadata"] == {"author": "Ada"}
    assert r.headers["etag"] == f'"{body["etag"]}"'
    g = httpx.get(f"{base(server)}/objects/{key}", headers=auth(server.token))
    assert g.status_code == 200 and g.content == data
    assert g.headers["content-type"] == "application/x-thing"
    assert g.headers["x-entrepot-meta-author"] == "Ada"
    assert g.headers["content-disposition"] == 'inline; filename="file.bin"'
    h = httpx.head(f"{base(server)}/objects/{key}", headers=auth(server.token))
    assert h.status_code == 200 and h.headers["content-length"] == str(len(data)) and h.content == b""
    d = httpx.get(f"{base(server)}/objects/{key}", params={"download": "1"}, headers=auth(server.token))
    assert d.headers["content-disposition"] == 'attachment; filename="file.bin"'
    assert httpx.delete(f"{base(server)}/objects/{key}", headers=auth(server.token)).status_code == 204
    assert httpx.get(f"{base(server)}/objects/{key}", headers=auth(server.token)).status_code == 404
    assert httpx.delete(f"{base(server)}/objects/{key}", headers=auth(server.token)).status_code == 404


def test_replacing_an_object_swaps_versions_and_frees_the_old_blob(server, blobs):
    key = unique("versioned.txt")
    space_id = _space_id(server, "private")
    before = set(blobs.keys(f"spaces/{space_id}/objects/"))
    assert put(server, key, b"one").status_code == 201
    assert put(server, key, b"two").status_code == 201
    assert httpx.get(f"{base(server)}/objects/{key}", headers=auth(server.token)).content == b"two"
    added = set(blobs.keys(f"spaces/{space_id}/objects/")) - before
    assert len(added) == 1  # the first version's blob is gone


def test_content_type_is_guessed_from_the_key_and_unicode_names_download(server):
    key = f"{unique('docs')}/résumé.json"
    assert put(server, key, b"{}").status_code == 201
    g = httpx.get(f"{base(server)}/objects/{key}", headers=auth(server.token))
    assert g.headers["content-type"] == "application/json"
    assert g.headers["content-disposition"] == "inline; filename*=utf-8''r%C3%A9sum%C3%A9.json"


@pytest.mark.parametrize(
    "sent",
    [None, "application/x-www-form-urlencoded", "application/octet-stream", "Application/Octet-Stream; x=1"],
)
def test_a_generic_content_type_is_replaced_by_a_guess_from_the_key(server, sent):
    headers = {} if sent is None else {"Content-Type": sent}  # curl --data-binary sends form-urlencoded
    key = f"{unique('generic')}/my_file.txt"
    r = put(server, key, b"hello\n", **headers)
    assert r.status_code == 201, r.text
    assert r.json()["contentType"] == "text/plain"
    g = httpx.get(f"{base(server)}/objects/{key}", headers=auth(server.token))
    assert g.headers["content-type"].startswith("text/plain")
    # no known extension: the neutral type, never the form encoding
    r = put(server, unique("noext"), b"x", **headers)
    assert r.json()["contentType"] == "application/octet-stream"


def test_an_explicit_content_type_is_kept_as_given(server):
    key = unique("kept.txt")
    r = put(server, key, b"a,b\n", **{"Content-Type": "text/csv; charset=utf-8"})
    assert r.status_code == 201 and r.json()["contentType"] == "text/csv; charset=utf-8"
    g = httpx.get(f"{base(server)}/objects/{key}", headers=auth(server.token))
    assert g.headers["content-type"] == "text/csv; charset=utf-8"


@pytest.mark.parametrize(
    ("sent", "stored"), [("application/octet-stream", "text/csv"), ("text/x-mine", "text/x-mine")]
)
def test_multipart_upload_guesses_a_generic_content_type_and_keeps_an_explicit_one(server, sent, stored):
    h = auth(server.token)
    key = unique("multi") + ".csv"
    r = httpx.post(f"{base(server)}/uploads", json={"key": key, "contentType": sent}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["contentType"] == stored
    upload = r.json()["uploadId"]
    assert (
        httpx.put(f"{base(server)}/uploads/{upload}/parts/1", content=b"a,b\n", headers=h).status_code == 200
    )
    done = httpx.post(f"{base(server)}/uploads/{upload}/complete", headers=h)
    assert done.status_code == 201, done.text
    assert done.json()["contentType"] == stored


def test_ranges(server):
    data = bytes(range(256)) * 4
    key = unique("ranged.bin")
    assert put(server, key, data).status_code == 201
    url = f"{base(server)}/objects/{key}"
    h = auth(server.token)
    r = httpx.get(url, headers={**h, "Range": "bytes=10-19"})
    assert (
        r.status_code == 206
        and r.content == data[10:20]
        and r.headers["content-range"] == f"bytes 10-19/{len(data)}"
    )
    r = httpx.get(url, headers={**h, "Range": "bytes=1000-"})
    assert r.status_code == 206 and r.content == data[1000:]
    r = httpx.get(url, headers={**h, "Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == data[-5:]
    r = httpx.get(url, headers={**h, "Range": "bytes=0-99999"})
    assert r.status_code == 206 and r.content == data
    r = httpx.get(url, headers={**h, "Range": "bytes=5000-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(data)}"
    r = httpx.get(url, headers={**h, "Range": "bytes=0-1,5-6"})  # several ranges: the whole object
    assert r.status_code == 200 and r.content == data


def test_conditional_requests(server):
    key = unique("cond.txt")
    etag = put(server, key, b"hello").json()["etag"]
    url = f"{base(server)}/objects/{key}"
    h = auth(server.token)
    assert httpx.get(url, headers={**h, "If-None-Match": f'"{etag}"'}).status_code == 304
    assert httpx.get(url, headers={**h, "If-None-Match": '"other"'}).status_code == 200
    last_modified = httpx.head(url, headers=h).headers["last-modified"]
    assert httpx.get(url, headers={**h, "If-Modified-Since": last_modified}).status_code == 304
    assert (
        httpx.get(url, headers={**h, "If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 200
    )
    assert httpx.get(url, headers={**h, "If-Match": '"other"'}).status_code == 412
    r = httpx.get(url, headers={**h, "Range": "bytes=0-1", "If-Range": '"stale"'})
    assert r.status_code == 200 and r.content == b"hello"


# -- permissions --------------------------------------------------------------------------------
def test_public_reads_are_anonymous_writes_need_write_permission(server):
    key = unique("pub.txt")
    assert put(server, key, b"for everyone", space="public").status_code == 201
    r = httpx.get(f"{base(server, 'public')}/objects/{key}")
    assert r.status_code == 200 and r.content == b"for everyone"
    r = httpx.put(f"{base(server, 'public')}/objects/{key}", content=b"vandal")
    assert r.status_code == 401 and "write permission" in r.json()["error"]["message"]
    reader = server.token_for(space_permissions={"public": "read"})
    r = put(server, key, b"vandal", space="public", token=reader)
    assert r.status_code == 403 and "no write permission on space 'public'" in r.json()["error"]["message"]
    writer = server.token_for(space_permissions={"public": "write"})
    assert put(server, key, b"new", space="public", token=writer).status_code == 201


def test_private_needs_a_token_with_permission(server):
    key = unique("secret.txt")
    assert put(server, key, b"s").status_code == 201
    url = f"{base(server)}/objects/{key}"
    r = httpx.get(url)
    assert r.status_code == 401 and "needs a token with read permission" in r.json()["error"]["message"]
    assert httpx.get(url, headers=auth("1-999-" + "a" * 64)).status_code == 401
    other = server.token_for(space_permissions={"public": "write"})
    assert httpx.get(url, headers=auth(other)).status_code == 403
    reader = server.token_for(space_permissions={"private": "read"})
    assert httpx.get(url, headers=auth(reader)).content == b"s"
    r = httpx.delete(url, headers=auth(reader))
    assert r.status_code == 403
    assert httpx.get(f"{base(server)}/objects", headers=auth(other)).status_code == 403


def test_tokens_of_another_project_cannot_touch_this_one(server):
    other = projects.create_project(server.services.catalog, unique("other"))
    key = unique("mine.txt")
    assert put(server, key, b"mine").status_code == 201
    r = httpx.get(f"{base(server)}/objects/{key}", headers=auth(other.master.token))
    assert r.status_code == 403 and "another project" in r.json()["error"]["message"]
    r = put(server, key, b"theirs", token=other.master.token)
    assert r.status_code == 403
    # their own spaces exist and work
    name = other.project.name
    r = httpx.put(
        f"{server.url}/spaces/v1/{name}/private/objects/x", content=b"x", headers=auth(other.master.token)
    )
    assert r.status_code == 201
    assert httpx.get(f"{base(server)}/objects/{key}", headers=auth(server.token)).content == b"mine"


# -- hostile input -------------------------------------------------------------------------------
def _raw(
    server: RunningServer, method: str, path: str, body: bytes = b"", headers: dict | None = None
) -> tuple[int, bytes]:
    """Send a request with a path exactly as given (no client-side normalisation)."""
    import http.client

    u = urlparse(server.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in {
            "Authorization": f"Bearer {server.token}",
            "Content-Length": str(len(body)),
            **(headers or {}),
        }.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize(
    "key",
    [
        "a/../b",
        "../escape",
        "a/%2e%2e/b",
        "%2e%2e/%2e%2e/etc/passwd",
        "a/./b",
        "a//b",
        "trailing/",
        "%2Fabsolute",
        "nul%00byte",
        "ctrl%01char",
        "new%0Aline",
        "back%5Cslash",
        "x" * 1025,
    ],
)
def test_hostile_keys_are_refused_and_store_nothing(server, blobs, key):
    space_id = _space_id(server, "private")
    before = blobs.keys(f"spaces/{space_id}/objects/")
    status, body = _raw(server, "PUT", f"/spaces/v1/default/private/objects/{key}", b"payload")
    assert status in (400, 404), body  # 404 only when the path does not even reach the objects route
    if status == 400:
        assert b"key" in body
    assert blobs.keys(f"spaces/{space_id}/objects/") == before


def test_md5_and_sha256_mismatches_store_nothing_and_keep_the_old_version(server, blobs):
    key = unique("checked.txt")
    assert put(server, key, b"version 1").status_code == 201
    space_id = _space_id(server, "private")
    before = blobs.keys(f"spaces/{space_id}/objects/")
    wrong_md5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    r = put(server, key, b"version 2", **{"Content-MD5": wrong_md5})
    assert r.status_code == 400 and "nothing was stored" in r.json()["error"]["message"]
    r = put(server, key, b"version 2", **{"X-Entrepot-Content-SHA256": hashlib.sha256(b"x").hexdigest()})
    assert r.status_code == 400 and "SHA-256" in r.json()["error"]["message"]
    r = put(server, key, b"version 2", **{"Content-MD5": "not base64!"})
    assert r.status_code == 400
    assert httpx.get(f"{base(server)}/objects/{key}", headers=auth(server.token)).content == b"version 1"
    assert blobs.keys(f"spaces/{space_id}/objects/") == before
    good = base64.b64encode(hashlib.md5(b"version 2").digest()).decode()
    assert put(server, key, b"version 2", **{"Content-MD5": good}).status_code == 201


def test_truncated_upload_stores_nothing_and_keeps_the_old_version(server, blobs):
    key = unique("truncated.bin")
    assert put(server, key, b"old").status_code == 201
    space_id = _space_id(server, "private")
    before = blobs.keys(f"spaces/{space_id}/")
    u = urlparse(server.url)
    with socket.create_connection((u.hostname, u.port)) as s:
        head = (
            f"PUT /spaces/v1/default/private/objects/{key} HTTP/1.1\r\nHost: {u.netloc}\r\n"
            f"Authorization: Bearer {server.token}\r\nContent-Length: 10000000\r\n\r\n"
        )
        s.sendall(head.encode() + b"x" * 3_000_000)
        time.sleep(0.3)
    deadline = time.monotonic() + 30  # the server notices the disconnect, then cleans up
    while blobs.keys(f"spaces/{space_id}/") != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert blobs.keys(f"spaces/{space_id}/") == before
    assert httpx.get(f"{base(server)}/objects/{key}", headers=auth(server.token)).content == b"old"


def test_metadata_limits(server):
    r = put(server, unique("m"), b"x", **{"X-Entrepot-Meta-Big": "v" * 3000})
    assert r.status_code == 413 and "object_metadata_max_bytes" in r.json()["error"]["message"]
    r = put(server, unique("m"), b"x", **{"X-Entrepot-Meta-Bad.Name": "v"})
    assert r.status_code == 400 and "metadata name" in r.json()["error"]["message"]


# -- listing -------------------------------------------------------------------------------------
def test_listing_with_delimiter_and_cursor_pages(server):
    root = unique("tree")
    keys = [f"{root}/a/{i:03d}" for i in range(25)] + [
        f"{root}/b/deep/x",
        f"{root}/b/y",
        f"{root}/c.txt",
        f"{root}/d",
    ]
    for k in keys:
        assert put(server, k, k.encode()).status_code == 201
    url = f"{base(server)}/objects"
    h = auth(server.token)
    r = httpx.get(url, params={"prefix": f"{root}/", "delimiter": "/"}, headers=h).json()
    assert r["prefixes"] == [f"{root}/a/", f"{root}/b/"]
    assert [o["key"] for o in r["objects"]] == [f"{root}/c.txt", f"{root}/d"]
    # every key, seven at a time, in byte order, no repeats
    seen, cursor, pages = [], None, 0
    while True:
        params = {"prefix": f"{root}/", "limit": 7, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(url, params=params, headers=h).json()
        seen += [o["key"] for o in page["objects"]]
        pages += 1
        cursor = page["nextCursor"]
        assert page["isTruncated"] == (cursor is not None)
        if cursor is None:
            break
    assert seen == sorted(keys, key=lambda k: k.encode()) and pages == 5
    # cursor pages with a delimiter: a folder is one entry, never split across pages
    page1 = httpx.get(url, params={"prefix": f"{root}/", "delimiter": "/", "limit": 1}, headers=h).json()
    assert page1["prefixes"] == [f"{root}/a/"] and page1["objects"] == []
    page2 = httpx.get(
        url,
        params={"prefix": f"{root}/", "delimiter": "/", "limit": 2, "cursor": page1["nextCursor"]},
        headers=h,
    ).json()
    assert page2["prefixes"] == [f"{root}/b/"] and [o["key"] for o in page2["objects"]] == [f"{root}/c.txt"]
    sub = httpx.get(url, params={"prefix": f"{root}/b/", "delimiter": "/"}, headers=h).json()
    assert sub["prefixes"] == [f"{root}/b/deep/"] and [o["key"] for o in sub["objects"]] == [f"{root}/b/y"]
    assert httpx.get(url, params={"cursor": "%%%garbage"}, headers=h).status_code == 400
    assert httpx.get(url, params={"limit": 0}, headers=h).status_code == 400
    assert httpx.get(url, params={"prefix": "../"}, headers=h).status_code == 400


# -- copy ----------------------------------------------------------------------------------------
def test_copy_within_the_project(server):
    src = unique("src.txt")
    assert put(server, src, b"copy me", space="public", **{"X-Entrepot-Meta-A": "1"}).status_code == 201
    dst = unique("dst.txt")
    h = auth(server.token)
    r = httpx.post(
        f"{base(server)}/copy", json={"source": {"space": "public", "key": src}, "key": dst}, headers=h
    )
    assert r.status_code == 201 and r.json()["metadata"] == {"a": "1"}
    assert httpx.get(f"{base(server)}/objects/{dst}", headers=h).content == b"copy me"
    r = httpx.post(
        f"{base(server)}/copy",
        json={"source": {"key": dst}, "key": dst + "2", "metadata": {"b": "2"}},
        headers=h,
    )
    assert r.status_code == 201 and r.json()["metadata"] == {"b": "2"}
    # a token that can write private but not read the source space... public is readable by all,
    # so use a private source and a token that only writes public
    writer = server.token_for(space_permissions={"public": "write"})
    r = httpx.post(
        f"{base(server, 'public')}/copy",
        json={"source": {"space": "private", "key": dst}, "key": "stolen"},
        headers=auth(writer),
    )
    assert r.status_code == 403
    r = httpx.post(f"{base(server)}/copy", json={"source": {"key": "missing"}, "key": "x"}, headers=h)
    assert r.status_code == 404


# -- presigned URLs ------------------------------------------------------------------------------
def _presign(server, method: str, token: str | None = None, space: str = "private", **body) -> httpx.Response:
    return httpx.post(
        f"{base(server, space)}/presign", json={"method": method, **body}, headers=auth(token or server.token)
    )


def test_presigned_get_put_head_delete_list(server):
    key = f"{unique('signed')}/a.txt"
    assert put(server, key, b"signed content").status_code == 201
    url = _presign(server, "GET", key=key, expiresIn=60).json()["url"]
    assert url.startswith(server.url + "/spaces/v1/default/private/objects/")
    r = httpx.get(url)
    assert r.status_code == 200 and r.content == b"signed content"
    assert httpx.head(url).status_code == 200
    assert httpx.put(url, content=b"x").status_code == 403  # a GET URL does not allow PUT
    put_url = _presign(server, "PUT", key=key + ".new", expiresIn=60).json()["url"]
    assert httpx.put(put_url, content=b"uploaded").status_code == 201
    assert httpx.get(f"{base(server)}/objects/{key}.new", headers=auth(server.token)).content == b"uploaded"
    list_url = _presign(server, "LIST", prefix=key.split("/")[0] + "/", expiresIn=60).json()["url"]
    listed = httpx.get(list_url).json()
    assert sorted(o["key"] for o in listed["objects"]) == [key, key + ".new"]
    del_url = _presign(server, "DELETE", key=key + ".new", expiresIn=60).json()["url"]
    assert httpx.delete(del_url).status_code == 204
    assert httpx.get(f"{base(server)}/objects/{key}.new", headers=auth(server.token)).status_code == 404


def test_forged_altered_and_expired_urls_are_refused(server):
    from entrepot.core import signing
    from entrepot.core.objects.presign import PURPOSE, _subject
    from entrepot.core.objects.spaces import get_space, resolve_project

    key = unique("guarded.txt")
    assert put(server, key, b"guarded").status_code == 201
    assert put(server, key + "2", b"other").status_code == 201
    url = _presign(server, "GET", key=key, expiresIn=60).json()["url"]
    u = urlparse(url)
    q = dict(p.split("=", 1) for p in u.query.split("&"))
    path = u.path

    def get(path_, **params):  # type: ignore[no-untyped-def]
        return httpx.get(f"{server.url}{path_}", params={**q, **params})

    r = get(path + "2")
    assert r.status_code == 403 and "signature" in r.json()["error"]["message"]
    assert get(path, expires=str(int(q["expires"]) + 1000)).status_code == 403
    assert get(path, signature="A" * 43).status_code == 403
    assert get(path, signer="2").status_code == 403
    assert httpx.get(f"{server.url}{path}", params={"signature": q["signature"]}).status_code == 403
    # expired: signed correctly, but in the past
    catalog = server.services.catalog
    space = get_space(catalog, resolve_project(catalog, "default"), "private")
    past = int(time.time()) - 10
    sig = signing.sign(
        server.services.secret_key, PURPOSE, _subject(space, "GET", key, int(q["signer"])), past
    )
    r = get(path, expires=str(past), signature=sig)
    assert r.status_code == 403 and "expired" in r.json()["error"]["message"]
    assert get(path).status_code == 200  # the genuine URL still works


def test_presign_rules(server):
    reader = server.token_for(space_permissions={"private": "read"})
    assert _presign(server, "GET", token=reader, key="k", expiresIn=60).status_code == 200
    r = _presign(server, "PUT", token=reader, key="k", expiresIn=60)
    assert r.status_code == 403
    r = _presign(server, "GET", key="k", expiresIn=10**9)
    assert r.status_code == 400 and "presign_max_ttl" in r.json()["error"]["message"]
    assert _presign(server, "GET", key="../x").status_code == 400
    assert _presign(server, "POST", key="x").status_code == 400
    # revoking the signer revokes its URLs
    from entrepot.core import auth as core_auth

    issued = core_auth.create_token(
        server.services.catalog, server.project_id, core_auth.TokenSpec(space_permissions={"private": "read"})
    )
    key = unique("rev.txt")
    assert put(server, key, b"r").status_code == 201
    url = _presign(server, "GET", token=issued.token, key=key, expiresIn=60).json()["url"]
    assert httpx.get(url).status_code == 200
    core_auth.revoke_token(server.services.catalog, issued.row.id)
    r = httpx.get(url)
    assert r.status_code == 403 and "revoked" in r.json()["error"]["message"]


# -- multipart -----------------------------------------------------------------------------------
def test_multipart_upload_lifecycle(server, blobs):
    h = auth(server.token)
    key = unique("multi.bin")
    r = httpx.post(f"{base(server)}/uploads", json={"key": key, "metadata": {"origin": "test"}}, headers=h)
    assert r.status_code == 201
    upload = r.json()["uploadId"]
    parts = [os.urandom(5 * 1024 * 1024 + 17), os.urandom(1 * 1024 * 1024), os.urandom(1000)]
    # out of order, and part 2 sent twice (the second replaces the first)
    for n in (3, 2, 1):
        r = httpx.put(
            f"{base(server)}/uploads/{upload}/parts/{n}",
            content=parts[n - 1] if n != 2 else b"wrong",
            headers=h,
        )
        assert r.status_code == 200 and r.json()["size"] == (len(parts[n - 1]) if n != 2 else 5)
    r = httpx.put(f"{base(server)}/uploads/{upload}/parts/2", content=parts[1], headers=h)
    etags = {1: hashlib.md5(parts[0]).hexdigest(), 2: r.json()["etag"], 3: hashlib.md5(parts[2]).hexdigest()}
    assert etags[2] == hashlib.md5(parts[1]).hexdigest()
    listed = httpx.get(f"{base(server)}/uploads/{upload}", headers=h).json()
    assert [(p["partNumber"], p["etag"]) for p in listed["parts"]] == sorted(etags.items())
    assert key in [
        u["key"]
        for u in httpx.get(f"{base(server)}/uploads", params={"key": key}, headers=h).json()["uploads"]
    ]
    # not visible before completion
    assert httpx.get(f"{base(server)}/objects/{key}", headers=h).status_code == 404
    assert key not in [
        o["key"]
        for o in httpx.get(f"{base(server)}/objects", params={"prefix": key}, headers=h).json()["objects"]
    ]
    bad = httpx.post(
        f"{base(server)}/uploads/{upload}/complete",
        json={"parts": [{"partNumber": 1, "etag": "0" * 32}]},
        headers=h,
    )
    assert bad.status_code == 400 and "ETag" in bad.json()["error"]["message"]
    bad = httpx.post(
        f"{base(server)}/uploads/{upload}/complete",
        json={"parts": [{"partNumber": 2}, {"partNumber": 1}]},
        headers=h,
    )
    assert bad.status_code == 400 and "ascending" in bad.json()["error"]["message"]
    done = httpx.post(
        f"{base(server)}/uploads/{upload}/complete",
        json={"parts": [{"partNumber": n, "etag": f'"{e}"'} for n, e in sorted(etags.items())]},
        headers=h,
    )
    assert done.status_code == 201, done.text
    whole = b"".join(parts)
    expected_etag = hashlib.md5(b"".join(bytes.fromhex(etags[n]) for n in (1, 2, 3))).hexdigest() + "-3"
    assert done.json()["etag"] == expected_etag and done.json()["size"] == len(whole)
    assert done.json()["metadata"] == {"origin": "test"}
    got = httpx.get(f"{base(server)}/objects/{key}", headers=h)
    assert got.content == whole
    assert httpx.get(f"{base(server)}/uploads/{upload}", headers=h).status_code == 404
    assert httpx.post(f"{base(server)}/uploads/{upload}/complete", headers=h).status_code == 404
    # the object is stored as its parts (no second copy): the three chosen ones, not the replaced one
    folder = f"spaces/{_space_id(server, 'private')}/uploads/{upload}"
    assert len(blobs.keys(folder)) == 3
    ranged = httpx.get(f"{base(server)}/objects/{key}", headers={**h, "Range": "bytes=5242800-5243900"})
    assert ranged.status_code == 206 and ranged.content == whole[5242800:5243901]
    assert httpx.delete(f"{base(server)}/objects/{key}", headers=h).status_code == 204
    assert blobs.keys(folder) == []


def test_multipart_abort_and_stale_sweep(server, blobs):
    from entrepot.core.objects import multipart

    h = auth(server.token)
    space_id = _space_id(server, "private")
    ids = []
    for _ in range(2):
        upload = httpx.post(f"{base(server)}/uploads", json={"key": unique("abandoned")}, headers=h).json()[
            "uploadId"
        ]
        assert (
            httpx.put(f"{base(server)}/uploads/{upload}/parts/1", content=b"part", headers=h).status_code
            == 200
        )
        ids.append(upload)
    assert httpx.delete(f"{base(server)}/uploads/{ids[0]}", headers=h).status_code == 204
    assert httpx.get(f"{base(server)}/uploads/{ids[0]}", headers=h).status_code == 404
    assert blobs.keys(f"spaces/{space_id}/uploads/{ids[0]}") == []
    assert blobs.keys(f"spaces/{space_id}/uploads/{ids[1]}") != []
    assert multipart.abort_stale_uploads(server.services, timedelta(hours=1)) == 0  # young: kept
    time.sleep(0.05)
    assert multipart.abort_stale_uploads(server.services, timedelta(seconds=0.01)) >= 1
    assert httpx.get(f"{base(server)}/uploads/{ids[1]}", headers=h).status_code == 404
    assert blobs.keys(f"spaces/{space_id}/uploads/{ids[1]}") == []


def test_multipart_rules(server):
    h = auth(server.token)
    upload = httpx.post(f"{base(server)}/uploads", json={"key": unique("rules")}, headers=h).json()[
        "uploadId"
    ]
    assert httpx.put(f"{base(server)}/uploads/{upload}/parts/0", content=b"x", headers=h).status_code == 400
    assert (
        httpx.put(f"{base(server)}/uploads/{upload}/parts/10001", content=b"x", headers=h).status_code == 400
    )
    r = httpx.post(f"{base(server)}/uploads/{upload}/complete", json={"parts": []}, headers=h)
    assert r.status_code == 400 and "at least one part" in r.json()["error"]["message"]
    assert httpx.put(f"{base(server)}/uploads/{'f' * 32}/parts/1", content=b"x", headers=h).status_code == 404
    assert httpx.put(f"{base(server)}/uploads/../parts/1", content=b"x", headers=h).status_code in (400, 404)
    reader = server.token_for(space_permissions={"private": "read"})
    assert (
        httpx.put(f"{base(server)}/uploads/{upload}/parts/1", content=b"x", headers=auth(reader)).status_code
        == 403
    )
    assert httpx.post(f"{base(server, 'public')}/uploads", json={"key": "x"}).status_code == 401


# -- maintenance ---------------------------------------------------------------------------------
def test_the_maintenance_thread_removes_expired_spaces(tmp_path):
    srv = start_server(tmp_path / "d", maintenance_interval=0.2, expired_space_grace_days=0)
    try:
        h = auth(srv.token)
        assert (
            httpx.post(
                f"{srv.url}/spaces/v1/default",
                json={"name": "short", "expiresAt": "2999-01-01T00:00:00Z"},
                headers=h,
            ).status_code
            == 201
        )
        assert (
            httpx.put(f"{srv.url}/spaces/v1/default/short/objects/a", content=b"a", headers=h).status_code
            == 201
        )
        expire_now(srv, "short", ago=timedelta(days=1))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if httpx.get(f"{srv.url}/spaces/v1/default/short", headers=h).status_code == 404:
                break
            time.sleep(0.1)
        assert httpx.get(f"{srv.url}/spaces/v1/default/short", headers=h).status_code == 404
    finally:
        srv.stop()


# -- regressions from review ------------------------------------------------------------------------
def test_a_recreated_space_gets_a_new_id_and_old_urls_stay_dead(server, blobs):
    h = auth(server.token)
    name = unique("again")
    assert httpx.post(f"{server.url}/spaces/v1/default", json={"name": name}, headers=h).status_code == 201
    assert put(server, "x", b"old data", space=name).status_code == 201
    first_id = _space_id(server, name)
    url = _presign(server, "GET", space=name, key="x", expiresIn=60).json()["url"]
    assert (
        httpx.delete(
            f"{server.url}/spaces/v1/default/{name}", params={"force": "true"}, headers=h
        ).status_code
        == 204
    )
    assert httpx.post(f"{server.url}/spaces/v1/default", json={"name": name}, headers=h).status_code == 201
    assert _space_id(server, name) != first_id
    assert put(server, "x", b"new data", space=name).status_code == 201
    assert httpx.get(url).status_code == 403
    deadline = time.monotonic() + 20
    while blobs.keys(f"spaces/{first_id}/") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert httpx.get(f"{base(server, name)}/objects/x", headers=h).content == b"new data"


@pytest.mark.parametrize(
    ("path", "headers", "params"),
    [
        ("/public/objects/{key}", {"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 -0000"}, {}),
        ("/public/objects/{key}", {"If-Unmodified-Since": "Mon, 01 Jan 2024 00:00:00 -0000"}, {}),
        ("/public/objects/{key}", {"Range": "bytes=" + "9" * 5000 + "-"}, {}),
        ("/public/objects", {}, {"prefix": "a\nb", "signature": "x", "expires": "1", "signer": "1"}),
        ("/public/objects/{key}", {}, {"signature": "x", "expires": "1", "signer": "²"}),
        ("/public/objects", {}, {"cursor": "awA"}),  # base64 of 'k\x00'
    ],
)
def test_odd_requests_get_4xx_or_success_never_500(server, path, headers, params):
    key = unique("odd.txt")
    assert put(server, key, b"odd", space="public").status_code == 201
    r = httpx.get(f"{server.url}/spaces/v1/default{path.format(key=key)}", headers=headers, params=params)
    assert r.status_code < 500, r.text


@pytest.mark.parametrize("ref", ["%C2%B2", "a%00b", "%E4%B8%AD"])
def test_odd_project_refs_are_404(server, ref):
    assert httpx.get(f"{server.url}/spaces/v1/{ref}").status_code == 404
    assert httpx.get(f"{server.url}/spaces/v1/{ref}/public/objects").status_code == 404


def test_all_digit_project_names_are_refused(server):
    from entrepot.core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="not only digits"):
        projects.create_project(server.services.catalog, "1")


def test_prefixes_may_end_in_a_partial_dot_segment(server):
    root = unique("dots")
    assert put(server, f"{root}/.hidden", b"h").status_code == 201
    r = httpx.get(f"{base(server)}/objects", params={"prefix": f"{root}/."}, headers=auth(server.token))
    assert r.status_code == 200 and [o["key"] for o in r.json()["objects"]] == [f"{root}/.hidden"]


def test_stale_if_range_sends_everything_even_for_an_unsatisfiable_range(server):
    key = unique("ifrange")
    assert put(server, key, b"0123456789").status_code == 201
    r = httpx.get(
        f"{base(server)}/objects/{key}",
        headers={**auth(server.token), "Range": "bytes=100-", "If-Range": '"old"'},
    )
    assert r.status_code == 200 and r.content == b"0123456789"
    assert r.headers["x-content-type-options"] == "nosniff"
