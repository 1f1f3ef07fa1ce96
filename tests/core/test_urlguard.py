"""The guarded URL downloader against a real local HTTP(S) server on 127.0.0.1 (no external network)."""

from __future__ import annotations

import hashlib
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrepot.core import urlguard
from entrepot.core.errors import InvalidInput, JobCancelled, PayloadTooLarge
from entrepot.core.urlguard import DownloadResult, check_url, download

BODY = b"id,name\n" + b"".join(f"{i},row {i}\n".encode() for i in range(2000))
BIG = 3 * 1024 * 1024


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # silence
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Host")))
        path = self.path.split("?", 1)[0]
        if path == "/file.csv":
            self._send(200, BODY, {"Content-Type": "text/csv"})
        elif path == "/redirect-file":
            self._send(302, headers={"Location": "/file.csv?sig=secret"})
        elif path == "/redirect-private":
            self._send(302, headers={"Location": "http://10.255.255.1/x.csv"})
        elif path == "/redirect-metadata":
            self._send(301, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
        elif path == "/redirect-ftp":
            self._send(307, headers={"Location": "ftp://127.0.0.1/x.csv"})
        elif path == "/loop":
            self._send(302, headers={"Location": "/loop"})
        elif path == "/big":
            self.send_response(200)
            self.send_header("Content-Length", str(BIG))
            self.end_headers()
            self._write_big()
        elif path == "/big-unsized":  # HTTP/1.0, body ends when the connection closes
            self.send_response(200)
            self.end_headers()
            self._write_big()
        elif path == "/slow":  # a trickle: one byte every 50 ms
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                if self.server.stopping.wait(0.05):
                    return
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
        elif path == "/stall":  # some bytes, then silence
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            self.server.stopping.wait(30)
        elif path == "/missing":
            self._send(404, b"not here", {"Content-Type": "text/plain"})
        else:
            self._send(500, b"unexpected path")

    def _write_big(self) -> None:
        chunk = b"y" * 65536
        try:
            for _ in range(BIG // len(chunk)):
                self.wfile.write(chunk)
        except OSError:
            pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, str | None]] = []
        self.stopping = threading.Event()


def _serve(server: _Server) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield str(server.server_address[1])
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def httpd() -> Iterator[_Server]:
    server = _Server()
    for _port in _serve(server):
        yield server


