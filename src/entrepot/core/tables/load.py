"""Creating tables from CSV and loading CSV into tables (the ``tables.create``/``tables.import`` jobs).

The input (an uploaded File, inline CSV stored as a File when the job was queued, or a URL
downloaded here) is staged strictly into a temp table (``stage_csv``), checked against the
table, then applied in ONE DuckDB transaction: a full load replaces the rows, an incremental
load upserts by primary key (last duplicate wins) or appends when there is none. Every
written row gets ``_timestamp = now``. Any error or cancellation rolls back, so the table is
exactly as before; the catalog (columns, counts, dates) is updated after the commit.
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from entrepot.core import errors as E
from entrepot.core import failpoints, inflate
from entrepot.core.auth import Principal
from entrepot.core.catalog import Bucket, File, StoredTable
from entrepot.core.clock import utcnow
from entrepot.core.engine import CsvDialect, StagedCsv, execute, quote_ident, quote_literal, stage_csv
from entrepot.core.engine.tables import TableRef, exists, stats, transaction
from entrepot.core.ids import parse_id
from entrepot.core.tables.names import MAX_COLUMNS, validate_column_names, validate_table_name
from entrepot.core.tables.store import (
    TIMESTAMP_COLUMN,
    find_bucket,
    find_table,
    lake_name,
    table_taken,
    user_columns,
)

if TYPE_CHECKING:
    from entrepot.core.jobs import JobContext
    from entrepot.core.services import Services

INLINE_TAG = "table-import-inline"


# -- options ----------------------------------------------------------------------------------


def csv_dialect(
    delimiter: str | None = None,
    enclosure: str | None = None,
    escaped_by: str | None = None,
    *,
    header: bool = True,
) -> CsvDialect:
    """Keboola's ``delimiter``/``enclosure``/``escapedBy`` as a dialect (``\\t`` means tab).

    ``enclosure`` None means the default ``"``; an empty string means no enclosure.
    """
    delim = "," if delimiter in (None, "") else delimiter
    if delim in ("\\t", "tab"):
        delim = "\t"
    encl = '"' if enclosure is None else enclosure
    esc = escaped_by or ""
    if encl and esc and esc != encl:
        raise E.InvalidInput(
            "give at most one of enclosure and escapedBy (the other must be empty)",
            code="tables.csvDialect",
        )
    if esc and not encl:
        raise E.InvalidInput(
            "escapedBy without an enclosure is not supported; use enclosure (values quoted, quotes doubled)",
            code="tables.csvDialect",
        )
    return CsvDialect(delimiter=delim, enclosure=encl, escape=None, header=header)


@dataclass(frozen=True)
class LoadOptions:
    """How a create or import reads its CSV, as the caller gave it (:meth:`dialect` checks it)."""

    delimiter: str | None = None  # "," when None or empty; "\\t" and "tab" mean a tab
    enclosure: str | None = None  # '"' when None; "" for none
    escaped_by: str | None = None
    without_headers: bool = False  # the file has no header row: the table's columns, in order
    columns: tuple[str, ...] | None = None  # the header to use (the file then has none)
    incremental: bool = False  # imports only: merge by primary key (or append) instead of replacing

    def dialect(self) -> CsvDialect:
        return csv_dialect(self.delimiter, self.enclosure, self.escaped_by)


def check_options(options: LoadOptions) -> LoadOptions:
    """``options`` checked (dialect, column names) and normalised as the job stores them."""
    dialect = options.dialect()
    columns = validate_column_names(options.columns, what="columns[]") if options.columns else None
    return replace(
        options,
        delimiter=dialect.delimiter,
        enclosure=dialect.enclosure,
        escaped_by="",
        columns=tuple(columns) if columns is not None else None,
    )


# -- sources ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadSource:
    """Where a create or import reads its rows, as the request gave them.

    Exactly one of ``file_id`` (an uploaded File, as given), ``url`` and ``inline`` (the CSV
    itself, from ``dataString`` or, with ``inline_is_body``, the request body) must be there:
    :func:`check_source` says which is missing or too many. ``unsupported`` names the source
    parameters the request gave that entrepot does not support.
    """

    file_id: str | None = None
    url: str | None = None
    inline: bytes | None = None
    inline_is_body: bool = False
    unsupported: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredSource:
    """A checked source any worker can read: a File (inline CSV is stored as one) or a URL."""

    file_id: int | None = None
    url: str | None = None
    inline: bool = False  # the File holds the request's inline CSV


def check_source(source: LoadSource) -> None:
    """A supported source and exactly one of them; ``NotSupported``/``InvalidInput`` otherwise."""
    if source.unsupported:
        raise E.NotSupported(
            f"parameter {source.unsupported[0]} is not supported: entrepot loads tables from dataFileId, "
            "dataString (or a CSV request body) and dataUrl",
            code="tables.sourceNotSupported",
        )
    given = [
        name
        for name, value in (
            ("dataFileId", source.file_id),
            ("dataString", None if source.inline_is_body else source.inline),
            ("dataUrl", source.url),
            ("request body", source.inline if source.inline_is_body else None),
        )
        if value is not None
    ]
    if not given:
        raise E.InvalidInput(
            "give the data: one of dataFileId, dataString, dataUrl, or a CSV request body",
            code="tables.noSource",
        )
    if len(given) > 1:
        raise E.InvalidInput(
            f"give exactly one data source, not {' and '.join(given)}", code="tables.tooManySources"
        )


def store_source(
    services: Services, principal: Principal, source: LoadSource, *, run_id: str | None = None
) -> StoredSource:
    """The checked source as a job reads it: the File must exist, the URL pass the guard, inline
    CSV is stored as a File (so any worker process can read it)."""
    from entrepot.core import files

    if source.file_id is not None:
        file_id = parse_id(source.file_id)
        if file_id is None:
            raise E.NotFound(f"file {source.file_id} not found", code="files.notFound")
        files.get(services, principal, file_id)
        return StoredSource(file_id=file_id)
    if source.url is not None:
        from entrepot.core import urlguard

        urlguard.check_url(source.url, allowed=services.settings.url_import_allowed_hosts)
        return StoredSource(url=source.url)
    file = store_inline(
        services, principal.project_id or 0, principal.token_id, source.inline or b"", run_id=run_id
    )
    return StoredSource(file_id=file.id, inline=True)


def store_inline(
    services: Services, project_id: int, token_id: int | None, data: bytes, *, run_id: str | None = None
) -> File:
    """Store inline CSV (``dataString`` or a raw body) as a File so any worker can read it."""
    from entrepot.core import files

    tmp = _tmp_dir(services)
    path = tmp / f"inline-{uuid.uuid4().hex}.csv"
    path.write_bytes(data)
    try:
        return files.create_from_path(
            services,
            project_id,
            token_id,
            path,
            name="table-import-inline.csv",
            tags=[INLINE_TAG],
            content_type="text/csv",
            run_id=run_id,
        )
    finally:
        path.unlink(missing_ok=True)


def _tmp_dir(services: Services) -> Path:
    path = services.settings.data_dir / "tmp" / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def source_path(ctx: JobContext[Services], source: StoredSource) -> Iterator[Path]:
    """The job's input as a local, uncompressed file (removed afterwards)."""
    from entrepot.core import files

    services = ctx.services
    with tempfile.TemporaryDirectory(dir=_tmp_dir(services), prefix=f"job-{ctx.job.id}-") as tmp:
        work = Path(tmp)
        if source.file_id is not None:
            with files.open_local(services, ctx.project_id, source.file_id) as path:
                yield _plain(path, work, services.settings.import_max_inflated_bytes)
        elif source.url:
            from entrepot.core import urlguard

            settings = services.settings
            result = urlguard.download(
                source.url,
                work / "download",
                allowed=settings.url_import_allowed_hosts,
                max_bytes=settings.url_import_max_bytes,
                timeout=settings.url_import_timeout,
                cancelled=ctx.cancelled,
            )
            # a gzip Content-Encoding is stored undecoded: sniffed (and inflated) by _plain
            yield _plain(result.path, work, settings.import_max_inflated_bytes)
        else:
            raise E.InvalidInput(
                "the job names no data source (dataFileId or dataUrl)", code="tables.noSource"
            )


