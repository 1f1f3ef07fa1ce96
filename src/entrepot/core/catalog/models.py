"""SQLAlchemy models of the catalog: projects, tokens, jobs, files, buckets and tables.

The schema itself is owned by the Alembic migrations in ``migrations/versions``; a test
checks that the models and the migrated schema agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from entrepot.core.clock import utcnow

# SQLite has no 64-bit autoincrement type distinct from INTEGER; PostgreSQL gets BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the catalog; use entrepot.core.clock.utcnow()")
        return value.astimezone(UTC).replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Project(Base):
    """A tenant: Keboola's project, CARTO's user account (its name is the ``<project>`` in URLs)."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class Token(Base):
    """An API token. Only its SHA-256 hash is stored; the secret is shown once at creation."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    refreshed_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    is_master: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    can_manage_buckets: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    can_manage_tokens: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    can_read_all_file_uploads: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    can_manage_spaces: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    bucket_permissions: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False, default=dict)
    space_permissions: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False, default=dict)
    creator_token_id: Mapped[int | None] = mapped_column(
        ForeignKey("tokens.id", ondelete="SET NULL"), nullable=True
    )
    # the user the token belongs to: tokens of one owner share exports and templates
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)

    __table_args__ = (Index("ix_tokens_project", "project_id"),)


class Job(Base):
    """A durable unit of slow work, claimed by exactly one worker at a time.

    Canonical status: ``queued → running → succeeded | failed | cancelled``.
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id", ondelete="SET NULL"), nullable=True)
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    subject: Mapped[str | None] = mapped_column(String(512), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    progress: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    results: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=3)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    worker_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        Index("ix_jobs_status_id", "status", "id"),
        Index("ix_jobs_project_id", "project_id", "id"),
        Index("ix_jobs_subject", "project_id", "subject", "status"),
    )


class File(Base):
    """A stored file (Keboola's Files): an upload, an import source or an export result.

    Its bytes live in the blob store under ``blob_key``; the row exists from ``prepare`` on,
    ``uploaded_at`` is set once the bytes have landed.
    """

    __tablename__ = "files"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id", ondelete="SET NULL"), nullable=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    blob_key: Mapped[str] = mapped_column(String(1024), nullable=False)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    checksum: Mapped[str | None] = mapped_column(String(128), nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_public: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    is_sliced: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    is_encrypted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    is_permanent: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    tags: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    # export results: the column list a header is built from when the file is downloaded as CSV
    columns: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    uploaded_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (Index("ix_files_project_id", "project_id", "id"),)


class Bucket(Base):
    """A Keboola bucket: a schema of the project's lake, named ``<stage>.c-<name>``."""

    __tablename__ = "buckets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    ident: Mapped[str] = mapped_column(String(128), nullable=False)  # in.c-main
    stage: Mapped[str] = mapped_column(String(8), nullable=False)
    name: Mapped[str] = mapped_column(String(96), nullable=False)  # main (shown as c-main)
    display_name: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)

    __table_args__ = (UniqueConstraint("project_id", "ident", name="uq_buckets_project_ident"),)


