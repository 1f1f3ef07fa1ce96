"""``DataClient`` (object spaces, DCSS shapes) against a real server: permissions, transfers,
multipart with parallel parts and resume, retries, progress callbacks, abort, listing, presign."""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from entrepot import APIError, DataClient, InvalidToken, TransferAborted, TransferError, TransferStatus
from entrepot.client import NotFound, ObjectItem, PermissionDenied

MIB = 1024 * 1024
PART_RE = re.compile(r"/uploads/[0-9a-f]{32}/parts/(\d+)$")


# -- helpers ----------------------------------------------------------------------------------
class Recorder(httpx.HTTPTransport):
    """A real HTTP transport that records every request (method, path, headers) and how many
    were in flight at once; ``fail`` may replace the answer to chosen requests."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight_parts = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        is_part = PART_RE.search(request.url.path) is not None
        with self.lock:
            self.seen.append((request.method, request.url.path, dict(request.headers)))
            if is_part:
                self.in_flight += 1
                self.max_in_flight_parts = max(self.max_in_flight_parts, self.in_flight)
        try:
            return self.answer(request, super().handle_request(request))
        finally:
            if is_part:
                with self.lock:
                    self.in_flight -= 1

    def answer(self, request: httpx.Request, response: httpx.Response) -> httpx.Response:
        return response

    def part_puts(self) -> list[int]:
        return sorted(
            int(m.group(1))
            for method, path, _ in self.seen
            if method == "PUT" and (m := PART_RE.search(path)) is not None
        )


def write_random(path: Path, size: int) -> str:
    """Write ``size`` random bytes (1 MiB at a time) and return their SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(MIB, left))
            f.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MIB):
            digest.update(block)
    return digest.hexdigest()


def raw(server, token: str | None = None) -> httpx.Client:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token or server.token}"}
    return httpx.Client(base_url=f"{server.url}/spaces/v1/{server.project_id}", headers=headers, timeout=60)


def stored_sha256(server, key: str) -> str:  # type: ignore[no-untyped-def]
    """The SHA-256 of the bytes the server serves for ``key`` of the private space."""
    digest = hashlib.sha256()
    with raw(server) as http, http.stream("GET", f"/private/objects/{key}") as r:
        assert r.status_code == 200
        for block in r.iter_bytes():
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture
def client(server) -> Iterator[DataClient]:  # type: ignore[no-untyped-def]
    with DataClient(server.token, url=server.url, backoff=0.01) as c:
        yield c


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> tuple[Path, str]:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("big") / "big.bin"
    return path, write_random(path, 40 * MIB)


# -- who may do what ------------------------------------------------------------------------
def test_anonymous_client_reads_public_objects(server, client, tmp_path):
    client.storage("public").upload(b"open data\n", "anon/readme.txt").join()
    anonymous = DataClient(url=server.url)  # project "default" (the server's)
    assert anonymous.anonymous and anonymous.project == "default"
    public = anonymous.storage("public")
    download = public.download("anon/readme.txt")
    download.join()
    assert download.data == b"open data\n" and download.status is TransferStatus.FINISHED
    public.download("anon/readme.txt", tmp_path / "readme.txt").join()
    assert (tmp_path / "readme.txt").read_bytes() == b"open data\n"
    assert public.list_objects("anon/") == ["anon/readme.txt"]
    assert public.head("anon/readme.txt").size == 10
    assert [s["name"] for s in anonymous.spaces()] == ["public"]


def test_anonymous_client_cannot_read_private_or_write_anything(server, client, monkeypatch):
    client.storage("private").upload(b"secret", "anon/secret.txt").join()
    monkeypatch.setenv("ENTREPOT_PROJECT", str(server.project_id))
    anonymous = DataClient(url=server.url)
    assert anonymous.project == str(server.project_id)

    with pytest.raises(APIError) as listing:
        anonymous.storage("private").list_objects()
    assert listing.value.status == 401 and not isinstance(listing.value, InvalidToken)
    assert "needs a token with read permission" in listing.value.message
    assert "anonymous" in listing.value.message

    download = anonymous.storage("private").download("anon/secret.txt")
    with pytest.raises(APIError) as reading:
        download.join()
    assert reading.value.status == 401 and not isinstance(reading.value, InvalidToken)
    assert (
        download.status is TransferStatus.ERROR and download.error is reading.value and download.data is None
    )

    for space in ("public", "private"):
        upload = anonymous.storage(space).upload(b"nope", "anon/nope.txt")
        with pytest.raises(APIError) as writing:
            upload.join()
        assert writing.value.status == 401 and "needs a token with write permission" in writing.value.message
    with pytest.raises(APIError) as deleting:
        anonymous.storage("public").delete("anon/nope.txt")
    assert deleting.value.status == 401
    assert not client.storage("public").exists("anon/nope.txt")


