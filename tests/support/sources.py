"""A tiny HTTP server on 127.0.0.1 serving one mutable file: the source of sync-table tests.

``source.body`` is what it serves; ``source.etag`` on answers ``ETag`` (and 304 to a matching
``If-None-Match``); ``source.status`` other than 200 answers that error; ``source.gate``, when
set, is a ``threading.Event`` each GET waits on before answering (a run held mid-download).
``source.hits`` counts GETs and ``source.not_modified`` the 304s.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Source:
    def __init__(self) -> None:
        self.body = b""
        self.etag = False
        self.status = 200
        self.gate: threading.Event | None = None
        self.hits = 0
        self.not_modified = 0
        self.url = ""

    def tag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


@contextmanager
def serve_source(name: str = "places.csv") -> Iterator[Source]:
    source = Source()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            source.hits += 1
            if source.gate is not None:
                source.gate.wait(30)
            if source.status != 200:
                self.send_response(source.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            tag = source.tag()
            if source.etag and self.headers.get("If-None-Match") == tag:
                source.not_modified += 1
                self.send_response(304)
                self.send_header("ETag", tag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(source.body)))
            if source.etag:
                self.send_header("ETag", tag)
            self.end_headers()
            self.wfile.write(source.body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    source.url = f"http://127.0.0.1:{httpd.server_address[1]}/{name}"
    try:
        yield source
    finally:
        if source.gate is not None:
            source.gate.set()
        httpd.shutdown()
        httpd.server_close()
