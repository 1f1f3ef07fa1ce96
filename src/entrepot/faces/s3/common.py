"""What the S3 operations share: the bucket and key a request names, metadata and stored
headers, small bodies, and running a core command in a worker thread."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

import anyio.from_thread
import anyio.to_thread
from starlette.requests import ClientDisconnect

from entrepot.core.errors import EntrepotError
from entrepot.core.objects import checksums
from entrepot.core.objects.objects import STORED_HEADERS, validate_object_key
from entrepot.core.services import Services
from entrepot.faces.s3.addressing import bucket_ref
from entrepot.faces.s3.auth import S3Caller
from entrepot.faces.s3.awschunked import AwsChunkedDecoder
from entrepot.faces.s3.bodies import (
    CHECKSUM_PREFIX,
    SIGNED_CHUNKED,
    check_content_md5,
    checksum_header,
    payload_mode,
)
from entrepot.faces.s3.errors import S3Error, from_core, s3_error
from entrepot.faces.s3.wire import BodyState, Reply, S3Request, short_work
from entrepot.faces.s3.xmlio import document

T = TypeVar("T")
Handler = Callable[[S3Request, S3Caller, Services, BodyState], Awaitable[Reply]]
META_PREFIX = "x-amz-meta-"
CANNED_ACLS_ACCEPTED = frozenset({"private", "bucket-owner-full-control", "bucket-owner-read"})
# how stored header names are spelled in replies
HEADER_CASE = {
    "cache-control": "Cache-Control",
    "content-disposition": "Content-Disposition",
    "content-encoding": "Content-Encoding",
    "content-language": "Content-Language",
    "expires": "Expires",
    "x-amz-server-side-encryption": "x-amz-server-side-encryption",
    "x-amz-website-redirect-location": "x-amz-website-redirect-location",
}


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a (blocking) core command in a worker thread."""
    return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))


async def run_short(services: Services, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a core command that never waits on the client (it reads no request body) in one of
    the S3 face's own ``s3_threads`` worker threads (:func:`.wire.short_work`)."""
    limiter = short_work(services.settings.s3_threads)
    return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs), limiter=limiter)


# A request body up to this size (as sent, Content-Length) is read in one trip to the event loop
SMALL_BODY = 64 * 1024


def is_small_body(req: S3Request) -> bool:
    """Whether the body is announced (Content-Length, no chunked transfer) and at most SMALL_BODY."""
    length = req.header("content-length")
    return (
        req.header("transfer-encoding") is None
        and length is not None
        and length.strip().isdigit()
        and int(length) <= SMALL_BODY
    )


def whole_body(state: BodyState) -> Iterator[bytes]:
    """A small request body (:func:`is_small_body`) as one chunk, for the worker thread that stores it.

    Nothing is read before the thread asks for it (the core opens and checks the space first),
    and then all of it in one trip to the event loop (``faces.http.body_chunks``, made for large
    bodies, starts a reading task and makes a trip per chunk and one more for the end).
    """

    async def read() -> bytes:
        parts: list[bytes] = []
        while True:
            message = await state.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(parts)

    body = anyio.from_thread.run(read)
    if body:
        yield body


def bucket_of(req: S3Request, caller: S3Caller, services: Services) -> tuple[str, str]:
    """(project, space) of the request's bucket: a space of the caller's project, or ``project.space``.

    Anonymous callers (the S3 listener) reach the spaces of the default project by name.
    """
    bucket = req.target.bucket
    assert bucket is not None
    project, space = bucket_ref(bucket)
    if project is None:
        project = caller.principal.project_name or services.settings.default_project
    return project, space


def object_key(req: S3Request) -> str:
    """The request's key as text, checked by the core's rules (``InvalidArgument`` otherwise)."""
    raw = req.target.key
    assert raw is not None
    try:
        return validate_object_key(raw)
    except EntrepotError as exc:
        raise from_core(exc) from None


def user_metadata(req: S3Request) -> dict[str, str]:
    return {
        name.removeprefix(META_PREFIX): ",".join(values)
        for name, values in req.headers.items()
        if name.startswith(META_PREFIX) and len(name) > len(META_PREFIX)
    }


