"""Lake tables: references, columns, existence, names, stats and the one transaction helper."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from entrepot.core import errors as E
from entrepot.core.engine import Engine, Lake
from entrepot.core.engine.tables import (
    Column,
    TableRef,
    columns,
    exists,
    stats,
    stored_name,
    table_names,
    transaction,
)

MAIN = "in.c-main"
T = TableRef(MAIN, "Items")


@pytest.fixture
def lake(engine: Engine) -> Lake:
    lake = engine.lake("acme")
    with lake.cursor() as cur:
        cur.execute(f'CREATE SCHEMA "{MAIN}"')
        cur.execute(f'CREATE TABLE {T.sql} (id INTEGER, "Name" VARCHAR, _timestamp TIMESTAMPTZ)')
        cur.execute(f"INSERT INTO {T.sql} VALUES (1, 'a', now()), (2, 'b', now()), (3, 'c', now())")
        cur.execute(f'CREATE TABLE "{MAIN}".other (x DOUBLE)')
    return lake


@pytest.fixture
def cur(lake: Lake) -> Iterator[duckdb.DuckDBPyConnection]:
    with lake.cursor() as cur:
        yield cur


def _count(cur: duckdb.DuckDBPyConnection) -> int:
    row = cur.execute(f"SELECT count(*) FROM {T.sql}").fetchone()
    assert row is not None
    return int(row[0])


def test_ref_quotes_both_parts() -> None:
    assert TableRef("in.c-main", "my_table").sql == '"in.c-main"."my_table"'
    assert TableRef('we"ird', 'ta"ble').sql == '"we""ird"."ta""ble"'
    assert TableRef("a", "b") == TableRef("a", "b") and len({TableRef("a", "b"), TableRef("a", "b")}) == 1


def test_columns_in_order_with_their_types(cur: duckdb.DuckDBPyConnection) -> None:
    expected = [
        Column("id", "INTEGER"),
        Column("Name", "VARCHAR"),
        Column("_timestamp", "TIMESTAMP WITH TIME ZONE"),
    ]
    assert columns(cur, T) == expected
    assert columns(cur, TableRef("IN.C-MAIN", "items")) == expected  # names compare case-insensitively
    assert columns(cur, TableRef(MAIN, "missing")) == []
    assert columns(cur, TableRef("in.c-none", "Items")) == []


def test_exists_and_stored_name(cur: duckdb.DuckDBPyConnection) -> None:
    assert exists(cur, T) and exists(cur, TableRef("IN.C-MAIN", "ITEMS"))
    assert not exists(cur, TableRef(MAIN, "missing"))
    assert not exists(cur, TableRef("in.c-none", "Items"))
    assert stored_name(cur, TableRef("IN.C-MAIN", "items")) == "Items"
    assert stored_name(cur, TableRef(MAIN, "missing")) is None


def test_table_names_of_a_schema(cur: duckdb.DuckDBPyConnection) -> None:
    assert sorted(table_names(cur, MAIN)) == ["Items", "other"]
    assert sorted(table_names(cur, "IN.C-MAIN")) == ["Items", "other"]
    assert table_names(cur, "in.c-none") == []


def test_stats_count_rows_and_data_bytes(cur: duckdb.DuckDBPyConnection) -> None:
    assert stats(cur, T)[0] == 3  # (a few rows may stay inlined in the lake's catalog: no data file)
    cur.execute(f"INSERT INTO {T.sql} SELECT range, 'x', now() FROM range(10000)")
    rows, size = stats(cur, T)
    assert rows == 10003 and size > 0
    assert stats(cur, TableRef("IN.C-MAIN", "items")) == (rows, size)
    assert stats(cur, TableRef(MAIN, "other")) == (0, 0)


def test_transaction_commits(cur: duckdb.DuckDBPyConnection) -> None:
    with transaction(cur):
        cur.execute(f"DELETE FROM {T.sql} WHERE id = 1")
    assert _count(cur) == 2


@pytest.mark.parametrize("error", [E.InvalidInput("no"), KeyboardInterrupt()])
def test_transaction_rolls_back_on_any_error(cur: duckdb.DuckDBPyConnection, error: BaseException) -> None:
    with pytest.raises(type(error)), transaction(cur):
        cur.execute(f"DELETE FROM {T.sql}")
        cur.execute(f"INSERT INTO {T.sql} (id) VALUES (9)")
        raise error
    assert _count(cur) == 3
    with transaction(cur):  # no transaction was left open
        pass


def test_transaction_rolls_back_after_a_failed_statement(cur: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(duckdb.ConversionException), transaction(cur):
        cur.execute(f"DELETE FROM {T.sql}")
        cur.execute(f"INSERT INTO {T.sql} (id) VALUES ('not a number')")
    assert _count(cur) == 3


def _lose_a_race(lake: Lake, writer: duckdb.DuckDBPyConnection, **options: bool) -> None:
    """A transaction on ``writer`` whose commit fails: another cursor deleted the same row first."""
    with lake.cursor(write=False) as other, transaction(writer, **options):
        writer.execute(f"DELETE FROM {T.sql} WHERE id = 1")
        other.execute(f"DELETE FROM {T.sql} WHERE id = 1")


def test_a_refused_commit_is_a_domain_error_and_rolls_back(
    lake: Lake, cur: duckdb.DuckDBPyConnection
) -> None:
    with pytest.raises(E.Conflict) as caught:
        _lose_a_race(lake, cur)
    assert caught.value.code == "engine.conflict"
    assert _count(cur) == 2  # the other cursor's delete, not this one's
    with transaction(cur):
        pass


def test_untranslated_commit_errors_reach_the_caller_as_duckdb_errors(
    lake: Lake, cur: duckdb.DuckDBPyConnection
) -> None:
    with pytest.raises(duckdb.TransactionException, match="Failed to commit"):
        _lose_a_race(lake, cur, translate_errors=False)
    assert _count(cur) == 2
    with transaction(cur, translate_errors=False):
        pass
