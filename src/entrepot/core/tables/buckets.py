"""Buckets: create, list, detail, delete. A bucket is a schema of the project's lake."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from entrepot.core.auth import Principal
from entrepot.core.catalog import Bucket, StoredTable, TableMetadata
from entrepot.core.clock import utcnow
from entrepot.core.engine import execute, quote_ident
from entrepot.core.engine.tables import TableRef, table_names, transaction
from entrepot.core.errors import AlreadyExists, InvalidInput
from entrepot.core.tables.names import bucket_ident, validate_bucket_name, validate_stage
from entrepot.core.tables.store import find_bucket, get_bucket, lake_name
from entrepot.core.text import check_text

if TYPE_CHECKING:
    from entrepot.core.jobs import JobContext
    from entrepot.core.services import Services


def create_bucket(
    services: Services,
    principal: Principal,
    name: str | None,
    *,
    stage: str | None = None,
    description: str = "",
    display_name: str | None = None,
) -> Bucket:
    """Create bucket ``<stage>.c-<name>`` and its lake schema; ``AlreadyExists`` if it is taken."""
    principal.require_manage_buckets()
    assert principal.project_id is not None
    name = validate_bucket_name(name)
    stage = validate_stage(stage)
    check_text(display_name, "displayName", 255, code="buckets.validation")
    check_text(description, "description", code="buckets.validation")
    ident = bucket_ident(stage, name)
    taken = AlreadyExists(f"bucket {ident} already exists", code="buckets.alreadyExists")
    now = utcnow()
    try:
        with services.catalog.session() as s:
            # the lake's schemas are case-insensitive: in.c-Main and in.c-main would be one schema
            other = s.scalar(
                select(Bucket.ident).where(
                    Bucket.project_id == principal.project_id, func.lower(Bucket.ident) == ident.lower()
                )
            )
            if other == ident:
                raise taken
            if other is not None:
                raise AlreadyExists(
                    f"bucket {ident} would clash with bucket {other}: bucket names must differ in more than "
                    "letter case",
                    code="buckets.alreadyExists",
                )
            bucket = Bucket(
                project_id=principal.project_id,
                ident=ident,
                stage=stage,
                name=name,
                display_name=display_name or name,
                description=description or "",
                created_at=now,
                updated_at=now,
            )
            s.add(bucket)
    except IntegrityError as exc:  # a concurrent creator won
        raise taken from exc
    try:
        with services.engine.lake(lake_name(services, principal.project_id)).cursor() as cur:
            execute(cur, f"CREATE SCHEMA IF NOT EXISTS {quote_ident(ident)}")
    except BaseException:
        with services.catalog.session() as s:
            s.execute(delete(Bucket).where(Bucket.id == bucket.id))
        raise
    return bucket


def list_buckets(services: Services, principal: Principal) -> list[Bucket]:
    """The project's buckets the caller may read, by id."""
    principal.require_authenticated()
    with services.catalog.session(readonly=True) as s:
        rows = list(
            s.scalars(select(Bucket).where(Bucket.project_id == principal.project_id).order_by(Bucket.ident))
        )
    return [b for b in rows if principal.bucket_access(b.ident) is not None]


def bucket_tables(services: Services, bucket: Bucket) -> list[StoredTable]:
    """The tables of ``bucket``, by name."""
    with services.catalog.session(readonly=True) as s:
        return list(
            s.scalars(
                select(StoredTable).where(StoredTable.bucket_id == bucket.id).order_by(StoredTable.name)
            )
        )


def check_delete(services: Services, principal: Principal, bucket_id: str, *, force: bool) -> Bucket:
    """What a delete checks before it runs (synchronously, even for an async delete)."""
    bucket = get_bucket(services, principal, bucket_id)
    principal.require_manage_buckets()
    if not force and bucket_tables(services, bucket):
        raise InvalidInput(
            f"bucket {bucket.ident} is not empty; delete its tables first or pass force=true",
            code="buckets.notEmpty",
        )
    return bucket


def delete_bucket(services: Services, principal: Principal, bucket_id: str, *, force: bool = False) -> None:
    """Delete a bucket (with its tables when ``force``) now."""
    check_delete(services, principal, bucket_id, force=force)
    assert principal.project_id is not None
    drop_bucket(services, principal.project_id, bucket_id, force=force)


def drop_bucket(
    services: Services,
    project_id: int,
    bucket_id: str,
    *,
    force: bool,
    ctx: JobContext[Services] | None = None,
) -> None:
    """Drop the bucket's lake schema (and tables) in one transaction, then its catalog rows."""
    bucket = find_bucket(services, project_id, bucket_id)
    tables = bucket_tables(services, bucket)
    if tables and not force:
        raise InvalidInput(
            f"bucket {bucket.ident} is not empty; delete its tables first or pass force=true",
            code="buckets.notEmpty",
        )
    cancel = ctx.cancelled if ctx is not None else None
    with services.engine.lake(lake_name(services, project_id)).cursor() as cur, transaction(cur):
        names = table_names(cur, bucket.ident)
        if names and not force:  # a table created since the check above (we now hold the writer lock)
            raise InvalidInput(
                f"bucket {bucket.ident} is not empty; delete its tables first or pass force=true",
                code="buckets.notEmpty",
            )
        for name in names:
            execute(cur, f"DROP TABLE IF EXISTS {TableRef(bucket.ident, name).sql}", cancel=cancel)
        execute(cur, f"DROP SCHEMA IF EXISTS {quote_ident(bucket.ident)}", cancel=cancel)
    with services.catalog.session() as s:
        ids = select(StoredTable.id).where(StoredTable.bucket_id == bucket.id)
        s.execute(delete(TableMetadata).where(TableMetadata.table_id.in_(ids)))
        s.execute(delete(StoredTable).where(StoredTable.bucket_id == bucket.id))
        s.execute(delete(Bucket).where(Bucket.id == bucket.id))
