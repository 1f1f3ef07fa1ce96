"""The S3 face's view of one HTTP exchange: the parsed request, the reply, sending it as raw
ASGI messages (exact status and headers, bodies streamed from a worker thread), and the worker
threads of the face's short blocking work."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from entrepot.faces.s3.addressing import Target, target
from entrepot.faces.s3.errors import S3Error
from entrepot.faces.s3.sigv4 import Headers, Pairs, query_pairs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


_SHORT_WORK: RunVar[anyio.CapacityLimiter] = RunVar("entrepot_s3_short_work")


def short_work(threads: int) -> anyio.CapacityLimiter:
    """The limiter of the S3 face's short blocking work on this event loop: ``threads`` at once.

    Short work never waits on the client: resolving a credential, reading an object's entry and
    (up to 64 KiB) its bytes. It runs on a few threads of its own rather than on anyio's 40
    shared ones: a burst of GETs occupies at most ``threads`` threads (and catalog connections),
    and work that waits on a client's body never holds one of them.
    """
    try:
        return _SHORT_WORK.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(threads)
        _SHORT_WORK.set(limiter)
        return limiter


@dataclass
class S3Request:
    """One request as the S3 face reads it. Building it never fails: a bad query string is kept
    as ``query_error`` and refused once the request is authenticated."""

    scope: Scope
    method: str
    raw_path: bytes
    raw_query: bytes
    pairs: Pairs
    headers: Headers
    host: str
    on_s3_port: bool
    target: Target
    query_error: S3Error | None = None
    _query: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_scope(cls, scope: Scope, vhost_domains: list[str], *, on_s3_port: bool) -> S3Request:
        headers: Headers = {}
        for name, value in scope.get("headers") or []:
            headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        raw_path: bytes = scope.get("raw_path") or scope.get("path", "/").encode("utf-8")
        raw_path = raw_path.split(b"?", 1)[0]
        raw_query: bytes = scope.get("query_string") or b""
        host = (headers.get("host") or [""])[0]
        error = None
        try:
            pairs = query_pairs(raw_query)
        except S3Error as exc:
            pairs, error = [], exc
        query: dict[str, str] = {}
        for name, value in pairs:
            query.setdefault(name, value)
        return cls(
            scope,
            scope["method"],
            raw_path,
            raw_query,
            pairs,
            headers,
            host,
            on_s3_port,
            target(raw_path, host, vhost_domains),
            error,
            query,
        )

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None

    def query(self, name: str) -> str | None:
        return self._query.get(name)

    def has(self, name: str) -> bool:
        return name in self._query

    @property
    def has_body(self) -> bool:
        """Whether a body follows the head (a length above 0, or chunked transfer encoding)."""
        length = self.header("content-length")
        if length is not None:
            return length.strip() not in ("", "0")
        return self.header("transfer-encoding") is not None


@dataclass
class Reply:
    """A reply: status, headers (names as written), and a body in memory or a stream.

    ``stream`` is a synchronous iterator (a blob being read), advanced in a worker thread.
    """

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: Iterator[bytes] | None = None

    def header(self, name: str) -> str | None:
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None


async def send_reply(send: Send, reply: Reply, *, head: bool, disconnected: Receive | None = None) -> None:
    """Send ``reply``; a HEAD reply carries the headers only (its Content-Length is the object's).

    A streamed body stops early when ``disconnected`` (the request's ``receive``, once its body
    was read) reports that the client went away: an abandoned download reads no further.
    """
    headers = list(reply.headers)
    if reply.header("content-length") is None and reply.stream is None and reply.status not in (204, 304):
        headers.append(("Content-Length", str(len(reply.body))))
    raw = [(n.encode("latin-1"), v.encode("latin-1", "replace")) for n, v in headers]
    stream = reply.stream
    try:
        await send({"type": "http.response.start", "status": reply.status, "headers": raw})
        if head or reply.status in (204, 304):
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if stream is None:
            await send({"type": "http.response.body", "body": reply.body, "more_body": False})
            return
        async with anyio.create_task_group() as group:
            if disconnected is not None:
                group.start_soon(_cancel_on_disconnect, disconnected, group.cancel_scope)
            await _stream(send, stream)
            group.cancel_scope.cancel()
    finally:
        if stream is not None:
            close = getattr(stream, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await anyio.to_thread.run_sync(close)


async def _stream(send: Send, stream: Iterator[bytes]) -> None:
    while True:
        chunk = await anyio.to_thread.run_sync(next, stream, None)
        if chunk is None:
            break
        if chunk:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


class BodyState:
    """Wraps ``receive``: whether the handler started reading the body and whether it read all of it.

    A request refused before its body was read is answered with ``Connection: close``: the client
    may never send the body it announced (``Expect: 100-continue``), and the server would read
    the next request as that body.
    """

    def __init__(self, receive: Receive):
        self._receive = receive
        self.started = False
        self.complete = False

    async def receive(self) -> Message:
        self.started = True
        message = await self._receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            self.complete = True
        return message