class StoredTable(Base):
    """A table of a bucket; its rows live in the lake as ``"<bucket ident>"."<name>"``.

    ``columns`` keeps the user's column order; the lake table has one more, hidden column,
    ``_timestamp``, the time each row last changed (``changedSince``).
    """

    __tablename__ = "tables"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    bucket_id: Mapped[int] = mapped_column(ForeignKey("buckets.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(96), nullable=False)
    display_name: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    columns: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    primary_key: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    # typed (SQL-created) tables: {"geometry": {column: srid}, "serial": [column], "cartodbfied": bool}
    definition: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # private: tokens with read access only; public / link: anonymous SQL may read it too (CARTO)
    privacy: Mapped[str] = mapped_column(
        String(8), nullable=False, default="private", server_default="private"
    )
    rows_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    data_size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    last_import_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_change_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (UniqueConstraint("bucket_id", "name", name="uq_tables_bucket_name"),)


class TableMetadata(Base):
    """One metadata entry of a table (``column_name`` empty) or of one of its columns."""

    __tablename__ = "table_metadata"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    table_id: Mapped[int] = mapped_column(ForeignKey("tables.id", ondelete="CASCADE"), nullable=False)
    column_name: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    provider: Mapped[str] = mapped_column(String(255), nullable=False)
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    value: Mapped[str] = mapped_column(Text, nullable=False, default="")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        UniqueConstraint("table_id", "column_name", "provider", "key", name="uq_table_metadata_entry"),
    )


# Object keys sort by their bytes on every backend (S3 order): SQLite's default BINARY collation
# does that for UTF-8 text; PostgreSQL needs the "C" collation.
ObjectKey = String(1024).with_variant(String(1024, collation="C"), "postgresql")


class Space(Base):
    """A storage space of a project (DCSS): a flat namespace of objects.

    Every project has ``public`` (anonymous read) and ``private``. A space with ``expires_at``
    turns read-only at that time and is removed by the maintenance sweep a grace period later.
    """

    __tablename__ = "spaces"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(63), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    is_public: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    # ids name blob prefixes and presigned URLs: never hand out a deleted space's id again
    __table_args__ = (
        UniqueConstraint("project_id", "name", name="uq_spaces_project_name"),
        {"sqlite_autoincrement": True},
    )


class StoredObject(Base):
    """One object of a space. Its bytes are an immutable blob; a new version gets a new blob."""

    __tablename__ = "objects"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False)
    key: Mapped[str] = mapped_column(ObjectKey, nullable=False)
    blob_key: Mapped[str] = mapped_column(String(1024), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    etag: Mapped[str] = mapped_column(String(64), nullable=False)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content_type: Mapped[str] = mapped_column(String(255), nullable=False)
    user_metadata: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False, default=dict)
    modified_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    # standard headers replayed on reads (Content-Disposition, Cache-Control, ...; the S3 face)
    headers: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    checksum: Mapped[str | None] = mapped_column(String(128), nullable=True)  # "<algorithm>:<base64>"
    # 0: the bytes are the blob ``blob_key``; N > 0: a multipart object stored as its N parts,
    # the ``object_segments`` rows whose ``manifest`` is ``blob_key`` (a blob folder)
    segments: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    # the unique index is also the listing index: (space, key) range scans in byte order
    __table_args__ = (UniqueConstraint("space_id", "key", name="uq_objects_space_key"),)


class ObjectSegment(Base):
    """One part of a multipart object: its bytes ``[start, start + size)`` are the blob ``blob_key``.

    ``manifest`` is the object version's ``blob_key`` (the folder holding the parts), so a
    version's segments outlive a replace of the row only until the replace commits, and a reader
    holding an older version finds none (it was replaced).
    """

    __tablename__ = "object_segments"

    manifest: Mapped[str] = mapped_column(String(1024), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False)
    start: Mapped[int] = mapped_column(BigInteger, nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    blob_key: Mapped[str] = mapped_column(String(1024), nullable=False)

    __table_args__ = (Index("ix_object_segments_space", "space_id"),)


class MultipartUpload(Base):
    """A multipart upload in progress; its parts are blobs, invisible until it completes."""

    __tablename__ = "multipart_uploads"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False)
    key: Mapped[str] = mapped_column(ObjectKey, nullable=False)
    content_type: Mapped[str] = mapped_column(String(255), nullable=False)
    user_metadata: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False, default=dict)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    headers: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)  # for the object
    checksum_algorithm: Mapped[str | None] = mapped_column(String(16), nullable=True)

    __table_args__ = (
        Index("ix_multipart_uploads_space_key", "space_id", "key"),
        Index("ix_multipart_uploads_created_at", "created_at"),
    )