@pytest.fixture
def base(httpd: _Server) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}"


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Record every outgoing TCP connection attempt (httpcore uses socket.create_connection)."""
    seen: list[tuple[str, int]] = []
    original = socket.create_connection

    def recording(address, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append((address[0], address[1]))
        return original(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", recording)
    return seen


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --- check_url -------------------------------------------------------------------------------


def test_loopback_refused_by_default_with_clear_message() -> None:
    with pytest.raises(InvalidInput) as err:
        check_url("http://127.0.0.1:8080/x.csv", allowed=[])
    msg = str(err.value)
    assert "dataUrl http://127.0.0.1:8080/x.csv" in msg
    assert "loopback address (127.0.0.1)" in msg
    assert "ENTREPOT_URL_IMPORT_ALLOWED_HOSTS" in msg


def test_private_message_matches_the_documented_wording() -> None:
    with pytest.raises(InvalidInput) as err:
        check_url("http://10.0.0.1/x", allowed=[])
    assert str(err.value) == (
        "dataUrl http://10.0.0.1/x points to a private address (10.0.0.1); entrepot refuses private, "
        "loopback and link-local addresses unless they are listed in ENTREPOT_URL_IMPORT_ALLOWED_HOSTS"
    )


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://[::1]/x", "loopback"),
        ("http://localhost/x", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local (cloud metadata)"),
        ("http://169.254.1.1/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://100.64.0.1/", "shared (CGNAT)"),
        ("http://192.168.1.1/", "private"),
        ("http://172.16.0.1/", "private"),
        ("http://224.0.0.1/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://[fd00::1]/", "private"),
        ("http://[fec0::1]/", "site-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[2002:a00:1::]/", "private"),  # 6to4 wrapping 10.0.0.1
        ("http://2130706433/", "loopback"),  # 127.0.0.1 as one decimal number
    ],
)
def test_non_public_addresses_refused(url: str, kind: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_url(url, allowed=[])
    assert f"{kind} address" in str(err.value)
    assert "ENTREPOT_URL_IMPORT_ALLOWED_HOSTS" in str(err.value)


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/x.csv", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)", "x.csv"],
)
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_url(url, allowed=["127.0.0.0/8"])
    assert "only http:// and https://" in str(err.value)


@pytest.mark.parametrize(
    "url",
    ["http://example.com@127.0.0.1/", "http://user:pass@example.com/", "http://127.0.0.1:80@10.0.0.1/"],
)
def test_userinfo_refused(url: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_url(url, allowed=["127.0.0.1", "10.0.0.0/8"])
    assert "user name or password" in str(err.value)


@pytest.mark.parametrize("url", ["http://exa mple.com/", "http://a\\b@127.0.0.1/", "http://x/\r\nHost: y"])
def test_whitespace_and_backslashes_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="percent-encode"):
        check_url(url, allowed=[])


def test_allowed_entries() -> None:
    check_url("http://127.0.0.1:9/x", allowed=["127.0.0.1"])
    check_url("http://127.0.0.1:9/x", allowed=["127.0.0.0/8"])
    check_url("http://localhost:9/x", allowed=["LOCALHOST."])
    check_url("http://[::1]/x", allowed=["[::1]"])
    check_url("http://[::ffff:127.0.0.1]/x", allowed=["127.0.0.1"])
    check_url("http://10.1.2.3/x", allowed=["10.0.0.0/8"])
    check_url("http://8.8.8.8/x", allowed=[])  # public: no entry needed (no connection is made)
    with pytest.raises(InvalidInput, match=r"private address \(10\.1\.2\.3\)"):
        check_url("http://10.1.2.3/x", allowed=["10.0.0.0/16", "127.0.0.1", "files.internal"])


def test_invalid_allowed_entry_is_named() -> None:
    with pytest.raises(InvalidInput, match=r"ENTREPOT_URL_IMPORT_ALLOWED_HOSTS entry '10\.0\.0\.0/33'"):
        check_url("http://8.8.8.8/", allowed=["10.0.0.0/33"])


def test_any_private_resolved_address_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    original = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "mixed.example":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
            ]
        return original(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(InvalidInput, match=r"private address \(10\.0\.0\.7\)"):
        check_url("https://mixed.example/data.csv", allowed=[])
    check_url("https://mixed.example/data.csv", allowed=["mixed.example"])


def test_unresolvable_host() -> None:
    with pytest.raises(InvalidInput, match="cannot be resolved"):
        check_url("http://no-such-host.invalid/x.csv", allowed=[])


def test_query_string_not_echoed() -> None:
    with pytest.raises(InvalidInput) as err:
        check_url("http://127.0.0.1/x.csv?X-Amz-Signature=topsecret", allowed=[])
    assert "topsecret" not in str(err.value)
    assert "http://127.0.0.1/x.csv?…" in str(err.value)


# --- download --------------------------------------------------------------------------------


def _get(url: str, dest: Path, **kw) -> DownloadResult:  # type: ignore[no-untyped-def]
    kw.setdefault("allowed", ["127.0.0.1"])
    kw.setdefault("max_bytes", 10 * 1024 * 1024)
    kw.setdefault("timeout", 10.0)
    return download(url, dest, **kw)


def test_download_refuses_loopback_by_default(base: str, tmp_path: Path, connections: list) -> None:
    with pytest.raises(InvalidInput, match="loopback address"):
        _get(f"{base}/file.csv", tmp_path / "f.csv", allowed=[])
    assert connections == []
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("allowed", [["127.0.0.1"], ["127.0.0.0/8"]])
def test_download_allowed(base: str, tmp_path: Path, allowed: list[str]) -> None:
    progress: list[tuple[int, int | None]] = []
    dest = tmp_path / "f.csv"
    result = _get(
        f"{base}/file.csv",
        dest,
        allowed=allowed,
        chunk_size=4096,
        on_progress=lambda d, t: progress.append((d, t)),
    )
    assert dest.read_bytes() == BODY
    assert result == DownloadResult(
        path=dest,
        size=len(BODY),
        content_type="text/csv",
        final_url=f"{base}/file.csv",
        sha256=hashlib.sha256(BODY).hexdigest(),  # computed while streaming
    )
    assert progress[-1] == (len(BODY), len(BODY))
    assert len(progress) > 1
    assert _leftovers(tmp_path) == ["f.csv"]


def test_download_connects_to_the_checked_ip_and_keeps_the_host_header(
    httpd: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name is resolved once; the second answer (private) is never used."""
    original = socket.getaddrinfo
    answers = iter(["127.0.0.1", "10.255.255.1", "10.255.255.1"])
    lookups: list[str] = []

    def rebinding(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "files.example":
            lookups.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return original(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    port = httpd.server_address[1]
    result = _get(f"http://files.example:{port}/file.csv", tmp_path / "f.csv", allowed=["127.0.0.1"])
    assert result.size == len(BODY)
    assert lookups == ["files.example"]
    assert ("/file.csv", f"files.example:{port}") in httpd.seen


def test_relative_redirect_followed_and_rechecked(base: str, tmp_path: Path) -> None:
    result = _get(f"{base}/redirect-file", tmp_path / "f.csv")
    assert result.final_url == f"{base}/file.csv?sig=secret"
    assert (tmp_path / "f.csv").read_bytes() == BODY


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/redirect-private", "redirects to http://10.255.255.1/x.csv, which points to a private address"),
        ("/redirect-metadata", "link-local (cloud metadata) address (169.254.169.254)"),
    ],
)
def test_redirect_to_private_refused_without_connecting(
    base: str, tmp_path: Path, connections: list[tuple[str, int]], path: str, expected: str
) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidInput) as err:
        _get(f"{base}{path}", tmp_path / "f.csv", timeout=30)
    assert expected in str(err.value)
    assert "ENTREPOT_URL_IMPORT_ALLOWED_HOSTS" in str(err.value)
    assert [host for host, _ in connections] == ["127.0.0.1"]
    assert time.monotonic() - started < 5
    assert _leftovers(tmp_path) == []


