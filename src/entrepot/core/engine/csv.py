"""CSV in and out through DuckDB: a Keboola-style dialect, strict staging into a temp table, writing.

Staging never guesses the layout: the header (first record) gives the column names and count,
then DuckDB parses the file strictly with exactly those columns, so ragged rows, unterminated
quotes and invalid UTF-8 fail with DuckDB's reason and the line number instead of being
skipped or padded. A failed staging leaves nothing behind (``CREATE TABLE AS`` is atomic).
"""

from __future__ import annotations

import csv as pycsv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from entrepot.core import errors as E
from entrepot.core.engine.statements import first_line, quote_ident, quote_literal, translate


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file is written: Keboola's ``delimiter``, ``enclosure`` and ``escapedBy``.

    An empty ``enclosure`` means values are never quoted; an empty or ``None`` ``escape`` (or one
    equal to the enclosure) means an enclosure inside a value is doubled, as in RFC 4180.
    """

    delimiter: str = ","
    enclosure: str = '"'
    escape: str | None = None
    header: bool = True

    def __post_init__(self) -> None:
        escape = self.escape or None
        if escape is not None and escape == self.enclosure:
            escape = None
        object.__setattr__(self, "escape", escape)
        if len(self.delimiter) != 1 or self.delimiter in "\r\n\x00":
            raise E.InvalidInput(
                f"invalid CSV delimiter {self.delimiter!r}: use exactly one character (not a line break or NUL)",
                code="csv.invalidDelimiter",
            )
        for label, value in (("enclosure", self.enclosure), ("escape character", escape or "")):
            if len(value) > 1 or (value and (not value.isascii() or value in "\r\n\x00")):
                raise E.InvalidInput(
                    f"invalid CSV {label} {value!r}: use one ASCII character (not a line break or NUL) or none",
                    code="csv.invalidEnclosure",
                )
            if value and value == self.delimiter:
                raise E.InvalidInput(
                    f"the CSV {label} must differ from the delimiter {self.delimiter!r}",
                    code="csv.invalidEnclosure",
                )
        if escape is not None and not self.enclosure:
            raise E.InvalidInput(
                "a CSV escape character needs an enclosure; leave escapedBy empty for unenclosed values",
                code="csv.invalidEnclosure",
            )

    def duckdb_options(self) -> str:
        """The ``delim``/``quote``/``escape`` options of ``read_csv`` for this dialect."""
        quote = self.enclosure
        escape = (self.escape or self.enclosure) if self.enclosure else ""
        delim = quote_literal(self.delimiter)
        return f"delim={delim}, quote={quote_literal(quote)}, escape={quote_literal(escape)}"

    def copy_options(self) -> str:
        """The ``DELIMITER``/``QUOTE``/``ESCAPE`` options of ``COPY ... TO`` for this dialect."""
        quote = self.enclosure
        escape = (self.escape or self.enclosure) if self.enclosure else ""
        return (
            f"DELIMITER {quote_literal(self.delimiter)}, QUOTE {quote_literal(quote)}, "
            f"ESCAPE {quote_literal(escape)}, HEADER {'true' if self.header else 'false'}"
        )


@dataclass(frozen=True)
class StagedCsv:
    """A CSV file loaded into a temporary table of the cursor's connection."""

    name: str
    columns: list[str]
    rows: int

    @property
    def ref(self) -> str:
        """The quoted, qualified name to use in SQL (``temp.main."name"``)."""
        return f"temp.main.{quote_ident(self.name)}"


