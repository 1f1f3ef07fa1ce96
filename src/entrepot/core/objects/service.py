"""The commands of the object-spaces face, one per request.

Space management (list, create, update, delete) needs ``canManageSpaces`` on the project.
Every other command opens the space the request names for its caller (the project and the
space are looked up, then the caller's access is checked) and does one operation of
:mod:`.objects`, :mod:`.multipart` or :mod:`.presign`. The caller of an object request may be
a principal (a token's, or anonymous) or a presigned URL (:class:`Presigned`), whose signer's
rights apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import EllipsisType, SimpleNamespace
from typing import TYPE_CHECKING, BinaryIO, Literal, TypeAlias, TypeVar, cast

from sqlalchemy import and_, bindparam, func, inspect, select

from entrepot.core.auth import Access, Principal
from entrepot.core.blobs import iter_chunks
from entrepot.core.catalog import Space, StoredObject
from entrepot.core.clock import utcnow
from entrepot.core.errors import AlreadyExists, Conflict, EntrepotError, InvalidInput, NotFound
from entrepot.core.objects import multipart, objects, presign
from entrepot.core.objects.checksums import Checksum
from entrepot.core.objects.jobs import queue_purge
from entrepot.core.objects.multipart import PartInfo, UploadInfo
from entrepot.core.objects.objects import DeleteOutcome, ObjectInfo, ObjectPage
from entrepot.core.objects.presign import PresignedUrl
from entrepot.core.objects.spaces import (
    DEFAULT_SPACE_NAMES,
    SPACE_BY_PROJECT_ID,
    SPACE_BY_PROJECT_NAME,
    SpaceInfo,
    authorize,
    find_space,
    locate_space,
    require_manager,
    resolve_project,
    space_info,
    space_of_row,
    validate_space_name,
)
from entrepot.core.text import check_text

if TYPE_CHECKING:
    from entrepot.core.services import Services

R = TypeVar("R")
Opener: TypeAlias = Callable[[int | None, int | None], BinaryIO]


@dataclass(frozen=True)
class Presigned:
    """A request made with a presigned URL: its query parameters (``expires``, ``signature``, ``signer``, ...)."""

    params: Mapping[str, str]


Caller: TypeAlias = Principal | Presigned


def presigned(query: Mapping[str, str]) -> Presigned | None:
    """The presigned URL a request's query carries, if it carries one (a ``signature``)."""
    params = dict(query)
    return Presigned(params) if presign.is_presigned(params) else None


# -- inputs and views ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SpaceSummary:
    """A space as a listing shows it: what the caller may do there, and what it holds."""

    space: SpaceInfo
    access: Access | None
    objects: int
    bytes: int


@dataclass(frozen=True)
class NewSpace:
    name: str
    description: str = ""
    public: bool = False
    expires_at: datetime | None = None  # turns read-only then; removed after a grace period


@dataclass(frozen=True)
class SpaceChanges:
    """What to change in a space: ``None`` leaves a field as it is, except ``expires_at``, where
    ``None`` removes the expiry and ``...`` (the default) leaves it."""

    description: str | None = None
    public: bool | None = None
    expires_at: datetime | EllipsisType | None = ...


@dataclass(frozen=True)
class PresignRequest:
    method: str  # GET, HEAD, PUT, DELETE (a key) or LIST (a prefix); any case
    key: str | None = None
    prefix: str | None = None
    expires_in: int = 3600


@dataclass(frozen=True)
class CopyRequest:
    """Copy ``source_key`` of ``source_space`` (default: the target space) to ``key``; ``metadata`` and
    ``content_type`` replace the source's when given.

    ``directive`` is S3's metadata directive: ``COPY`` keeps the source's metadata, type and
    headers (and refuses a copy onto itself), ``REPLACE`` sets exactly ``metadata``,
    ``content_type`` and ``headers`` (also onto itself: how S3 clients change metadata).
    """

    source_key: str
    key: str
    source_space: str | None = None
    metadata: dict[str, str] | None = None
    content_type: str | None = None
    directive: Literal["COPY", "REPLACE"] | None = None
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Listing:
    """A listing request; ``start_after`` lists keys after it (``after_prefix``: and not under it)."""

    prefix: str = ""
    delimiter: str | None = None
    cursor: str | None = None
    limit: int = objects.MAX_LIST_LIMIT
    start_after: str | None = None
    after_prefix: bool = False


