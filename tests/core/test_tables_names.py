"""Keboola naming rules and CSV options of table loads."""

from __future__ import annotations

import pytest

from entrepot.core.errors import InvalidInput, NotFound
from entrepot.core.tables.load import csv_dialect
from entrepot.core.tables.names import (
    parse_bucket_id,
    parse_table_id,
    validate_bucket_name,
    validate_column_names,
    validate_table_name,
)


def test_bucket_and_table_ids_parse() -> None:
    assert parse_bucket_id("in.c-py-test-buckets") == ("in", "py-test-buckets")
    assert parse_table_id("out.c-main.some-table") == ("out.c-main", "some-table")


@pytest.mark.parametrize(
    "value", ["some-totally-non-existent-bucket", "sys.c-x", "in.main", "in.c-", "in.c-a.b"]
)
def test_unparseable_bucket_id_is_not_found(value: str) -> None:
    with pytest.raises(NotFound):
        parse_bucket_id(value)


@pytest.mark.parametrize(
    "value", ["some-totally-non-existent-table", "in.c-main", "in.c-main.a.b", "in.main.t", ""]
)
def test_unparseable_table_id_is_not_found(value: str) -> None:
    with pytest.raises(NotFound):
        parse_table_id(value)


def test_names_are_validated() -> None:
    assert validate_bucket_name("c-main") == "main"
    assert validate_table_name("some_table-1") == "some_table-1"
    for bad in ("", "a b", "a.b", "x" * 97):
        with pytest.raises(InvalidInput):
            validate_table_name(bad)
        with pytest.raises(InvalidInput):
            validate_bucket_name(bad)


@pytest.mark.parametrize("names", [["a", "A"], ["a", ""], ["a b"], ["_timestamp"], ["_TIMESTAMP_x"]])
def test_bad_column_names_are_rejected(names: list[str]) -> None:
    with pytest.raises(InvalidInput):
        validate_column_names(names)


def test_csv_dialect_rules() -> None:
    assert csv_dialect("\\t").delimiter == "\t"
    assert csv_dialect(None, None, "").enclosure == '"'
    assert csv_dialect(",", "", "").enclosure == ""
    with pytest.raises(InvalidInput):
        csv_dialect(",", '"', "\\")


def test_names_with_a_trailing_newline_are_refused():
    from entrepot.core.tables import names

    with pytest.raises(InvalidInput):
        names.validate_table_name("t\n")
    with pytest.raises(InvalidInput):
        names.validate_bucket_name("b\n")
    with pytest.raises(InvalidInput):
        names.validate_column_names(["c\n"])
    with pytest.raises(NotFound):
        names.parse_table_id("in.c-b.t\n")
