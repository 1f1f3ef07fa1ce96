"""Hostile probes of issue 13 (findings 6 and 7), each against a real server: log injection,
a CSV wider than a table may be, invalid UTF-8 in object keys, active content served from a
public space, and byte ranges at the edges of RFC 9110.

Every refusal is checked for its status, its message in the face's own envelope, and that
nothing changed.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from entrepot.logs import ContextFilter, JsonFormatter, TextFormatter
from support.jobs import wait_kbc_job
from support.server import RunningServer

FORGED = "2026-12-04 19:00:00,000 WARNING entrepot.auth: FORGED"


def _auth(server: RunningServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token}"}


# -- 6. log injection ----------------------------------------------------------------------------


class _Capture(logging.Handler):
    """Formats, in both formats, every record whose message contains ``needle``."""

    def __init__(self, needle: str):
        super().__init__(logging.INFO)
        self.needle = needle
        self.addFilter(ContextFilter())
        self.text, self.json = TextFormatter(), JsonFormatter()
        self.lines: list[tuple[str, str]] = []
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.lines.append((self.text.format(record), self.json.format(record)))
            self.seen.set()


@pytest.fixture
def access_log() -> Iterator[Any]:
    """Capture the server's access log (``entrepot.http``) for one test; returns a factory."""
    logger = logging.getLogger("entrepot.http")
    level = logger.level
    logger.setLevel(logging.INFO)
    handlers: list[_Capture] = []

    def capture(needle: str) -> _Capture:
        handler = _Capture(needle)
        logger.addHandler(handler)
        handlers.append(handler)
        return handler

    yield capture
    for handler in handlers:
        logger.removeHandler(handler)
    logger.setLevel(level)


def _one_record(capture: _Capture) -> tuple[str, str]:
    # the access log line is written after the response: wait for it, not for a while
    assert capture.seen.wait(10), "the request was not logged"
    assert len(capture.lines) == 1, capture.lines
    return capture.lines[0]


def test_a_forged_log_line_in_the_path_stays_on_the_request_line(server, access_log) -> None:  # type: ignore[no-untyped-def]
    capture = access_log("/v2/storage/tables/x")
    path = "/v2/storage/tables/x%0a2026-12-04%2019:00:00,000%20WARNING%20entrepot.auth:%20FORGED"
    r = httpx.get(f"{server.url}{path}", headers=server.headers())
    assert r.status_code == 404 and r.json()["status"] == "error", r.text

    text, line = _one_record(capture)
    assert text.splitlines() == [text]  # exactly one line, by every notion of a line break
    assert f"GET /v2/storage/tables/x\\n{FORGED} 404" in text
    assert line.splitlines() == [line]
    record = json.loads(line)
    assert record["message"].startswith(f"GET /v2/storage/tables/x\\n{FORGED} 404")
    assert record["request_id"] == r.headers["x-request-id"]


def test_nul_and_control_characters_are_logged_escaped(server, access_log) -> None:  # type: ignore[no-untyped-def]
    capture = access_log("/v2/storage/tables/y")
    # NUL, ESC (terminal sequences), CR, DEL, NEL (C1), LINE SEPARATOR, a tab
    path = "/v2/storage/tables/y%00%1b%5b2J%0d%7f%c2%85%e2%80%a8%09end"
    r = httpx.get(f"{server.url}{path}", headers=server.headers())
    assert r.status_code == 404, r.text

    text, line = _one_record(capture)
    escaped = "y\\x00\\x1b[2J\\r\\x7f\\x85\\u2028\\tend"
    assert f"/v2/storage/tables/{escaped} 404" in text
    assert text.splitlines() == [text] and text.isprintable()
    assert line.splitlines() == [line] and line.isascii()
    assert f"/v2/storage/tables/{escaped} 404" in json.loads(line)["message"]


def test_a_traceback_cannot_start_a_log_line_of_its_own() -> None:
    try:
        raise ValueError(f"bad input\n{FORGED}\r\x00")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "entrepot.http", logging.ERROR, __file__, 1, "failed on %s", ("x\ny",), exc_info
    )
    text = TextFormatter().format(record)
    first, *rest = text.split("\n")
    assert first.endswith("entrepot.http: failed on x\\ny")
    assert rest and all(line.startswith("    ") for line in rest)  # only a record starts at the margin
    assert f"    {FORGED}\\r\\x00" in rest
    assert json.loads(JsonFormatter().format(record))["exception"].endswith(f"{FORGED}\r\x00")


# -- 7a. a CSV wider than a table may be ---------------------------------------------------------


@pytest.fixture(scope="module")
def bucket(server) -> str:  # type: ignore[no-untyped-def]
    r = httpx.post(f"{server.url}/v2/storage/buckets", headers=server.headers(), data={"name": "hostile"})
    assert r.status_code == 201, r.text
    return "in.c-hostile"