@dataclass(frozen=True)
class ObjectUpload:
    """What a put says about its body: checked before the object becomes visible.

    ``content_md5`` is the base64 digest (as HTTP and S3 send it), ``sha256`` hex, ``size``
    the announced length. ``headers`` are standard headers to keep with the object
    (Content-Disposition, Cache-Control, ...), ``checksum`` an additional checksum the face
    verified while the body streamed (or a callable that gives it once the body was read), and
    ``exact_content_type`` stores the type as given (S3) instead of guessing one from the key.
    """

    content_type: str | None = None
    metadata: dict[str, str] | None = None
    content_md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    headers: dict[str, str] | None = None
    checksum: Checksum | Callable[[], Checksum | None] | None = None
    exact_content_type: bool = False


@dataclass(frozen=True)
class NewUpload:
    """A multipart upload to start: what the object will be."""

    key: str
    content_type: str | None = None
    metadata: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    checksum_algorithm: str | None = None
    exact_content_type: bool = False


@dataclass(frozen=True)
class PartUpload:
    """What a part's request says about its body (as :class:`ObjectUpload`)."""

    content_md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    checksum: Checksum | Callable[[], Checksum | None] | None = None


@dataclass(frozen=True)
class PartSource:
    """Bytes ``[start, end)`` (all when None) of ``key`` in ``space`` (default: the upload's space)."""

    key: str
    space: str | None = None
    start: int | None = None
    end: int | None = None


# -- opening a space -----------------------------------------------------------------------------


def open_space(
    services: Services, principal: Principal, project: str, space: str, access: Access
) -> SpaceInfo:
    """Resolve ``<project>/<space>`` from a URL and check that ``principal`` may ``access`` it."""
    info = find_space(services.catalog, project, space)
    authorize(info, principal, access)
    return info


def _open(
    services: Services, caller: Caller, project: str, space: str, access: Access, *, method: str, target: str
) -> SpaceInfo:
    """The space, opened for a principal (``access``) or a presigned URL signed for ``method`` on ``target``."""
    info = find_space(services.catalog, project, space)
    _admit(services, caller, info, access, method=method, target=target)
    return info


def _admit(
    services: Services, caller: Caller, info: SpaceInfo, access: Access, *, method: str, target: str
) -> None:
    """Raise unless ``caller`` may ``access`` the space (a presigned URL: do ``method`` on ``target``)."""
    if isinstance(caller, Presigned):
        presign.verify(services, info, method, target, dict(caller.params))
    else:
        authorize(info, caller, access)


# Reading an object: its project, space and entry in one statement (SPACE_BY_PROJECT_* plus the
# object's columns, prefixed "object_", NULL when the space holds no such key).
_OBJECT_ATTRIBUTES = tuple(attr.key for attr in inspect(StoredObject).column_attrs)
_OBJECT_COLUMNS = tuple(getattr(StoredObject, attr).label(f"object_{attr}") for attr in _OBJECT_ATTRIBUTES)
_OBJECT_JOIN = and_(StoredObject.space_id == Space.id, StoredObject.key == bindparam("key"))
_READ_BY_PROJECT_NAME = SPACE_BY_PROJECT_NAME.add_columns(*_OBJECT_COLUMNS).outerjoin(
    StoredObject, _OBJECT_JOIN
)
_READ_BY_PROJECT_ID = SPACE_BY_PROJECT_ID.add_columns(*_OBJECT_COLUMNS).outerjoin(StoredObject, _OBJECT_JOIN)


def _open_object(
    services: Services, caller: Caller, project: str, space: str, key: str, *, method: str
) -> tuple[SpaceInfo, objects.ObjectInfo]:
    """The space and the object's entry for a read, from one catalog statement; refused as
    :func:`_open` then :func:`objects.head_object` would refuse them (same errors, same order)."""
    try:
        objects.validate_object_key(key)
        bad_key: EntrepotError | None = None
    except EntrepotError as exc:
        bad_key = exc
    with services.catalog.read() as conn:
        row = locate_space(
            conn,
            project,
            space,
            by_name=_READ_BY_PROJECT_NAME,
            by_id=_READ_BY_PROJECT_ID,
            key=key if bad_key is None else "",
        )
    info = space_of_row(row, project, space)
    _admit(services, caller, info, "read", method=method, target=key)
    if bad_key is not None:
        raise bad_key
    assert row is not None
    if row.object_id is None:
        raise NotFound(f"object {key!r} does not exist in space {info.name!r}", code="objects.notFound")
    # objects._info reads the entry's column attributes, whichever object carries them
    entry = SimpleNamespace(**{attr: getattr(row, f"object_{attr}") for attr in _OBJECT_ATTRIBUTES})
    return info, objects._info(info, cast(StoredObject, entry))


