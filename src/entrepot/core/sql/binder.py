"""The second look at user SQL: what DuckDB's own binder and planner say a statement reads.

``dialect.parse`` checks the text; this module checks the plan DuckDB will run. Right before a
user statement executes, on the same cursor and in the same transaction, ``check(cur, sql)``
asks DuckDB for the statement's physical plan (``EXPLAIN (FORMAT json)``: bound, planned, not
run) and walks every operator. Each one must be on the allow-list of ``policy.py``:

* scans: the project's lake tables (``DUCKLAKE_SCAN``: the sandbox attaches no other DuckLake)
  and the table functions users may call (``GENERATE_SERIES``, ``RANGE``, ``UNNEST``);
* writes: DuckLake's own writers (``DUCKLAKE_INSERT`` …, with the Parquet ``COPY_TO_FILE`` they
  drive) and DDL;
* everything else: relational operators that only compute on what their children produce
  (projections, filters, joins, aggregates, windows, sorts, limits, set operations, CTEs,
  constant scans).

Any other operator — a system table function (``duckdb_databases()``, ``duckdb_settings()``,
``pg_settings``), a file reader, another catalog's scan, an in-memory table — is refused,
whatever shape of SQL produced it (CTE scoping tricks, views, macros, subqueries). Name
guessing in the dialect is the first wall; this is the one that does not guess.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import duckdb

from entrepot.core import errors as E
from entrepot.core.sql.policy import ALLOWED_OPERATORS, WRITER_CHILDREN

__all__ = ["check", "operators"]


def operators(cur: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[str | None, str]]:
    """(parent, operator) for every operator of ``sql``'s physical plan, as DuckDB would run it."""
    rows = cur.execute(f"EXPLAIN (FORMAT json) {sql}").fetchall()
    found: list[tuple[str | None, str]] = []
    for row in rows:
        for root in json.loads(row[1]):
            found.extend(_walk(None, root))
    return found


def _walk(parent: str | None, node: dict[str, Any]) -> Iterator[tuple[str | None, str]]:
    name = str(node.get("name", "")).strip().upper()
    yield parent, name
    for child in node.get("children") or ():
        yield from _walk(name, child)


def check(cur: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse ``sql`` unless every operator of its plan is allowed (see the module's docstring).

    DuckDB errors (a missing table, a type error) propagate: they are the statement's own errors.
    """
    found = operators(cur, sql)
    if not found:
        raise E.InvalidInput(
            "this statement cannot be checked before it runs (DuckDB plans it as several statements); "
            "write it as one query, e.g. PIVOT with an explicit IN list",
            code="sql.unplannable",
        )
    for parent, name in found:
        if name in ALLOWED_OPERATORS:
            continue
        if name in WRITER_CHILDREN and parent is not None and parent.startswith("DUCKLAKE_"):
            continue
        raise E.PermissionDenied(
            f"permission denied: the query reads {_describe(name)}, which SQL API queries may not use; "
            "query the project's tables (information_schema.tables lists them) and the table functions "
            "generate_series, range and unnest",
            code="sql.refusedObject",
        )


def _describe(name: str) -> str:
    if name in ("SEQ_SCAN", "TABLE_SCAN"):
        return "a table outside the project's lake"
    if name in WRITER_CHILDREN:
        return "a file (COPY TO)"
    return f"{name.lower()}()"
