"""Export filters compiled to one parameterised DuckDB ``SELECT`` over a lake table.

Nothing the caller sends is pasted into SQL: column names are looked up in the table and
quoted by :func:`quote_ident`, ``ASC``/``DESC``/``NULLS`` come from a fixed vocabulary, and every
value is a ``?`` parameter. Values are typed to their column:

* numeric columns take numbers (or numeric strings); booleans take ``true``/``false``;
  date and time columns take ISO dates or times (and the relative phrases of ``changedSince``);
* string columns compare as strings, except that a JSON **number** compares numerically
  (``TRY_CAST(col AS DOUBLE) > 100``): Keboola tables store every column as a string;
* ``!=``/``<>``/``not_in`` keep rows whose value is NULL (``IS DISTINCT FROM``);
* in untyped (Keboola) tables, which have no NULL, ``is_null`` also matches the empty string.

``group_by`` returns one row per group: the group columns and ``count``. ``date_range`` selects
on the row change time ``_timestamp`` unless it names a column; an ``end`` written as a date
(``2024-12-31``) includes that whole day, an ``end`` with a time is inclusive of that instant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from entrepot.core import errors as E
from entrepot.core.engine import quote_ident
from entrepot.core.exports.spec import FieldError, FieldErrors
from entrepot.core.tables.filters import parse_time
from entrepot.core.tables.store import TIMESTAMP_COLUMN

INTEGER_TYPES = (
    *("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"),
    *("UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"),
)
FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")
STRING_TYPES = ("VARCHAR", "TEXT", "STRING")
TIME_TYPES = (
    *("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"),
    *("TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"),
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
COUNT_COLUMN = "count"
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")
_TERM = re.compile(
    r'^\s*(?P<name>"(?:[^"]|"")+"|[^\s,"]+)'
    r"(?:\s+(?P<dir>ASC|DESC))?(?:\s+NULLS\s+(?P<nulls>FIRST|LAST))?\s*\Z",
    re.IGNORECASE,
)


def kind_of(duck_type: str) -> str:
    """``integer``, ``float``, ``decimal``, ``string``, ``boolean``, ``date``, ``time`` or ``other``."""
    t = duck_type.upper()
    if t in INTEGER_TYPES:
        return "integer"
    if t in FLOAT_TYPES:
        return "float"
    if t.startswith("DECIMAL") or t.startswith("NUMERIC"):
        return "decimal"
    if t in STRING_TYPES or t.startswith("VARCHAR"):
        return "string"
    if t == "BOOLEAN":
        return "boolean"
    if t == "DATE":
        return "date"
    if t in TIME_TYPES:
        return "time"
    return "other"


@dataclass(frozen=True)
class Source:
    """The table an export reads: its lake reference, user columns and their DuckDB types."""

    ref: str  # "in.c-main"."users" inside the attached lake
    columns: Sequence[str]
    types: Mapping[str, str]
    untyped: bool  # a Keboola string table (no NULLs: empty strings instead)
    stable_order: str  # ORDER BY terms that make LIMIT deterministic


@dataclass
class Query:
    """A compiled export: ``sql`` with ``params``, and the output columns with their types."""

    sql: str
    params: list[Any] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)


def _resolve(name: str, columns: Sequence[str], field: str) -> str:
    if name in columns:
        return name
    for column in columns:
        if column.lower() == name.lower():
            return column
    shown = ", ".join(columns[:50]) + (", ..." if len(columns) > 50 else "")
    raise FieldError({field: f"{name!r} is not a column of this datasource; its columns are: {shown}"})


def _number(value: Any, kind: str, field: str, column: str, duck_type: str) -> Any:
    if isinstance(value, bool):
        raise FieldError({field: f"{value!r} is not a number; column {column} is {duck_type}"})
    if isinstance(value, (int, float)):
        return value
    try:
        number = Decimal(str(value).strip())
        if not number.is_finite():
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        raise FieldError({field: f"{value!r} is not a number; column {column} is {duck_type}"}) from None
    if kind == "integer" and number == number.to_integral_value():
        return int(number)
    return float(number)


def _typed(value: Any, kind: str, field: str, column: str, duck_type: str) -> Any:
    """``value`` as a parameter for a column of ``kind`` (``FieldError`` naming ``field`` otherwise)."""
    if kind in ("integer", "float", "decimal"):
        return _number(value, kind, field, column, duck_type)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "false", "0", "no"):
            return text in ("true", "1", "yes")
        raise FieldError({field: f"{value!r} is not true or false; column {column} is BOOLEAN"})
    if kind in ("date", "time"):
        if isinstance(value, bool):
            raise FieldError({field: f"{value!r} is not a date; column {column} is {duck_type}"})
        try:
            moment = parse_time(str(value), name=f"value of {column}")
        except E.InvalidInput as exc:
            raise FieldError({field: exc.message}) from None
        return moment.date() if kind == "date" and _DATE_ONLY.match(str(value).strip()) else moment
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _condition(cond: Mapping[str, Any], i: int, source: Source) -> tuple[str, list[Any]]:
    field = f"filters.where_conditions[{i}]"
    column = _resolve(cond["column"], source.columns, f"{field}.column")
    duck_type = source.types[column]
    kind = kind_of(duck_type)
    op = cond["operator"]
    ref = quote_ident(column)
    if op in ("is_null", "is_not_null"):
        test = f"{ref} IS NULL"
        if kind == "string" and source.untyped:
            test = f"({ref} IS NULL OR {ref} = '')"
        return (test if op == "is_null" else f"NOT {test}"), []
    value = cond["value"]
    if op in ("like", "ilike"):
        target = ref if kind == "string" else f"CAST({ref} AS VARCHAR)"
        return f"{target} {op.upper()} ?", [value]
    if kind == "other":
        raise FieldError({field: f"column {column} is {duck_type}; only is_null and is_not_null apply to it"})
    values = value if isinstance(value, list) else [value]
    if kind == "string" and any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        # a JSON number against a string column: compare as numbers (Keboola stores strings)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise FieldError({field: "mixes numbers and strings; use one kind of value per condition"})
        target, params = f"TRY_CAST({ref} AS DOUBLE)", [float(v) for v in values]
    else:
        target, params = ref, [_typed(v, kind, field, column, duck_type) for v in values]
    if op == "between":
        return f"{target} BETWEEN ? AND ?", params
    if op in ("in", "not_in"):
        marks = ", ".join("?" for _ in params)
        if op == "in":
            return f"{target} IN ({marks})", params
        return f"({target} IS NULL OR {target} NOT IN ({marks}))", params
    if op in ("!=", "<>"):
        return f"{target} IS DISTINCT FROM ?", params
    return f"{target} {op} ?", params


def _bound(text: str, *, end: bool, field: str) -> tuple[str, datetime]:
    try:
        moment = parse_time(text, name=field)
    except E.InvalidInput as exc:
        raise FieldError({field: exc.message}) from None
    if end and _DATE_ONLY.match(text.strip()):
        return "<", moment + timedelta(days=1)  # a date-only end includes that whole day
    return ("<=" if end else ">="), moment


def _date_range(rng: Mapping[str, Any], source: Source) -> tuple[list[str], list[Any]]:
    if "column" in rng:
        column = _resolve(rng["column"], [*source.columns, TIMESTAMP_COLUMN], "filters.date_range.column")
    else:
        column = TIMESTAMP_COLUMN
    duck_type = source.types.get(column, "TIMESTAMP WITH TIME ZONE")
    kind = kind_of(duck_type)
    ref = quote_ident(column)
    if kind == "string":
        ref = f"TRY_CAST({ref} AS TIMESTAMPTZ)"
    elif kind == "date":
        ref = f"CAST({ref} AS TIMESTAMPTZ)"
    elif kind != "time":
        raise FieldError(
            {
                "filters.date_range.column": f"column {column} is {duck_type}, not a date, time or string column"
            }
        )
    terms, params = [], []
    for key in ("start", "end"):
        if key in rng:
            op, moment = _bound(rng[key], end=key == "end", field=f"filters.date_range.{key}")
            terms.append(f"{ref} {op} ?")
            params.append(moment.astimezone(UTC))
    if len(params) == 2 and params[0] > params[1]:
        raise FieldError({"filters.date_range": "start is after end"})
    return terms, params


def _order(text: str, allowed: Sequence[str]) -> list[str]:
    """``"a DESC, b NULLS FIRST"`` as quoted ORDER BY terms over ``allowed`` columns."""
    terms: list[str] = []
    parts = _split_terms(text)
    if not parts:
        raise FieldError({"filters.order_by": 'must name at least one column, e.g. "created_at DESC"'})
    for part in parts:
        m = _TERM.match(part)
        if not m:
            raise FieldError(
                {
                    "filters.order_by": f"cannot read {part.strip()!r}; write column names each optionally "
                    "followed by ASC or DESC (and NULLS FIRST|LAST), separated by commas"
                }
            )
        name = m.group("name")
        if name.startswith('"'):
            name = name[1:-1].replace('""', '"')
        column = _resolve(name, allowed, "filters.order_by")
        term = f"{quote_ident(column)} {(m.group('dir') or 'ASC').upper()}"
        if m.group("nulls"):
            term += f" NULLS {m.group('nulls').upper()}"
        terms.append(term)
    return terms


def _split_terms(text: str) -> list[str]:
    """Split on commas outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def escape_formula(ref: str) -> str:
    """SQL that prefixes ``'`` to a string starting like a spreadsheet formula (numbers stay as they are)."""
    starts = ", ".join("'" + s.replace("'", "''") + "'" for s in FORMULA_STARTS)
    return (
        f"CASE WHEN left({ref}, 1) IN ({starts}) AND TRY_CAST({ref} AS DOUBLE) IS NULL "
        f"THEN '''' || {ref} ELSE {ref} END"
    )


