"""Row filters: changedSince/changedUntil parsing and the SQL of where filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from entrepot.core.errors import InvalidInput
from entrepot.core.tables.filters import RowFilter, parse_time

NOW = datetime(2025, 6, 15, 12, 30, 45, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1717243200", datetime(2024, 6, 1, 12, 0, tzinfo=UTC)),
        ("1717243200.5", datetime(2024, 6, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2025-06-01T12:00:00+0000", datetime(2025, 6, 1, 12, tzinfo=UTC)),
        ("2025-06-01T14:00:00+02:00", datetime(2025, 6, 1, 12, tzinfo=UTC)),
        ("2025-06-01T12:00:00Z", datetime(2025, 6, 1, 12, tzinfo=UTC)),
        ("2025-06-01T12:00:00.123456", datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2025-06-01 12:00:00", datetime(2025, 6, 1, 12, tzinfo=UTC)),
        ("2025-06-01 12:00:00 UTC", datetime(2025, 6, 1, 12, tzinfo=UTC)),
        ("2025-06-01", datetime(2025, 6, 1, tzinfo=UTC)),
        ("now", NOW),
        ("today", datetime(2025, 6, 15, tzinfo=UTC)),
        ("yesterday", datetime(2025, 6, 14, tzinfo=UTC)),
        ("tomorrow", datetime(2025, 6, 16, tzinfo=UTC)),
        ("-1 days", NOW - timedelta(days=1)),
        ("-1 day", NOW - timedelta(days=1)),
        ("-2 hours", NOW - timedelta(hours=2)),
        ("-30 minutes", NOW - timedelta(minutes=30)),
        ("-45 sec", NOW - timedelta(seconds=45)),
        ("-1 week", NOW - timedelta(weeks=1)),
        ("+1 day", NOW + timedelta(days=1)),
        ("3 days ago", NOW - timedelta(days=3)),
        ("100 days ago", NOW - timedelta(days=100)),
        ("-1 day -2 hours", NOW - timedelta(days=1, hours=2)),
        ("-1 month", datetime(2025, 5, 15, 12, 30, 45, tzinfo=UTC)),
        ("-1 year", datetime(2024, 6, 15, 12, 30, 45, tzinfo=UTC)),
        ("yesterday -2 hours", datetime(2025, 6, 13, 22, tzinfo=UTC)),
        ("  -1 DAYS ", NOW - timedelta(days=1)),
    ],
)
def test_parse_time_accepts_unix_iso_and_relative_forms(text, expected):
    assert parse_time(text, NOW) == expected


def test_parse_time_reads_naive_isoformat_as_utc():
    naive = datetime(2025, 6, 1, 8, 15, 30, 250000)
    assert parse_time(naive.isoformat(), NOW) == naive.replace(tzinfo=UTC)


def test_parse_time_returns_utc_for_offsets():
    moment = parse_time("2025-06-01T12:00:00-05:00", NOW)
    assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
    assert moment == datetime(2025, 6, 1, 17, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["", "soon", "-1 fortnight", "2025-13-01", "1 day later", "next thursday", "abc123"]
)
def test_parse_time_rejects_unparseable_values(text):
    with pytest.raises(InvalidInput) as info:
        parse_time(text, NOW, name="changedSince")
    assert "changedSince" in info.value.message


def test_row_filter_reads_request_parameters():
    f = RowFilter.from_params(
        {
            "changedSince": "-1 days",
            "changedUntil": "1717243200",
            "whereColumn": "col1",
            "whereValues": ["a", ""],
            "whereOperator": "neq",
            "whereFilters": [{"column": "col2", "operator": "ge", "values": ["5"], "dataType": "INTEGER"}],
        },
        now=NOW,
    )
    assert f.changed_since == NOW - timedelta(days=1)
    assert f.changed_until == datetime(2024, 6, 1, 12, tzinfo=UTC)
    assert f.where_operator == "ne" and f.where_values == ("a", "")
    assert f.where_filters[0].operator == "ge" and not f.is_empty
    assert RowFilter.from_params(f.to_params()) == f  # the job reads back the same filter


def test_empty_filter_selects_everything():
    f = RowFilter.from_params({"whereOperator": "", "changedSince": ""})
    assert f.is_empty
    assert f.to_sql(["a"]) == ("TRUE", [])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"whereColumn": "a"}, "whereValues"),
        ({"whereValues": ["x"]}, "whereColumn"),
        ({"whereColumn": "a", "whereValues": ["x"], "whereOperator": "gt"}, "whereOperator"),
        ({"whereFilters": [{"column": "a", "operator": "like", "values": ["x"]}]}, "operator"),
        ({"whereFilters": [{"column": "a", "operator": "gt", "values": ["1", "2"]}]}, "exactly one"),
        ({"whereFilters": [{"operator": "eq", "values": ["1"]}]}, "column"),
        ({"changedUntil": "whenever"}, "changedUntil"),
    ],
)
def test_invalid_filters_are_rejected_with_the_reason(params, message):
    with pytest.raises(InvalidInput) as info:
        RowFilter.from_params(params, now=NOW)
    assert message in info.value.message


def test_unknown_filter_column_is_named():
    f = RowFilter(where_column="nope", where_values=("1",))
    with pytest.raises(InvalidInput) as info:
        f.to_sql(["id", "name"])
    assert "'nope'" in info.value.message and "id, name" in info.value.message


def _rows(f: RowFilter) -> list[str]:
    con = duckdb.connect()
    con.execute('CREATE TABLE t (id VARCHAR, n VARCHAR, "_timestamp" TIMESTAMPTZ)')
    con.execute(
        "INSERT INTO t VALUES ('a', '10', '2025-06-01 00:00:00+00'), ('b', '9', '2025-06-02 00:00:00+00'), "
        "('c', '100', '2025-06-03 00:00:00+00'), ('d', '', '2025-06-04 00:00:00+00')"
    )
    where, params = f.to_sql(["id", "n"])
    return [r[0] for r in con.execute(f"SELECT id FROM t WHERE {where} ORDER BY id", params).fetchall()]


def test_filter_sql_selects_the_right_rows():
    p = RowFilter.from_params
    assert _rows(p({"whereColumn": "id", "whereValues": ["a", "c"]})) == ["a", "c"]
    assert _rows(p({"whereColumn": "ID", "whereValues": ["a"], "whereOperator": "ne"})) == ["b", "c", "d"]
    assert _rows(p({"whereColumn": "n", "whereValues": [""]})) == ["d"]
    # since inclusive, until exclusive
    assert _rows(p({"changedSince": "2025-06-02T00:00:00", "changedUntil": "2025-06-04"})) == ["b", "c"]
    # strings compare as strings unless a numeric dataType is given
    assert _rows(p({"whereFilters": [{"column": "n", "operator": "gt", "values": ["5"]}]})) == ["b"]
    numeric = {"column": "n", "operator": "gt", "values": ["5"], "dataType": "INTEGER"}
    assert _rows(p({"whereFilters": [numeric]})) == ["a", "b", "c"]
    both = [
        {"column": "n", "operator": "ne", "values": ["10"]},
        {"column": "id", "operator": "le", "values": ["c"]},
    ]
    assert _rows(p({"whereFilters": both})) == ["b", "c"]
