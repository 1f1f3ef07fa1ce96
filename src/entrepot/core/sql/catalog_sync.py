"""The catalog rows of the lake tables SQL touches: read before a write, brought in step after it.

Tables made by SQL are tables of the whole service: after a write commits, each table it
created, changed or dropped gets its catalog row created, refreshed (columns, row count,
size, SQL definition) or removed, so the Keboola face lists it and the Export API can export
it. Its SQL definition (``table_model.Definition``) lives in that row too.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import duckdb
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from entrepot.core.catalog import Bucket, Project, StoredTable
from entrepot.core.clock import utcnow
from entrepot.core.engine.tables import TableRef, columns, stats, stored_name
from entrepot.core.sql.table_model import Definition

if TYPE_CHECKING:
    from entrepot.core.services import Services


def stored_table(s: Session, project: Project, ref: TableRef) -> StoredTable | None:
    """The catalog row of the lake table ``ref`` (names compare like DuckDB's: case-insensitively)."""
    return s.scalar(
        select(StoredTable)
        .join(Bucket, StoredTable.bucket_id == Bucket.id)
        .where(
            Bucket.project_id == project.id,
            Bucket.ident == ref.schema,
            func.lower(StoredTable.name) == ref.name.lower(),
        )
    )


def definitions_of(
    services: Services, project: Project, refs: set[TableRef]
) -> dict[TableRef, Definition | None]:
    """The SQL definitions (geometry SRIDs, serial columns, cartodbfied) of the tables ``refs``."""
    with services.catalog.session(readonly=True) as s:
        rows = {ref: stored_table(s, project, ref) for ref in refs}
        return {ref: row.definition if row is not None else None for ref, row in rows.items()}


def sync_catalog(
    services: Services,
    project: Project,
    cur: duckdb.DuckDBPyConnection,
    definitions: dict[TableRef, Definition | None],
    *,
    renames: dict[TableRef, TableRef] | None = None,
) -> None:
    """Create, refresh or remove the catalog rows of the lake tables in ``definitions``.

    ``renames`` (old → new, ``ALTER TABLE … RENAME TO``) move a catalog row to its table's new
    name first, so the table keeps its id, privacy and metadata instead of getting a new row.
    """
    from entrepot.core.tables.store import TIMESTAMP_COLUMN

    now = utcnow()
    for old, new in (renames or {}).items():
        with services.catalog.session() as s:
            row = stored_table(s, project, old)
            if row is not None and stored_table(s, project, new) is None:
                if row.display_name == row.name:
                    row.display_name = new.name
                row.name = new.name
    for ref, definition in definitions.items():
        table = columns(cur, ref)
        real_name = stored_name(cur, ref)
        with services.catalog.session() as s:
            bucket = s.scalar(
                select(Bucket).where(Bucket.project_id == project.id, Bucket.ident == ref.schema)
            )
            if bucket is None:
                continue
            row = stored_table(s, project, ref)
            if not table or real_name is None:
                if row is not None:
                    s.execute(delete(StoredTable).where(StoredTable.id == row.id))
                continue
            rows_count, size = stats(cur, TableRef(ref.schema, real_name))
            names = [c.name for c in table if c.name != TIMESTAMP_COLUMN]
            if row is None:
                row = StoredTable(
                    uuid=str(uuid.uuid4()),
                    project_id=project.id,
                    bucket_id=bucket.id,
                    name=real_name,
                    display_name=real_name,
                    created_at=now,
                    primary_key=["cartodb_id"] if (definition or {}).get("cartodbfied") else [],
                )
                s.add(row)
            row.columns = names
            row.rows_count = rows_count
            row.data_size_bytes = size
            row.last_change_at = now
            if definition is not None:
                row.definition = definition
                if definition.get("cartodbfied") and not row.primary_key:
                    row.primary_key = ["cartodb_id"]
