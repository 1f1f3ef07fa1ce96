"""Running user SQL for a principal: check, authorise, execute on a sandbox, keep the catalog in step.

``run(services, principal, project, sql)`` is the one entry point of the SQL faces:

1. the project is looked up; a token of another project gets ``permission denied``;
2. ``dialect.parse`` checks and translates the script against the project's namespace;
3. every table a statement reads needs read access to its bucket, every table it writes
   write access (anonymous callers may read tables whose privacy is public or link, and
   nothing else);
4. scripts that write run in one transaction on the project's read-write sandbox under the
   lake's writer lock; scripts that only read run on the read-only sandbox (a statement the
   parser misjudged as a read still cannot write there) and stream their last result;
5. after a write commits, the catalog rows of the tables it touched are created, refreshed or
   removed, so SQL-made tables are tables of the Keboola face (and Export API datasources).

Time limit: the whole script, execution and streaming, is interrupted at ``sql_time_limit``.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from entrepot.core import errors as E
from entrepot.core.auth import Principal
from entrepot.core.catalog import Bucket, Project, StoredTable
from entrepot.core.clock import utcnow
from entrepot.core.engine.statements import Watchdog, first_line, quote_ident, quote_literal
from entrepot.core.sql import binder, dialect
from entrepot.core.sql.dialect import InformationView, Namespace, Statement, TableRef

if TYPE_CHECKING:
    from entrepot.core.services import Services

DEFAULT_STAGE = "in"
DEFAULT_BUCKET = "public"
DEFAULT_SCHEMA = f"{DEFAULT_STAGE}.c-{DEFAULT_BUCKET}"
PRIVACIES = ("private", "public", "link")
FETCH_ROWS = 2048
WEBMERCATOR = "the_geom_webmercator"
HIDDEN_TIMESTAMP = "_timestamp"  # Keboola tables' row-change time (entrepot.core.tables.store)

_MISSING_TABLE = re.compile(r'Table with name "?([^"\s!]+)"? does not exist')
_EXPRESSION_DEPTH = re.compile(r"Max expression depth limit of (\d+) exceeded")
_MISSING_COLUMN = re.compile(r'Referenced column "?([^"\s!]+)"? not found')


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A result column: its name and DuckDB type (``INTEGER``, ``VARCHAR``, ``GEOMETRY``, …)."""

    name: str
    type: str


@dataclass
class Result:
    """The outcome of a script: the last statement's columns and rows (streamed), counts, time.

    ``batches`` yields lists of row tuples; iterate it at most once. ``total_rows`` is the
    number of rows a write affected, or, for queries, known only once ``batches`` is exhausted
    (``rows_seen``).
    """

    columns: list[Column]
    batches: Iterator[list[tuple[Any, ...]]]
    affected: int | None = None
    started: float = field(default_factory=time.perf_counter)
    rows_seen: int = 0
    path: Path | None = None  # the result file of run(..., into=...)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def rows(self) -> Iterator[tuple[Any, ...]]:
        for batch in self.batches:
            yield from batch

    def fetch_all(self) -> list[tuple[Any, ...]]:
        return list(self.rows())


# -- namespace and permissions -------------------------------------------------------------


def find_project(services: Services, project: str | int) -> Project:
    """The project named (or numbered) ``project``; ``NotFound`` in CARTO's words otherwise."""
    from entrepot.core.projects import get_project

    try:
        row = get_project(services.catalog, project)
    except E.NotFound:
        row = None
    if row is None or row.disabled:
        raise E.NotFound(
            f"Sorry, we can't find CARTO user '{project}'. Please check that you have entered "
            "the correct domain.",
            code="sql.unknownUser",
        )
    return row


def check_member(principal: Principal, project: Project) -> None:
    """A token may only act on its own project (anonymous callers may read public tables anywhere)."""
    if not principal.anonymous and principal.project_id != project.id:
        raise E.PermissionDenied(
            f"permission denied: this key does not belong to user {project.name!r}", code="sql.otherProject"
        )


