"""CSV staging and writing through DuckDB in Keboola-style dialects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from entrepot.core import errors as E
from entrepot.core.engine import CsvDialect, Engine, stage_csv, write_csv


@pytest.fixture
def cur(engine: Engine) -> Iterator[duckdb.DuckDBPyConnection]:
    with engine.lake("acme").cursor() as cursor:
        yield cursor


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    return path


def _temp_tables(cur: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in cur.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()]


def test_stage_csv_default_dialect_keeps_order_and_strings(
    cur: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = _write(tmp_path, b'id,name,"odd ""col"""\n2,"b, ""quoted""",\n1,"multi\nline",0012\n')
    staged = stage_csv(cur, path, CsvDialect(), table_name="s")
    assert staged.columns == ["id", "name", 'odd "col"']
    assert staged.rows == 2
    assert cur.execute(f"SELECT * FROM {staged.ref}").fetchall() == [
        ("2", 'b, "quoted"', ""),
        ("1", "multi\nline", "0012"),
    ]


def test_stage_csv_custom_delimiter_enclosure_and_escape(
    cur: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = _write(tmp_path, b"a;b\n'x;y';'it\\'s'\n")
    staged = stage_csv(cur, path, CsvDialect(delimiter=";", enclosure="'", escape="\\"), table_name="s")
    assert cur.execute(f"SELECT a, b FROM {staged.ref}").fetchall() == [("x;y", "it's")]


def test_stage_csv_without_enclosure(cur: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = _write(tmp_path, b'a\tb\n"x\t1\n')
    staged = stage_csv(cur, path, CsvDialect(delimiter="\t", enclosure="", escape=""), table_name="s")
    assert cur.execute(f"SELECT * FROM {staged.ref}").fetchall() == [('"x', "1")]


def test_stage_csv_without_header(cur: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = _write(tmp_path, b"1,a\n2,b\n")
    staged = stage_csv(cur, path, CsvDialect(header=False), table_name="s", columns=["id", "name"])
    assert (staged.columns, staged.rows) == (["id", "name"], 2)
    assert cur.execute(f"SELECT id, name FROM {staged.ref}").fetchall() == [("1", "a"), ("2", "b")]
    auto = stage_csv(cur, path, CsvDialect(header=False), table_name="s2")
    assert auto.columns == ["column_1", "column_2"]


def test_stage_csv_empty_values_are_empty_strings_unless_asked(
    cur: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = _write(tmp_path, b'a,b\n,""\n')
    assert cur.execute(
        f"SELECT * FROM {stage_csv(cur, path, CsvDialect(), table_name='s').ref}"
    ).fetchall() == [("", "")]
    nulls = stage_csv(cur, path, CsvDialect(), table_name="n", empty_as_null=True)
    assert cur.execute(f"SELECT * FROM {nulls.ref}").fetchall() == [(None, None)]


def test_stage_csv_typed(cur: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = _write(tmp_path, b"n,d\n1,2024-01-02\n2,2024-01-03\n")
    staged = stage_csv(cur, path, CsvDialect(), table_name="s", all_varchar=False)
    types = [r[1] for r in cur.execute(f"DESCRIBE {staged.ref}").fetchall()]
    assert types == ["BIGINT", "DATE"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"a,b\n1,2\n3\n", r"line 3: Expected Number of Columns: 2 Found: 1"),
        (b"a,b\n1,2\n3,4,5\n", r"line 3: Expected Number of Columns: 2 Found: 3"),
        (b'a,b\n1,"2\n3,4\n', r"line 2: .*unterminated quote"),
        (b"a,b\n1,\xff\xfe\n", r"line 2: Invalid unicode"),
        (b"a,a\n1,2\n", r"column 'a' twice"),
        (b"", r"empty"),
    ],
)
def test_malformed_csv_is_invalid_input_and_leaves_nothing(
    cur: duckdb.DuckDBPyConnection, tmp_path: Path, data: bytes, reason: str
) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(E.InvalidInput, match=reason) as info:
        stage_csv(cur, path, CsvDialect(), table_name="s")
    assert "Possible fixes" not in info.value.message
    assert _temp_tables(cur) == []


def test_column_count_mismatch_with_given_names(cur: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = _write(tmp_path, b"1,2\n")
    with pytest.raises(E.InvalidInput, match="2 columns but 3"):
        stage_csv(cur, path, CsvDialect(header=False), table_name="s", columns=["a", "b", "c"])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"delimiter": ""},
        {"delimiter": ",,"},
        {"enclosure": "''"},
        {"enclosure": ","},
        {"enclosure": "", "escape": "\\"},
    ],
)
def test_invalid_dialects(kwargs: dict[str, str]) -> None:
    with pytest.raises(E.InvalidInput):
        CsvDialect(**kwargs)  # type: ignore[arg-type]


def test_escape_equal_to_enclosure_means_doubling() -> None:
    assert CsvDialect(escape='"').escape is None
    assert CsvDialect(escape="").escape is None


def test_write_csv_round_trip(cur: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    cur.execute("CREATE TABLE t (id VARCHAR, txt VARCHAR)")
    cur.execute("""INSERT INTO t VALUES ('1', 'a;"b"'), ('2', 'multi\nline'), ('3', '')""")
    out = tmp_path / "out.csv"
    dialect = CsvDialect(delimiter=";")
    assert write_csv(cur, "SELECT * FROM t ORDER BY id", out, dialect, quote_all=True) == 3
    assert out.read_text().startswith('"id";"txt"\n"1";"a;""b"""\n')
    staged = stage_csv(cur, out, dialect, table_name="back")
    assert (
        cur.execute(f"SELECT * FROM {staged.ref}").fetchall()
        == cur.execute("SELECT * FROM t ORDER BY id").fetchall()
    )


def test_invalid_utf8_in_the_header(cur: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = _write(tmp_path, b"a,\xff\n1,2\n")
    with pytest.raises(E.InvalidInput, match="line 1: it is not valid UTF-8"):
        stage_csv(cur, path, CsvDialect(), table_name="s")
    assert _temp_tables(cur) == []


def test_header_search_reads_a_bounded_prefix_and_allows_big_first_fields(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from entrepot.core.engine import CsvDialect, stage_csv
    from entrepot.core.engine.csv import FIRST_RECORD_MAX

    wide = tmp_path / "wide.csv"
    wide.write_text("1," + "x" * 200_000 + "\n2,y\n")
    with engine.cursor("acme") as cur:
        staged = stage_csv(cur, wide, CsvDialect(header=False), table_name="w", columns=["id", "v"])
        assert staged.rows == 2
    endless = tmp_path / "endless.csv"
    with endless.open("wb") as f:
        f.write(b"a" * (FIRST_RECORD_MAX + 10))
    with engine.cursor("acme") as cur, pytest.raises(E.InvalidInput, match="first row"):
        stage_csv(cur, endless, CsvDialect(), table_name="e")
