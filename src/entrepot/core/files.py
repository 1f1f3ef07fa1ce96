"""Files: uploads, import sources and export results (Keboola's Files).

A file row exists from :func:`prepare` on; its bytes land in the blob store under
``projects/<project id>/files/<file id>/<name>`` with :func:`upload` (or directly with
:func:`create_from_path` for export results), which sets ``size_bytes``, ``checksum`` (MD5 hex)
and ``uploaded_at``.

Visibility (Keboola's rule): a token sees the files it created; a master token or one with
``canReadAllFileUploads`` sees every file of its project. A non-permanent file expires
``file_max_age_days`` after creation.

Signed URLs (:func:`download_url`, :func:`upload_url`) are token-free and expire after
``signed_url_ttl`` seconds; :func:`upload_signed` and :func:`open_download` verify them.
"""

from __future__ import annotations

import builtins
import contextlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from entrepot.core import inflate, signing
from entrepot.core.auth import Principal
from entrepot.core.blobs import CHUNK_SIZE, iter_chunks, local_file
from entrepot.core.catalog import File
from entrepot.core.clock import utcnow
from entrepot.core.errors import InvalidInput, NotFound, NotSupported, PermissionDenied
from entrepot.core.jobs import JobContext, JobRegistry
from entrepot.core.text import check_text

if TYPE_CHECKING:
    from entrepot.core.catalog import Job
    from entrepot.core.services import Services

DOWNLOAD = "files.download"
UPLOAD = "files.upload"
DELETE_JOB = "files.delete"
MAX_LIST_LIMIT = 1000
MAX_TAG_LENGTH = 256
GZIP_MAGIC = inflate.GZIP_MAGIC

_UNSAFE_NAME_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')


# -- names, tags, expiry ----------------------------------------------------------------------


def safe_name(name: str | None) -> str:
    """A safe basename for a file: its last path segment, without control or shell-hostile characters.

    ``../../etc/passwd`` becomes ``passwd``; an empty result is refused.
    """
    if name is None:
        raise InvalidInput("parameter name is required: the file name", code="storage.files.nameRequired")
    text = unicodedata.normalize("NFC", str(name))
    text = re.split(r"[/\\]", text)[-1]
    text = _UNSAFE_NAME_CHARS.sub("_", text).strip().lstrip(".").strip()
    encoded = text.encode("utf-8")
    if len(encoded) > 255:
        text = encoded[:255].decode("utf-8", errors="ignore")
    if not text:
        raise InvalidInput(
            f"file name {name!r} has no usable basename; send a plain file name such as data.csv",
            code="storage.files.invalidName",
        )
    return text


def _clean_tags(tags: Iterable[str]) -> builtins.list[str]:
    out: builtins.list[str] = []
    for tag in tags:
        tag = str(tag).strip()
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH or any(ord(c) < 32 for c in tag):
            raise InvalidInput(
                f"invalid tag {tag[:40]!r}: tags are up to {MAX_TAG_LENGTH} printable characters"
            )
        if tag not in out:
            out.append(tag)
    return out


def is_expired(file: File, now: datetime | None = None) -> bool:
    """True when a non-permanent file is past its ``expires_at``."""
    return file.expires_at is not None and file.expires_at <= (now or utcnow())


def max_age_days(services: Services, file: File) -> int | None:
    return None if file.is_permanent else services.settings.file_max_age_days


def file_type(file: File) -> str | None:
    """``csv`` for ``data.csv`` and ``data.csv.gz``; None when the name has no extension."""
    name = file.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    _, dot, ext = name.rpartition(".")
    return ext if dot and ext else None


def blob_key(project_id: int, file_id: int, name: str) -> str:
    return f"projects/{project_id}/files/{file_id}/{name}"


# -- visibility ---------------------------------------------------------------------------------


def _sees_all(principal: Principal) -> bool:
    return principal.is_master or principal.can_read_all_file_uploads


def _visible(file: File | None, principal: Principal) -> bool:
    if file is None or file.deleted_at is not None or file.project_id != principal.project_id:
        return False
    return _sees_all(principal) or file.token_id == principal.token_id