def test_redirect_to_ftp_refused(base: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="only http:// and https://"):
        _get(f"{base}/redirect-ftp", tmp_path / "f.csv")
    assert _leftovers(tmp_path) == []


def test_redirect_loop_stops(base: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="redirects more than 5 times"):
        _get(f"{base}/loop", tmp_path / "f.csv")
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("path", ["/big", "/big-unsized"])
def test_max_bytes(base: str, tmp_path: Path, path: str) -> None:
    with pytest.raises(PayloadTooLarge) as err:
        _get(f"{base}{path}", tmp_path / "f.csv", max_bytes=100_000)
    assert "ENTREPOT_URL_IMPORT_MAX_BYTES" in str(err.value)
    assert "100000 bytes" in str(err.value)
    assert _leftovers(tmp_path) == []


def test_unsized_body_within_limit(base: str, tmp_path: Path) -> None:
    result = _get(f"{base}/big-unsized", tmp_path / "f.bin", max_bytes=BIG)
    assert result.size == BIG == (tmp_path / "f.bin").stat().st_size


@pytest.mark.parametrize("path", ["/slow", "/stall"])
def test_total_timeout(base: str, tmp_path: Path, path: str) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidInput) as err:
        _get(f"{base}{path}", tmp_path / "f.csv", timeout=0.6)
    elapsed = time.monotonic() - started
    assert "within 0.6 seconds" in str(err.value)
    assert "ENTREPOT_URL_IMPORT_TIMEOUT" in str(err.value)
    assert elapsed < 3, elapsed
    assert _leftovers(tmp_path) == []


