"""The CARTO table model on DuckLake: ``cartodb_id``, ``the_geom``, ``the_geom_webmercator``, serials.

PostgreSQL fills serial columns from sequences and CARTO's triggers keep
``the_geom_webmercator`` in step with ``the_geom``. DuckLake has neither sequences nor
triggers, so after every write the service fills them itself, inside the write's transaction
(:func:`maintain`). A table's *definition* (kept in its catalog row) says what to fill: its
geometry columns' SRIDs, its serial columns, and whether it was cartodbfied.

Keboola tables carry a hidden ``_timestamp`` (the tables API's ``changedSince``): SQL writes
fill it, and SQL results never show it.
"""

from __future__ import annotations

import uuid
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from entrepot.core import errors as E
from entrepot.core.engine.statements import quote_ident
from entrepot.core.engine.tables import TableRef, columns
from entrepot.core.sql.dialect import Statement

WEBMERCATOR = "the_geom_webmercator"
HIDDEN_TIMESTAMP = "_timestamp"  # Keboola tables' row-change time (entrepot.core.tables.store)

# a table's SQL definition: {"geometry": {column: srid}, "serial": [column], "cartodbfied": bool}
Definition = dict[str, Any]


def created(st: Statement) -> Definition:
    """The definition of the table a ``CREATE TABLE`` statement makes."""
    return {"geometry": dict(st.geometry_columns), "serial": list(st.serial_columns), "cartodbfied": False}


def cartodbfy(cur: duckdb.DuckDBPyConnection, ref: TableRef, definition: Definition | None) -> Definition:
    """``CDB_CartodbfyTable``: give the table CARTO's shape (idempotent); returns its new definition.

    ``cartodb_id`` (BIGINT, unique, numbered 1… in the current row order, existing values kept),
    ``the_geom`` (SRID 4326; kept if present) and ``the_geom_webmercator`` (3857, derived from
    ``the_geom``) come first, then the other columns. New rows get both filled by ``maintain``.
    """
    table = columns(cur, ref)
    if not table:
        raise E.InvalidInput(f'relation "{ref.name}" does not exist', code="sql.missingRelation")
    temp = TableRef(ref.schema, f"__cartodbfy_{uuid.uuid4().hex[:12]}")
    select = _cartodbfied_select([c.name for c in table], ref.sql)
    cur.execute(f"CREATE TABLE {temp.sql} AS {select}")
    cur.execute(f"DROP TABLE {ref.sql}")
    cur.execute(f"ALTER TABLE {temp.sql} RENAME TO {quote_ident(ref.name)}")
    return _cartodbfied(definition)


def create_cartodbfied(
    cur: duckdb.DuckDBPyConnection, ref: TableRef, select: str, *, replace: bool = False
) -> Definition:
    """``CREATE [OR REPLACE] TABLE ref`` from ``select``, in CARTO's shape in one pass (what
    ``CREATE TABLE … AS`` followed by :func:`cartodbfy` gives, with one write of the data instead
    of two); returns its definition."""
    names = [str(row[0]) for row in cur.execute(f"DESCRIBE {select}").fetchall()]
    verb = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE"
    rows = _cartodbfied_select(names, f"({select}) AS source")
    cur.execute(f"{verb} {ref.sql} AS SELECT * FROM ({rows}) AS cartodbfied ORDER BY {HILBERT_ORDER}")
    return _cartodbfied(None)


# Rows are written in the Hilbert order of their web-mercator geometry: neighbours on the map
# share row groups, so a map tile's bounding-box filter (``&&``) skips most of a big table by
# its files' geometry statistics (3x on 1M points at z14; the sort costs nothing measurable on
# top of the row_number() the ids already need). Empty and NULL geometries go last.
HILBERT_ORDER = (
    f"CASE WHEN {WEBMERCATOR} IS NULL OR ST_IsEmpty({WEBMERCATOR}) THEN NULL ELSE ST_Hilbert("
    f"CAST({WEBMERCATOR} AS GEOMETRY), ST_Extent(ST_MakeEnvelope(-20037508.342789244, -20037508.342789244, "
    "20037508.342789244, 20037508.342789244))) END"
)


def _cartodbfied_select(names: list[str], source: str) -> str:
    """The ``SELECT`` giving the rows of ``source`` (columns ``names``) CARTO's columns, in CARTO's order."""
    lower = {name.lower(): name for name in names}
    select_list = []
    if "cartodb_id" in lower:
        select_list.append(
            f"CAST(coalesce({quote_ident(lower['cartodb_id'])}, (SELECT coalesce(max(cartodb_id), 0) FROM "
            f"{source}) + row_number() OVER ()) AS BIGINT) AS cartodb_id"
        )
    else:
        select_list.append("CAST(row_number() OVER () AS BIGINT) AS cartodb_id")
    geom = quote_ident(lower["the_geom"]) if "the_geom" in lower else "CAST(NULL AS GEOMETRY)"
    select_list.append(f"{geom} AS the_geom")
    select_list.append(f"pg_webmercator({geom}) AS {WEBMERCATOR}")
    select_list += [quote_ident(n) for n in names if n.lower() not in ("cartodb_id", "the_geom", WEBMERCATOR)]
    return f"SELECT {', '.join(select_list)} FROM {source}"


def _cartodbfied(definition: Definition | None) -> Definition:
    new = dict(definition or {})
    geometry = dict(new.get("geometry") or {})
    geometry.update({"the_geom": 4326, WEBMERCATOR: 3857})
    serial = [c for c in new.get("serial") or [] if c != "cartodb_id"]
    return {**new, "geometry": geometry, "serial": ["cartodb_id", *serial], "cartodbfied": True}


def maintain(cur: duckdb.DuckDBPyConnection, ref: TableRef, definition: Definition | None) -> None:
    """After rows of ``ref`` changed (inside the transaction): fill what PostgreSQL would have.

    New rows get the next serial numbers (``cartodb_id``…; a temporary sequence of this cursor,
    since DuckLake has none), ``the_geom_webmercator`` follows ``the_geom``, and rows of a
    Keboola table get their ``_timestamp`` (the tables face's ``changedSince``).
    """
    table = ref.sql
    if not definition:
        if any(c.name == HIDDEN_TIMESTAMP for c in columns(cur, ref)):
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


def name_user_columns(cur: duckdb.DuckDBPyConnection, st: Statement) -> str:
    """``INSERT INTO t VALUES …`` into a Keboola table: name its user columns, leaving ``_timestamp`` out."""
    assert st.target is not None
    names = [c.name for c in columns(cur, st.target)]
    if HIDDEN_TIMESTAMP not in names:
        return st.sql
    tree = sqlglot.parse_one(st.sql, read="duckdb")
    if not isinstance(tree, exp.Insert) or not isinstance(tree.this, exp.Table):
        return st.sql
    user = [exp.to_identifier(n, quoted=True) for n in names if n != HIDDEN_TIMESTAMP]
    tree.set("this", exp.Schema(this=tree.this, expressions=user))
    return tree.sql(dialect="duckdb")