def stage_csv(
    cursor: duckdb.DuckDBPyConnection,
    path: str | Path,
    dialect: CsvDialect,
    *,
    table_name: str,
    columns: Sequence[str] | None = None,
    all_varchar: bool = True,
    empty_as_null: bool = False,
    max_columns: int | None = None,
) -> StagedCsv:
    """Load the local CSV file ``path`` into the temp table ``table_name``, keeping column and row order.

    Column names come from ``columns`` if given (a header row is then skipped), else from the
    header, else ``column_1..column_N``. With ``all_varchar`` every value is a string and an empty
    value is ``''`` unless ``empty_as_null``; otherwise DuckDB detects the types and empty is NULL.
    A file with more than ``max_columns`` columns is refused before DuckDB reads it (DuckDB runs
    out of memory on a few thousand columns instead of saying so).
    """
    first = _first_record(Path(path), dialect)
    if max_columns is not None and first is not None and len(first) > max_columns:
        raise E.InvalidInput(
            f"the CSV file has {len(first)} columns; a table has at most {max_columns}",
            code="csv.tooManyColumns",
        )
    if columns is not None:
        names = list(columns)
        if first is not None and len(first) != len(names):
            raise E.InvalidInput(
                f"the CSV file has {len(first)} columns but {len(names)} column names were given",
                code="csv.columnCount",
            )
    elif dialect.header:
        if first is None:
            raise E.InvalidInput(
                "the CSV file is empty; a header row with column names is expected", code="csv.empty"
            )
        names = first
    else:
        if first is None:
            raise E.InvalidInput("the CSV file is empty; give the column names", code="csv.empty")
        names = [f"column_{i}" for i in range(1, len(first) + 1)]
    _check_names(names)
    internal = [f"c{i}" for i in range(len(names))]
    options = [
        dialect.duckdb_options(),
        f"header={'true' if dialect.header else 'false'}",
        "encoding='utf-8'",
        # never inflate by file name (x.csv.zst, x.csv.gz): callers hand over plain CSV, gzip
        # already inflated with a bound (core.inflate), so a zstd bomb cannot bypass that bound
        "compression='none'",
        "strict_mode=true",
        "null_padding=false",
        "ignore_errors=false",
    ]
    if all_varchar:
        spec = ", ".join(f"{quote_literal(c)}: 'VARCHAR'" for c in internal)
        options += ["auto_detect=false", f"columns={{{spec}}}"]
        if not empty_as_null:
            options.append("allow_quoted_nulls=false")
        wrap = "{}" if empty_as_null else "coalesce({}, '')"
    else:
        options += ["auto_detect=true", "skip=0", f"names=[{', '.join(map(quote_literal, internal))}]"]
        wrap = "{}"
    select = ", ".join(
        f"{wrap.format(quote_ident(c))} AS {quote_ident(n)}" for c, n in zip(internal, names, strict=True)
    )
    source = f"read_csv({quote_literal(str(path))}, {', '.join(options)})"
    ref = f"temp.main.{quote_ident(table_name)}"
    try:
        cursor.execute(f"CREATE TEMP TABLE {quote_ident(table_name)} AS SELECT {select} FROM {source}")
        row = cursor.execute(f"SELECT count(*) FROM {ref}").fetchone()
    except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
        raise csv_error(exc, dict(zip(internal, names, strict=True))) from exc
    except duckdb.Error as exc:
        raise translate(exc) from exc
    return StagedCsv(name=table_name, columns=names, rows=int(row[0]) if row else 0)


def write_csv(
    cursor: duckdb.DuckDBPyConnection,
    query: str,
    path: str | Path,
    dialect: CsvDialect,
    *,
    quote_all: bool = False,
) -> int:
    """Write the result of ``query`` to ``path`` as CSV in ``dialect``; returns the number of rows."""
    options = f"FORMAT csv, {dialect.copy_options()}"
    if quote_all and dialect.enclosure:
        options += ", FORCE_QUOTE *"
    try:
        row = cursor.execute(f"COPY ({query}) TO {quote_literal(str(path))} ({options})").fetchone()
    except duckdb.Error as exc:
        raise translate(exc) from exc
    return int(row[0]) if row else 0


def _first_record(path: Path, dialect: CsvDialect) -> list[str] | None:
    """The first CSV record of ``path`` (None for an empty file), parsed in ``dialect``."""
    if dialect.enclosure:
        fmt: dict[str, Any] = {
            "quotechar": dialect.enclosure,
            "doublequote": dialect.escape is None,
            "escapechar": dialect.escape,
        }
    else:
        fmt = {"quoting": pycsv.QUOTE_NONE}
    try:  # only a bounded prefix is read: a file that is one endless line must not fill memory
        with path.open("rb") as f:
            head = f.read(FIRST_RECORD_MAX + 1)
    except FileNotFoundError as exc:
        raise E.InvalidInput(f"the CSV file {path.name!r} does not exist", code="csv.notFound") from exc
    # undecodable bytes after the first record are DuckDB's to report, with their line
    text = head.decode("utf-8-sig", errors="surrogateescape")
    buffer = io.StringIO(text, newline="")
    limit = pycsv.field_size_limit()
    try:
        pycsv.field_size_limit(FIRST_RECORD_MAX)
        record = next(pycsv.reader(buffer, delimiter=dialect.delimiter, strict=True, **fmt), None)
    except pycsv.Error as exc:
        if len(head) > FIRST_RECORD_MAX:
            raise _first_row_too_long() from exc
        raise E.InvalidInput(f"invalid CSV on line 1: {exc}", code="csv.invalid") from exc
    finally:
        pycsv.field_size_limit(limit)
    if len(head) > FIRST_RECORD_MAX and buffer.tell() >= len(text):
        raise _first_row_too_long()
    if record is not None and any(_SURROGATE.search(value) for value in record):
        raise E.InvalidInput(
            "invalid CSV on line 1: it is not valid UTF-8; convert the file to UTF-8", code="csv.invalid"
        )
    return record