class MultipartPart(Base):
    """One uploaded part of a multipart upload (re-uploading a number replaces it)."""

    __tablename__ = "multipart_parts"

    upload_id: Mapped[str] = mapped_column(
        ForeignKey("multipart_uploads.id", ondelete="CASCADE"), primary_key=True
    )
    part_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    blob_key: Mapped[str] = mapped_column(String(1024), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    etag: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    checksum: Mapped[str | None] = mapped_column(String(128), nullable=True)  # "<algorithm>:<base64>"


class ExportTemplate(Base):
    """A saved export configuration (Export API): ``{"format", "filters", "options"}``.

    ``template_type``: ``system`` (built in, read-only, one set per project), ``shared`` (the whole
    project sees it, its owner edits it) or ``user`` (only its owner). ``owner`` is the owner key
    of the creating token (:attr:`Principal.owner_key`); None for system templates.
    """

    __tablename__ = "export_templates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    template_type: Mapped[str] = mapped_column(String(8), nullable=False)
    system_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    format: Mapped[str] = mapped_column(String(16), nullable=False)
    configuration: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    usage_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        Index("ix_export_templates_project", "project_id", "id"),
        UniqueConstraint("project_id", "system_key", name="uq_export_templates_system"),
    )


class ExportJob(Base):
    """An export of one table (the *datasource*) into a file (Export API).

    Its lifecycle is the durable job ``job_id`` (a retry queues a new one); the file it produced
    is the blob ``blob_key`` until ``expires_at``, when the retention sweep removes the blob and
    sets ``file_expired_at``. ``owner`` is the owner key of the token that created it.
    """

    __tablename__ = "export_jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id", ondelete="SET NULL"), nullable=True)
    owner: Mapped[str] = mapped_column(String(255), nullable=False)
    datasource_uuid: Mapped[str] = mapped_column(String(36), nullable=False)
    datasource_name: Mapped[str] = mapped_column(String(255), nullable=False)
    table_ident: Mapped[str] = mapped_column(String(255), nullable=False)  # in.c-main.users
    format: Mapped[str] = mapped_column(String(16), nullable=False)
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    template_id: Mapped[int | None] = mapped_column(
        ForeignKey("export_templates.id", ondelete="SET NULL"), nullable=True
    )
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    row_count: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    file_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    file_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    blob_key: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    file_expired_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        Index("ix_export_jobs_project_owner", "project_id", "owner", "id"),
        Index("ix_export_jobs_project", "project_id", "id"),
        Index("ix_export_jobs_expires_at", "expires_at"),
    )


class S3AccessKey(Base):
    """A long-lived S3 access key of a token: it carries exactly the token's permissions.

    The secret access key is stored sealed (AES-256-GCM, ``core/secretbox.py``) under a key
    derived from the installation secret; ``secret_key_id`` names that key, so a sweep re-seals
    keys after the installation secret is rotated. A key dies with its token.
    """

    __tablename__ = "s3_access_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    access_key_id: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    token_id: Mapped[int] = mapped_column(ForeignKey("tokens.id", ondelete="CASCADE"), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    secret_key_id: Mapped[str] = mapped_column(String(16), nullable=False)
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (
        Index("ix_s3_access_keys_token", "token_id"),
        Index("ix_s3_access_keys_project", "project_id"),
    )


