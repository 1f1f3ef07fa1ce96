"""File rows: names, expiry, visibility, and the catalog reads and writes every command shares.

Visibility (Keboola's rule): a token sees the files it created; a master token or one with
``canReadAllFileUploads`` sees every file of its project. A non-permanent file expires
``file_max_age_days`` after creation. Deleted rows stay (``deleted_at``) but are never seen.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from entrepot.core.auth import Principal
from entrepot.core.catalog import File
from entrepot.core.clock import utcnow
from entrepot.core.errors import InvalidInput, NotFound
from entrepot.core.text import check_text

if TYPE_CHECKING:
    from entrepot.core.services import Services

_UNSAFE_NAME_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')


# -- names and expiry ---------------------------------------------------------------------------


def safe_name(name: str | None) -> str:
    """A safe basename for a file: its last path segment, without control or shell-hostile characters.

    ``../../etc/passwd`` becomes ``passwd``; an empty result is refused.
    """
    if name is None:
        raise InvalidInput("parameter name is required: the file name", code="files.nameRequired")
    text = unicodedata.normalize("NFC", str(name))
    text = re.split(r"[/\\]", text)[-1]
    text = _UNSAFE_NAME_CHARS.sub("_", text).strip().lstrip(".").strip()
    encoded = text.encode("utf-8")
    if len(encoded) > 255:
        text = encoded[:255].decode("utf-8", errors="ignore")
    if not text:
        raise InvalidInput(
            f"file name {name!r} has no usable basename; send a plain file name such as data.csv",
            code="files.invalidName",
        )
    return text


def file_type(name: str) -> str | None:
    """``csv`` for ``data.csv`` and ``data.csv.gz``; None when the name has no extension."""
    name = name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    _, dot, ext = name.rpartition(".")
    return ext if dot and ext else None


def blob_key(project_id: int, file_id: int, name: str) -> str:
    return f"projects/{project_id}/files/{file_id}/{name}"


def is_expired(file: File, now: datetime | None = None) -> bool:
    """True when a non-permanent file is past its ``expires_at``."""
    return file.expires_at is not None and file.expires_at <= (now or utcnow())


# -- visibility and look-ups --------------------------------------------------------------------


def sees_all(principal: Principal) -> bool:
    """Whether the caller sees every file of its project, not only the ones its token created."""
    return principal.is_master or principal.can_read_all_file_uploads


def is_visible(file: File | None, principal: Principal) -> bool:
    if file is None or file.deleted_at is not None or file.project_id != principal.project_id:
        return False
    return sees_all(principal) or file.token_id == principal.token_id


def not_found(file_id: int) -> NotFound:
    return NotFound(f"file {file_id} not found", code="files.notFound")


def expired(file_id: int) -> NotFound:
    return NotFound(f"file {file_id} has expired", code="files.expired")


def get(services: Services, principal: Principal, file_id: int, *, include_expired: bool = True) -> File:
    """A file the caller may see; ``NotFound`` for unknown, deleted, invisible (or expired) files."""
    principal.require_authenticated()
    with services.catalog.session(readonly=True) as s:
        file = s.get(File, file_id)
    if file is None or not is_visible(file, principal):
        raise not_found(file_id)
    if not include_expired and is_expired(file):
        raise expired(file_id)
    return file


def live(services: Services, file_id: int) -> File:
    """A file that is not deleted, whoever asks (signed URLs carry no token)."""
    with services.catalog.session(readonly=True) as s:
        file = s.get(File, file_id)
    if file is None or file.deleted_at is not None:
        raise not_found(file_id)
    return file


def of_project(services: Services, project_id: int, file_id: int) -> File:
    """A live file of one project (jobs run for a project, not for a caller)."""
    file = live(services, file_id)
    if file.project_id != project_id:
        raise not_found(file_id)
    return file


# -- writes -------------------------------------------------------------------------------------


def insert(services: Services, project_id: int, token_id: int | None, **values: Any) -> File:
    """A new row (its bytes come later); ``values`` are the File's columns."""
    check_text(values.get("content_type"), "contentType", 255)
    check_text(values.get("run_id"), "the run id (X-KBC-RunId)", 256)
    now = utcnow()
    expires = None if values["is_permanent"] else now + timedelta(days=services.settings.file_max_age_days)
    with services.catalog.session() as s:
        file = File(
            project_id=project_id,
            token_id=token_id,
            blob_key="",
            created_at=now,
            expires_at=expires,
            **values,
        )
        s.add(file)
        s.flush()
        file.blob_key = blob_key(project_id, file.id, file.name)
    return file


def remove_row(services: Services, file_id: int) -> None:
    """Drop a row whose bytes never landed (a failed :func:`insert` then store)."""
    with services.catalog.session() as s:
        file = s.get(File, file_id)
        if file is not None:
            s.delete(file)


def mark_uploaded(services: Services, file_id: int, size: int, md5: str | None) -> File:
    with services.catalog.session() as s:
        file = s.get(File, file_id)
        if file is None:
            raise not_found(file_id)
        file.size_bytes = size
        file.checksum = md5
        file.uploaded_at = utcnow()
    return file


def delete_now(services: Services, project_id: int, file_id: int) -> None:
    """Mark the row deleted, then remove its bytes (so a reader never sees a live row without bytes)."""
    with services.catalog.session() as s:
        file = s.get(File, file_id)
        if file is None or file.project_id != project_id:
            raise not_found(file_id)
        if file.deleted_at is None:
            file.deleted_at = utcnow()
        key = file.blob_key
    services.blobs.delete(key)
