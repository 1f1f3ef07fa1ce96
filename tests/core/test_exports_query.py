"""Export filters → DuckDB SQL: validation, typing and injection, run on a real in-memory DuckDB."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from entrepot.core.exports import spec
from entrepot.core.exports.query import Source, compile_query, output_select
from entrepot.core.exports.spec import FieldError

W0 = "filters.where_conditions[0]"
ROWS = [
    # id, name, score (string), age (int), born (date), active, _timestamp
    (1, "alice", "10", 31, "1990-01-05", True, "2024-01-01 10:00:00+00"),
    (2, "bob", "9", 17, "2005-06-30", False, "2024-03-01 10:00:00+00"),
    (3, "carol", "", None, "1985-12-31", None, "2024-06-15 23:59:59+00"),
    (4, "O'Brien", "100", 45, None, True, "2024-12-31 23:00:00+00"),
    (5, "=cmd|' /C calc'!A0", "-5", 52, "1970-02-01", True, "2025-01-01 00:00:00+00"),
]


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute(
        "CREATE TABLE t (id BIGINT, name VARCHAR, score VARCHAR, age INTEGER, born DATE, active BOOLEAN, "
        '"_timestamp" TIMESTAMPTZ)'
    )
    c.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)", ROWS)
    return c


def source(con: duckdb.DuckDBPyConnection, *, untyped: bool = False) -> Source:
    types = {r[0]: str(r[1]) for r in con.execute("DESCRIBE t").fetchall()}
    columns = [c for c in types if c != "_timestamp"]
    return Source(ref="t", columns=columns, types=types, untyped=untyped, stable_order="id")


def run(con: duckdb.DuckDBPyConnection, filters: dict[str, Any], **kw: Any) -> list[tuple[Any, ...]]:
    _, clean, _ = spec.normalize("csv", filters, None)
    q = compile_query(clean, source(con, **kw))
    return con.execute(q.sql, q.params).fetchall()


def ids(con: duckdb.DuckDBPyConnection, conditions: list[dict[str, Any]], **kw: Any) -> list[int]:
    rows = run(con, {"columns": ["id"], "where_conditions": conditions, "order_by": "id"}, **kw)
    return [r[0] for r in rows]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"column": "age", "operator": ">", "value": 30}, [1, 4, 5]),
        ({"column": "age", "operator": ">=", "value": "45"}, [4, 5]),
        ({"column": "age", "operator": "<", "value": 18}, [2]),
        ({"column": "age", "operator": "<=", "value": 31}, [1, 2]),
        ({"column": "age", "operator": "=", "value": 17}, [2]),
        ({"column": "age", "operator": "!=", "value": 17}, [1, 3, 4, 5]),  # NULL is "not 17"
        ({"column": "age", "operator": "<>", "value": 17}, [1, 3, 4, 5]),
        ({"column": "age", "operator": "in", "value": [17, 45]}, [2, 4]),
        ({"column": "age", "operator": "not_in", "value": [17, 45]}, [1, 3, 5]),
        ({"column": "age", "operator": "between", "value": [17, 31]}, [1, 2]),
        ({"column": "age", "operator": "is_null"}, [3]),
        ({"column": "age", "operator": "is_not_null"}, [1, 2, 4, 5]),
        ({"column": "name", "operator": "like", "value": "%o%"}, [2, 3]),
        ({"column": "name", "operator": "ilike", "value": "o'%"}, [4]),
        ({"column": "name", "operator": "=", "value": "O'Brien"}, [4]),
        ({"column": "score", "operator": ">", "value": 9}, [1, 4]),  # JSON number: numeric compare
        ({"column": "score", "operator": ">", "value": "9"}, []),  # string: string compare
        ({"column": "born", "operator": "<", "value": "1986-01-01"}, [3, 5]),
        ({"column": "active", "operator": "=", "value": True}, [1, 4, 5]),
        ({"column": "active", "operator": "=", "value": "false"}, [2]),
        ({"column": "id", "operator": "like", "value": "1%"}, [1]),
    ],
)
def test_every_operator_selects_exactly_the_matching_rows(con, condition, expected):
    assert ids(con, [condition]) == expected


def test_empty_string_counts_as_null_in_untyped_tables_only(con):
    cond = [{"column": "score", "operator": "is_null"}]
    assert ids(con, cond, untyped=True) == [3]
    assert ids(con, cond, untyped=False) == []


def test_conditions_are_anded_and_values_stay_literal(con):
    both = [
        {"column": "age", "operator": ">", "value": 20},
        {"column": "active", "operator": "=", "value": 1},
    ]
    assert ids(con, both) == [1, 4, 5]
    # a classic injection is just a string that matches no name
    assert ids(con, [{"column": "name", "operator": "=", "value": "x' OR '1'='1"}]) == []


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"order_by": "id; DROP TABLE t"}, "filters.order_by"),
        ({"order_by": "id DESC, (SELECT 1)"}, "filters.order_by"),
        ({"order_by": "1"}, "filters.order_by"),
        ({"order_by": "id DESCENDING"}, "filters.order_by"),
        ({"order_by": 'id") --'}, "filters.order_by"),
        ({"group_by": "name; DROP TABLE t"}, "filters.group_by"),
        ({"columns": ['id" FROM t; --']}, "filters.columns"),
        ({"columns": ["nope"]}, "filters.columns"),
        ({"where_conditions": [{"column": "age", "operator": ">", "value": "abc"}]}, W0),
        ({"where_conditions": [{"column": "born", "operator": ">", "value": "yesterdayish"}]}, W0),
        ({"where_conditions": [{"column": "active", "operator": "=", "value": "maybe"}]}, W0),
        ({"where_conditions": [{"column": "id", "operator": "~", "value": 1}]}, W0),
        ({"where_conditions": [{"column": "id", "operator": "in", "value": []}]}, W0),
        ({"where_conditions": [{"column": "id", "operator": "between", "value": [1]}]}, W0),
        ({"where_conditions": [{"column": "id", "operator": "=", "value": None}]}, W0),
        ({"where_conditions": [{"column": "ghost", "operator": "=", "value": 1}]}, W0 + ".column"),
        ({"limit": -1}, "filters.limit"),
        ({"limit": "ten"}, "filters.limit"),
        ({"limit": True}, "filters.limit"),
        ({"sql": "SELECT 1"}, "filters.sql"),
        ({"date_range": {"start": "not a date"}}, "filters.date_range.start"),
        ({"date_range": {"start": "2025-01-01", "end": "2024-01-01"}}, "filters.date_range"),
        ({"date_range": {"column": "name", "start": "2024-01-01"}}, None),  # a string column is cast: allowed
        ({"date_range": {"column": "active", "start": "2024-01-01"}}, "filters.date_range.column"),
        ({"group_by": "name", "columns": ["id"]}, "filters.columns"),
    ],
)
def test_bad_filters_name_the_field(con, filters, field):
    if field is None:
        run(con, filters)
        return
    with pytest.raises(FieldError) as info:
        run(con, filters)
    assert field in info.value.fields, info.value.fields
    assert con.execute("SELECT count(*) FROM t").fetchone() == (len(ROWS),)


def test_order_limit_columns_and_quoted_names(con):
    rows = run(con, {"columns": ["name", "id"], "order_by": '"age" DESC NULLS LAST, id', "limit": 2})
    assert rows == [("=cmd|' /C calc'!A0", 5), ("O'Brien", 4)]
    # limit without order is deterministic (stable order: the primary key, then insertion)
    assert run(con, {"columns": ["id"], "limit": 3}) == [(1,), (2,), (3,)]


def test_group_by_returns_group_columns_and_count(con):
    rows = run(con, {"group_by": "active", "order_by": "count DESC, active"})
    assert rows == [(True, 3), (False, 1), (None, 1)]
    _, clean, _ = spec.normalize("csv", {"group_by": ["active", "name"]}, None)
    assert compile_query(clean, source(con)).columns == ["active", "name", "count"]


def test_date_range_uses_the_change_time_and_a_date_end_includes_the_day(con):
    rows = run(
        con, {"columns": ["id"], "date_range": {"start": "2024-03-01", "end": "2024-12-31"}, "order_by": "id"}
    )
    assert rows == [(2,), (3,), (4,)]
    rows = run(
        con,
        {"columns": ["id"], "date_range": {"end": "2024-06-15T23:59:58Z"}, "order_by": "id"},
    )
    assert rows == [(1,), (2,)]
    rows = run(
        con, {"columns": ["id"], "date_range": {"column": "born", "start": "1985-12-31"}, "order_by": "id"}
    )
    assert rows == [(1,), (2,), (3,)]


def test_escape_formulas_prefixes_formula_strings_but_not_numbers(con):
    _, clean, options = spec.normalize("excel", {"columns": ["name", "score"], "order_by": "id"}, None)
    assert options["escape_formulas"] is True
    q = compile_query(clean, source(con))
    rows = con.execute(output_select(q, "excel", options), q.params).fetchall()
    assert rows[4] == ("'=cmd|' /C calc'!A0", "-5")
    assert rows[3] == ("O'Brien", "100")
    _, _, csv_options = spec.normalize("csv", {}, None)
    assert csv_options["escape_formulas"] is False


def test_options_are_checked_per_format():
    assert spec.normalize("csv", None, {"delimiter": "\\t"})[2]["delimiter"] == "\t"
    assert spec.normalize("json", None, None)[2] == {"json_format": "array"}
    for fmt, options, field in [
        ("csv", {"delimiter": ",,"}, "options.delimiter"),
        ("csv", {"encoding": "ebcdic"}, "options.encoding"),
        ("parquet", {"delimiter": ";"}, "options.delimiter"),
        ("json", {"json_format": "xml"}, "options.json_format"),
        ("excel", {"sheet_name": "a/b"}, "options.sheet_name"),
        ("csv", {"colour": "red"}, "options.colour"),
    ]:
        with pytest.raises(FieldError) as info:
            spec.normalize(fmt, None, options)
        assert field in info.value.fields
    with pytest.raises(FieldError) as info:
        spec.normalize("xml", None, None)
    assert info.value.fields == {"format": "Invalid format. Must be one of: csv, json, parquet, excel"}
    # the seed's template puts include_headers among the filters: it is an option of csv
    fmt, filters, options = spec.normalize("csv", {"include_headers": False, "columns": ["*"]}, None)
    assert filters == {} and options["include_headers"] is False