def test_a_bad_token_raises_invalid_token(server):
    with pytest.raises(InvalidToken):
        DataClient("YOUR-TOKEN-HERE", url=server.url)
    unknown = DataClient(f"{server.project_id}-987654-{'a' * 40}", url=server.url)
    assert unknown.project == str(server.project_id)
    with pytest.raises(InvalidToken) as listing:
        unknown.storage("public").list_objects()
    assert listing.value.status == 401 and "invalid access token" in listing.value.message
    upload = unknown.storage("private").upload(b"x", "k.txt")
    with pytest.raises(InvalidToken):
        upload.join()
    assert upload.status is TransferStatus.ERROR


def test_a_read_only_token_cannot_write(server, client, tmp_path):
    client.storage("private").upload(b"report", "ro/report.txt").join()
    reader = DataClient(server.token_for(space_permissions={"private": "read"}), url=server.url)
    storage = reader.storage("private")
    assert storage.download("ro/report.txt").join().data == b"report"
    with pytest.raises(PermissionDenied) as denied:
        storage.upload(b"new", "ro/new.txt").join()
    assert denied.value.status == 403 and "no write permission on space 'private'" in denied.value.message
    big = tmp_path / "big.bin"
    write_random(big, 3 * MIB)
    multipart = storage.upload(big, "ro/big.bin", multipart_threshold=MIB, part_size=MIB)
    with pytest.raises(APIError) as denied_parts:
        multipart.join()
    assert denied_parts.value.status == 403
    with pytest.raises(PermissionDenied):
        storage.delete("ro/report.txt")
    with pytest.raises(APIError) as presign:
        storage.presign("ro/report.txt", method="PUT")
    assert presign.value.status == 403
    assert not client.storage("private").exists("ro/new.txt")
    assert client.storage("private").exists("ro/report.txt")