def _not_found(file_id: int) -> NotFound:
    return NotFound(f"file {file_id} not found", code="storage.files.notFound")


def get(services: Services, principal: Principal, file_id: int, *, include_expired: bool = True) -> File:
    """A file the caller may see; ``NotFound`` for unknown, deleted, invisible (or expired) files."""
    principal.require_authenticated()
    with services.catalog.session(readonly=True) as s:
        file = s.get(File, file_id)
    if not _visible(file, principal):
        raise _not_found(file_id)
    assert file is not None
    if not include_expired and is_expired(file):
        raise NotFound(f"file {file_id} has expired", code="storage.files.expired")
    return file


def _project_file(services: Services, project_id: int, file_id: int) -> File:
    with services.catalog.session(readonly=True) as s:
        file = s.get(File, file_id)
    if file is None or file.project_id != project_id or file.deleted_at is not None:
        raise _not_found(file_id)
    return file


# -- create -------------------------------------------------------------------------------------


def prepare(
    services: Services,
    principal: Principal,
    *,
    name: str | None,
    size_bytes: int | None = None,
    tags: Iterable[str] = (),
    is_public: bool = False,
    is_permanent: bool = False,
    is_encrypted: bool = True,
    is_sliced: bool = False,
    content_type: str | None = None,
    run_id: str | None = None,
) -> File:
    """Create a file record whose bytes come later (:func:`upload`)."""
    principal.require_authenticated()
    clean = safe_name(name)
    if size_bytes is not None and size_bytes < 0:
        raise InvalidInput("sizeBytes must not be negative")
    return _insert(
        services,
        principal.project_id or 0,
        principal.token_id,
        name=clean,
        size_bytes=size_bytes,
        tags=_clean_tags(tags),
        is_public=is_public,
        is_permanent=is_permanent,
        is_encrypted=is_encrypted,
        is_sliced=is_sliced,
        content_type=content_type,
        run_id=run_id,
    )


def _insert(services: Services, project_id: int, token_id: int | None, **values: Any) -> File:
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


def create_from_path(
    services: Services,
    project_id: int,
    token_id: int | None,
    path: Path,
    *,
    name: str,
    tags: Iterable[str] = (),
    columns: builtins.list[str] | None = None,
    content_type: str | None = None,
    run_id: str | None = None,
) -> File:
    """Record a finished local file (an export result) and move it into the blob store, uploaded.

    ``columns`` is stored so that the signed download can prepend a CSV header (export files
    themselves are headerless).
    """
    file = _insert(
        services,
        project_id,
        token_id,
        name=safe_name(name),
        size_bytes=None,
        tags=_clean_tags(tags),
        is_public=False,
        is_permanent=False,
        is_encrypted=True,
        is_sliced=False,
        content_type=content_type,
        run_id=run_id,
        columns=[*columns] if columns is not None else None,
    )
    try:
        info = services.blobs.put_file(file.blob_key, Path(path), move=True)
    except BaseException:
        with services.catalog.session() as s:
            s.delete(s.get(File, file.id))
        raise
    return _mark_uploaded(services, file.id, info.size, info.md5)


def _mark_uploaded(services: Services, file_id: int, size: int, md5: str | None) -> File:
    with services.catalog.session() as s:
        file = s.get(File, file_id)
        if file is None:
            raise _not_found(file_id)
        file.size_bytes = size
        file.checksum = md5
        file.uploaded_at = utcnow()
    return file


# -- upload -------------------------------------------------------------------------------------


def upload(services: Services, principal: Principal, file_id: int, chunks: Iterable[bytes]) -> File:
    """Store a prepared file's bytes; only the token that prepared it (or a master token) may."""
    principal.require_authenticated()
    with services.catalog.session(readonly=True) as s:
        file = s.get(File, file_id)
    if not _visible(file, principal):
        raise _not_found(file_id)
    assert file is not None
    if file.token_id != principal.token_id and not principal.is_master:
        raise PermissionDenied(
            f"only the token that prepared file {file_id} (or a master token) may upload it"
        )
    return _store(services, file, chunks)


