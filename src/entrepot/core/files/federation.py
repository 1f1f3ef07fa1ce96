"""Files through the S3 face: the temporary credentials Keboola's ``files/prepare`` and file
detail hand out (``federationToken``), and what a request signed with them may touch.

Keboola's clients (``kbcstorage``) upload a prepared file with one S3 PutObject and download a
file with S3 HeadObject/GetObject, signed with temporary credentials (AWS STS's shape: access
key id, secret, session token, expiration) scoped to that one file:

* upload credentials (``files/prepare``): PutObject on the file's key only, minted only for
  the token that prepares the file;
* read credentials (detail with ``federationToken``): HeadObject/GetObject on the file's key,
  for any token that sees the file.

A sliced file's credentials reach every key under the file's key (its slices and manifest).
The credentials are stateless (:mod:`entrepot.core.sessions`); :func:`scoped_file` re-checks on
every request that the file still lives and that the credential's token may still touch it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from entrepot.core.auth import Principal
from entrepot.core.catalog import File
from entrepot.core.errors import PermissionDenied, clip
from entrepot.core.files.rows import expired, is_expired, is_visible, live
from entrepot.core.s3_credentials import Credential
from entrepot.core.sessions import FileScope, SessionCredentials, mint

if TYPE_CHECKING:
    from entrepot.core.services import Services

Access = Literal["r", "w"]


def may_upload(file: File, principal: Principal) -> bool:
    """Only the token that prepared a file (or a master token) may send its bytes."""
    return file.token_id == principal.token_id or principal.is_master


def credentials_for(
    services: Services, principal: Principal, file: File, access: Access
) -> SessionCredentials:
    """Temporary S3 credentials on ``file`` (its key, or its slices' prefix) for ``principal``'s token."""
    scope = FileScope(file.id, file.blob_key, file.is_sliced, access)
    return mint(services, principal, scope)


def scoped_file(services: Services, credential: Credential, key: str, access: Access) -> File:
    """The file a request signed with ``credential`` may ``access`` (``r``: Get/Head, ``w``: Put) at ``key``.

    ``PermissionDenied`` (``files.s3AccessDenied``) for anything the credential does not reach:
    a long-lived access key, another key, reading with upload credentials or writing with read
    credentials, a file its token may no longer touch. ``NotFound`` once the file is deleted or
    expired.
    """
    scope = credential.file_scope
    if credential.kind != "session" or scope is None:
        raise _denied(
            "Keboola files are reached only with the temporary credentials of files/prepare or of a "
            "file's detail (federationToken)"
        )
    if scope.access != access:
        if scope.access == "w":
            raise _denied(
                f"these credentials upload file {scope.file_id} (PutObject only); read it with the "
                "credentials of its detail (GET files/{id}?federationToken=1)"
            )
        raise _denied(f"these credentials only read file {scope.file_id} (GetObject, HeadObject)")
    if not scope.allows(key, access):
        raise _denied(
            f"these credentials reach only file {scope.file_id} ({clip(scope.key)}), not {clip(key)}"
        )
    principal = credential.principal
    file = live(services, scope.file_id)
    if file.project_id != principal.project_id or file.blob_key != scope.key:  # minted with the file's key
        raise _denied(f"these credentials reach only file {scope.file_id}")
    if access == "w" and not may_upload(file, principal):
        raise _denied(f"only the token that prepared file {file.id} (or a master token) may upload it")
    if access == "r" and not is_visible(file, principal):
        raise _denied(f"the token of these credentials no longer sees file {file.id}")
    if is_expired(file):
        raise expired(file.id)
    return file


def _denied(message: str) -> PermissionDenied:
    return PermissionDenied(message, code="files.s3AccessDenied")
