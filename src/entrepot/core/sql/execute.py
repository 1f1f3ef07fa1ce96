"""Running checked, authorised statements on a project's sandbox.

Scripts that write run in one transaction on the project's read-write sandbox (under the lake's
writer lock); after they commit, the catalog rows of the tables they touched are brought in
step (``catalog_sync``), and CARTO's columns are filled before the commit (``table_model``).
Scripts that only read run on the read-only sandbox (a statement the parser misjudged as a
read still cannot write there) and stream their last result from the open cursor.

Every statement is planned and checked by ``binder.check`` right before it runs, on the same
cursor. The whole script, execution and streaming, holds one of the project's query slots and
is interrupted at its time limit (``sql_time_limit`` unless given).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from operator import itemgetter
from typing import TYPE_CHECKING

import duckdb

from entrepot.core import errors as E
from entrepot.core.auth import Principal
from entrepot.core.catalog import Project
from entrepot.core.engine.statements import Watchdog, first_line, quote_literal
from entrepot.core.engine.tables import TableRef, transaction
from entrepot.core.sql import binder
from entrepot.core.sql.authorize import prepare
from entrepot.core.sql.catalog_sync import definitions_of, sync_catalog
from entrepot.core.sql.dialect import Statement
from entrepot.core.sql.ownership import adopt, new_tables
from entrepot.core.sql.results import Column, Page, ResultFile, Row, Rows
from entrepot.core.sql.table_model import (
    HIDDEN_TIMESTAMP,
    Definition,
    cartodbfy,
    created,
    maintain,
    name_user_columns,
)

if TYPE_CHECKING:
    from entrepot.core.services import Services
    from entrepot.core.sql.sandbox import Sandbox

FETCH_ROWS = 2048
GEOJSON_COLUMN = "__entrepot_geojson"
FILE_OPTIONS = {"parquet": "FORMAT parquet", "xlsx": "FORMAT xlsx, HEADER true"}

_MISSING_TABLE = re.compile(r'Table with name "?([^"\s!]+)"? does not exist')
_EXPRESSION_DEPTH = re.compile(r"Max expression depth limit of (\d+) exceeded")
_MISSING_COLUMN = re.compile(r'Referenced column "?([^"\s!]+)"? not found')


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
    """The statement ran past the SQL time limit (the CARTO face answers 429 for this)."""


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


# -- running -----------------------------------------------------------------------------------


def too_many_rows(limit: int) -> E.PayloadTooLarge:
    return E.PayloadTooLarge(
        f"the result has more than {limit} rows, the most a synchronous json answer may hold (setting "
        "sql_max_rows); use format=csv or parquet, COPY … TO STDOUT (copyto) or a batch job that writes a table",
        code="sql.tooManyRows",
    )


def refuse_copy(statements: Sequence[Statement]) -> None:
    """COPY has its own entry points (``core.sql.copy``): refuse it in a script."""
    for st in statements:
        if st.kind in ("copy_from", "copy_to"):
            raise E.InvalidInput(
                "COPY runs through the copyfrom (COPY … FROM STDIN) and copyto (COPY … TO STDOUT) endpoints",
                code="sql.copyHere",
            )


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
    on_statement: Callable[[int], None] | None = None,
) -> Iterator[Rows]:
    """Check, authorise and run the script ``sql``; yields the last statement's ``Rows`` while they stream."""
    row, statements = prepare(services, principal, project, sql)
    refuse_copy(statements)
    with execute(
        services,
        row,
        statements,
        time_limit=time_limit,
        cancel=cancel,
        max_rows=max_rows,
        on_statement=on_statement,
        owner=principal,
    ) as result:
        yield result


@contextmanager
def _session(
    services: Services,
    project: Project,
    statements: Sequence[Statement],
    *,
    time_limit: float | None,
    cancel: threading.Event | None,
    reshaped: bool,
) -> Iterator[tuple[Sandbox, duckdb.DuckDBPyConnection, bool]]:
    """(sandbox, cursor, whether the script writes): a query slot, a cursor, the time limit running."""
    timeout = services.settings.sql_time_limit if time_limit is None else time_limit
    writes = any(st.writes for st in statements)
    if writes and reshaped:
        raise E.InvalidInput(
            "this format needs a query that only reads (SELECT); run writes with format=json",
            code="sql.formatNeedsQuery",
        )
    box = services.sql.sandbox(project.name, read_only=not writes)
    with ExitStack() as stack:
        stack.enter_context(services.sql.slot(project.name, timeout))
        cur = stack.enter_context(box.cursor(write=writes))
        stack.enter_context(guard(cur, timeout, cancel))
        yield box, cur, writes