def upload_signed(
    services: Services, file_id: int, expires: str | None, signature: str | None, chunks: Iterable[bytes]
) -> File:
    """Store a prepared file's bytes for a caller holding its signed upload URL."""
    signing.verify(services.verification_keys, UPLOAD, str(file_id), expires, signature)
    with services.catalog.session(readonly=True) as s:
        file = s.get(File, file_id)
    if file is None or file.deleted_at is not None:
        raise _not_found(file_id)
    return _store(services, file, chunks)


def _store(services: Services, file: File, chunks: Iterable[bytes]) -> File:
    if file.is_sliced:
        raise NotSupported(
            f"file {file.id} is sliced; uploading sliced files (slices plus a manifest) needs the S3 "
            "gateway, which is not there yet. Prepare it with isSliced=0 and upload one file",
            code="storage.files.slicedNotSupported",
        )
    if is_expired(file):
        raise NotFound(f"file {file.id} has expired", code="storage.files.expired")
    declared = file.size_bytes if file.uploaded_at is None else None
    info = services.blobs.put(file.blob_key, _checked_size(chunks, declared, file.id))
    return _mark_uploaded(services, file.id, info.size, info.md5)


def _checked_size(chunks: Iterable[bytes], declared: int | None, file_id: int) -> Iterator[bytes]:
    """Pass chunks through; raise (so the blob store keeps nothing) when the total is not ``declared``."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if declared is not None and total > declared:
            raise InvalidInput(
                _size_message(file_id, declared, f"more than {declared}"), code="storage.files.sizeMismatch"
            )
        yield chunk
    if declared is not None and total != declared:
        raise InvalidInput(_size_message(file_id, declared, str(total)), code="storage.files.sizeMismatch")


def _size_message(file_id: int, declared: int, got: str) -> str:
    return (
        f"file {file_id} was prepared with sizeBytes={declared} but the upload carried {got} bytes; "
        "nothing was stored. Upload the whole file, or prepare it again with the right sizeBytes"
    )


# -- list ---------------------------------------------------------------------------------------


def list(
    services: Services,
    principal: Principal,
    *,
    tags: Iterable[str] | None = None,
    q: str | None = None,
    limit: int = 100,
    offset: int = 0,
    since_id: int | None = None,
    max_id: int | None = None,
    show_expired: bool = False,
) -> builtins.list[File]:
    """Files the caller may see, newest first. ``tags``: any of them; ``q``: ``tags:"a" AND tags:"b"``."""
    principal.require_authenticated()
    if limit < 1:
        raise InvalidInput("limit must be at least 1")
    if offset < 0:
        raise InvalidInput("offset must not be negative")
    limit = min(limit, MAX_LIST_LIMIT)
    wanted = set(_clean_tags(tags or []))
    matches_q = parse_query(q) if q else None
    stmt = select(File).where(File.project_id == principal.project_id, File.deleted_at.is_(None))
    if not _sees_all(principal):
        stmt = stmt.where(File.token_id == principal.token_id)
    if since_id is not None:
        stmt = stmt.where(File.id > since_id)
    if max_id is not None:
        stmt = stmt.where(File.id <= max_id)
    if not show_expired:
        stmt = stmt.where((File.expires_at.is_(None)) | (File.expires_at > utcnow()))
    stmt = stmt.order_by(File.id.desc())
    filtered = bool(wanted) or matches_q is not None
    if not filtered:
        stmt = stmt.limit(limit).offset(offset)
    out: builtins.list[File] = []
    skipped = 0
    with services.catalog.session(readonly=True) as s:
        for file in s.scalars(stmt.execution_options(yield_per=500)):
            if filtered:
                file_tags = set(file.tags or [])
                if wanted and not (wanted & file_tags):
                    continue
                if matches_q is not None and not matches_q(file_tags):
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
            out.append(file)
            if len(out) >= limit:
                break
    return out


_Q_TOKEN = re.compile(
    r'\s*(?:(\()|(\))|(AND|OR)(?=[\s()]|$)|tags:"((?:[^"\\]|\\.)*)"|tags:([^\s()"]+))', re.I
)


def parse_query(q: str) -> Callable[[set[str]], bool]:
    """Compile Keboola's ``q`` (``tags:"a" AND (tags:"b" OR tags:c)``) to a predicate over a tag set.

    Only ``tags:`` terms joined by AND/OR (AND binds tighter) and parentheses are understood;
    anything else is ``InvalidInput``.
    """
    tokens: builtins.list[tuple[str, str]] = []
    pos = 0
    text = q.strip()
    while pos < len(text):
        m = _Q_TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise InvalidInput(
                f'unsupported q query {q!r} at {text[pos : pos + 20]!r}: only tags:"..." terms joined by '
                "AND/OR are supported",
                code="storage.files.invalidQuery",
            )
        pos = m.end()
        if m.group(1):
            tokens.append(("(", ""))
        elif m.group(2):
            tokens.append((")", ""))
        elif m.group(3):
            tokens.append((m.group(3).upper(), ""))
        else:
            value = m.group(4) if m.group(4) is not None else m.group(5)
            tokens.append(("TAG", re.sub(r"\\(.)", r"\1", value)))
        while pos < len(text) and text[pos].isspace():
            pos += 1
    idx = 0

    def fail(what: str) -> InvalidInput:
        return InvalidInput(f"invalid q query {q!r}: {what}", code="storage.files.invalidQuery")

    def parse_or() -> Callable[[set[str]], bool]:
        nonlocal idx
        parts = [parse_and()]
        while idx < len(tokens) and tokens[idx][0] == "OR":
            idx += 1
            parts.append(parse_and())
        if len(parts) == 1:
            return parts[0]
        return lambda t: any(p(t) for p in parts)

    def parse_and() -> Callable[[set[str]], bool]:
        nonlocal idx
        parts = [parse_atom()]
        while idx < len(tokens) and tokens[idx][0] == "AND":
            idx += 1
            parts.append(parse_atom())
        if len(parts) == 1:
            return parts[0]
        return lambda t: all(p(t) for p in parts)

    def parse_atom() -> Callable[[set[str]], bool]:
        nonlocal idx
        if idx >= len(tokens):
            raise fail('it ends where a tags:"..." term was expected')
        kind, value = tokens[idx]
        idx += 1
        if kind == "TAG":
            return lambda t: value in t
        if kind == "(":
            inner = parse_or()
            if idx >= len(tokens) or tokens[idx][0] != ")":
                raise fail("a '(' is not closed")
            idx += 1
            return inner
        raise fail(f"unexpected {kind!r}")

    if not tokens:
        raise fail("it is empty")
    predicate = parse_or()
    if idx != len(tokens):
        raise fail(f"unexpected {tokens[idx][0]!r}")
    return predicate


# -- tags, delete -------------------------------------------------------------------------------


def add_tag(services: Services, principal: Principal, file_id: int, tag: str | None) -> File:
    """Add a tag to a visible file (no-op when it is there already)."""
    clean = _clean_tags([tag or ""])
    if not clean:
        raise InvalidInput("parameter tag is required")
    get(services, principal, file_id)
    with services.catalog.session() as s:
        file = s.get(File, file_id)
        assert file is not None
        if clean[0] not in (file.tags or []):
            file.tags = [*(file.tags or []), clean[0]]
    return file


def remove_tag(services: Services, principal: Principal, file_id: int, tag: str) -> File:
    """Remove a tag from a visible file (no-op when it is not there)."""
    get(services, principal, file_id)
    with services.catalog.session() as s:
        file = s.get(File, file_id)
        assert file is not None
        file.tags = [t for t in (file.tags or []) if t != tag]
    return file


def _check_delete(services: Services, principal: Principal, file_id: int) -> File:
    file = get(services, principal, file_id)
    if file.token_id != principal.token_id and not _sees_all(principal):
        raise PermissionDenied(f"this token may not delete file {file_id}")
    return file


def delete(services: Services, principal: Principal, file_id: int) -> None:
    """Delete a file now: it disappears from lists and details; its bytes are removed."""
    file = _check_delete(services, principal, file_id)
    _delete_now(services, file.project_id, file.id)


def delete_async(services: Services, principal: Principal, file_id: int, *, run_id: str | None = None) -> Job:
    """Queue the deletion of a file as a ``files.delete`` job."""
    file = _check_delete(services, principal, file_id)
    return services.jobs.submit(
        file.project_id,
        DELETE_JOB,
        {"fileId": file.id},
        token_id=principal.token_id,
        subject=str(file.id),
        run_id=run_id,
    )


def _delete_now(services: Services, project_id: int, file_id: int) -> dict[str, Any]:
    with services.catalog.session() as s:
        file = s.get(File, file_id)
        if file is None or file.project_id != project_id:
            raise _not_found(file_id)
        already = file.deleted_at is not None
        if not already:
            file.deleted_at = utcnow()
        key = file.blob_key
    services.blobs.delete(key)  # after the row: a reader never sees a live row without bytes
    return {"id": file_id, "deleted": True}


def _delete_job(ctx: JobContext[Services]) -> dict[str, Any]:
    try:
        file_id = int(ctx.params["fileId"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput("files.delete needs an integer fileId") from exc
    return _delete_now(ctx.services, ctx.project_id, file_id)


def register_jobs(registry: JobRegistry[Services]) -> None:
    registry.register(DELETE_JOB, _delete_job)


# -- reading bytes ------------------------------------------------------------------------------


def _require_bytes(file: File) -> None:
    if file.uploaded_at is None:
        raise InvalidInput(f"file {file.id} has not been uploaded yet", code="storage.files.notUploaded")
    if file.is_sliced:
        raise NotSupported(f"file {file.id} is sliced; reading sliced files is not supported yet")


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes (whatever its name says)."""
    return inflate.starts_with_gzip_magic(path)