def ensure_default_bucket(services: Services, project: Project) -> None:
    """Create the default schema's bucket ``in.c-public`` the first time SQL runs in a project."""
    from entrepot.core.tables.buckets import create_bucket

    with services.catalog.session(readonly=True) as s:
        exists = s.scalar(
            select(func.count()).where(Bucket.project_id == project.id, Bucket.ident == DEFAULT_SCHEMA)
        )
    if exists:
        return
    system = Principal(project_id=project.id, project_name=project.name, token_id=0, is_master=True)
    with suppress(E.AlreadyExists):
        create_bucket(services, system, DEFAULT_BUCKET, stage=DEFAULT_STAGE, description="SQL API tables")


def namespace(services: Services, project: Project, principal: Principal | None = None) -> Namespace:
    """What names mean in ``project``; with a ``principal``, its ``information_schema`` too."""
    with services.catalog.session(readonly=True) as s:
        idents = s.scalars(select(Bucket.ident).where(Bucket.project_id == project.id)).all()
    return Namespace(
        default_schema=DEFAULT_SCHEMA,
        aliases={"public": DEFAULT_SCHEMA, project.name.lower(): DEFAULT_SCHEMA},
        schemas=frozenset(idents) | {DEFAULT_SCHEMA},
        project=project.name,
        information_schema=_information_schema(services, principal, project) if principal else None,
    )


# information_schema view -> (its catalog column, its schema column, its table column or None)
_VIEW_KEYS = {
    "tables": ("table_catalog", "table_schema", "table_name"),
    "columns": ("table_catalog", "table_schema", "table_name"),
    "schemata": ("catalog_name", "schema_name", None),
}


def _information_schema(
    services: Services, principal: Principal, project: Project
) -> Callable[[str], InformationView]:
    """The ``information_schema`` views as ``principal`` may see them (read on first use, per statement).

    Rows come from the lake's own instance (never the user's sandbox) and keep only the tables
    the principal may read: the buckets it may read, or, for anonymous callers, the tables that
    are public or shared by link. Schemata are the buckets with at least one such table (all
    readable buckets for a token).
    """
    cache: dict[str, InformationView] = {}
    public: set[tuple[str, str]] | None = None

    def readable(schema: str, table: str | None) -> bool:
        nonlocal public
        if not principal.anonymous:
            return principal.bucket_access(schema) is not None
        if public is None:
            with services.catalog.session(readonly=True) as s:
                public = {
                    (ident, name.lower())
                    for ident, name in s.execute(
                        select(Bucket.ident, StoredTable.name)
                        .join(Bucket, StoredTable.bucket_id == Bucket.id)
                        .where(Bucket.project_id == project.id, StoredTable.privacy.in_(("public", "link")))
                    ).all()
                }
        if table is None:
            return any(s == schema for s, _ in public)
        return (schema, table.lower()) in public

    def view(name: str) -> InformationView:
        if name not in cache:
            catalog_col, schema_col, table_col = _VIEW_KEYS[name]
            with services.engine.cursor(project.name, write=False) as cur:
                cur.execute(f"SELECT * FROM information_schema.{name} WHERE {catalog_col} = 'lake'")
                columns = [(str(d[0]), str(d[1])) for d in cur.description or []]
                rows = cur.fetchall()
            at = [c for c, _ in columns].index
            schema_at = at(schema_col)
            table_at = at(table_col) if table_col else None
            cache[name] = InformationView(
                columns=columns,
                rows=[
                    row
                    for row in rows
                    if not str(row[schema_at]).startswith("__ducklake")
                    and str(row[schema_at]) != "main"
                    and readable(str(row[schema_at]), str(row[table_at]) if table_at is not None else None)
                ],
            )
        return cache[name]

    return view


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


def _privacy(services: Services, project: Project, ref: TableRef) -> str | None:
    with services.catalog.session(readonly=True) as s:
        row = stored_table(s, project, ref)
        return row.privacy if row is not None else None


