"""COPY … FROM STDIN and COPY … TO STDOUT, streamed, in PostgreSQL's csv and text formats.

COPY FROM spools the body (a gzip body inflated step by step by ``core.inflate``) to a file in
the sandbox's spill directory — csv as sent, the text format converted to csv on the way
(``pgtext``) — then loads it with one ``INSERT … SELECT … FROM read_csv(…)`` in one
transaction: every row or none. Geometry columns accept EWKT, WKT, hex (E)WKB and GeoJSON
(``pg_geometry``). New rows of a CARTO table get their ``cartodb_id`` and
``the_geom_webmercator`` before the commit. Bad data is answered like a bad table import
(``engine.csv.row_error``): the line, and for a value the column, its type and the value.

COPY TO runs the query on the read-only sandbox and encodes row by row, so the response
streams with bounded memory.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, suppress
from typing import TYPE_CHECKING, Any

import duckdb

from entrepot.core import errors as E
from entrepot.core import inflate
from entrepot.core.auth import Principal
from entrepot.core.engine.csv import csv_error, row_error
from entrepot.core.engine.statements import quote_ident, quote_literal
from entrepot.core.engine.tables import Column, columns, transaction
from entrepot.core.sql import pgtext
from entrepot.core.sql.authorize import prepare
from entrepot.core.sql.catalog_sync import definitions_of, sync_catalog
from entrepot.core.sql.dialect import CopyOptions, Statement
from entrepot.core.sql.execute import execute, guard, translate
from entrepot.core.sql.geometry import hex_ewkb
from entrepot.core.sql.results import Loaded, Rows
from entrepot.core.sql.table_model import maintain

if TYPE_CHECKING:
    from entrepot.core.services import Services


def _single(statements: list[Statement], kind: str) -> Statement:
    direction = "FROM STDIN" if kind == "copy_from" else "TO STDOUT"
    if len(statements) != 1 or statements[0].kind != kind:
        raise E.InvalidInput(f"SQL must be one COPY … {direction} statement", code="sql.copyExpected")
    return statements[0]


def check_copy_sql(sql: str | None) -> str:
    if not sql or not sql.strip():
        raise E.InvalidInput("SQL is missing", code="sql.missingQuery")
    if not sql.lstrip().upper().startswith("COPY "):
        raise E.InvalidInput("SQL must start with COPY", code="sql.copyExpected")
    return sql


# -- COPY FROM ---------------------------------------------------------------------------------


def _too_large(limit: int) -> E.PayloadTooLarge:
    return E.PayloadTooLarge(
        f"the COPY data is larger than {limit} bytes (setting sql_max_copy_bytes); split it into "
        "several COPY requests",
        code="sql.copyTooLarge",
    )


def _capped(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        yield chunk


def _body(chunks: Iterable[bytes], limit: int, gzip: bool) -> Iterator[bytes]:
    """The COPY data: the body as sent, or inflated step by step (at most 1 MiB per step)."""
    if not gzip:
        return _capped(chunks, limit)
    return inflate.gunzip(
        chunks,
        max_bytes=limit,
        what="the gzip COPY body",
        fix="send the complete gzip stream, or the data without Content-Encoding: gzip",
        code="sql.copyGzip",
        too_large=_too_large,
    )


def copy_from(
    services: Services,
    principal: Principal,
    project: str,
    sql: str,
    chunks: Iterable[bytes],
    *,
    gzip: bool = False,
) -> Loaded:
    """Load the COPY data ``chunks`` into the table ``sql`` names; the rows loaded, and the time it took.

    Consumes ``chunks`` to the end on success; on an early error the caller drains the rest.
    """
    started = time.perf_counter()
    check_copy_sql(sql)
    row, statements = prepare(services, principal, project, sql)
    st = _single(statements, "copy_from")
    assert st.target is not None and st.copy is not None
    options = st.copy
    box = services.sql.sandbox(row.name)
    data = _body(chunks, services.settings.sql_max_copy_bytes, gzip)
    spool = box.temp / f"copy-{uuid.uuid4().hex}.csv"
    with ExitStack() as stack:
        # a load is one of the project's statements at once (sql_max_concurrent_queries), from
        # the first byte it reads to its commit
        stack.enter_context(services.sql.slot(row.name, services.settings.sql_time_limit))
        stack.callback(spool.unlink, missing_ok=True)
        with box.cursor() as probe:
            table = columns(probe, st.target)
        if not table:
            raise E.InvalidInput(f'relation "{st.target.name}" does not exist', code="sql.missingRelation")
        targets = _target_columns(st, table)
        with spool.open("wb") as out:
            if options.format == "text":
                pgtext.text_to_csv(
                    data,
                    out,
                    delimiter=options.delimiter or "\t",
                    null=options.null if options.null is not None else "\\N",
                    encoding=options.encoding,
                    expected_columns=len(targets),
                )
                csv_options = CopyOptions(format="csv", header=False, delimiter=",", null="")
            else:
                for chunk in data:
                    out.write(chunk)
                csv_options = options
        definitions = definitions_of(services, row, {st.target})
        types = {c.name: c.type for c in table}
        with box.cursor(write=True) as cur, guard(cur, services.settings.sql_batch_time_limit, None):
            # BEGIN and COMMIT raw: their errors reach ``guard`` like the load's
            with transaction(cur, translate_errors=False):
                what = "COPY data" if options.format == "text" else "CSV"
                loaded = _insert(cur, st, targets, types, spool, csv_options, what=what)
                if not loaded:
                    raise E.InvalidInput("No rows copied", code="sql.noRows")
                maintain(cur, st.target, definitions.get(st.target))
            sync_catalog(services, row, cur, definitions)
    return Loaded(rows=loaded, elapsed=time.perf_counter() - started)


def _target_columns(st: Statement, table: list[Column]) -> list[str]:
    by_lower = {c.name.lower(): c.name for c in table}
    if not st.columns:
        return [c.name for c in table]
    out = []
    for name in st.columns:
        real = by_lower.get(name.lower())
        if real is None:
            raise E.InvalidInput(
                f'column "{name}" of relation "{st.target.name if st.target else "?"}" does not exist',
                code="sql.missingColumn",
            )
        out.append(real)
    return out


def _insert(
    cur: duckdb.DuckDBPyConnection,
    st: Statement,
    columns: list[str],
    types: dict[str, str],
    spool: Any,
    options: CopyOptions,
    *,
    what: str = "CSV",
) -> int:
    assert st.target is not None
    aliases = [f"c{i}" for i in range(len(columns))]
    read = _read_csv(spool, aliases, options)
    values = [_converted(alias, types[name]) for alias, name in zip(aliases, columns, strict=True)]
    target = st.target.sql
    names = ", ".join(quote_ident(c) for c in columns)
    try:
        found = cur.execute(
            f"INSERT INTO {target} ({names}) SELECT {', '.join(values)} FROM {read}"
        ).fetchone()
    except duckdb.InterruptException:
        raise
    except duckdb.Error as exc:
        raise _data_error(
            cur, exc, spool, dict(zip(aliases, columns, strict=True)), types, options, what
        ) from exc
    return int(found[0]) if found else 0


def _read_csv(spool: Any, aliases: list[str], options: CopyOptions, *, ordered: bool = False) -> str:
    """``read_csv`` of the spooled data, every column VARCHAR; ``ordered`` reads on one thread."""
    columns_spec = ", ".join(f"{quote_literal(a)}: 'VARCHAR'" for a in aliases)
    return (
        f"read_csv({quote_literal(str(spool))}, header = {'true' if options.header else 'false'}, "
        f"delim = {quote_literal(options.delimiter or ',')}, quote = {quote_literal(options.quote or '')}, "
        f"escape = {quote_literal(options.escape if options.escape is not None else (options.quote or ''))}, "
        f"nullstr = {quote_literal(options.null if options.null is not None else '')}, "
        "allow_quoted_nulls = false, auto_detect = false, strict_mode = true, "
        f"{'parallel = false, ' if ordered else ''}columns = {{{columns_spec}}})"
    )


def _converted(alias: str, kind: str) -> str:
    """The SQL that turns the text ``alias`` into a value of the column type ``kind``."""
    if kind.upper().startswith("GEOMETRY"):
        return f"pg_geometry({quote_ident(alias)})"
    return f"CAST({quote_ident(alias)} AS {kind})"


def _data_error(
    cur: duckdb.DuckDBPyConnection,
    exc: duckdb.Error,
    spool: Any,
    names: dict[str, str],
    types: dict[str, str],
    options: CopyOptions,
    what: str,
) -> E.EntrepotError:
    """The COPY load's failure in the words of the tables API (``csv.row_error``): line, column, value.

    DuckDB's CSV reader names the line of a malformed row itself. A value that does not convert
    is found again by reading the data in order with ``TRY()`` around the load's own conversion
    (the same CAST or ``pg_geometry``, so the diagnosis never disagrees with the load), and the
    message names its line, column, the column's type and the value.
    """
    if "CSV Error on Line" in str(exc):
        return csv_error(exc, names, what=what)
    if isinstance(
        exc, duckdb.ConversionException | duckdb.InvalidInputException | duckdb.OutOfRangeException
    ):
        with suppress(duckdb.Error):
            cur.execute("ROLLBACK")  # the failed transaction would refuse the next query
        found = _first_bad_value(cur, spool, names, types, options)
        if found is not None:
            line, column, value = found
            return row_error(
                line,
                column=column,
                expected=types[column],
                value=value,
                what=what,
                details={"duckdbError": type(exc).__name__},
            )
    return translate(exc)


def _first_bad_value(
    cur: duckdb.DuckDBPyConnection,
    spool: Any,
    names: dict[str, str],
    types: dict[str, str],
    options: CopyOptions,
) -> tuple[int, str, str] | None:
    """(line, column, clipped value) of the first value in file order that its column refuses."""
    checks = [
        (alias, name)
        for alias, name in names.items()
        if types[name].upper() not in ("VARCHAR", "TEXT", "STRING")
    ]
    if not checks:
        return None
    bad = [
        f"({quote_ident(alias)} IS NOT NULL AND TRY({_converted(alias, types[name])}) IS NULL)"
        for alias, name in checks
    ]
    flags = ", ".join(bad)
    values = ", ".join(f"left({quote_ident(alias)}, {E.VALUE_MAX + 1})" for alias, _ in checks)
    # one reading thread (parallel = false) feeds the streaming row_number(): rows in file order
    sql = (
        f"SELECT n, [{flags}], [{values}] FROM (SELECT row_number() OVER () AS n, * "
        f"FROM {_read_csv(spool, list(names), options, ordered=True)}) WHERE {' OR '.join(bad)} LIMIT 1"
    )
    try:
        row = cur.execute(sql).fetchone()
    except duckdb.Error:  # only a better message was at stake: keep the load's own error
        return None
    if row is None:
        return None
    number, flagged, texts = row
    for (_, name), failed, text in zip(checks, flagged, texts, strict=True):
        if failed:
            return int(number) + (1 if options.header else 0), name, str(text)
    return None


# -- COPY TO -----------------------------------------------------------------------------------


def copy_to(services: Services, principal: Principal, project: str, sql: str) -> Iterator[bytes]:
    """The encoded rows of a ``COPY (query) TO STDOUT`` as a stream of byte chunks.

    Checks run before the first chunk is asked for, so errors surface on the first ``next``.
    """
    check_copy_sql(sql)
    row, statements = prepare(services, principal, project, sql)
    st = _single(statements, "copy_to")
    assert st.copy is not None
    select = Statement(kind="select", sql=st.sql, reads=st.reads, writes=frozenset(), target=None)
    stack = ExitStack()
    try:
        result = stack.enter_context(execute(services, row, [select]))
        chunks = _encode(stack, result, st.copy)
        first = next(chunks, b"")  # runs the query: its errors surface here, before any byte is sent
    except BaseException:
        stack.close()
        raise
    return itertools.chain([first], chunks)


def _encode(stack: ExitStack, result: Rows, options: CopyOptions) -> Iterator[bytes]:
    with stack:
        geometry = {i: c.srid for i, c in enumerate(result.columns) if c.is_geometry}
        text = options.format == "text"
        delimiter = options.delimiter or ("\t" if text else ",")
        null = options.null if options.null is not None else ("\\N" if text else "")
        parts: list[str] = []
        size = 0
        if not text and options.header:
            parts.append(
                pgtext.encode_csv_row(
                    [c.name for c in result.columns],
                    delimiter=delimiter,
                    null=null,
                    quote=options.quote,
                )
            )
        for batch in result.batches:
            for values in batch:
                if geometry:
                    values = tuple(
                        hex_ewkb(bytes(v), geometry[i]) if i in geometry and v is not None else v
                        for i, v in enumerate(values)
                    )
                if text:
                    line = pgtext.encode_text_row(values, delimiter=delimiter, null=null)
                else:
                    line = pgtext.encode_csv_row(values, delimiter=delimiter, null=null, quote=options.quote)
                parts.append(line)
                size += len(line)
            if size >= 256 * 1024:
                yield "".join(parts).encode(options.encoding)
                parts, size = [], 0
        if parts:
            yield "".join(parts).encode(options.encoding)
