"""S3's error document, and the one mapping from core errors (kind and code) to S3 codes.

Every failure of the S3 face ends as an :class:`S3Error`: raised by the face itself (a bad
signature, malformed XML), or translated from a core error by :func:`from_core`. The reply is
S3's XML envelope with ``x-amz-request-id``; a HEAD reply carries the status only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import ClientDisconnect

from entrepot.core.errors import EntrepotError, Kind
from entrepot.faces.errors import HTTPError
from entrepot.faces.objects_http import PreconditionFailed, RangeNotSatisfiable


class S3Error(Exception):
    """An S3 error reply: ``code`` and ``status`` as S3 names them, extras for the XML document."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        *,
        extra: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra: dict[str, str] = dict(extra or {})
        self.headers: dict[str, str] = dict(headers or {})

    def __repr__(self) -> str:
        return f"S3Error({self.code!r}, {self.message!r}, {self.status})"


# S3 code → status, for the codes the face raises itself
STATUS = {
    "AccessDenied": 403,
    "AuthorizationHeaderMalformed": 400,
    "AuthorizationQueryParametersError": 400,
    "BadDigest": 400,
    "BucketAlreadyOwnedByYou": 409,
    "BucketNotEmpty": 409,
    "EntityTooLarge": 400,
    "EntityTooSmall": 400,
    "ExpiredToken": 400,
    "IncompleteBody": 400,
    "InternalError": 500,
    "InvalidAccessKeyId": 403,
    "InvalidArgument": 400,
    "InvalidBucketName": 400,
    "InvalidChunkSizeError": 400,
    "InvalidDigest": 400,
    "InvalidPart": 400,
    "InvalidPartOrder": 400,
    "InvalidRange": 416,
    "InvalidRequest": 400,
    "InvalidToken": 403,
    "KeyTooLongError": 400,
    "MalformedTrailerError": 400,
    "MalformedXML": 400,
    "MetadataTooLarge": 400,
    "MethodNotAllowed": 405,
    "MissingContentLength": 411,
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "NoSuchUpload": 404,
    "NotImplemented": 501,
    "OperationAborted": 409,
    "PreconditionFailed": 412,
    "RequestTimeTooSkewed": 403,
    "ServiceUnavailable": 503,
    "SignatureDoesNotMatch": 403,
    "SlowDown": 503,
    "XAmzContentSHA256Mismatch": 400,
}


def s3_error(code: str, message: str, **extra: str) -> S3Error:
    """An :class:`S3Error` with the status S3 gives ``code``."""
    return S3Error(code, message, STATUS.get(code, 400), extra=extra)


# core error code → S3 code (the code wins over the kind)
_BY_CODE = {
    "spaces.notFound": "NoSuchBucket",
    "projects.notFound": "NoSuchBucket",
    "objects.notFound": "NoSuchKey",
    "objects.changed": "NoSuchKey",
    "uploads.notFound": "NoSuchUpload",
    "s3.invalidAccessKeyId": "InvalidAccessKeyId",
    "s3.invalidToken": "InvalidToken",
    "s3.expiredToken": "ExpiredToken",
    "spaces.invalidName": "InvalidBucketName",
    "spaces.alreadyExists": "BucketAlreadyOwnedByYou",
    "spaces.notEmpty": "BucketNotEmpty",
    "spaces.default": "AccessDenied",
    "spaces.expired": "AccessDenied",
    "spaces.accessDenied": "AccessDenied",
    "objects.invalidKey": "InvalidArgument",
    "objects.invalidMetadata": "InvalidArgument",
    "objects.invalidHeader": "InvalidArgument",
    "objects.metadataTooLarge": "MetadataTooLarge",
    "objects.crossProject": "InvalidRequest",
    "objects.copyOntoItself": "InvalidRequest",
    "objects.checksumUnsupported": "InvalidRequest",
    "objects.invalidChecksum": "InvalidRequest",
    "request.incomplete": "IncompleteBody",
    "uploads.badOrder": "InvalidPartOrder",
    "uploads.badPart": "InvalidPart",
    "uploads.partTooSmall": "EntityTooSmall",
    "uploads.empty": "MalformedXML",
    "uploads.changed": "OperationAborted",
    "uploads.badCopyRange": "InvalidArgument",
}

_BY_KIND = {
    Kind.INVALID: "InvalidArgument",
    Kind.TOO_LARGE: "EntityTooLarge",
    Kind.UNAUTHENTICATED: "AccessDenied",
    Kind.DENIED: "AccessDenied",
    Kind.NOT_FOUND: "NoSuchKey",
    Kind.CONFLICT: "OperationAborted",
    Kind.ALREADY_EXISTS: "BucketAlreadyOwnedByYou",
    Kind.NOT_SUPPORTED: "NotImplemented",
    Kind.BUSY: "SlowDown",
    Kind.UNAVAILABLE: "ServiceUnavailable",
    Kind.TIME_LIMIT: "SlowDown",
}


def from_core(exc: EntrepotError) -> S3Error:
    """The S3 error for a core (or shared-face HTTP) error: first by its code, then by its kind."""
    if isinstance(exc, PreconditionFailed):
        return S3Error("PreconditionFailed", exc.message, 412, extra={"Condition": "If-Match"})
    if isinstance(exc, RangeNotSatisfiable):
        size = exc.details.get("size")
        extra = {"ActualObjectSize": str(size)} if size is not None else {}
        return S3Error("InvalidRange", exc.message, 416, extra=extra, headers=exc.headers or {})
    if isinstance(exc, HTTPError):
        return S3Error("InvalidRequest", exc.message, exc.status)
    if exc.code == "objects.badDigest":
        return _digest_error(exc)
    code = _BY_CODE.get(exc.code) or _BY_KIND.get(exc.kind) or "InternalError"
    if code == "InvalidArgument" and exc.code == "objects.invalidKey" and "bytes long" in exc.message:
        code = "KeyTooLongError"
    message = (
        exc.message if code != "InternalError" else "We encountered an internal error. Please try again."
    )
    return S3Error(code, message, STATUS.get(code, 500))


def _digest_error(exc: EntrepotError) -> S3Error:
    details: dict[str, Any] = exc.details or {}
    digest, problem = details.get("digest"), details.get("problem")
    if problem == "malformed":
        code = "InvalidDigest" if digest == "md5" else "InvalidRequest"
    elif digest == "sha256":
        code = "XAmzContentSHA256Mismatch"
    else:
        code = "BadDigest"
    return S3Error(code, exc.message, 400)


def from_exception(exc: BaseException) -> S3Error | None:
    """The S3 error for an exception a request may end with; None for an unexpected one (a 500)."""
    if isinstance(exc, S3Error):
        return exc
    if isinstance(exc, EntrepotError):
        return from_core(exc)
    if isinstance(exc, ClientDisconnect):
        return S3Error("IncompleteBody", "the request body ended early; nothing was stored", 400)
    return None
