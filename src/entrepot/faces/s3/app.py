"""The S3 protocol as a pure ASGI app: parse → authenticate → route → one handler → reply.

It answers everything itself, errors included (S3's XML envelope with ``x-amz-request-id``; an
unexpected exception is a ``500 InternalError`` logged with the request id), so nothing reaches
Starlette's plain-text error pages. Requests reach it through :class:`.dispatch.S3Dispatch`.

``Expect: 100-continue``: uvicorn sends ``100 Continue`` on the app's first ``receive()``. So
authentication and every check of the head run before a handler reads the body, and a request
refused before its body was read is answered with ``Connection: close`` (the client may never
send that body, and the connection cannot be reused).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import entrepot.faces.s3.ops_files as ops_files
from entrepot.core.services import Services
from entrepot.faces.s3.auth import authenticate
from entrepot.faces.s3.dispatch import on_s3_port
from entrepot.faces.s3.errors import S3Error, from_exception
from entrepot.faces.s3.router import route
from entrepot.faces.s3.wire import BodyState, Receive, Reply, S3Request, Scope, Send, send_reply
from entrepot.faces.s3.xmlio import document, element
from entrepot.logs import request_id_var

log = logging.getLogger("entrepot.s3")


@dataclass(frozen=True)
class _Route:
    """What the request-context middleware labels the latency metric with (``s3:PutObject``)."""

    path: str


def error_reply(error: S3Error, req: S3Request | None, request_id: str) -> Reply:
    parts = [element("Code", error.code), element("Message", error.message)]
    bucket_codes = ("NoSuchBucket", "BucketNotEmpty", "BucketAlreadyOwnedByYou", "InvalidBucketName")
    if (
        req is not None
        and req.target.bucket
        and "BucketName" not in error.extra
        and error.code in bucket_codes
    ):
        parts.append(element("BucketName", req.target.bucket))
    if req is not None and req.target.key is not None and error.code in ("NoSuchKey", "KeyTooLongError"):
        parts.append(element("Key", req.target.key.decode("utf-8", "replace")))
    if req is not None and error.code == "NoSuchUpload" and req.query("uploadId"):
        parts.append(element("UploadId", req.query("uploadId")))
    parts += [element(name.replace("_", "-"), value) for name, value in error.extra.items()]
    parts += [element("RequestId", request_id), element("HostId", "entrepot")]
    headers = [("Content-Type", "application/xml"), *error.headers.items()]
    return Reply(error.status, headers, document("Error", parts, namespace=False))


class S3App:
    """The S3 face's ASGI application (services from ``scope["app"].state.services``)."""

    def __init__(self, s3_ports: frozenset[int] = frozenset()):
        self.s3_ports = s3_ports

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Services = scope["app"].state.services
        request_id = request_id_var.get() or uuid.uuid4().hex
        state = BodyState(receive)
        req: S3Request | None = None
        head = scope.get("method") == "HEAD"
        try:
            req = S3Request.from_scope(
                scope, services.settings.s3_vhost_domains, on_s3_port=on_s3_port(scope, self.s3_ports)
            )
            caller = await authenticate(req, services)
            session = caller.credential is not None and caller.credential.kind == "session"
            operation = ops_files.route(req, services) if session else route(req)  # Keboola files
            scope["route"] = _Route(f"s3:{operation.name}")
            reply = await operation.handler(req, caller, services, state)
        except Exception as exc:
            error = from_exception(exc)
            if error is None:
                log.exception(
                    "S3 %s %s failed [request id %s]", scope.get("method"), scope.get("path"), request_id
                )
                error = S3Error("InternalError", "We encountered an internal error. Please try again.", 500)
            elif error.status >= 500:
                log.warning(
                    "S3 %s %s -> %s %s", scope.get("method"), scope.get("path"), error.status, error.message
                )
            reply = error_reply(error, req, request_id)
            if head:
                reply.body = b""
        reply.headers += [("x-amz-request-id", request_id), ("x-amz-id-2", request_id)]
        unread = not state.complete and _has_body(scope)
        if unread:
            reply.headers.append(("Connection", "close"))
        await send_reply(send, reply, head=head, disconnected=None if unread else state.receive)


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
        if name == b"transfer-encoding":
            return True
    return False


__all__ = ["S3App", "error_reply"]
