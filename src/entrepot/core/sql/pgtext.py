"""PostgreSQL COPY text format: a streaming decoder (to rows or to CSV) and row encoders.

**Text format** (``COPY … FROM STDIN`` / ``TO STDOUT`` without ``FORMAT csv``): one row per line,
fields split by the delimiter (tab), ``\\N`` for NULL. A backslash escapes the next character:
``\\b \\f \\n \\r \\t \\v`` are control characters, ``\\ddd`` (1-3 octal digits) and ``\\xh[h]``
(1-2 hex digits) are bytes, any other character stands for itself (``\\\\``, ``\\<delimiter>``).
The null marker is matched against the raw field, before de-escaping (``\\N`` is NULL, ``a\\N`` is
``aN``). A line ``\\.`` ends the data; lines end in ``\\n`` or ``\\r\\n``, the last one may lack it.

The decoder is stricter than PostgreSQL where PostgreSQL itself never produces the input: a
backslash at the end of a line (which PostgreSQL would read as an escaped line break) and a raw
carriage return inside a line are errors, as is ``\\.`` after other data on its line
(PostgreSQL 18 rule). Errors are :class:`~entrepot.core.errors.InvalidInput` with PostgreSQL's
wording and the 1-based line number (``… (line 3)``, also in ``details["line"]``).

**CSV handoff.** :func:`text_to_csv` writes the rows as UTF-8 RFC 4180 CSV for DuckDB to load: a
NULL is an empty unquoted field, any other value is quoted when it is empty or holds ``,``, ``"``,
CR or LF (so the empty string is ``""``; a one-column NULL row is an empty line). Read it back
with every column as VARCHAR and quoted-null detection off, so that ``""`` stays an empty string::

    read_csv(path, columns={'a': 'VARCHAR', …}, header=false, auto_detect=false, delim=',',
             quote='"', escape='"', nullstr='', allow_quoted_nulls=false, max_line_size=…)

(raise ``max_line_size`` from DuckDB's 2 MB default when values can be longer). The stdlib ``csv``
writer is not used for this: it writes a row holding one empty field as ``""`` whatever the
quoting mode, and before Python 3.12 cannot quote ``''`` while leaving ``None`` bare.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import BinaryIO

from entrepot.core import errors as E

__all__ = [
    "MAX_LINE_BYTES",
    "decode_text_lines",
    "encode_csv_row",
    "encode_text_row",
    "text_to_csv",
    "to_text",
]

# One row of COPY input; longer → InvalidInput. The CSV handed to DuckDB is read with its default
# max_line_size (2,000,000 bytes) and a text row shrinks at most fourfold on the way (``\ddd`` is
# one byte), so a longer row could never load: a larger bound would only let one line (a gzip
# bomb without line breaks) hold more memory.
MAX_LINE_BYTES = 8 * 1024 * 1024
_FLUSH_CHARS = 1 << 16
_CONTEXT_CHARS = 100  # PostgreSQL shows at most this much of the offending line

_SIMPLE_ESCAPES = {
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("v"): b"\v",
}
_FORBIDDEN_DELIMITERS = "\\.abcdefghijklmnopqrstuvwxyz0123456789\r\n"


def _error(message: str, line: int, code: str = "sql.copy.badData") -> E.InvalidInput:
    return E.InvalidInput(f"{message} (line {line})", code=code, details={"line": line})


def _check_options(delimiter: str, null: str, encoding: str) -> tuple[bytes, bytes]:
    if len(delimiter) != 1 or ord(delimiter) > 127:
        raise E.InvalidInput("COPY delimiter must be a single one-byte character", code="sql.copy.options")
    if delimiter.lower() in _FORBIDDEN_DELIMITERS:
        raise E.InvalidInput(f'COPY delimiter cannot be "{delimiter}"', code="sql.copy.options")
    if "\r" in null or "\n" in null:
        raise E.InvalidInput(
            "COPY null representation cannot use newline or carriage return", code="sql.copy.options"
        )
    try:
        return delimiter.encode("ascii"), null.encode(encoding)
    except (LookupError, UnicodeEncodeError) as exc:
        raise E.InvalidInput(f"invalid COPY encoding or null marker: {exc}", code="sql.copy.options") from exc


def _iter_blocks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Byte blocks of whole lines (each ending in ``\\n`` except maybe the last) from a byte stream.

    Holds at most one chunk plus one unfinished line.
    """
    buf = bytearray()
    scan_from = 0
    lines_before = 0
    for chunk in chunks:
        if not chunk:
            continue
        buf += chunk
        nl = buf.rfind(b"\n", scan_from)
        if nl < 0:
            scan_from = len(buf)
            if scan_from > MAX_LINE_BYTES:
                raise _error(
                    f"COPY line is longer than {MAX_LINE_BYTES} bytes",
                    lines_before + 1,
                    "sql.copy.lineTooLong",
                )
            continue
        block = bytes(buf[: nl + 1])
        del buf[: nl + 1]
        scan_from = len(buf)
        lines_before += block.count(b"\n")
        yield block
    if buf:
        yield bytes(buf)


