"""Request helpers shared by the faces: services, tokens, principals, bounded bodies."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote_to_bytes

import anyio
import anyio.from_thread
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from entrepot.core.auth import Principal, authenticate
from entrepot.core.blobs import CHUNK_SIZE
from entrepot.core.errors import PayloadTooLarge, Unauthenticated
from entrepot.core.services import Services
from entrepot.logs import project_var, token_var


def services_of(request: Request) -> Services:
    return request.app.state.services


def presented_token(request: Request, *, allow_api_key: bool) -> str | None:
    """The token a request carries: X-StorageApi-Token, Authorization Bearer/Token, or api_key.

    ``api_key`` (query string or form) is only honoured by faces whose clients send it (CARTO).
    """
    token = request.headers.get("x-storageapi-token")
    if token:
        return token.strip()
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() in ("bearer", "token") and value.strip():
            return value.strip()
        raise Unauthenticated("unsupported Authorization scheme; use 'Bearer <token>' or 'Token <token>'")
    if allow_api_key:
        return request.query_params.get("api_key") or None
    return None


async def resolve_principal(request: Request, *, allow_api_key: bool = False) -> Principal:
    """Authenticate the request (anonymous when it carries no token) and log who it is."""
    services = services_of(request)
    token = presented_token(request, allow_api_key=allow_api_key)
    principal = await run_in_threadpool(
        authenticate, services.catalog, token, touch_interval=services.settings.token_touch_interval
    )
    project_id = request.headers.get("x-kbc-projectid")
    if project_id and not principal.anonymous and project_id != str(principal.project_id):
        raise Unauthenticated("X-KBC-ProjectId does not match the project of the token")
    project_var.set(principal.project_id)
    token_var.set(principal.token_id)
    request.state.principal = principal
    return principal


def decode_json(raw: bytes | str) -> Any:
    """``json.loads``, with a document nested too deeply for the parser (``[[[[…``) reported as
    the ``ValueError`` every other malformed document is (not a ``RecursionError``: a 500)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("the JSON document nests too deeply") from None


async def read_body(request: Request, limit: int) -> bytes:
    """Read a request body into memory, refusing more than ``limit`` bytes with 413."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(_too_large(limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(_too_large(limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> str:
    return (
        f"the request body is larger than the limit of {limit} bytes (setting max_request_body); "
        "upload large data as a file instead"
    )


def raw_path_tail(request: Request, tail: str) -> bytes | str:
    """The trailing path parameter ``tail`` as the client sent it: percent-decoded bytes.

    Starlette decodes the path replacing invalid UTF-8 with U+FFFD, so ``a%ff`` and ``a%fe``
    would both arrive as ``a\ufffd``. The bytes let the core decode strictly and say what is
    wrong. Without the raw path (a rewritten scope), or when the part before ``tail`` does not
    match it, ``tail`` itself is returned.
    """
    raw = request.scope.get("raw_path")
    path = request.scope.get("path", "")
    if not raw or not tail or not path.endswith(tail):
        return tail
    decoded = unquote_to_bytes(raw)
    head = path[: len(path) - len(tail)].encode("utf-8", "surrogateescape")
    if not decoded.startswith(head):
        return tail
    return decoded[len(head) :]


def content_disposition(filename: str, kind: str = "attachment") -> str:
    """A Content-Disposition value that carries any file name (RFC 6266 / 5987)."""
    quoted = quote(filename)
    if quoted != filename:
        return f"{kind}; filename*=utf-8''{quoted}"
    return f'{kind}; filename="{filename}"'


def body_chunks(request: Request, *, prefetch: int = 8) -> Iterator[bytes]:
    """The request body as a sync iterator of ~1 MiB chunks, for the worker thread that stores it.

    A task on the event loop keeps reading the body (up to ``prefetch`` chunks ahead) while
    the worker thread writes and hashes the previous chunks, so receiving and storing overlap.
    A client that disconnects surfaces as ``ClientDisconnect`` in the consumer; a consumer that
    stops early cancels the reader.
    """
    send, receive = anyio.create_memory_object_stream[bytes | BaseException](max_buffer_size=prefetch)

    async def pump() -> None:
        parts: list[bytes] = []
        size = 0
        try:
            async for part in request.stream():
                if not part:
                    continue
                parts.append(part)
                size += len(part)
                # gather ~1 MiB per hop: the server hands over ~64 KiB pieces, and each trip
                # between the event loop and the thread costs more than copying them
                if size >= CHUNK_SIZE:
                    await send.send(b"".join(parts))
                    parts, size = [], 0
            if parts:
                await send.send(b"".join(parts))
        except Exception as exc:  # e.g. ClientDisconnect: hand it to the consumer
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send.send(exc)
        finally:
            send.close()

    async def start() -> tuple[asyncio.AbstractEventLoop, asyncio.Task[None]]:
        loop = asyncio.get_running_loop()
        return loop, loop.create_task(pump())

    async def next_item() -> bytes | BaseException | None:
        try:
            return await receive.receive()
        except anyio.EndOfStream:
            return None

    def stop() -> None:  # on the event loop; scheduled from whichever thread closes the generator
        receive.close()
        task.cancel()

    loop, task = anyio.from_thread.run(start)
    try:
        while True:
            item = anyio.from_thread.run(next_item)
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        with contextlib.suppress(RuntimeError):  # the loop is already closed: nothing left to stop
            loop.call_soon_threadsafe(stop)
