"""DuckDB's CSV errors in the user's words (``csv_error``/``row_error``): line, column, type, value; clipped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from entrepot.core import errors as E
from entrepot.core.engine import CsvDialect, Engine, stage_csv
from entrepot.core.engine.csv import row_error


@pytest.fixture
def cur(engine: Engine) -> Iterator[duckdb.DuckDBPyConnection]:
    with engine.lake("acme").cursor() as cursor:
        yield cursor


def test_row_error_words_a_bad_value_and_clips_it() -> None:
    err = row_error(2, column="id", expected="INTEGER", value="x" * 5000)
    assert err.message == f'invalid CSV on line 2: column "id" expects INTEGER, found "{"x" * 200}…"'
    assert err.code == "csv.invalid"
    assert err.details == {"line": 2, "column": "id", "expectedType": "INTEGER", "value": "x" * 200 + "…"}
    assert row_error(7, "Expected Number of Columns: 2 Found: 3", what="COPY data").message == (
        "invalid COPY data on line 7: Expected Number of Columns: 2 Found: 3"
    )


def test_stage_csv_names_a_huge_ragged_row_briefly(cur: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"a,b\n1,2\n3," + b"y" * 1_500_000 + b",5\n")
    with pytest.raises(E.InvalidInput) as info:
        stage_csv(cur, path, CsvDialect(), table_name="s")
    err = info.value
    assert err.message == "invalid CSV on line 3: Expected Number of Columns: 2 Found: 3"
    assert err.details["line"] == 3
    assert len(str(err.details)) < 1500, len(str(err.details))
    assert "…" in err.details["detail"]


def test_stage_csv_conversion_error_names_the_header_column(
    cur: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """Typed staging detects types from a sample; a later value that does not fit is named."""
    path = tmp_path / "in.csv"
    rows = "".join(f"{i},v\n" for i in range(30_000))
    path.write_text(f"id,name\n{rows}oops,w\n")
    with pytest.raises(E.InvalidInput) as info:
        stage_csv(cur, path, CsvDialect(), table_name="s", all_varchar=False)
    assert info.value.message == 'invalid CSV on line 30002: column "id" expects BIGINT, found "oops"'
    assert info.value.details["column"] == "id"