def stored_headers(req: S3Request) -> dict[str, str]:
    """The standard headers an object keeps (Content-Encoding without ``aws-chunked``)."""
    out: dict[str, str] = {}
    for name in STORED_HEADERS:
        value = req.header(name)
        if value is None:
            continue
        if name == "content-encoding":
            codings = [
                c.strip() for c in value.split(",") if c.strip() and c.strip().lower() != "aws-chunked"
            ]
            if not codings:
                continue
            value = ", ".join(codings)
        out[name] = value
    return out


def reply_headers(stored: dict[str, str]) -> list[tuple[str, str]]:
    return [(HEADER_CASE.get(n, n), v) for n, v in sorted(stored.items())]


def check_write_headers(req: S3Request) -> None:
    """Refuse what a write asks for but entrepot would silently not do (public ACLs, SSE-C, locks)."""
    acl = req.header("x-amz-acl")
    if acl is not None and acl.strip().lower() not in CANNED_ACLS_ACCEPTED:
        raise S3Error(
            "NotImplemented",
            f"ACL {acl[:40]!r} is not supported: spaces are private or public as a whole "
            "(make the space public with the spaces API)",
            501,
        )
    for name in req.headers:
        if name.startswith("x-amz-grant-"):
            raise S3Error("NotImplemented", "ACL grants are not supported", 501)
        if name.startswith("x-amz-server-side-encryption-customer-"):
            raise S3Error(
                "NotImplemented", "server-side encryption with customer keys (SSE-C) is not supported", 501
            )
        if name.startswith("x-amz-object-lock-") or name == "x-amz-tagging":
            raise S3Error("NotImplemented", f"{name} is not supported", 501)


def xml(status: int, root: str, parts: Iterable[str], headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(status, [("Content-Type", "application/xml"), *(headers or [])], document(root, parts))


async def read_small_body(req: S3Request, caller: S3Caller, state: BodyState, limit: int) -> bytes:
    """A small request body (XML) read whole, capped at ``limit`` bytes; its payload hash, aws-chunked
    framing, Content-MD5 and ``x-amz-checksum-*`` header are checked."""
    mode, sha = payload_mode(caller)
    wire_limit = limit * 2 + 4096  # room for aws-chunked framing around ``limit`` bytes of XML
    declared = req.header("content-length")
    if declared and declared.strip().isdigit() and int(declared) > wire_limit:
        raise s3_error("MalformedXML", f"the request body is larger than {limit} bytes")
    md5 = check_content_md5(req.header("content-md5"))
    header = checksum_header(req)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await state.receive()
        if message["type"] == "http.disconnect":
            raise s3_error("IncompleteBody", "the request body ended early")
        part = message.get("body", b"")
        size += len(part)
        if size > wire_limit:
            raise s3_error("MalformedXML", f"the request body is larger than {limit} bytes")
        chunks.append(part)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    trailer_value: str | None = None
    if mode.chunked:
        names = tuple(t.strip().lower() for t in (req.header("x-amz-trailer") or "").split(",") if t.strip())
        decoded_length = req.header("x-amz-decoded-content-length")
        signer = caller.signer if mode in SIGNED_CHUNKED else None
        decoder = AwsChunkedDecoder(
            int(decoded_length) if decoded_length and decoded_length.isdigit() else None, names, signer
        )
        body = b"".join(decoder.feed(body))
        trailers = decoder.finish()
        for name in names:
            if name.startswith(CHECKSUM_PREFIX):
                header = checksums.check_value(name.removeprefix(CHECKSUM_PREFIX), trailers.get(name, ""))
                trailer_value = header.value
    if len(body) > limit:
        raise s3_error("MalformedXML", f"the request body is larger than {limit} bytes")
    if sha is not None and hashlib.sha256(body).hexdigest() != sha:
        raise s3_error(
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    if (
        md5 is not None
        and base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode() != md5
    ):
        raise s3_error("BadDigest", "The Content-MD5 you specified did not match what we received.")
    if header is not None:
        got = checksums.checksum_of(header.algorithm, body)
        if got.value != (trailer_value or header.value):
            raise s3_error(
                "BadDigest",
                f"The {header.algorithm.upper()} you specified did not match the calculated checksum.",
            )
    return body