# -- uploads and downloads ----------------------------------------------------------------------
def test_upload_and_download_bytes_and_files(client, tmp_path):
    storage = client.storage("private")
    uploaded = storage.upload(b"a,b\n1,2\n", "files/data.csv", metadata={"Source": "sdk"}).join().result
    assert isinstance(uploaded, ObjectItem)
    assert uploaded.size == 8 and uploaded.etag == hashlib.md5(b"a,b\n1,2\n").hexdigest()
    assert uploaded.sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert uploaded.content_type == "text/csv" and uploaded.metadata == {"source": "sdk"}

    local = tmp_path / "notes.txt"
    local.write_bytes("héllo\n".encode())
    handler = storage.upload(str(local), "/files/")  # trailing '/': the file's name is appended
    handler.join()
    assert handler.result.key == "files/notes.txt" and handler.progress.percentage == 100

    with open(local, "rb") as f:
        f.seek(1)
        storage.upload(f, "files/tail.txt", content_type="application/x-tail").join()
    assert storage.head("files/tail.txt").content_type == "application/x-tail"
    assert storage.download("files/tail.txt").join().data == local.read_bytes()[1:]

    storage.upload(b"", "files/empty", multipart_threshold=0).join()
    empty = storage.download("files/empty").join()
    assert empty.data == b"" and empty.progress.percentage == 100

    out = tmp_path / "out"
    out.mkdir()
    path = storage.download("files/notes.txt", out).join().result  # into a folder: the key's name
    assert path == out / "notes.txt" and path.read_text() == "héllo\n"
    with pytest.raises(FileExistsError):
        storage.download("files/notes.txt", out / "notes.txt")
    storage.upload(b"changed", "files/notes.txt").join()
    storage.download("files/notes.txt", out / "notes.txt", force=True).join()
    assert (out / "notes.txt").read_bytes() == b"changed"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # no temporary files left

    with pytest.raises(FileNotFoundError):
        storage.upload(tmp_path / "missing.bin", "x")
    with pytest.raises(NotFound):
        storage.download("files/missing.txt").join()
    failed = storage.download("files/missing.txt", out / "missing.txt")
    with pytest.raises(NotFound):
        failed.join()
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_a_large_upload_goes_in_parallel_parts_and_comes_back_intact(server, big_file, tmp_path):
    path, digest = big_file
    recorder = Recorder()
    with DataClient(server.token, url=server.url, part_size=4 * MIB, http_transport=recorder) as client:
        storage = client.storage("private")
        seen: list[tuple[int, TransferStatus]] = []
        upload = storage.upload(
            path, "multi/big.bin", callback=lambda h: seen.append((h.progress.percentage, h.status))
        )
        assert upload.join() is upload
        item = upload.result
        # stored as its parts, nobody read the whole in one pass: no SHA-256, the ETag covers the parts
        assert item.size == 40 * MIB and item.sha256 is None and item.etag.endswith("-10")
        assert recorder.part_puts() == list(range(1, 11))
        assert recorder.max_in_flight_parts >= 2  # parts went up in parallel
        assert all(h["content-md5"] for m, p, h in recorder.seen if PART_RE.search(p))

        # progress: at least about once per percent, never backwards, ending at 100 FINISHED
        percentages = [p for p, _ in seen]
        assert len(seen) >= 100
        assert percentages == sorted(percentages) and percentages[-1] == 100
        assert max(b - a for a, b in itertools.pairwise(percentages)) <= 5
        assert seen[-1][1] is TransferStatus.FINISHED
        assert [s for _, s in seen].count(TransferStatus.FINISHED) == 1
        progress = upload.progress
        assert progress.transferred == progress.total == 40 * MIB and progress.speed > 0

        late: list[TransferStatus] = []
        upload.register_callback(lambda h: late.append(h.status))  # after the end: fires once
        assert late == [TransferStatus.FINISHED]

        download = storage.download("multi/big.bin", tmp_path / "copy.bin")
        download.join()
        assert sha256_of(tmp_path / "copy.bin") == digest
        assert download.progress.percentage == 100 and download.progress.total == 40 * MIB
        assert hashlib.sha256(storage.download("multi/big.bin").join().data).hexdigest() == digest


def test_an_interrupted_multipart_upload_resumes_without_resending_parts(server, big_file):
    path, digest = big_file
    data = path.read_bytes()
    part = 4 * MIB
    with raw(server) as http:
        created = http.post("/private/uploads", json={"key": "resume/raw.bin"})
        assert created.status_code == 201, created.text
        upload_id = created.json()["uploadId"]
        for number in (1, 2):
            chunk = data[(number - 1) * part : number * part]
            r = http.put(f"/private/uploads/{upload_id}/parts/{number}", content=chunk)
            assert r.status_code == 200, r.text
        wrong = http.put(
            f"/private/uploads/{upload_id}/parts/3", content=b"\0" * part
        )  # right size, wrong bytes
        assert wrong.status_code == 200
        before = {p["partNumber"]: p for p in http.get(f"/private/uploads/{upload_id}").json()["parts"]}

    recorder = Recorder()
    # the client's part size differs: the upload in progress decides (4 MiB parts)
    with DataClient(server.token, url=server.url, part_size=8 * MIB, http_transport=recorder) as client:
        handler = client.storage("private").upload(path, "resume/raw.bin")
        item = handler.join().result
    assert recorder.part_puts() == list(range(3, 11))  # parts 1 and 2 were on the server already
    assert item.etag.endswith("-10") and stored_sha256(server, "resume/raw.bin") == digest
    assert handler.progress.transferred == 40 * MIB
    assert before[1]["size"] == part and len(before) == 3
    with raw(server) as http:
        assert http.get("/private/uploads", params={"key": "resume/raw.bin"}).json()["uploads"] == []


