"""PostgreSQL COPY text format: streaming decode, CSV handoff to DuckDB, row encoders."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import tracemalloc
import uuid
from collections.abc import Iterator

import duckdb
import pytest

from entrepot.core import errors as E
from entrepot.core.sql.pgtext import (
    decode_text_lines,
    encode_csv_row,
    encode_text_row,
    text_to_csv,
    to_text,
)

BS = "\\"

# A sample with every tricky construct: escapes, octal/hex, NULL vs empty, multibyte UTF-8,
# an escaped delimiter, CRLF and LF endings, and an end-of-data marker followed by junk.
TRICKY = (
    "1\tplain\t\\N\n"
    "2\ttab\\there\\\\back\t\r\n"
    "3\t\\x41\\102\\7\\x4g\t\\\\N\n"
    "4\tcaf\u00e9 \u20ac \U0001f600\ta\\\tb\n"
    "5\t\\b\\f\\n\\r\\v\\q\\.x\t\\xc3\\xa9\n"
    "\\.\n"
    "junk after the end\n"
).encode()
TRICKY_ROWS = [
    ["1", "plain", None],
    ["2", "tab\there\\back", ""],
    ["3", "AB\x07\x04g", "\\N"],  # \x takes 1-2 hex digits: \x4 then g
    ["4", "caf\u00e9 \u20ac \U0001f600", "a\tb"],
    ["5", "\b\f\n\r\vq.x", "\u00e9"],
]


def rows(data: bytes, **kwargs) -> list[list[str | None]]:
    return list(decode_text_lines([data], **kwargs))


def test_tricky_sample():
    assert rows(TRICKY) == TRICKY_ROWS


@pytest.mark.parametrize("cut", range(len(TRICKY) + 1))
def test_every_chunk_boundary(cut):
    assert list(decode_text_lines([TRICKY[:cut], TRICKY[cut:]])) == TRICKY_ROWS


def test_byte_by_byte_chunks():
    assert list(decode_text_lines(TRICKY[i : i + 1] for i in range(len(TRICKY)))) == TRICKY_ROWS


def test_empty_input_and_empty_chunks():
    assert rows(b"") == []
    assert list(decode_text_lines([b"", b"a", b"", b"\tb", b""])) == [["a", "b"]]


def test_last_line_without_newline_and_empty_lines():
    assert rows(b"a\tb\nc\td") == [["a", "b"], ["c", "d"]]
    assert rows(b"a\n\nb\n") == [["a"], [""], ["b"]]
    assert rows(b"a\r\nb") == [["a"], ["b"]]


def test_null_marker_only_when_whole_field_unescaped():
    assert rows(b"\\N\ta\\N\t\\\\N\tN") == [[None, "aN", "\\N", "N"]]


def test_custom_null_and_delimiter():
    assert rows(b"x|NULL|\\|y|", delimiter="|", null="NULL") == [["x", None, "|y", ""]]
    assert rows(b"a,,b", delimiter=",", null="") == [["a", None, "b"]]


def test_octal_and_hex_escapes():
    assert rows(b"\\101\\60\\x41\\x4\\xZ") == [["A0A\x04xZ"]]
    assert rows(b"\\777\\xfF", encoding="latin-1") == [["\xff\xff"]]  # octal keeps the low 8 bits


def test_escapes_build_multibyte_characters():
    assert rows(b"\\xe2\\x82\\xac") == [["\u20ac"]]


def test_other_encoding():
    assert rows("caf\u00e9".encode("latin-1"), encoding="latin-1") == [["caf\u00e9"]]


def test_end_marker_stops_and_drains():
    consumed = []

    def chunks() -> Iterator[bytes]:
        for part in (b"a\n\\.\n", b"more\n", b"bad \\\n"):
            consumed.append(part)
            yield part

    assert list(decode_text_lines(chunks())) == [["a"]]
    assert len(consumed) == 3  # the request body is read to its end
    assert rows(b"a\n\\.") == [["a"]]
    assert rows(b"a\r\n\\.\r\n") == [["a"]]


@pytest.mark.parametrize(
    ("data", "message", "line"),
    [
        (b"ok\nbad\\\n", "unterminated backslash escape", 2),
        (b"ok\nok\nbad\\", "unterminated backslash escape", 3),
        (b"bad\\\r\n", "unterminated backslash escape", 1),
        (b"a\rb\n", "literal carriage return found in data", 1),
        (b"ok\nabc\\.\n", "end-of-copy marker is not alone on its line", 2),
        (b"ok\n\xff\xfe\n", 'invalid byte sequence for encoding "UTF8": 0xff', 2),
        (b"\\000\n", 'invalid byte sequence for encoding "UTF8": 0x00', 1),
    ],
)
def test_errors_carry_line_numbers(data, message, line):
    with pytest.raises(E.InvalidInput) as info:
        rows(data)
    assert message in info.value.message
    assert f"(line {line})" in info.value.message
    assert info.value.details["line"] == line
    assert info.value.code.startswith("sql.")


@pytest.mark.parametrize("delimiter", ["ab", "\\", "a", "1", "\n", "\u00e9"])
def test_bad_delimiters(delimiter):
    with pytest.raises(E.InvalidInput):
        rows(b"x", delimiter=delimiter)


# --- CSV handoff --------------------------------------------------------------------------------


def read_back(csv_bytes: bytes, ncols: int, tmp_path) -> list[tuple]:
    path = tmp_path / "rows.csv"
    path.write_bytes(csv_bytes)
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(ncols))
    conn = duckdb.connect()
    return conn.sql(
        f"SELECT * FROM read_csv('{path}', columns={{{columns}}}, header=false, auto_detect=false, "
        "delim=',', quote='\"', escape='\"', nullstr='', allow_quoted_nulls=false)"
    ).fetchall()


def test_text_to_csv_round_trip_through_duckdb(tmp_path):
    out = io.BytesIO()
    assert text_to_csv([TRICKY], out, expected_columns=3) == 5
    assert read_back(out.getvalue(), 3, tmp_path) == [tuple(r) for r in TRICKY_ROWS]


def test_null_and_empty_string_stay_distinct(tmp_path):
    data = b'\\N\t\tx\n\t\\N\t"q,"\n \t \\r\\n\t\\N\n'
    out = io.BytesIO()
    assert text_to_csv([data], out, expected_columns=3) == 3
    assert out.getvalue() == b',"",x\n"",,"""q,"""\n ," \r\n",\n'
    assert read_back(out.getvalue(), 3, tmp_path) == [
        (None, "", "x"),
        ("", None, '"q,"'),
        (" ", " \r\n", None),
    ]


def test_single_column_null_and_empty(tmp_path):
    out = io.BytesIO()
    assert text_to_csv([b"a\n\\N\n\n"], out, expected_columns=1) == 3
    assert read_back(out.getvalue(), 1, tmp_path) == [("a",), (None,), ("",)]


def test_column_count_errors():
    with pytest.raises(E.InvalidInput) as info:
        text_to_csv([b"1\t2\n1\t2\t3\n"], io.BytesIO(), expected_columns=2)
    assert info.value.message == "extra data after last expected column (line 2)"
    with pytest.raises(E.InvalidInput) as info:
        text_to_csv([b"1\t2\t3\n1\t2\n"], io.BytesIO(), expected_columns=["a", "b", "c"])
    assert info.value.message == 'missing data for column "c" (line 2)'
    with pytest.raises(E.InvalidInput) as info:
        text_to_csv([b"1\n"], io.BytesIO(), expected_columns=3)
    assert info.value.message == "missing data for column number 2 (line 1)"
    assert text_to_csv([b"1\n1\t2\n"], io.BytesIO()) == 2  # no check without expected_columns


class _Sink:
    size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def test_stream_peak_allocation_is_bounded():
    """tracemalloc's peak stays far below the data (tracemalloc is slow, so 20k rows here)."""
    row_count, chunk_rows = 20_000, 500
    plain = b"12345\t" + b"some text without escapes " * 10 + b"\n"
    escaped = b"12345\tsome text with \\t an escape and a \\\\ more\n"
    chunk = (plain * 9 + escaped) * (chunk_rows // 10)
    total = len(chunk) * (row_count // chunk_rows)
    sink = _Sink()
    tracemalloc.start()
    try:
        chunks = (chunk[:7] + chunk[7:] for _ in range(row_count // chunk_rows))  # fresh objects
        assert text_to_csv(chunks, sink, expected_columns=2) == row_count  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.size > total * 0.9
    assert peak < 8 * len(chunk) and peak < total / 5, (peak, len(chunk), total)  # a few chunks' worth


_RSS_SCRIPT = """
import resource, sys
from entrepot.core.sql.pgtext import text_to_csv

class Sink:
    size = 0
    def write(self, data):
        self.size += len(data)
        return len(data)

row = b"\\\\N\\t" + b"x" * 400 + b"\\t" + b"y\\\\ty" * 10 + b"\\n"
chunk = row * 1000
text_to_csv([chunk], Sink(), expected_columns=3)  # warm up
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sink = Sink()
rows = text_to_csv((chunk for _ in range(200)), sink, expected_columns=3)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(rows, len(chunk) * 200, sink.size, (after - before) * 1024)
"""


def test_200k_row_stream_keeps_memory_bounded():
    """200k rows (~100 MB) through text_to_csv in a fresh process: its peak RSS barely moves."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _RSS_SCRIPT], capture_output=True, text=True, check=True)
    rows, data_size, out_size, growth = map(int, done.stdout.split())
    assert rows == 200_000
    assert data_size > 80_000_000 and out_size > data_size * 0.9
    assert growth < 16 * 1024 * 1024, growth


# --- encoding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        (True, "t"),
        (False, "f"),
        (42, "42"),
        (-7, "-7"),
        (1.5, "1.5"),
        (1e100, "1e+100"),
        (1e15, "1e+15"),
        (123456789012345.0, "123456789012345"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1.2345e-7, "1.2345e-07"),
        (0.1 + 0.2, "0.30000000000000004"),
        (100.0, "100"),
        (-0.0, "-0"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        (float("nan"), "NaN"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (decimal.Decimal("1E+2"), "100"),
        (decimal.Decimal("12.50"), "12.50"),
        (dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC), "2024-05-01 10:00:00+00"),
        (
            dt.datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2024-05-01 10:00:00.5+00",
        ),
        (dt.datetime(2024, 5, 1, 10, 0, 1, 123), "2024-05-01 10:00:01.000123"),
        (dt.date(2024, 5, 1), "2024-05-01"),
        (dt.time(9, 5, 7), "09:05:07"),
        (dt.timedelta(days=2, hours=1), "2 days 01:00:00"),
        (dt.timedelta(hours=-1), "-01:00:00"),
        (dt.timedelta(days=1), "1 day"),
        (b"\x01\xff", "\\x01ff"),
        ({"a": [1, "\u00e9"]}, '{"a": [1, "\u00e9"]}'),
        ([1, 2], "[1, 2]"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    ],
)
def test_to_text(value, text):
    assert to_text(value) == text


def test_encode_text_row_escapes():
    line = encode_text_row([1, "a\tb\\c\nd\re", None, True, b"\x01", "", "\b\f\v"])
    assert line == "1\ta\\tb\\\\c\\nd\\re\t\\N\tt\t\\\\x01\t\t\\b\\f\\v\n"
    assert encode_text_row(["a|b", None], delimiter="|", null="") == "a\\|b|\n"


def test_encode_decode_round_trip():
    values = ["x", "tab\t", "nl\n", "cr\r", "bs\\", "\\N", "", None, "caf\u00e9", "a|b", "\\."]
    line = encode_text_row(values).encode()
    assert rows(line) == [values]
    line = encode_text_row(values, delimiter="|", null="NULL").encode()
    assert rows(line, delimiter="|", null="NULL") == [values]


def test_carto_copyto_lines():
    body = "".join(encode_text_row([i, f"SRID=4326;POINT({i} {i})"]) for i in range(1, 11))
    assert body.splitlines(keepends=True)[0] == "1\tSRID=4326;POINT(1 1)\n"
    assert body.endswith("10\tSRID=4326;POINT(10 10)\n")


def test_encode_csv_row_quoting():
    assert encode_csv_row(["a", "", None, "b,c", 'q"', " s ", "l\nm", "r\r", 1.5, True]) == (
        'a,"",,"b,c","q""", s ,"l\nm","r\r",1.5,t\n'
    )
    assert encode_csv_row(["\\."]) == '"\\."\n'
    assert encode_csv_row(["\\.", "x"]) == "\\.,x\n"
    assert encode_csv_row([None, "NULL", ""], null="NULL") == 'NULL,"NULL",\n'
    assert encode_csv_row(["a;b", "c"], delimiter=";") == '"a;b";c\n'
    assert encode_csv_row(["it's", "x"], quote="'") == "'it''s',x\n"
    assert encode_csv_row(['a"b\\c'], escape="\\") == '"a\\"b\\\\c"\n'
    assert encode_csv_row(["id", "the geom"], header=True) == "id,the geom\n"
    with pytest.raises(E.InvalidInput):
        encode_csv_row([None], header=True)


def test_encode_csv_row_reads_back_in_duckdb(tmp_path):
    values = ["", None, 'x"y', "a,b", "l1\nl2", " ", "caf\u00e9"]
    assert read_back(encode_csv_row(values).encode(), len(values), tmp_path) == [tuple(values)]