@contextlib.contextmanager
def open_local(services: Services, project_id: int, file_id: int) -> Iterator[Path]:
    """The bytes of an uploaded file as a local path, for importers (DuckDB reads it directly).

    Remote stores are streamed to a temp file that is removed on exit.
    """
    file = _project_file(services, project_id, file_id)
    _require_bytes(file)
    tmp_dir = services.settings.data_dir / "tmp"
    with contextlib.ExitStack() as stack:
        try:
            path = stack.enter_context(
                local_file(services.blobs, file.blob_key, tmp_dir=tmp_dir, suffix=f"-{file.name}")
            )
        except NotFound as exc:
            raise InvalidInput(
                f"file {file_id} has not been uploaded yet", code="storage.files.notUploaded"
            ) from exc
        yield path


def open_stream(
    services: Services, project_id: int, file_id: int, *, start: int | None = None, end: int | None = None
) -> Iterator[bytes]:
    """The stored bytes of an uploaded file (or of ``[start, end)``) in 1 MiB chunks."""
    file = _project_file(services, project_id, file_id)
    _require_bytes(file)
    return iter_chunks(services.blobs.open(file.blob_key, start, end))


@dataclass(frozen=True)
class Download:
    """What a signed download serves: a local file as is, or a stream (export CSV with a header)."""

    file: File
    filename: str
    media_type: str
    path: Path | None = None
    chunks: Iterator[bytes] | None = None
    size: int | None = None  # bytes of ``chunks`` when known in advance (the Content-Length)


