"""The domain error tree. Every core failure a caller can act on is one of these.

::

    EntrepotError                 base; never raised itself
    ├── InvalidInput              the request is malformed or names something invalid      (400)
    │   ├── PayloadTooLarge       a body or value is over a configured limit               (413)
    │   └── TimeLimitExceeded     a statement ran longer than its time limit               (400)
    ├── Unauthenticated           no token, an unknown, revoked or expired one             (401)
    ├── PermissionDenied          the token is valid but lacks the permission              (403)
    ├── NotFound                  the named resource does not exist (or is not visible)    (404)
    ├── Conflict                  the resource's state forbids the operation              (409)
    │   └── AlreadyExists         creating something whose name is taken                   (409; Keboola: 400)
    ├── Gone                      it existed but is gone for good (an expired export file)  (410)
    ├── NotSupported              a known operation entrepot does not implement            (501)
    ├── Unavailable               a dependency (catalog, engine) cannot be reached          (503)
    └── JobCancelled              raised inside a job handler when its job was cancelled   (job error)

Each error carries a human ``message`` that says what to fix, a dotted machine ``code``
(``storage.tokens.notFound``) and optional ``details``. Faces map the classes to their own
status codes and envelopes; the numbers above are the defaults. A user's value quoted in a
message or in ``details`` is cut with ``clip`` (a bad 3 MB row must not make a 3 MB error).
"""

from __future__ import annotations

from typing import Any

VALUE_MAX = 200  # characters of a user's value quoted in an error message


def clip(text: str, limit: int = VALUE_MAX) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis: a 3 MB bad value makes a short message."""
    return text if len(text) <= limit else text[:limit] + "…"


class EntrepotError(Exception):
    """Base of every domain error."""

    default_code = "error"
    status = 500

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details or {}

    def __str__(self) -> str:
        return self.message


class InvalidInput(EntrepotError):
    """A parameter, body or name is malformed; the message names it and says what is expected."""

    default_code = "validation.invalid"
    status = 400


class PayloadTooLarge(InvalidInput):
    """A request body or value is larger than a configured limit; the message names the limit."""

    default_code = "validation.tooLarge"
    status = 413


class TimeLimitExceeded(InvalidInput):
    """A statement was interrupted because it ran longer than its time limit; the message names the limit."""

    default_code = "engine.timeout"
    status = 400


class Unauthenticated(EntrepotError):
    """No token was presented where one is needed, or it is unknown, revoked or expired."""

    default_code = "authentication.invalidToken"
    status = 401


class PermissionDenied(EntrepotError):
    """The caller is authenticated but its token does not grant the operation."""

    default_code = "accessDenied"
    status = 403


class NotFound(EntrepotError):
    """The named project, token, job, bucket, table, file or object does not exist for this caller."""

    default_code = "notFound"
    status = 404


class Conflict(EntrepotError):
    """The resource exists but its current state forbids the operation (e.g. cancelling a finished job)."""

    default_code = "conflict"
    status = 409


class Gone(EntrepotError):
    """The thing existed but is gone for good (e.g. an export file past its retention)."""

    default_code = "gone"
    status = 410


class AlreadyExists(Conflict):
    """Creating a resource whose name is already taken."""

    default_code = "alreadyExists"


class NotSupported(EntrepotError):
    """The operation is part of an emulated API but entrepot does not implement it."""

    default_code = "notImplemented"
    status = 501


class Unavailable(EntrepotError):
    """A dependency (catalog database, engine) cannot be reached right now; retrying later may work."""

    default_code = "unavailable"
    status = 503


class JobCancelled(EntrepotError):
    """Raised inside a job handler when its job has been cancelled; the job ends ``cancelled``."""

    default_code = "job.cancelled"
    status = 409