def _last_statement(
    cur: duckdb.DuckDBPyConnection,
    statements: Sequence[Statement],
    on_statement: Callable[[int], None] | None,
    *,
    page: Page | None = None,
    geojson: bool = False,
    check: bool = True,
) -> str:
    """Run all statements of a reading script but the last; return the last one's SQL, checked and reshaped.

    ``page`` keeps one page of its rows; ``geojson`` adds a column with ``the_geom`` as GeoJSON text.
    ``check=False`` leaves the last one's check to the caller (who checks the query it builds
    around it: its plan holds the last one's).
    """
    for i, st in enumerate(statements[:-1]):
        if on_statement:
            on_statement(i)
        binder.check(cur, st.plan_sql)
        cur.execute(st.sql).fetchall()
    if on_statement:
        on_statement(len(statements) - 1)
    last = statements[-1].sql
    if page is not None:
        last = f"SELECT * FROM ({last}) AS entrepot_page LIMIT {page.size} OFFSET {page.number * page.size}"
    if geojson:
        last = f"SELECT *, ST_AsGeoJSON(the_geom) AS {GEOJSON_COLUMN} FROM ({last}) AS entrepot_geojson"
    if check or statements[-1].kind == "explain":
        binder.check(cur, last if statements[-1].kind != "explain" else statements[-1].plan_sql)
    return last


@contextmanager
def execute(
    services: Services,
    project: Project,
    statements: Sequence[Statement],
    *,
    time_limit: float | None = None,
    cancel: threading.Event | None = None,
    max_rows: int | None = None,
    bound: int | None = None,
    page: Page | None = None,
    geojson: bool = False,
    on_statement: Callable[[int], None] | None = None,
    owner: Principal | None = None,
) -> Iterator[Rows]:
    """Run checked and authorised ``statements``; yields the last one's ``Rows`` while they stream.

    ``max_rows`` bounds the rows a writing script's result keeps in memory (over it:
    ``PayloadTooLarge`` before the answer starts); ``bound`` bounds the rows a reading script's
    result streams. ``page`` and ``geojson`` (see ``_last_statement``) need a script that only reads.
    ``owner`` is the caller: when it is a CARTO key, it owns the tables the script creates
    (``ownership.py``).
    """
    started = time.perf_counter()
    reshaped = page is not None or geojson
    session = _session(services, project, statements, time_limit=time_limit, cancel=cancel, reshaped=reshaped)
    with session as (_, cur, writes):
        if writes:
            yield _run_writes(
                services, project, cur, statements, max_rows=max_rows, on_statement=on_statement, owner=owner
            )
            return
        cur.execute(_last_statement(cur, statements, on_statement, page=page, geojson=geojson))
        yield _streamed(cur, started, bound=bound, geojson=geojson)


@contextmanager
def execute_into(
    services: Services,
    project: Project,
    statements: Sequence[Statement],
    into: str,
    *,
    page: Page | None = None,
) -> Iterator[ResultFile]:
    """Have DuckDB write the last result of a reading script as ``into`` (parquet, xlsx) to a temporary file."""
    session = _session(services, project, statements, time_limit=None, cancel=None, reshaped=True)
    with session as (box, cur, _):
        last = _last_statement(cur, statements, None, page=page)
        path = box.temp / f"result-{uuid.uuid4().hex}.{into}"
        try:
            cur.execute(f"COPY ({last}) TO {quote_literal(str(path))} ({FILE_OPTIONS[into]})")
            yield ResultFile(path)
        finally:
            path.unlink(missing_ok=True)


def query_around(
    services: Services,
    project: Project,
    statements: Sequence[Statement],
    wrap: Callable[[str], str],
    *,
    time_limit: float | None = None,
) -> tuple[list[Column], list[Row]]:
    """Run a reading script whose last query is put inside ``wrap(sql)`` (DuckDB SQL a caller
    builds around it: the Maps API's tile queries); the wrapped query's columns and rows.

    The script is checked and run like any read (``binder.check`` on the wrapped query too, a
    query slot, the time limit); ``wrap`` must add no table of its own.
    """
    session = _session(services, project, statements, time_limit=time_limit, cancel=None, reshaped=True)
    with session as (_, cur, _writes):
        wrapped = wrap(_last_statement(cur, statements, None, check=False))
        binder.check(cur, wrapped)  # its plan holds the script's last query
        cur.execute(wrapped)
        return _columns(cur), cur.fetchall()


def _columns(cur: duckdb.DuckDBPyConnection) -> list[Column]:
    return [Column(str(d[0]), str(d[1])) for d in (cur.description or [])]


def _visible(columns: list[Column]) -> tuple[tuple[Column, ...], Callable[[Row], Row] | None]:
    """The columns a result shows (not the hidden ``_timestamp``) and how to cut a row to them (None: as is)."""
    keep = [i for i, c in enumerate(columns) if c.name != HIDDEN_TIMESTAMP]
    shown = tuple(columns[i] for i in keep)
    if len(keep) == len(columns):
        return shown, None
    if not keep:
        return shown, lambda row: ()
    if len(keep) == 1:
        only = keep[0]
        return shown, lambda row: (row[only],)
    return shown, itemgetter(*keep)