def _plain(path: Path, work: Path, max_bytes: int) -> Path:
    """``path`` itself, or its gunzipped copy in ``work`` when it starts with the gzip magic bytes.

    Inflated step by step (``core.inflate``): refused once it passes ``max_bytes``.
    """
    if not inflate.starts_with_gzip_magic(path):
        return path
    out = work / "input.csv"

    def too_large(limit: int) -> E.PayloadTooLarge:
        return E.PayloadTooLarge(
            f"the gzip-compressed input inflates to more than {limit} bytes (setting "
            "import_max_inflated_bytes); split it into several files or import it in parts",
            code="csv.inflatedTooLarge",
        )

    inflate.gunzip_file(
        path,
        out,
        max_bytes=max_bytes,
        what="the gzip-compressed input",
        fix="upload the complete .gz file, or the CSV uncompressed",
        code="csv.invalidGzip",
        too_large=too_large,
    )
    return out


# -- staging ----------------------------------------------------------------------------------


def _stage(
    cur: duckdb.DuckDBPyConnection,
    ctx: JobContext[Services],
    path: Path,
    options: LoadOptions,
    *,
    table_columns: Sequence[str] | None,
) -> StagedCsv:
    dialect = options.dialect()
    names: list[str] | None = None
    if options.columns:
        names = validate_column_names(options.columns, what="columns[]")
        dialect = CsvDialect(dialect.delimiter, dialect.enclosure, dialect.escape, header=False)
    elif options.without_headers:
        dialect = CsvDialect(dialect.delimiter, dialect.enclosure, dialect.escape, header=False)
        names = list(table_columns) if table_columns is not None else None
    try:
        staged = stage_csv(
            cur,
            path,
            dialect,
            table_name=f"stage_{ctx.job.id}_{uuid.uuid4().hex[:8]}",
            columns=names,
            max_columns=MAX_COLUMNS,
        )
    except E.EntrepotError:
        if ctx.cancelled.is_set():
            raise E.JobCancelled("the job was cancelled") from None
        raise
    ctx.check_cancelled()
    return staged