# -- spaces --------------------------------------------------------------------------------------


def list_spaces(services: Services, principal: Principal, project: str) -> list[SpaceSummary]:
    """The spaces of a project that ``principal`` may read, with object counts and sizes."""
    found = resolve_project(services.catalog, project)
    with services.catalog.session(readonly=True) as s:
        spaces = [
            space_info(sp, found.name)
            for sp in s.scalars(select(Space).where(Space.project_id == found.id).order_by(Space.name))
        ]
        totals = dict(
            (row[0], (row[1], row[2] or 0))
            for row in s.execute(
                select(StoredObject.space_id, func.count(), func.sum(StoredObject.size))
                .join(Space, Space.id == StoredObject.space_id)
                .where(Space.project_id == found.id)
                .group_by(StoredObject.space_id)
            )
        )
    out = []
    for sp in spaces:
        access = sp.access_of(principal)
        if access is None:
            continue
        count, size = totals.get(sp.id, (0, 0))
        out.append(SpaceSummary(sp, access, int(count), int(size)))
    return out


def _check_expiry(expires_at: datetime) -> None:
    if expires_at.tzinfo is None:
        raise InvalidInput("expiresAt must carry a time zone (e.g. 2027-01-31T00:00:00Z)")
    if expires_at <= utcnow():  # past expiry + grace would let the sweep delete it at once
        raise InvalidInput("expiresAt must be in the future")


def create_space(services: Services, principal: Principal, project: str, new: NewSpace) -> SpaceInfo:
    found = resolve_project(services.catalog, project)
    require_manager(principal, found)
    validate_space_name(new.name)
    check_text(new.description, "description", 4096)
    if new.expires_at is not None:
        _check_expiry(new.expires_at)
    with services.catalog.session() as s:
        taken = s.scalar(select(Space.id).where(Space.project_id == found.id, Space.name == new.name))
        if taken is not None:
            raise AlreadyExists(f"space {new.name!r} already exists", code="spaces.alreadyExists")
        space = Space(
            project_id=found.id,
            name=new.name,
            description=new.description,
            is_public=new.public,
            created_at=utcnow(),
            expires_at=new.expires_at,
        )
        s.add(space)
        s.flush()
        return space_info(space, found.name)


def update_space(
    services: Services, principal: Principal, project: str, name: str, changes: SpaceChanges
) -> SpaceInfo:
    """Change a space's description, public flag or expiry."""
    found = resolve_project(services.catalog, project)
    require_manager(principal, found)
    validate_space_name(name)
    if changes.description is not None:
        check_text(changes.description, "description", 4096)
    with services.catalog.session() as s:
        space = s.scalar(select(Space).where(Space.project_id == found.id, Space.name == name))
        if space is None:
            raise NotFound(f"space {name!r} does not exist", code="spaces.notFound")
        if changes.public is not None:
            if name in DEFAULT_SPACE_NAMES and changes.public != space.is_public:
                raise Conflict(f"the default space {name!r} keeps its visibility", code="spaces.default")
            space.is_public = changes.public
        if changes.description is not None:
            space.description = changes.description
        expires_at = changes.expires_at
        if expires_at is not ...:
            if expires_at is not None and name in DEFAULT_SPACE_NAMES:
                raise Conflict(f"the default space {name!r} cannot expire", code="spaces.default")
            if isinstance(expires_at, datetime):
                _check_expiry(expires_at)
            space.expires_at = expires_at
        return space_info(space, found.name)


def delete_space(services: Services, principal: Principal, project: str, name: str, *, force: bool) -> int:
    """Remove a space and (with ``force``) its objects; returns how many objects went with it.

    The catalog rows go in one transaction; the blobs are removed by a ``spaces.purge`` job.
    """
    found = resolve_project(services.catalog, project)
    require_manager(principal, found)
    validate_space_name(name)
    if name in DEFAULT_SPACE_NAMES:
        raise Conflict(f"the default space {name!r} cannot be deleted", code="spaces.default")
    with services.catalog.session() as s:
        space = s.scalar(select(Space).where(Space.project_id == found.id, Space.name == name))
        if space is None:
            raise NotFound(f"space {name!r} does not exist", code="spaces.notFound")
        count = s.scalar(select(func.count()).where(StoredObject.space_id == space.id)) or 0
        if count and not force:
            raise Conflict(
                f"space {name!r} still holds {count} object(s); delete them first or pass force=true",
                code="spaces.notEmpty",
            )
        space_id = space.id
        s.delete(space)
    queue_purge(services, found.id, space_id, principal.token_id)
    return int(count)