def compile_query(filters: Mapping[str, Any], source: Source, errors: FieldErrors | None = None) -> Query:
    """The ``SELECT`` of an export over ``source`` (columns, conditions, range, grouping, order, limit).

    Every filter is checked against the table and one ``FieldError`` names every problem; with
    ``errors`` given, the problems are recorded there instead (a request checked whole).
    """
    own = errors is None
    errors = FieldErrors() if errors is None else errors
    wanted = filters.get("columns")
    group = filters.get("group_by")
    where: list[str] = []
    params: list[Any] = []
    for i, cond in enumerate(filters.get("where_conditions") or ()):
        if cond is None:  # already refused by spec (a request checked whole)
            continue
        with errors.check():
            sql, args = _condition(cond, i, source)
            where.append(sql)
            params += args
    if "date_range" in filters:
        with errors.check():
            terms, args = _date_range(filters["date_range"], source)
            where += terms
            params += args
    out_columns: list[str] = list(source.columns)
    # what ORDER BY may name: the output of a grouping (unknown while the grouping is wrong)
    order_allowed: Sequence[str] | None = None if group else source.columns
    with errors.check():
        if group:
            out_columns = [*_group_columns(group, wanted, source), COUNT_COLUMN]
            order_allowed = out_columns
        elif wanted:
            out_columns = [_resolve(n, source.columns, "filters.columns") for n in wanted]
    order: list[str] = []
    if filters.get("order_by") and order_allowed is not None:
        with errors.check():
            order = _order(filters["order_by"], order_allowed)
    if own:
        errors.raise_if_any()
    if group:
        keys = out_columns[:-1]
        types = {c: source.types[c] for c in keys} | {COUNT_COLUMN: "BIGINT"}
        select = ", ".join(quote_ident(c) for c in keys) + f", count(*) AS {quote_ident(COUNT_COLUMN)}"
    else:
        types = {c: source.types[c] for c in out_columns}
        select = ", ".join(quote_ident(c) for c in out_columns)
    sql = f"SELECT {select} FROM {source.ref}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if group:
        sql += " GROUP BY " + ", ".join(quote_ident(c) for c in out_columns[:-1])
    limit = filters.get("limit")
    if order:
        sql += " ORDER BY " + ", ".join(order)
    elif limit is not None:  # a deterministic choice of rows
        sql += " ORDER BY " + (
            ", ".join(quote_ident(c) for c in out_columns[:-1]) if group else source.stable_order
        )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return Query(sql=sql, params=params, columns=out_columns, types=types)