def _tables(server: RunningServer, bucket: str) -> list[str]:
    r = httpx.get(f"{server.url}/v2/storage/buckets/{bucket}/tables", headers=server.headers())
    assert r.status_code == 200, r.text
    return sorted(t["id"] for t in r.json())


def test_a_csv_of_ten_thousand_columns_is_refused_with_the_column_limit(server, bucket) -> None:  # type: ignore[no-untyped-def]
    wide = ",".join(f"c{i}" for i in range(10_000)) + "\n" + ",".join("1" for _ in range(10_000)) + "\n"
    before = _tables(server, bucket)
    r = httpx.post(
        f"{server.url}/v2/storage/buckets/{bucket}/tables-async",
        headers=server.headers(),
        data={"name": "wide", "dataString": wide},
    )
    job = wait_kbc_job(server, r)
    assert job["status"] == "error", job
    assert job["error"]["message"] == "the CSV file has 10000 columns; a table has at most 1000", job
    assert job["error"]["code"] == "csv.tooManyColumns"
    assert "Out of Memory" not in json.dumps(job)
    assert _tables(server, bucket) == before

    # importing it into an existing table is refused the same way, and the table stays as it was
    r = httpx.post(
        f"{server.url}/v2/storage/buckets/{bucket}/tables-async",
        headers=server.headers(),
        data={"name": "narrow", "dataString": "c0,c1\na,b\n"},
    )
    assert wait_kbc_job(server, r)["status"] == "success"
    r = httpx.post(
        f"{server.url}/v2/storage/tables/{bucket}.narrow/import-async",
        headers=server.headers(),
        data={"dataString": wide, "incremental": "1"},
    )
    job = wait_kbc_job(server, r)
    assert job["status"] == "error" and "a table has at most 1000" in job["error"]["message"], job
    detail = httpx.get(f"{server.url}/v2/storage/tables/{bucket}.narrow", headers=server.headers()).json()
    assert detail["columns"] == ["c0", "c1"] and detail["rowsCount"] == 1, detail


# -- 7b. invalid UTF-8 in object keys -------------------------------------------------------------


def _objects(server: RunningServer, prefix: str) -> list[str]:
    r = httpx.get(
        f"{server.url}/spaces/v1/default/private/objects", params={"prefix": prefix}, headers=_auth(server)
    )
    assert r.status_code == 200, r.text
    return [o["key"] for o in r.json()["objects"]]


@pytest.mark.parametrize("method", ["PUT", "GET", "HEAD", "DELETE"])
def test_invalid_utf8_in_an_object_key_is_400_not_a_replacement_character(server, method) -> None:  # type: ignore[no-untyped-def]
    base = f"{server.url}/spaces/v1/default/private/objects"
    # the real U+FFFD, percent-encoded as UTF-8, is a valid key of its own
    stored = httpx.put(f"{base}/utf8-{method}/a%EF%BF%BD", content=b"fffd", headers=_auth(server))
    assert stored.status_code == 201, stored.text
    before = _objects(server, f"utf8-{method}/")
    assert before == [f"utf8-{method}/a\ufffd"]

    for raw in ("a%ff%fe", "a%ff", "a%c3", "%ed%a0%80"):  # not UTF-8 / truncated / a surrogate
        body = b"x" if method == "PUT" else None
        r = httpx.request(method, f"{base}/utf8-{method}/{raw}", content=body, headers=_auth(server))
        assert r.status_code == 400, (raw, r.text)
        if method != "HEAD":
            error = r.json()["error"]
            assert error["code"] == "objects.invalidKey"
            assert error["message"].startswith("the object key is not valid UTF-8 (byte 0x"), error
    assert _objects(server, f"utf8-{method}/") == before
    got = httpx.get(f"{base}/utf8-{method}/a%EF%BF%BD", headers=_auth(server))
    assert got.status_code == 200 and got.content == b"fffd"


# -- 7c. active content from a public space -----------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/html",
        "text/html; charset=utf-8",
        "TEXT/HTML",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
        "multipart/x-mixed-replace; boundary=x",
        "not a type",
    ],
)
def test_active_content_is_an_attachment_with_nosniff_and_a_sandbox(server, content_type) -> None:  # type: ignore[no-untyped-def]
    url = f"{server.url}/spaces/v1/default/public/objects/active/page"
    body = b"<html><script>alert(document.cookie)</script></html>"
    r = httpx.put(url, content=body, headers={**_auth(server), "Content-Type": content_type})
    assert r.status_code == 201, r.text
    for method in ("GET", "HEAD"):
        got = httpx.request(method, url)  # anonymous: the space is public
        assert got.status_code == 200
        assert got.headers["content-disposition"] == 'attachment; filename="page"', got.headers
        assert got.headers["x-content-type-options"] == "nosniff"
        assert got.headers["content-security-policy"] == "sandbox"


