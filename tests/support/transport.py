"""A scripted HTTP transport for SDK tests: what the client sends, without a server."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from entrepot.client import Client

Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


class Recorder:
    """An ``httpx.MockTransport`` handler that records requests and their bodies and answers a script.

    The replies answer in order; the last one answers every request after it. A reply is a
    response or a function of the request. ``replies`` may be replaced between calls.
    """

    def __init__(self, *replies: Reply):
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(request.read())
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return reply(request) if callable(reply) else reply

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


@contextlib.contextmanager
def scripted(
    *replies: Reply, base_url: str = "http://api.test", token: str = "tok", **options: Any
) -> Iterator[tuple[Client, Recorder]]:
    """A ``Client`` (no retries unless ``options`` say so) over a ``Recorder`` of ``replies``."""
    recorder = Recorder(*replies)
    options.setdefault("retries", 0)
    with Client(base_url, token, http_transport=recorder.transport(), **options) as client:
        yield client, recorder