_SURROGATE = re.compile("[\udc80-\udcff]")
FIRST_RECORD_MAX = 8 * 1024 * 1024  # bytes read to find the header (DuckDB's own line limit is 2 MB)


def _first_row_too_long() -> E.InvalidInput:
    return E.InvalidInput(
        f"the first row of the CSV file is longer than {FIRST_RECORD_MAX // (1024 * 1024)} MiB; "
        "are the delimiter and the line endings right?",
        code="csv.invalid",
    )


def _check_names(names: list[str]) -> None:
    seen: dict[str, str] = {}
    for i, name in enumerate(names, 1):
        if not name.strip():
            raise E.InvalidInput(f"column {i} of the CSV header has no name", code="csv.invalidHeader")
        if name.lower() in seen:
            raise E.InvalidInput(
                f"the CSV header names column {name!r} twice (names are case-insensitive)",
                code="csv.invalidHeader",
            )
        seen[name.lower()] = name


_LINE_RE = re.compile(r"CSV Error on Line: (\d+)")
_CONVERT_RE = re.compile(
    r"Error when converting column \"(?P<column>[^\"]*)\"\. Could not convert string \"(?P<value>.*)\" "
    r"to '(?P<type>[^'\n]*)'",
    re.S,
)
DETAIL_MAX = 1000  # characters of DuckDB's own text kept in an error's details


def row_error(
    line: int | None,
    reason: str | None = None,
    *,
    column: str | None = None,
    expected: str | None = None,
    value: str | None = None,
    what: str = "CSV",
    details: dict[str, Any] | None = None,
) -> E.InvalidInput:
    """The one message for a bad row of CSV-like input, used by table imports and SQL COPY.

    ``invalid CSV on line 3: Expected Number of Columns: 2 Found: 3``, or for a value that does
    not fit its column ``invalid CSV on line 2: column "id" expects INTEGER, found "x"``. Lines
    count records as the user does, the header included; the value is clipped (``E.clip``).
    """
    if reason is None:
        shown = "NULL" if value is None else f'"{E.clip(value)}"'
        reason = f'column "{column}" expects {expected}, found {shown}'
    where = f" on line {line}" if line is not None else ""
    info: dict[str, Any] = dict(details or {})
    if line is not None:
        info["line"] = line
    if column is not None:
        info.update(column=column, expectedType=expected, value=None if value is None else E.clip(value))
    return E.InvalidInput(
        f"invalid {what}{where}: {E.clip(reason, 2 * E.VALUE_MAX)}", code="csv.invalid", details=info
    )


def csv_error(
    exc: duckdb.Error, names: Mapping[str, str] | None = None, *, what: str = "CSV"
) -> E.InvalidInput:
    """DuckDB's CSV error as :func:`row_error`: the line, the reason, a bad value's column and type.

    ``names`` maps the reader's column names (``c0``…) to the user's. DuckDB's hints are dropped,
    the offending line and value are clipped, and ``details["detail"]`` keeps at most
    ``DETAIL_MAX`` characters of DuckDB's text.
    """
    text = str(exc)
    lines = [line.strip() for line in text.splitlines()]
    cut = next((i for i, line in enumerate(lines) if line.startswith("Possible")), len(lines))
    details = {
        "duckdbError": type(exc).__name__,
        "detail": E.clip("\n".join(E.clip(line) for line in lines[:cut] if line), DETAIL_MAX),
    }
    match = _LINE_RE.search(text)
    if match is None:
        message = first_line(exc).removeprefix("Invalid Input Error: ")
        return E.InvalidInput(f"invalid {what}: {E.clip(message)}", code="csv.invalid", details=details)
    line = int(match[1])
    converted = _CONVERT_RE.search(text)
    if converted is not None:
        column = converted["column"]
        return row_error(
            line,
            column=(names or {}).get(column, column),
            expected=converted["type"],
            value=converted["value"],
            what=what,
            details=details,
        )
    reason = next((line for line in reversed(lines[:cut]) if line), "")
    if reason.startswith(("Original Line", "Invalid Input Error: CSV Error", "Conversion Error: CSV Error")):
        reason = "malformed row"
    return row_error(line, reason, what=what, details=details)
