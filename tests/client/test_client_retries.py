"""The SDK's transport against a scripted local HTTP server: retries, Retry-After, error parsing."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from entrepot import __version__
from entrepot.client import Client, ConnectionFailed, InvalidRequest, RateLimited, ServerError
from support.server import free_port

VERIFIED = {"id": "7", "description": "stub token"}


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict | list | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Stub:
    """A real HTTP server on 127.0.0.1 that plays a script of replies, one per request."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with stub._lock:
                    stub.requests.append(Seen(self.command, self.path, dict(self.headers), body))
                    reply = stub.script.pop(0) if stub.script else Reply(200, VERIFIED)
                if reply.delay:
                    time.sleep(reply.delay)
                data = reply.body
                content_type = "application/json"
                if isinstance(data, (dict, list)):
                    data = json.dumps(data).encode()
                elif data is None:
                    data = b""
                else:
                    content_type = "text/plain"
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST = do_DELETE = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.close()


@pytest.fixture
def make_client(stub: Stub) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(**kwargs: object) -> Client:
        kwargs.setdefault("backoff", 0.01)
        c = Client(stub.url, "stub-token", **kwargs)  # type: ignore[arg-type]
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def _envelope(message: str, code: str = "unavailable") -> dict:
    return {"error": message, "code": code, "status": "error", "exceptionId": "exc-1"}


def test_get_is_retried_on_503_with_retry_after_until_it_succeeds(stub, make_client):
    busy = Reply(503, _envelope("try later"), {"Retry-After": "0"})
    stub.script = [busy, busy]
    assert make_client().tokens.verify() == VERIFIED
    assert len(stub.requests) == 3
    assert all(r.path == "/v2/storage/tokens/verify" for r in stub.requests)


def test_requests_carry_the_token_and_user_agent(stub, make_client):
    make_client().tokens.verify()
    headers = {k.lower(): v for k, v in stub.requests[0].headers.items()}
    assert headers["x-storageapi-token"] == "stub-token"
    assert headers["user-agent"] == f"entrepot-sdk/{__version__}"


def test_retry_after_is_respected(stub, make_client):
    stub.script = [Reply(429, _envelope("slow down", "rateLimited"), {"Retry-After": "1"})]
    started = time.monotonic()
    make_client().tokens.verify()
    assert time.monotonic() - started >= 0.9
    assert len(stub.requests) == 2


def test_retry_after_beyond_the_limit_gives_up_at_once(stub, make_client):
    stub.script = [Reply(429, _envelope("come back tomorrow", "rateLimited"), {"Retry-After": "86400"})]
    with pytest.raises(RateLimited) as info:
        make_client().tokens.verify()
    assert info.value.status == 429 and info.value.message == "come back tomorrow"
    assert len(stub.requests) == 1


def test_retries_are_bounded_and_the_last_error_is_raised(stub, make_client):
    stub.script = [Reply(502, b"bad gateway")] * 10
    with pytest.raises(ServerError) as info:
        make_client(retries=2).tokens.verify()
    assert info.value.status == 502
    assert info.value.message == "bad gateway"  # text body, no envelope
    assert len(stub.requests) == 3


def test_500_is_not_retried_and_the_envelope_is_parsed(stub, make_client):
    stub.script = [Reply(500, _envelope("internal server error", "internal"))]
    with pytest.raises(ServerError) as info:
        make_client().tokens.verify()
    assert (info.value.message, info.value.code, info.value.exception_id) == (
        "internal server error",
        "internal",
        "exc-1",
    )
    assert len(stub.requests) == 1


def test_default_error_envelope_is_parsed_too(stub, make_client):
    stub.script = [
        Reply(400, {"error": {"code": "validation.invalid", "message": "bad"}, "exceptionId": "x"})
    ]
    with pytest.raises(InvalidRequest) as info:
        make_client().tokens.get(1)
    assert (info.value.message, info.value.code, info.value.exception_id) == (
        "bad",
        "validation.invalid",
        "x",
    )


def test_post_is_retried_on_503_but_not_on_502(stub, make_client):
    client = make_client()
    stub.script = [Reply(503, _envelope("busy"), {"Retry-After": "0"}), Reply(201, {"id": "9", "token": "s"})]
    assert client.tokens.create("x")["id"] == "9"
    assert [r.method for r in stub.requests] == ["POST", "POST"]
    assert json.loads(stub.requests[1].body)["description"] == "x"

    stub.requests.clear()
    stub.script = [Reply(502, b"bad gateway"), Reply(201, {"id": "10"})]
    with pytest.raises(ServerError):
        client.tokens.create("y")
    assert len(stub.requests) == 1


def test_get_is_retried_after_a_read_timeout_but_post_is_not(stub, make_client):
    client = make_client(timeout=0.2)
    stub.script = [Reply(200, VERIFIED, delay=0.6)]
    assert client.tokens.verify() == VERIFIED
    assert len(stub.requests) == 2

    stub.requests.clear()
    stub.script = [Reply(201, {"id": "1"}, delay=0.6)]
    with pytest.raises(ConnectionFailed) as info:
        client.jobs.cancel(1)
    assert "ReadTimeout" in info.value.message
    assert len(stub.requests) == 1


def test_connection_refused_raises_connection_failed_after_retries():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with Client(url, "t", retries=2, backoff=0.01) as c, pytest.raises(ConnectionFailed) as info:
        c.tokens.verify()
    assert time.monotonic() - started < 2
    assert info.value.status is None
    assert "after 3 attempts" in info.value.message
    assert isinstance(info.value.__cause__, Exception)


def test_importing_entrepot_does_not_import_the_sdk():
    code = "import sys, entrepot; print('entrepot.client' in sys.modules, 'httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