def open_download(services: Services, file_id: int, expires: str | None, signature: str | None) -> Download:
    """Verify a signed download URL and open what it serves.

    An export result (``columns`` set) is served as one uncompressed CSV with a quoted header row,
    gunzipped on the fly when stored compressed (reference §6.4); anything else as stored.
    """
    signing.verify(services.verification_keys, DOWNLOAD, str(file_id), expires, signature)
    with services.catalog.session(readonly=True) as s:
        file = s.get(File, file_id)
    if file is None or file.deleted_at is not None:
        raise _not_found(file_id)
    if is_expired(file):
        raise NotFound(f"file {file_id} has expired", code="storage.files.expired")
    _require_bytes(file)
    if file.columns is not None:
        name = file.name[:-3] if file.name.lower().endswith(".gz") else file.name
        return Download(
            file,
            name,
            "text/csv; charset=utf-8",
            chunks=_csv_with_header(services, file),
            size=_served_export_size(services, file),
        )
    media = file.content_type or "application/octet-stream"
    local = services.blobs.path(file.blob_key)
    if local is not None and local.is_file():
        return Download(file, file.name, media, path=local)
    return Download(file, file.name, media, chunks=iter_chunks(services.blobs.open(file.blob_key)))


def csv_header(columns: Iterable[str]) -> bytes:
    """``"c1","c2"\\n`` with embedded quotes doubled."""
    return (",".join('"' + c.replace('"', '""') + '"' for c in columns) + "\n").encode("utf-8")


