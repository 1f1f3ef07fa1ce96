"""The one call the S3 face makes to authenticate a request: access key id (+ session token) → credential.

Two kinds of credentials, told apart by the access key id's prefix:

* ``EK…`` long-lived **access keys** of a token (``core/access_keys.py``): a catalog row with
  the secret sealed under the installation key; no session token.
* ``ES…`` **session credentials** (``core/sessions.py``): stateless, the session token is a
  MAC'd claim scoped to one Keboola file (or a sliced file's prefix), read or write.

Both carry their token's principal, and both are checked against the token, its project
(and the file): revoking the token kills its credentials at once. An access key is read from
the catalog at most once per ``s3_credential_cache_ttl`` in a process (``access_keys.use``
keeps it, and forgets it the moment this process changes the key, its token or its project);
:func:`cached` answers from that memory without blocking. The secret in
a :class:`Credential` is there for the face to recompute the request's signature; it is never
logged nor rendered (it is left out of the dataclass's ``repr``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select

from entrepot.core import access_keys, sessions
from entrepot.core.auth import Principal, principal_of
from entrepot.core.catalog import File, Project, Token
from entrepot.core.clock import utcnow
from entrepot.core.errors import Unauthenticated
from entrepot.core.sessions import FileScope, SessionCredentials, mint

if TYPE_CHECKING:
    from entrepot.core.services import Services

__all__ = ["Credential", "FileScope", "SessionCredentials", "cached", "mint", "resolve"]


@dataclass(frozen=True)
class Credential:
    """A verified credential: what signed the request may do, and the secret that signed it."""

    kind: Literal["key", "session"]
    access_key_id: str
    secret_access_key: str = field(repr=False)  # used to recompute signatures; never logged, never rendered
    session_token: str | None = field(repr=False)  # what x-amz-security-token must equal (None for keys)
    principal: Principal  # the owning token's principal (its permissions)
    file_scope: FileScope | None  # session credentials only


def resolve(services: Services, access_key_id: str, session_token: str | None) -> Credential:
    """The credential an S3 request names.

    Raises ``Unauthenticated`` with code

    * ``s3.invalidAccessKeyId``: an unknown, revoked or expired access key; a revoked or expired
      token; a disabled project; a deleted file (session credentials);
    * ``s3.invalidToken``: a session token sent with a long-lived key, a missing, malformed or
      forged session token, or one that belongs to another access key id;
    * ``s3.expiredToken``: expired session credentials.
    """
    if access_key_id.startswith(access_keys.PREFIX):
        if session_token:
            raise Unauthenticated(
                "an access key takes no session token (X-Amz-Security-Token); send it without one",
                code="s3.invalidToken",
            )
        used = access_keys.use(services, access_key_id)
        return Credential("key", used.access_key_id, used.secret_access_key, None, used.principal, None)
    if access_key_id.startswith(sessions.PREFIX) and len(access_key_id) == sessions.ACCESS_KEY_ID_LENGTH:
        claim, secret = sessions.verify(services.verification_keys, access_key_id, session_token)
        principal = _session_principal(services, claim)
        return Credential("session", access_key_id, secret, session_token, principal, claim.scope)
    raise Unauthenticated("the access key id does not exist", code="s3.invalidAccessKeyId")


def cached(services: Services, access_key_id: str, session_token: str | None) -> Credential | None:
    """What :func:`resolve` answers, if this process holds the access key in memory; else None.

    It never touches the catalog nor waits for another thread, so the event loop may call it
    before handing :func:`resolve` to a worker thread. Session credentials are never held.
    """
    if session_token or not access_key_id.startswith(access_keys.PREFIX):
        return None
    used = access_keys.cached(services, access_key_id)
    if used is None:
        return None
    return Credential("key", used.access_key_id, used.secret_access_key, None, used.principal, None)


def _session_principal(services: Services, claim: sessions.SessionClaim) -> Principal:
    """The principal of a session claim's token, if it, its project and its file still live."""
    now = utcnow()
    with services.catalog.session(readonly=True) as s:
        found = s.execute(
            select(Token, Project)
            .join(Project, Project.id == Token.project_id)
            .where(Token.id == claim.token_id, Token.project_id == claim.project_id)
        ).first()
        if found is None:
            raise _revoked("the token of these session credentials no longer exists")
        token, project = found
        if token.revoked_at is not None or project.disabled:
            raise _revoked(
                "the token of these session credentials has been revoked (or its project disabled)"
            )
        if token.expires_at is not None and token.expires_at <= now:
            raise _revoked("the token of these session credentials has expired")
        file = s.get(File, claim.scope.file_id)
        if file is None or file.deleted_at is not None or file.project_id != claim.project_id:
            raise _revoked(f"file {claim.scope.file_id} of these session credentials has been deleted")
        if file.expires_at is not None and file.expires_at <= now:
            expired = file.expires_at.astimezone(UTC).isoformat()
            raise _revoked(f"file {claim.scope.file_id} of these session credentials expired at {expired}")
        return principal_of(token, project)


def _revoked(message: str) -> Unauthenticated:
    return Unauthenticated(message, code="s3.invalidAccessKeyId")