def authorize(
    services: Services, principal: Principal, project: Project, statements: Sequence[Statement]
) -> None:
    """Raise ``PermissionDenied``/``Unauthenticated`` unless ``principal`` may run every statement."""
    for st in statements:
        for ref in st.writes:
            if principal.anonymous:
                raise E.PermissionDenied(
                    f"permission denied for table {ref.name}: the default public key may only read public "
                    "tables; send an api_key with write permission",
                    code="sql.permissionDenied",
                )
            if principal.bucket_access(ref.schema) != "write":
                raise E.PermissionDenied(
                    f"permission denied for table {ref.name}: this key may not write bucket {ref.schema}",
                    code="sql.permissionDenied",
                )
        for ref in st.reads:
            if principal.anonymous:
                privacy = _privacy(services, project, ref)
                if privacy is None:
                    raise E.InvalidInput(f'relation "{ref.name}" does not exist', code="sql.missingRelation")
                if privacy not in ("public", "link"):
                    raise E.PermissionDenied(
                        f"permission denied for table {ref.name}: it is private; send an api_key with read "
                        "permission",
                        code="sql.permissionDenied",
                    )
            elif principal.bucket_access(ref.schema) is None:
                raise E.PermissionDenied(
                    f"permission denied for table {ref.name}: this key may not read bucket {ref.schema}",
                    code="sql.permissionDenied",
                )


# -- errors ----------------------------------------------------------------------------------


def translate(exc: duckdb.Error) -> E.EntrepotError:
    """A DuckDB error in PostgreSQL's words where clients depend on them; first line only (clipped)."""
    message = E.clip(first_line(exc), 1000)
    for prefix in (
        "Catalog Error: ",
        "Binder Error: ",
        "Parser Error: ",
        "Conversion Error: ",
        "Invalid Input Error: ",
        "Constraint Error: ",
        "Out of Range Error: ",
        "Not implemented Error: ",
        "Permission Error: ",
        "Transaction Error: ",
    ):
        if message.startswith(prefix):
            message = message[len(prefix) :]
            break
    m = _EXPRESSION_DEPTH.search(message)
    if m:
        return E.InvalidInput(
            f"the statement is too complex to plan: an expression is nested more than {m.group(1)} levels "
            "deep (setting sql_max_expression_depth), e.g. a long chain of + or ||; use sum() over rows, "
            "concat(a, b, …) or a CASE instead",
            code="sql.tooComplex",
        )
    m = _MISSING_TABLE.search(message)
    if m:
        name = m.group(1).rsplit(".", 1)[-1]
        return E.InvalidInput(f'relation "{name}" does not exist', code="sql.missingRelation")
    m = _MISSING_COLUMN.search(message)
    if m:
        return E.InvalidInput(f'column "{m.group(1)}" does not exist', code="sql.missingColumn")
    if isinstance(exc, duckdb.OutOfMemoryException) or "out of memory" in message.lower():
        return E.InvalidInput(
            f"the query needs more memory than the SQL sandbox may use ({message}); filter, aggregate or "
            "limit it, or run it as a batch job writing into a table",
            code="sql.outOfMemory",
        )
    if isinstance(exc, duckdb.InternalException | duckdb.FatalException):
        return E.Unavailable(f"the SQL engine failed: {message}", code="sql.engineFailure")
    if isinstance(exc, duckdb.TransactionException) and "conflict" in message.lower():
        return E.Conflict(
            f"{message} (a concurrent change of the same table won; retry)", code="sql.conflict"
        )
    return E.InvalidInput(message, code="sql.error")


class TimeLimitExceeded(E.TimeLimitExceeded):
    """The statement ran past the SQL time limit (CARTO answers 429 for this)."""

    status = 429


@contextmanager
def guard(
    cur: duckdb.DuckDBPyConnection, timeout: float | None, cancel: threading.Event | None
) -> Iterator[None]:
    """Interrupt ``cur`` at ``timeout`` or on ``cancel``; translate DuckDB errors while the block runs."""
    watchdog = Watchdog(cur, timeout, cancel) if timeout is not None or cancel is not None else None
    try:
        yield
    except duckdb.InterruptException as exc:
        reason = watchdog.reason if watchdog is not None else None
        if reason == "timeout":
            raise TimeLimitExceeded(
                f"You are over platform's limits: SQL query timeout error. The statement exceeded the time "
                f"limit of {timeout:g} s; make it cheaper (filter, aggregate, limit) or run it as a batch job",
                code="sql.timeout",
                details={"context": "limit", "detail": "datasource"},
            ) from exc
        raise E.JobCancelled("the statement was cancelled", code="sql.cancelled") from exc
    except duckdb.Error as exc:
        raise translate(exc) from exc
    finally:
        if watchdog is not None:
            watchdog.stop()