def _source_select(
    cur: duckdb.DuckDBPyConnection, staged: StagedCsv, mapping: Sequence[tuple[str, str]], pk: Sequence[str]
) -> str:
    """SELECT of the staged rows as table columns; with a primary key the last duplicate wins.

    Storage order carries no meaning (reads order by key, then rowid), so no sort is paid
    for it; the window that keeps the last duplicate runs only when the file has duplicates.
    """
    cols = ", ".join(f"{quote_ident(src)} AS {quote_ident(dst)}" for src, dst in mapping)
    if not pk:
        return f"SELECT {cols} FROM {staged.ref}"
    src_of = {dst.lower(): src for src, dst in mapping}
    part = ", ".join(quote_ident(src_of[k.lower()]) for k in pk)
    duplicated = cur.execute(
        f"SELECT 1 FROM {staged.ref} GROUP BY {part} HAVING count(*) > 1 LIMIT 1"
    ).fetchone()
    if duplicated is None:
        return f"SELECT {cols} FROM {staged.ref}"
    outer = ", ".join(quote_ident(dst) for _, dst in mapping)
    numbered = f"(SELECT *, rowid AS {_RN} FROM {staged.ref})"
    # (a window over rowid directly trips a DuckDB 1.5 internal error; number the rows first)
    inner = (
        f"SELECT {cols}, {_RN} FROM {numbered} "
        f"QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY {_RN} DESC) = 1"
    )
    return f"SELECT {outer} FROM ({inner})"


_RN = '"__entrepot_rownum"'


def _ts_literal(now: datetime) -> str:
    return f"CAST({quote_literal(now.isoformat())} AS TIMESTAMPTZ)"


def match_columns(pk: Sequence[str], columns: Sequence[str], *, what: str) -> list[str]:
    """The table's spelling of the primary key columns ``pk``; ``InvalidInput`` for unknown or repeated ones."""
    by_lower = {c.lower(): c for c in columns}
    out: list[str] = []
    for name in pk:
        if name.lower() not in by_lower:
            raise E.InvalidInput(
                f"primary key column {name!r} is not a column of {what} (columns: {', '.join(columns)})",
                code="tables.invalidPrimaryKey",
            )
        out.append(by_lower[name.lower()])
    if len({c.lower() for c in out}) != len(out):
        raise E.InvalidInput("the primary key names a column twice", code="tables.invalidPrimaryKey")
    return out