def test_abort_keeping_parts_then_upload_again_sends_only_the_rest(server, big_file):
    path, digest = big_file
    first = Recorder()
    with DataClient(
        server.token, url=server.url, part_size=2 * MIB, parallel_parts=2, http_transport=first
    ) as client:
        storage = client.storage("private")

        def stop_at_30(h):  # type: ignore[no-untyped-def]
            if h.progress.percentage >= 30:
                h.abort(keep_parts=True)

        handler = storage.upload(path, "resume/aborted.bin", callback=stop_at_30)
        with pytest.raises(TransferAborted):
            handler.join()
        assert handler.status is TransferStatus.ABORTED and isinstance(handler.error, TransferAborted)
        assert not storage.exists("resume/aborted.bin")

    with raw(server) as http:
        uploads = http.get("/private/uploads", params={"key": "resume/aborted.bin"}).json()["uploads"]
        assert len(uploads) == 1
        kept = http.get(f"/private/uploads/{uploads[0]['uploadId']}").json()["parts"]
    kept_numbers = {p["partNumber"] for p in kept if p["size"] == 2 * MIB}
    assert 3 <= len(kept_numbers) < 20

    second = Recorder()
    with DataClient(server.token, url=server.url, part_size=2 * MIB, http_transport=second) as client:
        item = client.storage("private").upload(path, "resume/aborted.bin").join().result
    assert set(second.part_puts()) == set(range(1, 21)) - kept_numbers
    assert item.size == 40 * MIB and stored_sha256(server, "resume/aborted.bin") == digest


def test_abort_leaves_no_object_and_no_upload(server, client, big_file):
    path, _ = big_file
    storage = client.storage("private")
    storage.upload(b"old version", "abort/file.bin").join()

    def stop_early(h):  # type: ignore[no-untyped-def]
        if h.progress.transferred > 0:
            h.abort()

    handler = storage.upload(path, "abort/file.bin", part_size=2 * MIB, callback=stop_early)
    with pytest.raises(TransferAborted):
        handler.join()
    assert handler.status is TransferStatus.ABORTED
    assert storage.download("abort/file.bin").join().data == b"old version"  # unchanged
    with raw(server) as http:
        assert http.get("/private/uploads", params={"key": "abort/file.bin"}).json()["uploads"] == []

    small = storage.upload(path, "abort/single.bin", multipart_threshold=64 * MIB, callback=stop_early)
    with pytest.raises(TransferAborted):
        small.join()
    assert not storage.exists("abort/single.bin")

    download = storage.download("abort/file.bin")
    download.join()
    download.abort()  # after the end: nothing changes
    assert download.status is TransferStatus.FINISHED


def test_transfers_retry_failed_parts_and_resume_dropped_downloads(server, tmp_path):
    payload = os.urandom(6 * MIB + 123)

    class FlakyParts(Recorder):
        failed = False

        def answer(self, request, response):  # type: ignore[no-untyped-def]
            if not self.failed and request.method == "PUT" and request.url.path.endswith("/parts/2"):
                self.failed = True  # the part was stored, but the answer says 503
                response.read()
                return httpx.Response(503, json={"error": {"code": "x", "message": "try again"}})
            return response

    flaky = FlakyParts()
    with DataClient(
        server.token,
        url=server.url,
        backoff=0.01,
        part_size=MIB,
        multipart_threshold=MIB,
        http_transport=flaky,
    ) as client:
        handler = client.storage("private").upload(payload, "retry/parts.bin")
        assert handler.join().result.size == len(payload)
    assert stored_sha256(server, "retry/parts.bin") == hashlib.sha256(payload).hexdigest()
    assert flaky.part_puts() == [1, 2, 2, 3, 4, 5, 6, 7]
    assert handler.progress.transferred == len(payload)  # the failed attempt was taken back

    class CutOnce(Recorder):
        cut = False

        def answer(self, request, response):  # type: ignore[no-untyped-def]
            if not self.cut and request.method == "GET" and "/objects/" in request.url.path:
                self.cut = True
                return httpx.Response(
                    response.status_code,
                    headers=response.headers,
                    stream=_Truncated(response, 2 * MIB),
                    extensions=response.extensions,
                )
            return response

    cutter = CutOnce()
    with DataClient(server.token, url=server.url, backoff=0.01, http_transport=cutter) as client:
        storage = client.storage("private")
        download = storage.download("retry/parts.bin", tmp_path / "parts.bin")
        download.join()
        assert (tmp_path / "parts.bin").read_bytes() == payload
        gets = [h for m, p, h in cutter.seen if m == "GET" and "/objects/" in p]
        assert len(gets) == 2 and "range" not in gets[0]
        # the second request asks for the rest: from the bytes written (those buffered at the cut are lost)
        start = re.fullmatch(r"bytes=(\d+)-", gets[1]["range"])
        assert start is not None and 1 * MIB < int(start.group(1)) <= 2 * MIB
        assert gets[1]["if-range"].strip('"')
        assert download.progress.transferred == len(payload)
        assert [p.name for p in tmp_path.iterdir()] == ["parts.bin"]