def presign_url(
    services: Services, principal: Principal, project: str, space: str, request: PresignRequest
) -> PresignedUrl:
    """A URL that lets anyone do one thing in the space until it expires."""
    access = presign.METHODS.get(request.method.upper(), "read")  # presign re-checks the method
    info = open_space(services, principal, project, space, access)
    return presign.presign(
        services,
        info,
        principal,
        request.method,
        key=request.key,
        prefix=request.prefix,
        expires_in=request.expires_in,
    )


def copy_object(
    services: Services, principal: Principal, project: str, space: str, request: CopyRequest
) -> ObjectInfo:
    """Copy an object into the space, from it or from another space of the project."""
    target = open_space(services, principal, project, space, "write")
    if request.source_space in (None, space):
        source = target
    else:
        assert request.source_space is not None
        source = open_space(services, principal, project, request.source_space, "read")
    return objects.copy_object(
        services,
        source,
        request.source_key,
        target,
        request.key,
        metadata=request.metadata,
        content_type=request.content_type,
        directive=request.directive,
        headers=request.headers,
    )


# -- objects -------------------------------------------------------------------------------------


def list_objects(
    services: Services, caller: Caller, project: str, space: str, listing: Listing
) -> ObjectPage:
    info = _open(services, caller, project, space, "read", method="LIST", target=listing.prefix)
    return objects.list_objects(
        services,
        info,
        prefix=listing.prefix,
        delimiter=listing.delimiter,
        cursor=listing.cursor,
        limit=listing.limit,
        start_after=listing.start_after,
        after_prefix=listing.after_prefix,
    )


def put_object(
    services: Services,
    caller: Caller,
    project: str,
    space: str,
    key: str,
    body: Iterable[bytes] | BinaryIO,
    upload: ObjectUpload,
) -> ObjectInfo:
    """Store ``body`` under ``key`` (a checked key: :func:`objects.validate_object_key`)."""
    info = _open(services, caller, project, space, "write", method="PUT", target=key)
    md5 = objects.decode_content_md5(upload.content_md5)
    return objects.put_object(
        services,
        info,
        key,
        body,
        content_type=upload.content_type,
        metadata=upload.metadata,
        content_md5=md5,
        sha256=upload.sha256,
        expected_size=upload.size,
        headers=upload.headers,
        checksum=upload.checksum,
        exact_type=upload.exact_content_type,
    )


def read_object(
    services: Services,
    caller: Caller,
    project: str,
    space: str,
    key: str,
    *,
    head: bool,
    respond: Callable[[ObjectInfo, Opener], R],
) -> R:
    """What ``respond`` makes of an object's entry and an opener of exactly that version's bytes.

    A version replaced between its entry and its bytes is read again, the new one (three times
    at most), so an answer never mixes the headers of one version with the bytes of another.
    """
    info, entry = _open_object(services, caller, project, space, key, method="HEAD" if head else "GET")

    def once(entry: objects.ObjectInfo) -> R:
        return respond(entry, lambda start, end: objects.open_version(services, entry, start, end))

    for _ in range(3):
        try:
            return once(entry)
        except objects.ObjectChanged:
            entry = objects.head_object(services, info, key)
    return once(entry)


def delete_object(services: Services, caller: Caller, project: str, space: str, key: str) -> ObjectInfo:
    info = _open(services, caller, project, space, "write", method="DELETE", target=key)
    return objects.delete_object(services, info, key)


def delete_objects(
    services: Services, principal: Principal, project: str, space: str, keys: list[str]
) -> list[DeleteOutcome]:
    """Delete up to 1000 keys in one transaction; a missing key counts as deleted, an invalid one
    gets its error in its outcome."""
    if len(keys) > objects.MAX_LIST_LIMIT:
        raise InvalidInput(f"delete at most {objects.MAX_LIST_LIMIT} objects at once, not {len(keys)}")
    info = open_space(services, principal, project, space, "write")
    return objects.delete_objects(services, info, keys)


# -- multipart uploads ---------------------------------------------------------------------------


def create_upload(
    services: Services,
    principal: Principal,
    project: str,
    space: str,
    key: str,
    *,
    content_type: str | None = None,
    metadata: dict[str, str] | None = None,
) -> UploadInfo:
    return start_upload(
        services, principal, project, space, NewUpload(key, content_type=content_type, metadata=metadata)
    )