# -- running ---------------------------------------------------------------------------------


def _columns(cur: duckdb.DuckDBPyConnection) -> list[Column]:
    return [Column(str(d[0]), str(d[1])) for d in (cur.description or [])]


def _batches(cur: duckdb.DuckDBPyConnection, result: Result) -> Iterator[list[tuple[Any, ...]]]:
    while True:
        batch = cur.fetchmany(FETCH_ROWS)
        if not batch:
            return
        result.rows_seen += len(batch)
        yield batch


def prepare(
    services: Services, principal: Principal, project: str | int, sql: str
) -> tuple[Project, list[Statement]]:
    """Parse and authorise ``sql`` for ``principal`` in ``project``."""
    row = find_project(services, project)
    check_member(principal, row)
    ensure_default_bucket(services, row)
    limits = dialect.Limits(
        max_tokens=services.settings.sql_max_statement_tokens,
        max_query_blocks=services.settings.sql_max_query_blocks,
    )
    statements = dialect.parse(sql, namespace(services, row, principal), limits)
    authorize(services, principal, row, statements)
    return row, statements


FILE_OPTIONS = {"parquet": "FORMAT parquet", "xlsx": "FORMAT xlsx, HEADER true"}


@contextmanager
def run(
    services: Services,
    principal: Principal,
    project: str | int,
    sql: str,
    *,
    time_limit: float | None = None,
    cancel: threading.Event | None = None,
    max_rows: int | None = None,
    wrap: Callable[[str], str] | None = None,
    into: str | None = None,
    on_statement: Callable[[int], None] | None = None,
) -> Iterator[Result]:
    """Run ``sql``; yields the last statement's ``Result`` while its rows stream.

    ``wrap`` rewrites the last statement's DuckDB SQL (e.g. to add a GeoJSON column); ``into``
    (``parquet`` or ``xlsx``) has DuckDB write the last result to a temporary file, given as
    ``Result.path`` and deleted afterwards. Both need a script that only reads. ``max_rows``
    bounds the rows a writing script's result keeps in memory (reads stream).
    COPY statements are refused here: they have their own entry points (``core.sql.copy``).
    """
    row, statements = prepare(services, principal, project, sql)
    for st in statements:
        if st.kind in ("copy_from", "copy_to"):
            raise E.InvalidInput(
                "COPY runs through the copyfrom (COPY … FROM STDIN) and copyto (COPY … TO STDOUT) endpoints",
                code="sql.copyHere",
            )
    with execute(
        services,
        row,
        statements,
        time_limit=time_limit,
        cancel=cancel,
        max_rows=max_rows,
        wrap=wrap,
        into=into,
        on_statement=on_statement,
    ) as result:
        yield result


@contextmanager
def execute(
    services: Services,
    project: Project,
    statements: Sequence[Statement],
    *,
    time_limit: float | None = None,
    cancel: threading.Event | None = None,
    max_rows: int | None = None,
    wrap: Callable[[str], str] | None = None,
    into: str | None = None,
    on_statement: Callable[[int], None] | None = None,
) -> Iterator[Result]:
    """Run checked and authorised ``statements`` (see ``run``)."""
    started = time.perf_counter()
    timeout = services.settings.sql_time_limit if time_limit is None else time_limit
    writes = any(st.writes for st in statements)
    if writes and (wrap is not None or into is not None):
        raise E.InvalidInput(
            "this format needs a query that only reads (SELECT); run writes with format=json",
            code="sql.formatNeedsQuery",
        )
    box = services.sql.sandbox(project.name, read_only=not writes)
    with ExitStack() as stack:
        stack.enter_context(services.sql.slot(project.name, timeout))
        cur = stack.enter_context(box.cursor(write=writes))
        stack.enter_context(guard(cur, timeout, cancel))
        if writes:
            yield _run_writes(
                services, project, cur, statements, max_rows=max_rows, on_statement=on_statement
            )
            return
        for i, st in enumerate(statements[:-1]):
            if on_statement:
                on_statement(i)
            binder.check(cur, st.plan_sql)
            cur.execute(st.sql).fetchall()
        if on_statement:
            on_statement(len(statements) - 1)
        last = statements[-1].sql
        if wrap is not None:
            last = wrap(last)
        binder.check(cur, last if statements[-1].kind != "explain" else statements[-1].plan_sql)
        if into is not None:
            path = box.temp / f"result-{uuid.uuid4().hex}.{into}"
            stack.callback(path.unlink, missing_ok=True)
            cur.execute(f"COPY ({last}) TO {quote_literal(str(path))} ({FILE_OPTIONS[into]})")
            result = Result(columns=[], batches=iter(()), path=path, started=started)
        else:
            cur.execute(last)
            result = Result(columns=_columns(cur), batches=iter(()), started=started)
            result.batches = _batches(cur, result)
        yield result