class _Truncated(httpx.SyncByteStream):
    """A response body that breaks off after ``limit`` bytes, like a dropped connection."""

    def __init__(self, response: httpx.Response, limit: int):
        self.response = response
        self.limit = limit

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for chunk in self.response.stream:
            if sent + len(chunk) >= self.limit:
                yield chunk[: self.limit - sent]
                raise httpx.ReadError("connection reset by peer")
            sent += len(chunk)
            yield chunk

    def close(self) -> None:
        self.response.close()


def test_an_unwatched_failure_is_logged_and_join_raises_it(server, caplog):
    anonymous = DataClient(url=server.url)
    with caplog.at_level(logging.ERROR, logger="entrepot.client"):
        upload = anonymous.storage("private").upload(b"x", "log/x.txt")  # fire and forget
        deadline = time.monotonic() + 30
        while not upload.done and time.monotonic() < deadline:
            time.sleep(0.01)
    assert upload.status is TransferStatus.ERROR
    assert any("needs a token with write permission" in r.getMessage() for r in caplog.records)
    with pytest.raises(APIError):
        upload.join()


def test_closing_the_client_waits_for_its_transfers(server, tmp_path):
    local = tmp_path / "f.bin"
    write_random(local, 3 * MIB)
    with DataClient(server.token, url=server.url, max_transfers=1) as client:
        storage = client.storage("private")
        handlers = [storage.upload(local, f"close/{i}.bin") for i in range(3)]
        assert handlers[2].status is TransferStatus.QUEUED  # one transfer at a time: it waits its turn
        with pytest.raises(TimeoutError):
            handlers[2].join(timeout=0.001)
    assert all(h.status is TransferStatus.FINISHED for h in handlers)
    with DataClient(server.token, url=server.url) as check:
        assert check.storage("private").list_objects("close/") == [
            "close/0.bin",
            "close/1.bin",
            "close/2.bin",
        ]


def test_a_failing_callback_does_not_stop_the_transfer(client, caplog):
    def broken(handler):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("oops")

    def joins(handler):  # type: ignore[no-untyped-def]
        if handler.status.done:
            handler.join()  # would wait for itself

    with caplog.at_level(logging.ERROR, logger="entrepot.client"):
        handler = client.storage("private").upload(b"data", "cb/data.bin", callback=broken)
        handler.register_callback(joins)
        assert handler.join().status is TransferStatus.FINISHED
    messages = [r.getMessage() for r in caplog.records]
    assert any("callback" in m for m in messages)
    errors = [r.exc_info[1] for r in caplog.records if r.exc_info]
    assert any(isinstance(e, ZeroDivisionError) for e in errors)
    assert any(isinstance(e, RuntimeError) and "own callback" in str(e) for e in errors)


def test_a_local_failure_is_a_transfer_error(client, tmp_path):
    class Unreadable:
        def read(self, n: int = -1) -> bytes:
            raise OSError("disk on fire")

        def seek(self, pos: int, whence: int = 0) -> int:
            return 10 if whence == os.SEEK_END else 0

        def tell(self) -> int:
            return 0

    upload = client.storage("private").upload(Unreadable(), "local/fail.bin")  # type: ignore[arg-type]
    with pytest.raises(TransferError) as failed:
        upload.join()
    assert "disk on fire" in str(failed.value) and isinstance(failed.value.cause, OSError)
    assert upload.status is TransferStatus.ERROR


