"""Which requests belong to the S3 face: signed for S3 (any port), or arriving on the S3 listener.

No other face's client sends an AWS ``Authorization`` scheme or presigned ``X-Amz-*`` query
parameters (they use ``X-StorageApi-Token``, ``Bearer``/``Token``, ``api_key`` or the spaces
face's ``expires&signature&signer``), so the shared port tells them apart by that alone.
Parameter *names* are compared: a value containing ``X-Amz-Algorithm=`` never matches.
Unsigned anonymous S3 requests only work on the dedicated listener.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]

S3_AUTH_PREFIXES = (b"AWS4-HMAC-SHA256 ", b"AWS ", b"AWS4-ECDSA-P256-SHA256 ")


def is_s3_request(scope: Scope) -> bool:
    """Signed for S3: an AWS Authorization header, or presigned query parameters (SigV4 or SigV2)."""
    for name, value in scope.get("headers") or []:
        if name == b"authorization":
            return bool(value.startswith(S3_AUTH_PREFIXES))
    query: bytes = scope.get("query_string") or b""
    if b"X-Amz-" not in query and b"AWSAccessKeyId" not in query:
        return False
    names = {item.split(b"=", 1)[0] for item in query.split(b"&")}
    return b"X-Amz-Algorithm" in names or (b"AWSAccessKeyId" in names and b"Signature" in names)


def on_s3_port(scope: Scope, s3_ports: frozenset[int]) -> bool:
    server = scope.get("server")
    return bool(s3_ports) and server is not None and server[1] in s3_ports


class S3Dispatch:
    """ASGI middleware: S3-signed requests (any port) and every request on an S3 port go to the S3 app."""

    def __init__(self, app: ASGIApp, s3_app: ASGIApp, s3_ports: frozenset[int] = frozenset()):
        self.app = app
        self.s3_app = s3_app
        self.s3_ports = s3_ports

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (on_s3_port(scope, self.s3_ports) or is_s3_request(scope)):
            await self.s3_app(scope, receive, send)
            return
        await self.app(scope, receive, send)