def _streamed(cur: duckdb.DuckDBPyConnection, started: float, *, bound: int | None, geojson: bool) -> Rows:
    columns, cut = _visible(_columns(cur))
    batches: Iterator[Iterable[Row]] = (
        _fetch(cur, cut) if bound is None else _bounded(_fetch(cur, cut), bound)
    )
    names = [c.name for c in columns]
    at = names.index(GEOJSON_COLUMN) if geojson and GEOJSON_COLUMN in names else None
    return Rows(columns=columns, batches=batches, started=started, geojson=at)


def _fetch(cur: duckdb.DuckDBPyConnection, cut: Callable[[Row], Row] | None) -> Iterator[list[Row]]:
    while batch := cur.fetchmany(FETCH_ROWS):
        yield batch if cut is None else [cut(row) for row in batch]


def _bounded(batches: Iterator[list[Row]], limit: int) -> Iterator[Iterable[Row]]:
    """``batches``, raising ``PayloadTooLarge`` when row ``limit + 1`` is asked for (inside its batch)."""
    seen = 0
    for batch in batches:
        if seen + len(batch) > limit:
            yield _up_to(batch, limit - seen, limit)
            return
        seen += len(batch)
        yield batch


def _up_to(rows: list[Row], room: int, limit: int) -> Iterator[Row]:
    yield from rows[:room]
    raise too_many_rows(limit)


def _run_writes(
    services: Services,
    project: Project,
    cur: duckdb.DuckDBPyConnection,
    statements: Sequence[Statement],
    *,
    max_rows: int | None,
    on_statement: Callable[[int], None] | None,
    owner: Principal | None,
) -> Rows:
    """Run a writing script in one transaction; returns its last result, materialised."""
    fresh = new_tables(services, project, statements) if owner is not None and owner.api_key_name else []
    definitions = definitions_of(services, project, {ref for st in statements for ref in st.writes})
    columns: list[Column] = []
    rows: list[Row] = []
    affected: int | None = None
    # BEGIN and COMMIT raw: their errors reach ``guard`` (around the session) like the statements'
    with transaction(cur, translate_errors=False):
        for i, st in enumerate(statements):
            if on_statement:
                on_statement(i)
            columns, rows, affected = _execute(cur, st, definitions, max_rows=max_rows)
    renames = {st.target: st.renamed_to for st in statements if st.target and st.renamed_to}
    for old, new in renames.items():  # a renamed table keeps its definition
        definitions[new] = definitions.get(new) or definitions.get(old)
    sync_catalog(services, project, cur, definitions, renames=renames)
    if owner is not None:
        adopt(services, owner, project, fresh)
    shown, cut = _visible(columns)
    if cut is not None:
        rows = [cut(row) for row in rows]
    return Rows(columns=shown, batches=iter([rows] if rows else []), affected=affected)


def _execute(
    cur: duckdb.DuckDBPyConnection,
    st: Statement,
    definitions: dict[TableRef, Definition | None],
    *,
    max_rows: int | None,
) -> tuple[list[Column], list[Row], int | None]:
    """One statement of a writing script: (columns, rows, rows affected)."""
    if st.kind == "cartodbfy":
        assert st.target is not None
        definitions[st.target] = cartodbfy(cur, st.target, definitions.get(st.target))
        return [Column("cdb_cartodbfytable", "VARCHAR")], [(st.target.name,)], None
    sql = st.sql
    if st.kind == "insert" and not st.columns and st.target is not None:
        sql = name_user_columns(cur, st)
    binder.check(cur, sql if st.kind != "explain" else st.plan_sql)
    cur.execute(sql)
    columns = _columns(cur)
    rows = cur.fetchmany(max_rows + 1) if max_rows is not None else cur.fetchall()
    if max_rows is not None and len(rows) > max_rows:
        raise too_many_rows(max_rows)
    affected = None
    counted = st.kind in ("insert", "update", "delete", "truncate", "create_table_as")
    if counted and columns and columns[0].name.lower() == "count" and len(rows) == 1:
        affected = int(rows[0][0])
        columns, rows = [], []
    elif st.kind in ("create_table", "drop_table", "alter_table"):
        columns, rows, affected = [], [], 0
    if st.kind == "create_table" and st.target is not None:
        definitions[st.target] = created(st)
    elif st.kind == "drop_table" and st.target is not None:
        definitions[st.target] = None
    if st.target is not None and st.kind in ("insert", "update"):
        maintain(cur, st.target, definitions.get(st.target))
    return columns, rows, affected