# -- listing, head, delete, copy, presign, spaces ---------------------------------------------
def test_list_head_delete_and_copy(client):
    storage = client.storage("public")
    for key in ("lst/a.txt", "lst/b/c.txt", "lst/b/d.txt", "lst2/e.txt"):
        storage.upload(key.encode(), key, metadata={"k": key.replace("/", "_")}).join()
    assert storage.list_objects("lst/") == ["lst/a.txt", "lst/b/c.txt", "lst/b/d.txt"]
    assert storage.list_objects("lst") == ["lst/a.txt", "lst/b/c.txt", "lst/b/d.txt", "lst2/e.txt"]
    items = storage.list_objects("lst/b/", items=True)
    assert [(i.key, i.size, i.metadata) for i in items] == [
        ("lst/b/c.txt", 11, {"k": "lst_b_c.txt"}),
        ("lst/b/d.txt", 11, {"k": "lst_b_d.txt"}),
    ]
    assert (
        items[0].sha256 == hashlib.sha256(b"lst/b/c.txt").hexdigest() and items[0].last_modified is not None
    )
    assert [i.key for i in storage.iter_objects("lst/", page_size=1)] == storage.list_objects("lst/")
    folder = storage.list_folder("lst/")
    assert folder.folders == ["lst/b/"] and [o.key for o in folder.objects] == ["lst/a.txt"]

    head = storage.head("lst/a.txt")
    assert (head.size, head.etag, head.sha256, head.content_type, head.metadata) == (
        9,
        hashlib.md5(b"lst/a.txt").hexdigest(),
        hashlib.sha256(b"lst/a.txt").hexdigest(),
        "text/plain",
        {"k": "lst_a.txt"},
    )
    with pytest.raises(NotFound):
        storage.head("lst/none.txt")

    copied = client.storage("private").copy("lst/a.txt", "copied/a.txt", source_space="public")
    assert copied.etag == head.etag and copied.metadata == {"k": "lst_a.txt"}

    storage.delete("lst/a.txt")
    assert not storage.exists("lst/a.txt")
    with pytest.raises(NotFound):
        storage.delete("lst/a.txt")


def test_presigned_urls_work_without_a_token(client):
    storage = client.storage("private")
    storage.upload(b"signed bytes", "signed/file.txt").join()
    url = storage.presign("signed/file.txt", expires=60)
    assert "signature=" in url
    got = httpx.get(url)
    assert got.status_code == 200 and got.content == b"signed bytes"
    assert httpx.get(url.replace("file.txt", "other.txt")).status_code == 403

    put = storage.presign("signed/uploaded.txt", method="PUT", expires=60)
    assert httpx.put(put, content=b"via url").status_code == 201
    assert storage.download("signed/uploaded.txt").join().data == b"via url"
    listing = httpx.get(storage.presign("signed/", method="LIST"))
    assert [o["key"] for o in listing.json()["objects"]] == ["signed/file.txt", "signed/uploaded.txt"]


def test_spaces_can_be_listed_created_and_deleted(server):
    manager = DataClient(server.token_for(can_manage_spaces=True), url=server.url)
    created = manager.create_space("event-2026", description="a contest", public=True)
    assert created["name"] == "event-2026" and created["public"] is True
    manager.storage("event-2026").upload(b"entry", "team1/entry.txt").join()
    listed = {s["name"]: s for s in manager.spaces()}
    assert listed["event-2026"]["objects"] == 1 and listed["event-2026"]["access"] == "write"
    assert manager.storage("event-2026").info()["description"] == "a contest"
    with pytest.raises(APIError) as not_empty:
        manager.delete_space("event-2026")
    assert not_empty.value.status == 409
    manager.delete_space("event-2026", force=True)
    assert "event-2026" not in {s["name"] for s in manager.spaces()}
    plain = DataClient(server.token_for(space_permissions={"private": "write"}), url=server.url)
    with pytest.raises(PermissionDenied):
        plain.create_space("nope")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc (Linux)")
def test_memory_stays_bounded_for_large_files(server, tmp_path):
    """A 256 MiB upload (multipart) and download in a fresh process grow its memory by far less."""
    script = f"""
import sys
from entrepot import DataClient

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])  # KiB

path, out = sys.argv[1], sys.argv[2]
with open(path, "wb") as f:
    f.truncate(256 * 1024 * 1024)
client = DataClient({server.token!r}, url={server.url!r})
storage = client.storage("private")
storage.exists("mem/none")  # warm up: imports, connection
base = status("VmRSS")
storage.upload(path, "mem/big.bin").join()
storage.download("mem/big.bin", out).join()
print(base, status("VmHWM"))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "sparse.bin"), str(tmp_path / "out.bin")],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    base, peak = (int(v) for v in proc.stdout.split())
    assert (tmp_path / "out.bin").stat().st_size == 256 * MIB
    assert peak - base < 64 * 1024, f"memory grew by {(peak - base) // 1024} MiB"
