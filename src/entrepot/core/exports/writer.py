"""Writing an export's rows to a local file in its format, with DuckDB's ``COPY ... TO``.

DuckDB streams the rows from the lake into the file with bounded memory (its buffer manager
spills to disk); a thread samples ``query_progress()`` of the running ``COPY`` so the job's
progress moves while it runs. What DuckDB does not write itself is done after, streaming:

* CSV in UTF-16 or Latin-1 is transcoded chunk by chunk from DuckDB's UTF-8 output. A character
  Latin-1 cannot hold fails the export with its row and column, rather than writing ``?``.
* Excel: a sheet holds at most 1,048,576 rows (headers included), so the rows are counted
  first and an export that would not fit fails before anything is written.
"""

from __future__ import annotations

import codecs
import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from entrepot.core import errors as E
from entrepot.core.engine import execute, quote_literal
from entrepot.core.exports.query import Query, output_select

PARQUET_ROW_GROUP = 32_768
EXCEL_MAX_ROWS = 1_048_576  # rows of one xlsx sheet, the header row included
EXTENSIONS = {"csv": "csv", "json": "json", "parquet": "parquet", "excel": "xlsx"}
CONTENT_TYPES = {
    "csv": "text/csv",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
    "excel": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Written:
    rows: int
    size: int
    extension: str
    content_type: str


def extension_of(fmt: str, options: Mapping[str, Any]) -> str:
    if fmt == "json" and options.get("json_format") == "lines":
        return "jsonl"
    return EXTENSIONS[fmt]


def content_type_of(fmt: str, options: Mapping[str, Any]) -> str:
    if fmt == "csv":
        return f"text/csv; charset={options.get('encoding', 'utf-8')}"
    if fmt == "json" and options.get("json_format") == "lines":
        return "application/x-ndjson"
    return CONTENT_TYPES[fmt]


def _copy_options(fmt: str, options: Mapping[str, Any]) -> str:
    if fmt == "csv":
        return (
            f"FORMAT csv, HEADER {'true' if options.get('include_headers', True) else 'false'}, "
            f"DELIMITER {quote_literal(options.get('delimiter', ','))}, QUOTE '\"', ESCAPE '\"'"
        )
    if fmt == "json":
        return f"FORMAT json, ARRAY {'false' if options.get('json_format') == 'lines' else 'true'}"
    if fmt == "parquet":
        codec = options.get("compression", "snappy")
        # row groups of 32,768 rows (DuckDB's default is 122,880): the writer buffers one per
        # thread, so this halves an export's memory growth for a 1.4 % larger file (bench/README.md)
        return (
            f"FORMAT parquet, COMPRESSION {'uncompressed' if codec == 'none' else codec}, "
            f"ROW_GROUP_SIZE {PARQUET_ROW_GROUP}"
        )
    header = "true" if options.get("include_headers", True) else "false"
    return f"FORMAT xlsx, HEADER {header}, SHEET {quote_literal(options.get('sheet_name', 'Sheet1'))}"


class ProgressSampler:
    """Samples ``cursor.query_progress()`` every ``interval`` seconds into ``report(percent)``, rising only."""

    def __init__(
        self, cursor: duckdb.DuckDBPyConnection, report: Callable[[float], None], interval: float = 0.25
    ):
        self.cursor = cursor
        self.report = report
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="export-progress", daemon=True)

    def _run(self) -> None:
        best = 0.0
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # progress is best effort; the query decides
                value = self.cursor.query_progress()
                if value is not None and value > best:  # -1 means "unknown"; never go backwards
                    best = float(value)
                    self.report(best)

    def __enter__(self) -> ProgressSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def write(
    cursor: duckdb.DuckDBPyConnection,
    query: Query,
    fmt: str,
    options: Mapping[str, Any],
    path: Path,
    *,
    cancel: threading.Event,
    report: Callable[[float], None],
) -> Written:
    """Run ``query`` into ``path`` in ``fmt``; ``report`` gets the COPY's progress 0-100."""
    select = output_select(query, fmt, options)
    if fmt == "excel":
        limit = EXCEL_MAX_ROWS - (1 if options.get("include_headers", True) else 0)
        row = execute(
            cursor, f"SELECT count(*) FROM ({select}) AS counted", query.params, cancel=cancel
        ).fetchone()
        expected = int(row[0]) if row else 0
        if expected > limit:
            raise E.InvalidInput(
                f"this export has {expected:,} rows but an Excel sheet holds at most {limit:,} data rows; "
                "narrow it with where_conditions, date_range or limit, or export csv or parquet instead",
                code="exports.excelTooManyRows",
            )
    encoding = options.get("encoding", "utf-8") if fmt == "csv" else "utf-8"
    target = path if encoding == "utf-8" else path.with_name(path.name + ".utf8")
    for setting in ("enable_progress_bar=true", "enable_progress_bar_print=false", "progress_bar_time=0"):
        cursor.execute(f"SET {setting}")
    sql = f"COPY ({select}) TO {quote_literal(str(target))} ({_copy_options(fmt, options)})"
    try:
        with ProgressSampler(cursor, report):
            row = execute(cursor, sql, query.params, cancel=cancel).fetchone()
        rows = int(row[0]) if row else 0
        if not target.exists():  # nothing to write: an empty file of the format still exists
            _write_empty(cursor, query, fmt, options, target)
        if target != path:
            transcode(target, path, encoding, cancel=cancel)
    finally:
        if target != path:
            target.unlink(missing_ok=True)
    return Written(rows, path.stat().st_size, extension_of(fmt, options), content_type_of(fmt, options))


def _write_empty(
    cursor: duckdb.DuckDBPyConnection, query: Query, fmt: str, options: Mapping[str, Any], target: Path
) -> None:
    if fmt == "json" and options.get("json_format") != "lines":
        target.write_bytes(b"[\n]\n")
    elif fmt in ("csv", "json"):
        target.write_bytes(b"")
    else:
        empty = f"SELECT * FROM ({output_select(query, fmt, options)}) AS e LIMIT 0"
        cursor.execute(
            f"COPY ({empty}) TO {quote_literal(str(target))} ({_copy_options(fmt, options)})", query.params
        )


def transcode(source: Path, target: Path, encoding: str, *, cancel: threading.Event) -> None:
    """Re-encode a UTF-8 file chunk by chunk (UTF-16 gets a byte-order mark)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    encoder = codecs.getincrementalencoder(encoding)()
    line = 1
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(_CHUNK):
            if cancel.is_set():
                raise E.JobCancelled("the job was cancelled")
            text = decoder.decode(chunk)
            try:
                dst.write(encoder.encode(text))
            except UnicodeEncodeError as exc:
                bad = exc.object[exc.start]
                at = line + exc.object.count("\n", 0, exc.start)
                raise E.InvalidInput(
                    f"character {bad!r} (U+{ord(bad):04X}) on line {at} cannot be written in {encoding}; "
                    "export with encoding utf-8 or utf-16, or filter those rows out",
                    code="exports.unencodable",
                ) from None
            line += text.count("\n")
        dst.write(encoder.encode(decoder.decode(b"", final=True), final=True))