def _run_writes(
    services: Services,
    project: Project,
    cur: duckdb.DuckDBPyConnection,
    statements: Sequence[Statement],
    *,
    max_rows: int | None,
    on_statement: Callable[[int], None] | None,
) -> Result:
    """Run a writing script in one transaction; returns its last result, materialised."""
    definitions = definitions_of(services, project, {ref for st in statements for ref in st.writes})
    columns: list[Column] = []
    rows: list[tuple[Any, ...]] = []
    affected: int | None = None
    cur.execute("BEGIN TRANSACTION")
    try:
        for i, st in enumerate(statements):
            if on_statement:
                on_statement(i)
            columns, rows, affected = _execute(cur, st, definitions, max_rows=max_rows)
        cur.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):
            cur.execute("ROLLBACK")
        raise
    sync_catalog(services, project, cur, definitions)
    result = Result(columns=columns, batches=iter([rows] if rows else []), affected=affected)
    result.rows_seen = len(rows)
    return result


def _execute(
    cur: duckdb.DuckDBPyConnection,
    st: Statement,
    definitions: dict[TableRef, dict[str, Any] | None],
    *,
    max_rows: int | None,
) -> tuple[list[Column], list[tuple[Any, ...]], int | None]:
    """One statement of a writing script: (columns, rows, rows affected)."""
    if st.kind == "cartodbfy":
        assert st.target is not None
        definitions[st.target] = cartodbfy(cur, st.target, definitions.get(st.target))
        return [Column("cdb_cartodbfytable", "VARCHAR")], [(st.target.name,)], None
    sql = st.sql
    if st.kind == "insert" and not st.columns and st.target is not None:
        sql = _name_user_columns(cur, st)
    binder.check(cur, sql if st.kind != "explain" else st.plan_sql)
    cur.execute(sql)
    columns = _columns(cur)
    rows = cur.fetchmany(max_rows + 1) if max_rows is not None else cur.fetchall()
    if max_rows is not None and len(rows) > max_rows:
        raise E.PayloadTooLarge(_too_many_rows(max_rows), code="sql.tooManyRows")
    affected = None
    counted = st.kind in ("insert", "update", "delete", "truncate", "create_table_as")
    if counted and columns and columns[0].name.lower() == "count" and len(rows) == 1:
        affected = int(rows[0][0])
        columns, rows = [], []
    elif st.kind in ("create_table", "drop_table", "alter_table"):
        columns, rows, affected = [], [], 0
    if st.kind == "create_table" and st.target is not None:
        definitions[st.target] = {
            "geometry": dict(st.geometry_columns),
            "serial": list(st.serial_columns),
            "cartodbfied": False,
        }
    elif st.kind == "drop_table" and st.target is not None:
        definitions[st.target] = None
    if st.target is not None and st.kind in ("insert", "update"):
        maintain(cur, st.target, definitions.get(st.target))
    return columns, rows, affected


def _name_user_columns(cur: duckdb.DuckDBPyConnection, st: Statement) -> str:
    """``INSERT INTO t VALUES …`` into a Keboola table: name its user columns, leaving ``_timestamp`` out."""
    import sqlglot
    from sqlglot import exp

    assert st.target is not None
    names = [name for name, _ in lake_columns(cur, st.target)]
    if HIDDEN_TIMESTAMP not in names:
        return st.sql
    tree = sqlglot.parse_one(st.sql, read="duckdb")
    if not isinstance(tree, exp.Insert) or not isinstance(tree.this, exp.Table):
        return st.sql
    user = [exp.to_identifier(n, quoted=True) for n in names if n != HIDDEN_TIMESTAMP]
    tree.set("this", exp.Schema(this=tree.this, expressions=user))
    return tree.sql(dialect="duckdb")