def test_http_error_status(base: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        _get(f"{base}/missing", tmp_path / "f.csv")
    assert "HTTP 404" in str(err.value)
    assert err.value.details["status"] == 404
    assert _leftovers(tmp_path) == []


def test_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InvalidInput, match=r"could not be downloaded: .*refused"):
        _get(f"http://127.0.0.1:{port}/x.csv", tmp_path / "f.csv")
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("path", ["/slow", "/stall"])
def test_cancellation(base: str, tmp_path: Path, path: str) -> None:
    cancelled = threading.Event()
    threading.Timer(0.3, cancelled.set).start()
    started = time.monotonic()
    with pytest.raises(JobCancelled):
        _get(f"{base}{path}", tmp_path / "f.csv", timeout=30, cancelled=cancelled)
    assert time.monotonic() - started < 3
    assert _leftovers(tmp_path) == []


def test_cancelled_before_start(base: str, tmp_path: Path, connections: list) -> None:
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(JobCancelled):
        _get(f"{base}/file.csv", tmp_path / "f.csv", cancelled=cancelled)
    assert connections == []
    assert _leftovers(tmp_path) == []


def test_progress_callback_failure_removes_partial_file(base: str, tmp_path: Path) -> None:
    def boom(done: int, total: int | None) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        _get(f"{base}/file.csv", tmp_path / "f.csv", chunk_size=1024, on_progress=boom)
    assert _leftovers(tmp_path) == []


def test_existing_destination_replaced_only_on_success(base: str, tmp_path: Path) -> None:
    dest = tmp_path / "f.csv"
    dest.write_bytes(b"old")
    with pytest.raises(InvalidInput):
        _get(f"{base}/missing", dest)
    assert dest.read_bytes() == b"old"
    _get(f"{base}/file.csv", dest)
    assert dest.read_bytes() == BODY


# --- HTTPS: the checked IP is dialled, the certificate is verified against the host name -----


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    from entrepot.tls import ensure_self_signed

    files = ensure_self_signed(tmp_path_factory.mktemp("tls"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    server = _Server()
    server.socket = context.wrap_socket(server.socket, server_side=True)
    for _port in _serve(server):
        yield server.server_address[1], files.ca


def test_https_with_sni_and_verification(tls_server: tuple[int, Path], tmp_path: Path) -> None:
    port, ca = tls_server
    trust = ssl.create_default_context(cafile=str(ca))
    result = download(
        f"https://localhost:{port}/file.csv",
        tmp_path / "f.csv",
        allowed=["localhost"],
        max_bytes=10 * 1024 * 1024,
        timeout=10,
        ssl_context=trust,
    )
    assert result.size == len(BODY)
    assert result.final_url == f"https://localhost:{port}/file.csv"


def test_https_certificate_checked_against_host_name_not_ip(
    tls_server: tuple[int, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The certificate covers 127.0.0.1 but not files.example: verifying against the dialled IP would pass."""
    port, ca = tls_server
    original = socket.getaddrinfo

    def fake(host, p, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "files.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p))]
        return original(host, p, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    trust = ssl.create_default_context(cafile=str(ca))
    with pytest.raises(InvalidInput, match=r"certificate is not valid for 'files\.example'"):
        download(
            f"https://files.example:{port}/file.csv",
            tmp_path / "f.csv",
            allowed=["127.0.0.1"],
            max_bytes=1 << 20,
            timeout=10,
            ssl_context=trust,
        )
    assert _leftovers(tmp_path) == []


def test_https_default_verification_rejects_unknown_ca(tls_server: tuple[int, Path], tmp_path: Path) -> None:
    port, _ca = tls_server
    with pytest.raises(InvalidInput, match="certificate"):
        download(
            f"https://localhost:{port}/file.csv",
            tmp_path / "f.csv",
            allowed=["localhost"],
            max_bytes=1 << 20,
            timeout=10,
        )
    assert _leftovers(tmp_path) == []


def test_module_documents_its_rebinding_choice() -> None:
    assert "sni_hostname" in (urlguard.__doc__ or "")
