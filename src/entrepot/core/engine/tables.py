"""How a table lives in a project's lake: its reference, columns, existence, stored name, size,
the tables of a schema, and the one transaction helper. Every area (Keboola tables, SQL,
exports) asks these questions here.

A lake table is ``lake."<schema>"."<name>"``; the schema is a Keboola bucket id
(``in.c-main``). Names compare case-insensitively, as DuckDB binds them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import duckdb

from entrepot.core.engine.statements import execute, quote_ident


@dataclass(frozen=True)
class TableRef:
    """A resolved lake table."""

    schema: str  # the lake schema (a bucket id, case as stored), e.g. "in.c-public"
    name: str  # the table name as DuckDB sees it

    @property
    def sql(self) -> str:
        """The quoted name in the current lake: ``"in.c-main"."my_table"``."""
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB's type name, e.g. VARCHAR, BIGINT, GEOMETRY


def columns(cur: duckdb.DuckDBPyConnection, ref: TableRef) -> list[Column]:
    """The table's columns in order; empty when it does not exist."""
    rows = cur.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'lake' "
        "AND lower(schema_name) = lower(?) AND lower(table_name) = lower(?) ORDER BY column_index",
        [ref.schema, ref.name],
    ).fetchall()
    return [Column(str(name), str(type_)) for name, type_ in rows]


def exists(cur: duckdb.DuckDBPyConnection, ref: TableRef) -> bool:
    row = cur.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'lake' "
        "AND lower(schema_name) = lower(?) AND lower(table_name) = lower(?)",
        [ref.schema, ref.name],
    ).fetchone()
    return bool(row and row[0])


def stored_name(cur: duckdb.DuckDBPyConnection, ref: TableRef) -> str | None:
    """The table's name as the lake stores it (its letter case as created); None when it does not exist."""
    row = cur.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake' "
        "AND lower(schema_name) = lower(?) AND lower(table_name) = lower(?)",
        [ref.schema, ref.name],
    ).fetchone()
    return str(row[0]) if row else None


def table_names(cur: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    """The names of the tables of the lake schema ``schema`` (as stored); empty when it has none."""
    rows = cur.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake' AND lower(schema_name) = lower(?)",
        [schema],
    ).fetchall()
    return [str(r[0]) for r in rows]


def stats(cur: duckdb.DuckDBPyConnection, ref: TableRef) -> tuple[int, int]:
    """(rows, bytes of its data files) of a lake table."""
    rows = cur.execute(f"SELECT count(*) FROM {ref.sql}").fetchone()
    try:
        info = cur.execute(
            "SELECT coalesce(sum(i.file_size_bytes), 0) FROM ducklake_table_info('lake') i "
            "JOIN __ducklake_metadata_lake.ducklake_schema s "
            "ON s.schema_id = i.schema_id AND s.end_snapshot IS NULL "
            "WHERE lower(s.schema_name) = lower(?) AND lower(i.table_name) = lower(?)",
            [ref.schema, ref.name],
        ).fetchone()
        size = int(info[0]) if info else 0
    except duckdb.Error:  # the size is informative: a lake that cannot tell it says 0
        size = 0
    return (int(rows[0]) if rows else 0), size


@contextlib.contextmanager
def transaction(cur: duckdb.DuckDBPyConnection, *, translate_errors: bool = True) -> Iterator[None]:
    """BEGIN … COMMIT on ``cur``; ROLLBACK on any error, cancellation or interrupt.

    BEGIN and COMMIT go through :func:`execute`, so a commit DuckDB refuses (a concurrent writer
    won) surfaces as a domain error. ``translate_errors=False`` runs them as plain statements
    instead, their DuckDB errors (and interrupts) propagating as they are: for callers that
    translate errors themselves, like the SQL service's ``guard`` (PostgreSQL's wording, its own
    time limit). A failed ROLLBACK is ignored: the original error matters.
    """

    def run(sql: str) -> None:
        if translate_errors:
            execute(cur, sql)
        else:
            cur.execute(sql)

    run("BEGIN TRANSACTION")
    try:
        yield
        run("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            cur.execute("ROLLBACK")
        raise