def _too_many_rows(limit: int) -> str:
    return (
        f"the result has more than {limit} rows, the most a synchronous json answer may hold (setting "
        "sql_max_rows); use format=csv or parquet, COPY … TO STDOUT (copyto) or a batch job that writes a table"
    )


# -- CARTO table model -------------------------------------------------------------------------


def _ref(ref: TableRef) -> str:
    return f"{quote_ident(ref.schema)}.{quote_ident(ref.name)}"


def lake_columns(cur: duckdb.DuckDBPyConnection, ref: TableRef) -> list[tuple[str, str]]:
    """(name, type) of a lake table's columns, in order; empty when the table does not exist."""
    return [
        (str(r[0]), str(r[1]))
        for r in cur.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'lake' "
            "AND schema_name = ? AND lower(table_name) = lower(?) ORDER BY column_index",
            [ref.schema, ref.name],
        ).fetchall()
    ]


def cartodbfy(
    cur: duckdb.DuckDBPyConnection, ref: TableRef, definition: dict[str, Any] | None
) -> dict[str, Any]:
    """``CDB_CartodbfyTable``: give the table CARTO's shape (idempotent); returns its new definition.

    ``cartodb_id`` (BIGINT, unique, numbered 1… in the current row order, existing values kept),
    ``the_geom`` (SRID 4326; kept if present) and ``the_geom_webmercator`` (3857, derived from
    ``the_geom``) come first, then the other columns. New rows get both filled by ``maintain``.
    """
    columns = lake_columns(cur, ref)
    if not columns:
        raise E.InvalidInput(f'relation "{ref.name}" does not exist', code="sql.missingRelation")
    names = {name.lower(): name for name, _ in columns}
    select_list = []
    if "cartodb_id" in names:
        select_list.append(
            f"CAST(coalesce({quote_ident(names['cartodb_id'])}, (SELECT coalesce(max(cartodb_id), 0) FROM "
            f"{_ref(ref)}) + row_number() OVER ()) AS BIGINT) AS cartodb_id"
        )
    else:
        select_list.append("CAST(row_number() OVER () AS BIGINT) AS cartodb_id")
    geom = quote_ident(names["the_geom"]) if "the_geom" in names else "CAST(NULL AS GEOMETRY)"
    select_list.append(f"{geom} AS the_geom")
    select_list.append(f"pg_webmercator({geom}) AS {WEBMERCATOR}")
    for name, _ in columns:
        if name.lower() not in ("cartodb_id", "the_geom", WEBMERCATOR):
            select_list.append(quote_ident(name))
    temp = TableRef(ref.schema, f"__cartodbfy_{uuid.uuid4().hex[:12]}")
    cur.execute(f"CREATE TABLE {_ref(temp)} AS SELECT {', '.join(select_list)} FROM {_ref(ref)}")
    cur.execute(f"DROP TABLE {_ref(ref)}")
    cur.execute(f"ALTER TABLE {_ref(temp)} RENAME TO {quote_ident(ref.name)}")
    new = dict(definition or {})
    geometry = dict(new.get("geometry") or {})
    geometry.update({"the_geom": 4326, WEBMERCATOR: 3857})
    serial = [c for c in new.get("serial") or [] if c != "cartodb_id"]
    return {**new, "geometry": geometry, "serial": ["cartodb_id", *serial], "cartodbfied": True}