class CartoApiKey(Base):
    """A CARTO regular API key: a token of the project (``token_id``; its secret is stored hashed
    like every token's) with a name and CARTO grants.

    ``apis`` lists the CARTO APIs (``sql``, ``maps``); ``tables`` the table grants, each
    ``{"schema", "name"}`` as the client sent them, the table they resolved to
    (``"bucket"``, ``"table"``) and ``"permissions"`` (select, insert, update, delete);
    ``schemas`` the schema grants (``{"name", "bucket", "permissions": ["create"]}``);
    ``services`` the data services (stored and echoed only). The master and default public
    keys are not rows: they are the project's master tokens and the anonymous caller.
    """

    __tablename__ = "carto_api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    token_id: Mapped[int] = mapped_column(
        ForeignKey("tokens.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    apis: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    tables: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    schemas: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    services: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)

    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_carto_api_keys_project_name"),)


class CartoVisualization(Base):
    """A CARTO map (a *derived* visualization): a name, CARTO's descriptive attributes, and the
    datasets it shows (``tables``: the uuids of default-schema tables, in layer order).

    An import with ``create_vis`` creates one; ``dependent_visualizations_count`` of a dataset
    counts the maps whose ``tables`` name it.
    """

    __tablename__ = "carto_visualizations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    privacy: Mapped[str] = mapped_column(String(16), nullable=False, default="private")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    tables: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)

    __table_args__ = (Index("ix_carto_visualizations_project", "project_id", "id"),)


class CartoVisualizationExport(Base):
    """A ``.carto`` export of a visualization (or a dataset): its lifecycle is the durable job
    ``job_id``; the file is the blob ``blob_key`` until ``expires_at``."""

    __tablename__ = "carto_visualization_exports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    visualization_uuid: Mapped[str] = mapped_column(String(36), nullable=False)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    blob_key: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    file_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        Index("ix_carto_visualization_exports_project", "project_id", "id"),
        Index("ix_carto_visualization_exports_expires_at", "expires_at"),
    )


class CartoOrganization(Base):
    """A CARTO organization: a named group of projects (its users) with one admin project, whose
    master tokens manage the others through the users API."""

    __tablename__ = "carto_organizations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    admin_project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)


class CartoUser(Base):
    """A project as a CARTO user of an organization: its e-mail, the password (scrypt hash, never
    shown) and CARTO's profile fields (``attributes``). The admin project has a row too."""

    __tablename__ = "carto_users"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("carto_organizations.id", ondelete="CASCADE"), nullable=False
    )
    email: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)

    __table_args__ = (Index("ix_carto_users_organization", "organization_id"),)


class CartoSynchronization(Base):
    """A CARTO sync table: the file at ``url`` re-imported into one table every ``interval`` seconds.

    ``run_at`` is when the next run is due (None: never again, e.g. its key was revoked); the
    maintenance sweep claims a due row with a conditional UPDATE in the transaction that queues
    its job (``job_id``), so the schedule survives restarts and a run is never queued twice.
    ``table_id`` is the table the first run created (the sync dies with it); ``token_id`` the
    token it runs as. ``etag``/``last_modified`` (the source's headers) and ``checksum`` (SHA-256
    of its bytes) let a run skip a source that has not changed. ``options``: the import options.
    """

    __tablename__ = "carto_synchronizations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id", ondelete="SET NULL"), nullable=True)
    table_id: Mapped[int | None] = mapped_column(ForeignKey("tables.id", ondelete="CASCADE"), nullable=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    interval: Mapped[int] = mapped_column(Integer, nullable=False)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    run_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    ran_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    modified_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    etag: Mapped[str | None] = mapped_column(String(512), nullable=True)
    last_modified: Mapped[str | None] = mapped_column(String(128), nullable=True)
    checksum: Mapped[str | None] = mapped_column(String(64), nullable=True)
    retried_times: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the core's code
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        Index("ix_carto_synchronizations_project", "project_id", "id"),
        Index("ix_carto_synchronizations_run_at", "run_at"),
        Index("ix_carto_synchronizations_table", "table_id"),
    )


class MapTemplate(Base):
    """A CARTO named map: a template (``version``, ``name``, ``auth``, ``placeholders``,
    ``layergroup``, ``view``) kept as its owner sent it, named uniquely in its project."""

    __tablename__ = "map_templates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    template: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)

    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_map_templates_project_name"),)


class MapLayergroup(Base):
    """An instantiated map config: its id (an HMAC of who instantiated what), the checked config,
    who it acts as (``token_id``: the token that instantiated it; None with ``template``: the
    project's owner, for a named map; None without: the anonymous caller) and the uuids of the
    tables its layers read (their changes make new tiles)."""

    __tablename__ = "map_layergroups"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id", ondelete="CASCADE"), nullable=True)
    template: Mapped[str | None] = mapped_column(String(128), nullable=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    tables: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    used_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)

    __table_args__ = (Index("ix_map_layergroups_project", "project_id"),)
