"""The domain error tree. Every core failure a caller can act on is one of these.

::

    EntrepotError                 base; never raised itself                    INTERNAL
    ├── InvalidInput              the request is malformed or names something  INVALID
    │   │                         invalid
    │   ├── PayloadTooLarge       a body or value is over a configured limit   TOO_LARGE
    │   └── TimeLimitExceeded     a statement ran longer than its time limit   TIME_LIMIT
    ├── Unauthenticated           no token, an unknown, revoked or expired one UNAUTHENTICATED
    ├── PermissionDenied          the token is valid but lacks the permission  DENIED
    ├── NotFound                  the named resource does not exist (or is not NOT_FOUND
    │                             visible to the caller)
    ├── Conflict                  the resource's state forbids the operation   CONFLICT
    │   └── AlreadyExists         creating something whose name is taken       ALREADY_EXISTS
    ├── Gone                      it existed but is gone for good (an expired  GONE
    │                             export file)
    ├── NotSupported              a known operation entrepot does not          NOT_SUPPORTED
    │                             implement
    ├── Unavailable               a dependency (catalog, engine) cannot be     UNAVAILABLE
    │                             reached
    └── JobCancelled              raised inside a job handler when its job     CANCELLED
                                  was cancelled

Each error carries a human ``message`` that says what to fix, a dotted machine ``code`` in
no API's spelling (``tokens.notFound``; the Keboola face writes ``storage.tokens.notFound``),
optional ``details`` and a :class:`Kind`: what sort of failure it is. Each face maps kinds to
its API's status codes (``faces/errors.py`` holds the common map; CARTO answers a time limit
with 429, Keboola an existing name with 400). A subclass may narrow its parent's kind: the SQL
API's "no query slot freed in time" is a ``TimeLimitExceeded`` of kind ``BUSY``. A user's
value quoted in a message or in ``details`` is cut with ``clip`` (a bad 3 MB row must not
make a 3 MB error).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

VALUE_MAX = 200  # characters of a user's value quoted in an error message


def clip(text: str, limit: int = VALUE_MAX) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis: a 3 MB bad value makes a short message."""
    return text if len(text) <= limit else text[:limit] + "…"


class Kind(Enum):
    """What sort of failure an error is; each face turns kinds into its API's status codes."""

    INTERNAL = "internal"
    INVALID = "invalid"
    TOO_LARGE = "too_large"
    TIME_LIMIT = "time_limit"
    BUSY = "busy"  # a concurrency limit was reached: the request was fine, retry later
    UNAUTHENTICATED = "unauthenticated"
    DENIED = "denied"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    ALREADY_EXISTS = "already_exists"
    GONE = "gone"
    NOT_SUPPORTED = "not_supported"
    UNAVAILABLE = "unavailable"
    CANCELLED = "cancelled"


class EntrepotError(Exception):
    """Base of every domain error."""

    default_code = "error"
    kind = Kind.INTERNAL

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
    kind = Kind.INVALID


class PayloadTooLarge(InvalidInput):
    """A request body or value is larger than a configured limit; the message names the limit."""

    default_code = "validation.tooLarge"
    kind = Kind.TOO_LARGE


class TimeLimitExceeded(InvalidInput):
    """A statement was interrupted because it ran longer than its time limit; the message names the limit."""

    default_code = "engine.timeout"
    kind = Kind.TIME_LIMIT


class Unauthenticated(EntrepotError):
    """No token was presented where one is needed, or it is unknown, revoked or expired."""

    default_code = "authentication.invalidToken"
    kind = Kind.UNAUTHENTICATED


class PermissionDenied(EntrepotError):
    """The caller is authenticated but its token does not grant the operation."""

    default_code = "accessDenied"
    kind = Kind.DENIED


class NotFound(EntrepotError):
    """The named project, token, job, bucket, table, file or object does not exist for this caller."""

    default_code = "notFound"
    kind = Kind.NOT_FOUND


class Conflict(EntrepotError):
    """The resource exists but its current state forbids the operation (e.g. cancelling a finished job)."""

    default_code = "conflict"
    kind = Kind.CONFLICT


class Gone(EntrepotError):
    """The thing existed but is gone for good (e.g. an export file past its retention)."""

    default_code = "gone"
    kind = Kind.GONE


class AlreadyExists(Conflict):
    """Creating a resource whose name is already taken."""

    default_code = "alreadyExists"
    kind = Kind.ALREADY_EXISTS


class NotSupported(EntrepotError):
    """The operation is part of an emulated API but entrepot does not implement it."""

    default_code = "notImplemented"
    kind = Kind.NOT_SUPPORTED


class Unavailable(EntrepotError):
    """A dependency (catalog database, engine) cannot be reached right now; retrying later may work."""

    default_code = "unavailable"
    kind = Kind.UNAVAILABLE


class JobCancelled(EntrepotError):
    """Raised inside a job handler when its job has been cancelled; the job ends ``cancelled``."""

    default_code = "job.cancelled"
    kind = Kind.CANCELLED
