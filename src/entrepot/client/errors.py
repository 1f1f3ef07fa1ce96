"""Typed errors of the SDK: one class per kind of failure, all catchable as ``APIError``."""

from __future__ import annotations

from typing import Any

import httpx

JOB_CANCELLED_CODE = "storage.jobCancelled"


class APIError(Exception):
    """A call to entrepot failed; ``status`` is the HTTP status (None when no response arrived).

    ``fields`` maps field names to messages when the server rejected fields one by one (the
    Export API's ``{"success": false, "error": {"field": "message"}}``); None otherwise.
    """

    fields: dict[str, str] | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        exception_id: str | None = None,
        response: httpx.Response | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.exception_id = exception_id
        self.response = response

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"(HTTP {self.status}" + (f", {self.code})" if self.code else ")"))
        elif self.code:
            parts.append(f"({self.code})")
        if self.exception_id:
            parts.append(f"[exceptionId {self.exception_id}]")
        return " ".join(parts)


class InvalidRequest(APIError):
    """The server rejected the request as malformed or invalid (400, 413, 422)."""


class InvalidToken(APIError):
    """The token is missing, unknown, expired or revoked (401)."""


class PermissionDenied(APIError):
    """The token is valid but may not do this (403)."""


class NotFound(APIError):
    """The resource does not exist, or the token cannot see it (404)."""


class Conflict(APIError):
    """The request conflicts with the current state, e.g. cancelling a finished job (409)."""


class RateLimited(APIError):
    """The server kept answering 429 after every retry."""


class ServerError(APIError):
    """The server failed (5xx), after retries where the policy allows them."""


class ConnectionFailed(APIError):
    """No response arrived: connection refused, DNS failure, timeout, broken connection (after retries)."""


class JobFailed(APIError):
    """A job ended with status ``error``; ``job`` is its last state."""

    def __init__(self, job: dict[str, Any]):
        error = job.get("error") or {}
        if not isinstance(error, dict):
            error = {}
        message = str(error.get("message") or job.get("failed_reason") or self._default_message)
        super().__init__(
            message, code=error.get("code") or "storage.jobFailed", exception_id=error.get("exceptionId")
        )
        self.job = job

    _default_message = "the job failed"

    def __str__(self) -> str:
        return f"job {job_id_of(self.job)} failed: {super().__str__()}"


class JobCancelled(JobFailed):
    """A job was cancelled (status ``error`` with code ``storage.jobCancelled``; SQL batch: ``cancelled``)."""

    _default_message = "the job was cancelled"


class ExportFailed(APIError):
    """An export job ended ``failed``; the message is the job's ``error_message``, ``job`` its last state."""

    _default_message = "the export failed"
    _code = "exports.failed"

    def __init__(self, job: dict[str, Any]):
        super().__init__(str(job.get("error_message") or self._default_message), code=self._code)
        self.job = job

    def __str__(self) -> str:
        return f"export {self.job.get('id')} {self.job.get('status')}: {self.message}"


class ExportCancelled(ExportFailed):
    """An export job ended ``cancelled`` (a subclass of ``ExportFailed``)."""

    _default_message = "the export was cancelled"
    _code = "exports.cancelled"


class ImportFailed(APIError):
    """A CARTO import (or a sync table's run) ended in ``failure``.

    ``error_code`` is CARTO's number (1005: an empty file; ``code`` is the same as text), the
    message the server's explanation; ``job`` is the last state seen (``carto.Import`` or
    ``carto.SyncTable``).
    """

    def __init__(self, job: Any, error_code: int | None, message: str):
        super().__init__(message, code=None if error_code is None else str(error_code))
        self.job = job
        self.error_code = error_code

    def __str__(self) -> str:
        kind = "sync table" if type(self.job).__name__ == "SyncTable" else "import"
        code = f" (error_code {self.error_code})" if self.error_code is not None else ""
        return f"{kind} {getattr(self.job, 'id', '?')} failed: {self.message}{code}"


class JobTimeout(APIError):
    """Waiting for a job took longer than the timeout; the job goes on. ``job`` is its last state."""

    def __init__(self, job: dict[str, Any], timeout: float):
        super().__init__(
            f"job {job_id_of(job)} is still {job.get('status')} after {timeout:g} s", code="client.jobTimeout"
        )
        self.job = job
        self.timeout = timeout


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequest,
    401: InvalidToken,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
}


def error_class(status: int) -> type[APIError]:
    """The exception class for an HTTP error status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIError)


def error_from_response(response: httpx.Response) -> APIError:
    """Build the typed error of an error response: Keboola envelope, entrepot default envelope, or text."""
    message: str | None = None
    code: str | None = None
    exception_id: str | None = None
    fields: dict[str, str] | None = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if (
            isinstance(error, dict)
            and body.get("success") is False
            and not {"code", "message"} & error.keys()
        ):
            # the Export API's validation errors: {"success": false, "error": {"field": "message"}}
            fields = {str(k): str(v) for k, v in error.items()}
            message = "; ".join(f"{k}: {v}" for k, v in fields.items()) or None
        elif isinstance(error, dict):  # {"error": {"code", "message"}, "exceptionId"}
            message = _str(error.get("message"))
            code = _str(error.get("code"))
        elif isinstance(error, list):  # CARTO SQL API: {"error": ["message", ...]}
            message = "; ".join(str(e) for e in error if e not in (None, "")) or None
        elif (
            "errors" in body
        ):  # CARTO's Rails APIs: {"errors": "m"}, {"errors": ["m"]}, {"errors": {"k": "m"}}
            message = _joined(body["errors"])
        else:  # Keboola: {"error", "code", "status": "error", "exceptionId"}
            message = _str(error) or _str(body.get("message"))
        code = code or _str(body.get("code"))
        exception_id = _str(body.get("exceptionId"))
    if not message:
        text = _text(response).strip()
        message = text[:1000] if text else f"HTTP {response.status_code} {response.reason_phrase}".strip()
    cls = error_class(response.status_code)
    exc = cls(message, status=response.status_code, code=code, exception_id=exception_id, response=response)
    if fields is not None:
        exc.fields = fields
    return exc


def job_error(job: dict[str, Any]) -> JobFailed:
    """The exception for a job that ended in ``error``."""
    code = (job.get("error") or {}).get("code")
    return JobCancelled(job) if code == JOB_CANCELLED_CODE else JobFailed(job)


def job_id_of(job: dict[str, Any]) -> Any:
    """The id of a storage job (``id``) or of a SQL batch job (``job_id``)."""
    return job.get("id", job.get("job_id"))


def _joined(errors: Any) -> str | None:
    if isinstance(errors, dict):
        return "; ".join(str(v) for v in errors.values() if v not in (None, "")) or None
    if isinstance(errors, list):
        return "; ".join(str(v) for v in errors if v not in (None, "")) or None
    return _str(errors)


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _text(response: httpx.Response) -> str:
    try:
        return response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return ""