def _group_columns(group: Sequence[str], wanted: Sequence[str] | None, source: Source) -> list[str]:
    """The group_by columns in output order (``columns``, when given, must name the same ones)."""
    group_cols = [_resolve(n, source.columns, "filters.group_by") for n in group]
    if len(set(group_cols)) != len(group_cols):
        raise FieldError({"filters.group_by": "names a column twice"})
    if COUNT_COLUMN in group_cols:
        raise FieldError({"filters.group_by": f"cannot group by a column named {COUNT_COLUMN!r}"})
    if wanted:
        chosen = [_resolve(n, source.columns, "filters.columns") for n in wanted]
        if set(chosen) != set(group_cols):
            raise FieldError(
                {"filters.columns": "with group_by, the columns are the group_by columns (leave columns out)"}
            )
        group_cols = chosen
    return group_cols


def output_select(query: Query, fmt: str, options: Mapping[str, Any]) -> str:
    """Wrap ``query`` so each column is written well in ``fmt`` (and formulas are escaped if asked)."""
    parts = []
    for column in query.columns:
        ref = quote_ident(column)
        kind = kind_of(query.types[column])
        expr = ref
        if fmt == "parquet":
            parts.append(ref)
            continue
        if kind == "other":
            expr = f"CAST({ref} AS VARCHAR)"
        elif fmt == "excel" and kind == "time" and "TIME ZONE" in query.types[column].upper():
            expr = f"timezone('UTC', {ref})"  # xlsx has no time zones: write UTC
        elif fmt == "excel" and kind == "decimal":
            expr = f"CAST({ref} AS DOUBLE)"
        if options.get("escape_formulas") and kind in ("string", "other"):
            expr = escape_formula(expr)
        parts.append(f"{expr} AS {ref}")
    return f"SELECT {', '.join(parts)} FROM ({query.sql}) AS export_rows"