def maintain(cur: duckdb.DuckDBPyConnection, ref: TableRef, definition: dict[str, Any] | None) -> None:
    """After rows of ``ref`` changed (inside the transaction): fill what PostgreSQL would have.

    New rows get the next serial numbers (``cartodb_id``…; a temporary sequence of this cursor,
    since DuckLake has none), ``the_geom_webmercator`` follows ``the_geom``, and rows of a
    Keboola table get their ``_timestamp`` (the tables face's ``changedSince``).
    """
    table = _ref(ref)
    if not definition:
        if any(name == HIDDEN_TIMESTAMP for name, _ in lake_columns(cur, ref)):
            cur.execute(f"UPDATE {table} SET {HIDDEN_TIMESTAMP} = now() WHERE {HIDDEN_TIMESTAMP} IS NULL")
        return
    for column in definition.get("serial") or []:
        col = quote_ident(column)
        cur.execute("CREATE OR REPLACE TEMP SEQUENCE entrepot_serial START 1")
        try:
            cur.execute(
                f"UPDATE {table} SET {col} = (SELECT coalesce(max({col}), 0) FROM {table}) "
                f"+ nextval('entrepot_serial') WHERE {col} IS NULL"
            )
        finally:
            cur.execute("DROP SEQUENCE IF EXISTS entrepot_serial")
    if definition.get("cartodbfied"):
        cur.execute(
            f"UPDATE {table} SET {WEBMERCATOR} = pg_webmercator(the_geom) "
            f"WHERE {WEBMERCATOR} IS DISTINCT FROM pg_webmercator(the_geom)"
        )


# -- catalog sync --------------------------------------------------------------------------------


def definitions_of(
    services: Services, project: Project, refs: set[TableRef]
) -> dict[TableRef, dict[str, Any] | None]:
    """The SQL definitions (geometry SRIDs, serial columns, cartodbfied) of the tables ``refs``."""
    with services.catalog.session(readonly=True) as s:
        rows = {ref: stored_table(s, project, ref) for ref in refs}
        return {ref: row.definition if row is not None else None for ref, row in rows.items()}


def sync_catalog(
    services: Services,
    project: Project,
    cur: duckdb.DuckDBPyConnection,
    definitions: dict[TableRef, dict[str, Any] | None],
) -> None:
    """Create, refresh or remove the catalog rows of the lake tables in ``definitions``."""
    from entrepot.core.tables.store import TIMESTAMP_COLUMN, lake_stats

    now = utcnow()
    for ref, definition in definitions.items():
        columns = lake_columns(cur, ref)
        real_name = _lake_table_name(cur, ref)
        with services.catalog.session() as s:
            bucket = s.scalar(
                select(Bucket).where(Bucket.project_id == project.id, Bucket.ident == ref.schema)
            )
            if bucket is None:
                continue
            row = stored_table(s, project, ref)
            if not columns or real_name is None:
                if row is not None:
                    s.execute(delete(StoredTable).where(StoredTable.id == row.id))
                continue
            rows_count, size = lake_stats(cur, ref.schema, real_name)
            names = [name for name, _ in columns if name != TIMESTAMP_COLUMN]
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


def _lake_table_name(cur: duckdb.DuckDBPyConnection, ref: TableRef) -> str | None:
    found = cur.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake' AND schema_name = ? "
        "AND lower(table_name) = lower(?)",
        [ref.schema, ref.name],
    ).fetchone()
    return str(found[0]) if found else None


def _table_ref(table: str) -> TableRef:
    """``"t"`` (the default schema) or ``"in.c-main.t"`` as a lake table reference."""
    schema, _, name = table.rpartition(".")
    return TableRef(schema or DEFAULT_SCHEMA, name)


def get_privacy(services: Services, principal: Principal, project: str | int, table: str) -> str:
    """The privacy of ``table`` (a table of the default schema, or ``"in.c-main.t"``)."""
    row = find_project(services, project)
    check_member(principal, row)
    ref = _table_ref(table)
    principal.require_bucket(ref.schema, "read")
    with services.catalog.session(readonly=True) as s:
        stored = stored_table(s, row, ref)
        if stored is None:
            raise E.NotFound(f'relation "{table}" does not exist', code="sql.missingRelation")
        return stored.privacy


def set_privacy(
    services: Services, principal: Principal, project: str | int, table: str, privacy: str
) -> None:
    """Make ``table`` private, public or link-shared (public and link: anonymous SQL may read it)."""
    if privacy not in PRIVACIES:
        raise E.InvalidInput(f"privacy must be one of {', '.join(PRIVACIES)}", code="sql.invalidPrivacy")
    row = find_project(services, project)
    check_member(principal, row)
    ref = _table_ref(table)
    principal.require_bucket(ref.schema, "write")
    with services.catalog.session() as s:
        stored = stored_table(s, row, ref)
        if stored is None:
            raise E.NotFound(f'relation "{table}" does not exist', code="sql.missingRelation")
        stored.privacy = privacy