def _escape_pattern(delim: bytes) -> re.Pattern[bytes]:
    return re.compile(rb"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|(.))|(" + re.escape(delim) + rb")", re.S)


def _encoding_name(encoding: str) -> str:
    return encoding.upper().replace("-", "").replace("_", "")


def _decode(raw: bytes, encoding: str, first_line: int) -> str:
    """``raw`` decoded; an invalid byte sequence or NUL is an error on its line (counted from ``first_line``)."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        bad = " ".join(f"0x{b:02x}" for b in raw[exc.start : exc.end])
        line = first_line + raw.count(b"\n", 0, exc.start)
        raise _error(f'invalid byte sequence for encoding "{_encoding_name(encoding)}": {bad}', line) from exc
    nul = text.find("\x00")
    if nul >= 0:
        line = first_line + text.count("\n", 0, nul)
        raise _error(f'invalid byte sequence for encoding "{_encoding_name(encoding)}": 0x00', line)
    return text


def _split_escaped(
    line: bytes, pattern: re.Pattern[bytes], null_b: bytes, line_no: int
) -> list[bytes | None]:
    fields: list[bytes | None] = []
    pieces: list[bytes] = []
    field_start = pos = 0
    for match in pattern.finditer(line):
        if match.start() > pos:
            pieces.append(line[pos : match.start()])
        pos = match.end()
        octal, hexa, other, delim = match.groups()
        if delim is not None:
            raw = line[field_start : match.start()]
            fields.append(None if raw == null_b else b"".join(pieces))
            pieces = []
            field_start = pos
        elif octal is not None:
            pieces.append(bytes([int(octal, 8) & 0xFF]))
        elif hexa is not None:
            pieces.append(bytes([int(hexa, 16)]))
        else:
            if other == b"." and pos == len(line):
                raise _error("end-of-copy marker is not alone on its line", line_no)
            pieces.append(_SIMPLE_ESCAPES.get(other[0], other))
    rest = line[pos:]
    if rest.endswith(b"\\"):
        raise _error("unterminated backslash escape at end of line", line_no)
    pieces.append(rest)
    raw = line[field_start:]
    fields.append(None if raw == null_b else b"".join(pieces))
    return fields


_BYTE_ESCAPE = re.compile(r"\\[0-7x]")  # maybe an octal/hex escape (or an escaped backslash before one)
_SIMPLE_TEXT = {chr(k): v.decode() for k, v in _SIMPLE_ESCAPES.items()}
_BACKSLASH_PAIR = "\x00"  # stands for an escaped backslash while splitting (NUL is never valid data)
_SPLITTERS: dict[str, re.Pattern[str]] = {}


def _unescape_text(field: str) -> str:
    head, *rest = field.split("\\")
    text = head + "".join(_SIMPLE_TEXT.get(part[0], part[0]) + part[1:] for part in rest)
    return text.replace(_BACKSLASH_PAIR, "\\")


def _split_escaped_text(line: str, delimiter: str, null: str, line_no: int) -> list[str | None]:
    """Fields of a line with simple escapes only (no octal/hex), at the character level."""
    work = line.replace("\\\\", _BACKSLASH_PAIR)  # now every backslash escapes the next character
    if work.endswith("\\"):
        raise _error("unterminated backslash escape at end of line", line_no)
    if work.endswith("\\."):
        raise _error("end-of-copy marker is not alone on its line", line_no)
    if "\\" + delimiter in work:  # escaped delimiters: split only on the others
        splitter = _SPLITTERS.get(delimiter)
        if splitter is None:
            splitter = _SPLITTERS[delimiter] = re.compile(r"(?<!\\)" + re.escape(delimiter))
        raws = splitter.split(work)
    else:
        raws = work.split(delimiter)
    marker = null.replace("\\\\", _BACKSLASH_PAIR)
    return [
        None
        if raw == marker
        else (_unescape_text(raw) if "\\" in raw else raw.replace(_BACKSLASH_PAIR, "\\"))
        for raw in raws
    ]


def decode_text_lines(
    chunks: Iterable[bytes], *, delimiter: str = "\t", null: str = "\\N", encoding: str = "utf-8"
) -> Iterator[list[str | None]]:
    """Rows of PostgreSQL COPY text read from ``chunks``, one list of values (None = NULL) per line.

    Streams: memory holds about one chunk plus one line; a line may straddle chunks. Everything
    after a ``\\.`` line is read and ignored (the input is drained). The encoding must be
    ASCII-compatible (UTF-8, Latin-n, …). Raises ``InvalidInput`` with the line number on
    malformed input.
    """
    delim_b, null_b = _check_options(delimiter, null, encoding)
    if "\n".encode(encoding) != b"\n":
        raise E.InvalidInput(f"COPY encoding {encoding!r} is not ASCII-compatible", code="sql.copy.options")
    pattern = _escape_pattern(delim_b)
    check_null = bool(null) and "\\" not in null  # a null marker with a backslash needs the slow path
    line_no = 0
    blocks = _iter_blocks(chunks)
    for block in blocks:
        lines = _decode(block, encoding, line_no + 1).split("\n")
        if block.endswith(b"\n"):
            lines.pop()
        for line in lines:
            line_no += 1
            if line.endswith("\r"):
                line = line[:-1]
            if "\r" in line:
                raise _error(
                    'literal carriage return found in data; use "\\r" to represent carriage return', line_no
                )
            if "\\" in line:
                if line == "\\.":
                    for _ in blocks:  # drain the rest of the input
                        pass
                    return
                if _BYTE_ESCAPE.search(line) is None:
                    yield _split_escaped_text(line, delimiter, null, line_no)
                else:  # octal/hex escapes are bytes that may combine into characters
                    raw_fields = _split_escaped(line.encode(encoding), pattern, null_b, line_no)
                    yield [None if f is None else _decode(f, encoding, line_no) for f in raw_fields]
            elif check_null or not null:
                yield [None if f == null else f for f in line.split(delimiter)]
            else:
                yield line.split(delimiter)  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# CSV handoff
# --------------------------------------------------------------------------------------------


def _csv_plain(text: str) -> bool:
    return not ('"' in text or "," in text or "\n" in text or "\r" in text)


def _csv_field(value: str | None) -> str:
    if value is None:
        return ""
    if value and _csv_plain(value):
        return value
    return '"' + value.replace('"', '""') + '"'


def text_to_csv(
    chunks: Iterable[bytes],
    out: BinaryIO,
    *,
    delimiter: str = "\t",
    null: str = "\\N",
    encoding: str = "utf-8",
    expected_columns: int | Sequence[str] | None = None,
) -> int:
    """Convert PostgreSQL COPY text from ``chunks`` to UTF-8 CSV on ``out``; return the row count.

    ``expected_columns`` (a count, or the column names for PostgreSQL's exact message) makes a row
    with another number of fields an ``InvalidInput``: ``extra data after last expected column``
    or ``missing data for column "b"``, with the line number. See the module docstring for how to
    read the CSV back with DuckDB so that NULL and the empty string stay distinct.
    """
    names: Sequence[str] | None = None
    expected: int | None
    if expected_columns is None or isinstance(expected_columns, int):
        expected = expected_columns
    else:
        names = list(expected_columns)
        expected = len(names)
    parts: list[str] = []
    size = 0
    count = 0
    for count, row in enumerate(
        decode_text_lines(chunks, delimiter=delimiter, null=null, encoding=encoding), start=1
    ):
        if expected is not None and len(row) != expected:
            if len(row) > expected:
                raise _error("extra data after last expected column", count, "sql.copy.columns")
            column = f'"{names[len(row)]}"' if names else f"number {len(row) + 1}"
            raise _error(f"missing data for column {column}", count, "sql.copy.columns")
        if None not in row and "" not in row:
            line = ",".join(row)  # type: ignore[arg-type]
            line = (line if _csv_plain(line) else ",".join(map(_csv_field, row))) + "\n"
        else:
            line = ",".join(map(_csv_field, row)) + "\n"
        parts.append(line)
        size += len(line)
        if size >= _FLUSH_CHARS:
            out.write("".join(parts).encode("utf-8"))
            parts.clear()
            size = 0
    if parts:
        out.write("".join(parts).encode("utf-8"))
    return count


# --------------------------------------------------------------------------------------------
# Encoding (COPY TO)
# --------------------------------------------------------------------------------------------


def _format_float(value: float) -> str:
    """PostgreSQL ``float8out``: shortest round-trip digits, exponent below 1e-4 and from 1e15."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digits, exponent = decimal.Decimal(repr(value)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    assert isinstance(exponent, int)
    point = len(digits) + exponent  # position of the decimal point in `digits`
    sci = point - 1
    prefix = "-" if sign else ""
    if sci < -4 or sci >= 15:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if sci < 0 else '+'}{abs(sci):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"


def _format_offset(offset: dt.timedelta) -> str:
    seconds = int(offset.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rem = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rem, 60)
    text = f"{sign}{hours:02d}"
    if minutes or secs:
        text += f":{minutes:02d}"
    if secs:
        text += f":{secs:02d}"
    return text


def _format_time(value: dt.time | dt.datetime) -> str:
    text = f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text


def _format_interval(value: dt.timedelta) -> str:
    micros = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    days, micros = divmod(abs(micros), 86400 * 1_000_000)
    seconds, micro = divmod(micros, 1_000_000)
    hours, rem = divmod(seconds, 3600)
    clock = f"{hours:02d}:{rem // 60:02d}:{rem % 60:02d}" + (f".{micro:06d}".rstrip("0") if micro else "")
    parts = []
    if days:
        parts.append(f"{sign}{days} day{'s' if days != 1 else ''}")
    if micros or not days:
        parts.append(f"{sign}{clock}")
    return " ".join(parts)


def to_text(value: object) -> str | None:
    """The PostgreSQL text output of a Python value (None for NULL), before any COPY escaping.

    bool → ``t``/``f``; float like ``float8out``; Decimal plain; datetime like PostgreSQL with
    session time zone UTC (aware → ``2024-05-01 10:00:00+00``, naive → no offset); date, time,
    timedelta (interval); bytes → ``\\x…`` hex (bytea); dict/list → JSON; anything else ``str()``.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, decimal.Decimal):
        return "NaN" if value.is_nan() else format(value, "f")
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            value = value.astimezone(dt.UTC)
            return f"{value:%Y-%m-%d} {_format_time(value)}+00"
        return f"{value:%Y-%m-%d} {_format_time(value)}"
    if isinstance(value, dt.date):
        return f"{value:%Y-%m-%d}"
    if isinstance(value, dt.time):
        offset = value.utcoffset()
        return _format_time(value) + (_format_offset(offset) if offset is not None else "")
    if isinstance(value, dt.timedelta):
        return _format_interval(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


_TEXT_ESCAPES = {
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}
_TEXT_TABLES: dict[str, dict[int, str]] = {}


def _text_table(delimiter: str) -> dict[int, str]:
    table = _TEXT_TABLES.get(delimiter)
    if table is None:
        table = {ord(k): v for k, v in _TEXT_ESCAPES.items()}
        table.setdefault(ord(delimiter), "\\" + delimiter)
        _TEXT_TABLES[delimiter] = table
    return table


def encode_text_row(values: Sequence[object], *, delimiter: str = "\t", null: str = "\\N") -> str:
    """One PostgreSQL COPY text line (ending in ``\\n``) for ``values`` (see :func:`to_text`)."""
    table = _text_table(delimiter)
    fields = []
    for value in values:
        text = to_text(value)
        fields.append(null if text is None else text.translate(table))
    return delimiter.join(fields) + "\n"


def encode_csv_row(
    values: Sequence[object],
    *,
    delimiter: str = ",",
    null: str = "",
    quote: str = '"',
    escape: str | None = None,
    header: bool = False,
) -> str:
    """One PostgreSQL COPY CSV line (ending in ``\\n``), quoting like PostgreSQL's CSV output.

    NULL is ``null`` unquoted. A value is quoted when it equals the null string (so ``''`` is
    ``""`` by default), contains the delimiter, the quote or escape character, CR or LF, or is
    ``\\.`` alone in a one-column row; inside quotes, quote and escape characters are preceded by
    ``escape`` (default: the quote, i.e. doubled). ``header=True`` marks a row of column names
    (same quoting; a None name is an error).
    """
    escape = escape or quote
    specials = {delimiter, quote, escape, "\r", "\n"}
    single = len(values) == 1
    fields = []
    for value in values:
        text = to_text(value)
        if text is None:
            if header:
                raise E.InvalidInput("a CSV header cannot hold a NULL column name", code="sql.copy.header")
            fields.append(null)
            continue
        needs_quote = text == null or any(c in text for c in specials) or (single and text == "\\.")
        if needs_quote:
            body = "".join(escape + c if c in (quote, escape) else c for c in text)
            text = quote + body + quote
        fields.append(text)
    return delimiter.join(fields) + "\n"