def _served_export_size(services: Services, file: File) -> int | None:
    """Bytes ``_csv_with_header`` serves for an export stored uncompressed (header + stored CSV);
    None for a gzipped one, inflated on the fly to a size known only at the end."""
    info = services.blobs.head(file.blob_key)
    if info is None:
        return None
    if info.size >= len(GZIP_MAGIC):
        with contextlib.closing(services.blobs.open(file.blob_key, 0, len(GZIP_MAGIC))) as probe:
            if probe.read(len(GZIP_MAGIC)) == GZIP_MAGIC:
                return None
    return len(csv_header(file.columns or [])) + info.size


def _csv_with_header(services: Services, file: File) -> Iterator[bytes]:
    yield csv_header(file.columns or [])
    stream = services.blobs.open(file.blob_key)
    try:
        first = stream.read(CHUNK_SIZE)
        if not first.startswith(GZIP_MAGIC):
            if first:
                yield first
            while chunk := stream.read(CHUNK_SIZE):
                yield chunk
            return
        yield from _gunzip([first], stream)
    finally:
        stream.close()


def _gunzip(head: Iterable[bytes], stream: Any) -> Iterator[bytes]:
    """Inflate (possibly concatenated) gzip members step by step (``core.inflate``, 1 MiB at a time).

    The file is an export this service wrote, so no size limit applies beyond the bounded steps.
    """

    def source() -> Iterator[bytes]:
        yield from head
        while chunk := stream.read(CHUNK_SIZE):
            yield chunk

    yield from inflate.gunzip(source(), max_bytes=None, what="the stored export file", step=CHUNK_SIZE)


# -- signed URLs --------------------------------------------------------------------------------


def download_url(services: Services, file: File) -> str:
    """A token-free URL that downloads the file until ``signed_url_ttl`` seconds from now."""
    query = signing.signed_query(
        services.secret_key, DOWNLOAD, str(file.id), ttl=services.settings.signed_url_ttl
    )
    return f"{services.settings.effective_public_url}/v2/storage/files/{file.id}/download?{query}"


def upload_url(services: Services, file: File) -> str:
    """A token-free URL that accepts the file's bytes (PUT or POST) for ``signed_url_ttl`` seconds."""
    query = signing.signed_query(
        services.secret_key, UPLOAD, str(file.id), ttl=services.settings.signed_url_ttl
    )
    return f"{services.settings.effective_public_url}/v2/storage/files/{file.id}/upload?{query}"


__all__ = [
    "Download",
    "add_tag",
    "blob_key",
    "create_from_path",
    "csv_header",
    "delete",
    "delete_async",
    "download_url",
    "file_type",
    "get",
    "is_expired",
    "is_gzip",
    "list",
    "max_age_days",
    "open_download",
    "open_local",
    "open_stream",
    "parse_query",
    "prepare",
    "register_jobs",
    "remove_tag",
    "safe_name",
    "upload",
    "upload_signed",
    "upload_url",
]