# -- create -----------------------------------------------------------------------------------


def create_table(
    ctx: JobContext[Services],
    *,
    bucket_id: str,
    name: str,
    primary_key: Sequence[str],
    source: StoredSource,
    options: LoadOptions,
) -> dict[str, Any]:
    """Job ``tables.create``: a new table ``name`` of ``bucket_id`` from the CSV of ``source``."""
    services = ctx.services
    bucket = find_bucket(services, ctx.project_id, bucket_id)
    name = validate_table_name(name)
    table_id = f"{bucket.ident}.{name}"
    pk_given = [str(c) for c in primary_key]
    with source_path(ctx, source) as path:
        ctx.progress(10)
        lake = services.engine.lake(lake_name(services, ctx.project_id))
        with lake.cursor() as cur:
            staged = _stage(cur, ctx, path, options, table_columns=None)
            columns = validate_column_names(staged.columns)
            pk = match_columns(pk_given, columns, what="the CSV header")
            ctx.progress(50)
            lake_table = TableRef(bucket.ident, name)
            ref = lake_table.sql
            now = utcnow()
            with services.catalog.session(readonly=True) as s:
                taken = s.scalar(
                    select(StoredTable.name).where(
                        StoredTable.bucket_id == bucket.id, func.lower(StoredTable.name) == name.lower()
                    )
                )
            if taken:
                raise table_taken(bucket.ident, name, taken)
            cancel = ctx.cancelled
            with transaction(cur):
                execute(cur, f"CREATE SCHEMA IF NOT EXISTS {quote_ident(bucket.ident)}")
                if exists(cur, lake_table):  # left over by a crash before the catalog insert
                    execute(cur, f"DROP TABLE {ref}")
                spec = ", ".join(f"{quote_ident(c)} VARCHAR" for c in columns)
                execute(cur, f"CREATE TABLE {ref} ({spec}, {quote_ident(TIMESTAMP_COLUMN)} TIMESTAMPTZ)")
                mapping = list(zip(staged.columns, columns, strict=True))
                target = ", ".join(quote_ident(c) for c in [*columns, TIMESTAMP_COLUMN])
                rows_sql = _source_select(cur, staged, mapping, pk)
                execute(
                    cur,
                    f"INSERT INTO {ref} ({target}) SELECT *, {_ts_literal(now)} FROM ({rows_sql})",
                    cancel=cancel,
                )
            ctx.progress(90)
            rows, size = stats(cur, lake_table)
            cur.execute(f"DROP TABLE IF EXISTS {staged.ref}")
            try:
                with services.catalog.session() as s:
                    table = StoredTable(
                        uuid=str(uuid.uuid4()),
                        project_id=ctx.project_id,
                        bucket_id=bucket.id,
                        name=name,
                        display_name=name,
                        columns=columns,
                        primary_key=pk,
                        rows_count=rows,
                        data_size_bytes=size,
                        created_at=now,
                        last_import_at=now,
                        last_change_at=now,
                    )
                    s.add(table)
            except IntegrityError as exc:
                with contextlib.suppress(E.EntrepotError):
                    execute(cur, f"DROP TABLE IF EXISTS {ref}")
                raise E.AlreadyExists(
                    f"table {table_id} already exists", code="tables.alreadyExists"
                ) from exc
    ctx.progress(100)
    return {"id": table_id, "name": name}


# -- import -----------------------------------------------------------------------------------


def import_table(
    ctx: JobContext[Services], *, table_id: str, source: StoredSource, options: LoadOptions
) -> dict[str, Any]:
    """Job ``tables.import``: load the CSV of ``source`` into ``table_id`` (``options.incremental``: merge)."""
    services = ctx.services
    incremental = options.incremental
    with source_path(ctx, source) as path:
        ctx.progress(10)
        find_table(services, ctx.project_id, table_id)  # fail before taking the writer lock
        lake = services.engine.lake(lake_name(services, ctx.project_id))
        with lake.cursor() as cur:
            table, bucket = find_table(services, ctx.project_id, table_id)  # fresh, under the writer lock
            current = user_columns(cur, TableRef(bucket.ident, table.name)) or list(table.columns)
            staged = _stage(cur, ctx, path, options, table_columns=current)
            ctx.progress(50)
            result = _apply(cur, ctx, table, bucket, staged, current, incremental=incremental)
            cur.execute(f"DROP TABLE IF EXISTS {staged.ref}")
    ctx.progress(100)
    return result