def start_upload(
    services: Services, principal: Principal, project: str, space: str, new: NewUpload
) -> UploadInfo:
    """Start a multipart upload of ``new.key`` (with S3's headers, checksum algorithm, exact type)."""
    info = open_space(services, principal, project, space, "write")
    return multipart.create_upload(
        services,
        info,
        new.key,
        content_type=new.content_type,
        metadata=new.metadata,
        token_id=principal.token_id,
        headers=new.headers,
        checksum_algorithm=new.checksum_algorithm,
        exact_type=new.exact_content_type,
    )


def list_uploads(
    services: Services, principal: Principal, project: str, space: str, key: str | None = None
) -> list[UploadInfo]:
    info = open_space(services, principal, project, space, "write")
    return multipart.list_uploads(services, info, key=key)


def list_upload_page(
    services: Services,
    principal: Principal,
    project: str,
    space: str,
    *,
    prefix: str = "",
    delimiter: str | None = None,
    key_marker: str = "",
    upload_id_marker: str = "",
    limit: int = 1000,
) -> multipart.UploadPage:
    """A page of the uploads in progress of a space (S3's ListMultipartUploads)."""
    info = open_space(services, principal, project, space, "write")
    return multipart.list_upload_page(
        services,
        info,
        prefix=prefix,
        delimiter=delimiter,
        key_marker=key_marker,
        upload_id_marker=upload_id_marker,
        limit=limit,
    )


def get_upload(
    services: Services, principal: Principal, project: str, space: str, upload_id: str
) -> UploadInfo:
    info = open_space(services, principal, project, space, "write")
    return multipart.get_upload(services, info, upload_id)


def put_part(
    services: Services,
    principal: Principal,
    project: str,
    space: str,
    upload_id: str,
    part_number: int,
    body: Iterable[bytes] | BinaryIO,
    *,
    content_md5: str | None = None,
) -> PartInfo:
    """Store one part; ``content_md5`` is the base64 digest the request announced."""
    return upload_part(
        services, principal, project, space, upload_id, part_number, body, PartUpload(content_md5=content_md5)
    )


def upload_part(
    services: Services,
    principal: Principal,
    project: str,
    space: str,
    upload_id: str,
    part_number: int,
    body: Iterable[bytes] | BinaryIO,
    upload: PartUpload,
) -> PartInfo:
    """Store one part, checking what ``upload`` announced (MD5, SHA-256, size, checksum)."""
    info = open_space(services, principal, project, space, "write")
    return multipart.put_part(
        services,
        info,
        upload_id,
        part_number,
        body,
        content_md5=objects.decode_content_md5(upload.content_md5),
        sha256=objects.check_sha256_hex(upload.sha256),
        expected_size=upload.size,
        checksum=upload.checksum,
    )


def put_part_copy(
    services: Services,
    principal: Principal,
    project: str,
    space: str,
    upload_id: str,
    part_number: int,
    source: PartSource,
) -> tuple[PartInfo, ObjectInfo]:
    """Store a part copied from (a byte range of) an object of the project; returns the part and
    the source version it was copied from."""
    target = open_space(services, principal, project, space, "write")
    if source.space in (None, space):
        origin = target
    else:
        assert source.space is not None
        origin = open_space(services, principal, project, source.space, "read")
    if origin.project_id != target.project_id:
        raise InvalidInput("objects can only be copied within one project", code="objects.crossProject")
    for _ in range(3):
        src = objects.head_object(services, origin, source.key)
        start, end = source.start, source.end
        if start is not None and (start >= src.size or (end is not None and end > src.size)):
            raise InvalidInput(
                f"the copy range {start}-{(end or src.size) - 1} lies outside the source object "
                f"({src.size} bytes)",
                code="uploads.badCopyRange",
                details={"size": src.size},
            )
        try:
            stream = objects.open_version(services, src, start, end)
        except objects.ObjectChanged:
            continue
        part = multipart.put_part(services, target, upload_id, part_number, iter_chunks(stream))
        return part, src
    raise Conflict(
        f"object {source.key!r} kept changing while it was copied; try again", code="objects.changed"
    )


def complete_upload(
    services: Services,
    principal: Principal,
    project: str,
    space: str,
    upload_id: str,
    parts: list[tuple[int, str]] | None = None,
    *,
    min_part_size: int = 0,
    checksums: dict[int, Checksum] | None = None,
) -> ObjectInfo:
    """Join the parts into the object (see :func:`multipart.complete_upload`)."""
    info = open_space(services, principal, project, space, "write")
    return multipart.complete_upload(
        services, info, upload_id, parts, min_part_size=min_part_size, checksums=checksums
    )


def abort_upload(services: Services, principal: Principal, project: str, space: str, upload_id: str) -> None:
    info = open_space(services, principal, project, space, "write")
    multipart.abort_upload(services, info, upload_id)