@pytest.mark.parametrize("content_type", ["text/plain", "image/png", "application/json", "text/csv"])
def test_passive_content_stays_inline_and_sandboxed(server, content_type) -> None:  # type: ignore[no-untyped-def]
    url = f"{server.url}/spaces/v1/default/public/objects/passive/file"
    stored = httpx.put(url, content=b"x", headers={**_auth(server), "Content-Type": content_type})
    assert stored.status_code == 201, stored.text
    got = httpx.get(url)
    assert got.headers["content-disposition"] == 'inline; filename="file"'
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == "sandbox"
    assert httpx.get(url, params={"download": "1"}).headers["content-disposition"].startswith("attachment")


# -- 7d. ranges ---------------------------------------------------------------------------------

DATA = bytes(range(100))


@pytest.fixture(scope="module")
def ranged_urls(server) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A 100-byte spaces object and a 100-byte Keboola file (signed download URL)."""
    obj = f"{server.url}/spaces/v1/default/private/objects/ranges/data.bin"
    assert httpx.put(obj, content=DATA, headers=_auth(server)).status_code == 201
    prepared = httpx.post(
        f"{server.url}/v2/storage/files/prepare", headers=server.headers(), data={"name": "data.bin"}
    ).json()
    uploaded = httpx.put(prepared["uploadParams"]["url"], content=DATA)
    assert uploaded.status_code == 200, uploaded.text
    return {"spaces": obj, "keboola": uploaded.json()["url"]}


@pytest.mark.parametrize("face", ["spaces", "keboola"])
@pytest.mark.parametrize(
    ("header", "status", "content_range", "body"),
    [
        ("bytes=0-99999999999999999999999", 206, "bytes 0-99/100", DATA),  # last past the end: clamped
        ("bytes=90-18446744073709551616", 206, "bytes 90-99/100", DATA[90:]),
        ("bytes=10-19", 206, "bytes 10-19/100", DATA[10:20]),
        ("bytes=-99999999999999999999999", 206, "bytes 0-99/100", DATA),  # suffix longer than the object
        ("Bytes=0-0", 206, "bytes 0-0/100", DATA[:1]),  # the unit is case-insensitive
        ("bytes=5-2", 200, None, DATA),  # invalid: ignored
        ("bytes=0-1,5-6", 200, None, DATA),  # several ranges: ignored
        ("items=0-1", 200, None, DATA),
    ],
)
def test_ranges_follow_rfc_9110(server, ranged_urls, face, header, status, content_range, body) -> None:  # type: ignore[no-untyped-def]
    r = httpx.get(ranged_urls[face], headers={**_auth(server), "Range": header})
    assert r.status_code == status, r.text
    assert r.headers.get("content-range") == content_range
    assert r.content == body and r.headers["content-length"] == str(len(body))
    assert r.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize("face", ["spaces", "keboola"])
@pytest.mark.parametrize("header", ["bytes=18446744073709551615-", "bytes=100-", "bytes=100-200", "bytes=-0"])
def test_unsatisfiable_ranges_are_416_with_the_size(server, ranged_urls, face, header) -> None:  # type: ignore[no-untyped-def]
    r = httpx.get(ranged_urls[face], headers={**_auth(server), "Range": header})
    assert r.status_code == 416, r.text
    assert r.headers["content-range"] == "bytes */100"
    if face == "spaces":
        assert r.json()["error"]["code"] == "objects.rangeNotSatisfiable"
        message = r.json()["error"]["message"]
    else:
        assert r.json()["status"] == "error" and r.json()["code"] == "objects.rangeNotSatisfiable"
        message = r.json()["error"]
    assert message.startswith(f"the range {header!r} ") and message.endswith("(100 bytes)"), message
    assert httpx.get(ranged_urls[face], headers=_auth(server)).content == DATA  # nothing changed


def test_keboola_file_downloads_are_sandboxed_attachments(server, ranged_urls) -> None:  # type: ignore[no-untyped-def]
    r = httpx.get(ranged_urls["keboola"])
    assert r.status_code == 200 and r.content == DATA
    assert r.headers["content-disposition"] == 'attachment; filename="data.bin"'
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "sandbox"
    assert r.headers["etag"] and r.headers["last-modified"]
    resumed = httpx.get(ranged_urls["keboola"], headers={"Range": "bytes=50-", "If-Range": r.headers["etag"]})
    assert resumed.status_code == 206 and resumed.content == DATA[50:]
    stale = httpx.get(ranged_urls["keboola"], headers={"Range": "bytes=50-", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == DATA