def _apply(
    cur: duckdb.DuckDBPyConnection,
    ctx: JobContext[Services],
    table: StoredTable,
    bucket: Bucket,
    staged: StagedCsv,
    current: list[str],
    *,
    incremental: bool,
) -> dict[str, Any]:
    by_lower = {c.lower(): c for c in current}
    mapping: list[tuple[str, str]] = []
    new_columns: list[str] = []
    for src in staged.columns:
        dst = by_lower.get(src.lower())
        if dst is None:
            new_columns.append(src)
            dst = src
        mapping.append((src, dst))
    if new_columns:
        validate_column_names(new_columns, what="the CSV header")
        if len(current) + len(new_columns) > MAX_COLUMNS:
            raise E.InvalidInput(
                f"the file adds {len(new_columns)} column(s) to table {bucket.ident}.{table.name}, which has "
                f"{len(current)}; a table has at most {MAX_COLUMNS} columns",
                code="tables.tooManyColumns",
            )
    seen = {dst.lower() for _, dst in mapping}
    missing = [c for c in current if c.lower() not in seen]
    if missing:
        raise E.InvalidInput(
            f"the file lacks column(s) {', '.join(repr(c) for c in missing)} of table "
            f"{bucket.ident}.{table.name}; every table column must be in the file (its header has: "
            f"{', '.join(staged.columns)})",
            code="tables.missingColumns",
        )
    pk = match_columns(table.primary_key, current, what=f"table {table.name}")
    lake_table = TableRef(bucket.ident, table.name)
    ref = lake_table.sql
    now = utcnow()
    ts = _ts_literal(now)
    source = _source_select(cur, staged, mapping, pk)
    cols = [dst for _, dst in mapping]
    target = ", ".join(quote_ident(c) for c in [*cols, TIMESTAMP_COLUMN])
    cancel = ctx.cancelled
    with transaction(cur):
        for col in new_columns:
            execute(cur, f"ALTER TABLE {ref} ADD COLUMN {quote_ident(col)} VARCHAR DEFAULT ''")
        if not incremental:
            execute(cur, f"DELETE FROM {ref}", cancel=cancel)
            execute(cur, f"INSERT INTO {ref} ({target}) SELECT *, {ts} FROM ({source})", cancel=cancel)
        elif pk:
            on = " AND ".join(f"t.{quote_ident(k)} = s.{quote_ident(k)}" for k in pk)
            sets = ", ".join(f"{quote_ident(c)} = s.{quote_ident(c)}" for c in cols)
            values = ", ".join(f"s.{quote_ident(c)}" for c in cols)
            execute(
                cur,
                f"MERGE INTO {ref} AS t USING ({source}) AS s ON {on} "
                f"WHEN MATCHED THEN UPDATE SET {sets}, {quote_ident(TIMESTAMP_COLUMN)} = {ts} "
                f"WHEN NOT MATCHED THEN INSERT ({target}) VALUES ({values}, {ts})",
                cancel=cancel,
            )
        else:
            execute(cur, f"INSERT INTO {ref} ({target}) SELECT *, {ts} FROM ({source})", cancel=cancel)
        ctx.check_cancelled()
        failpoints.reach(ctx.services.settings, "tables.import.before_commit")
    ctx.progress(90)
    columns = user_columns(cur, lake_table)
    rows, size = stats(cur, lake_table)
    with ctx.services.catalog.session() as s:
        row = s.get(StoredTable, table.id)
        if row is not None:
            row.columns = columns
            row.rows_count = rows
            row.data_size_bytes = size
            row.last_import_at = now
            row.last_change_at = now
    return {
        "importedColumns": cols,
        "warnings": [],
        "transaction": None,
        "totalRowsCount": rows,
        "totalDataSizeBytes": size,
    }
