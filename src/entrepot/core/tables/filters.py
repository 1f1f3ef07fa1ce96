"""Row filters shared by data preview, export and delete rows (reference §3.8).

``changedSince``/``changedUntil`` select on the hidden ``_timestamp`` column (since inclusive,
until exclusive); ``whereColumn``/``whereValues``/``whereOperator`` and ``whereFilters`` compare
column values **as strings** unless a filter names a numeric ``dataType``.

Times (:func:`parse_time`) accept a subset of what PHP's ``strtotime`` does:

* a unix timestamp: ``1717243200`` (seconds, optionally with a fraction);
* ISO 8601 with or without an offset and microseconds: ``2025-06-01T12:00:00+0000``,
  ``2025-06-01T12:00:00.123456``, ``2025-06-01 12:00:00Z``, ``2025-06-01``. A time **without an
  offset is read as UTC** (``datetime.now().isoformat()`` is local time: send UTC to be exact);
* ``now``, ``today`` (midnight UTC), ``yesterday``, ``tomorrow`` (midnights UTC);
* relative phrases, one or more terms of ``[+-]N unit`` with units ``sec(ond)``, ``min(ute)``,
  ``hour``, ``day``, ``week``, ``month``, ``year`` (singular or plural), optionally followed by
  ``ago``: ``-1 days``, ``-2 hours``, ``-30 minutes``, ``-1 week``, ``3 days ago``,
  ``-1 day -2 hours``. They may follow a base word: ``yesterday -2 hours``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from entrepot.core.engine import quote_ident
from entrepot.core.errors import InvalidInput
from entrepot.core.tables.store import TIMESTAMP_COLUMN

WHERE_OPERATORS = {"eq": "eq", "ne": "ne", "neq": "ne"}
FILTER_OPERATORS = {"eq": "IN", "ne": "NOT IN", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_NUMERIC_TYPES = {
    "INTEGER": "BIGINT",
    "INT": "BIGINT",
    "BIGINT": "BIGINT",
    "NUMERIC": "DOUBLE",
    "DECIMAL": "DOUBLE",
    "DOUBLE": "DOUBLE",
    "REAL": "DOUBLE",
    "FLOAT": "DOUBLE",
}
_STRING_TYPES = {"STRING", "VARCHAR", "TEXT", ""}

_UNITS = {
    "sec": "seconds",
    "second": "seconds",
    "min": "minutes",
    "minute": "minutes",
    "hour": "hours",
    "day": "days",
    "week": "weeks",
    "month": "months",
    "year": "years",
}
_TERM_RE = re.compile(
    r"([+-]?)\s*(\d+)\s*(sec|second|min|minute|hour|day|week|month|year)s?\b", re.IGNORECASE
)
_BASES = ("now", "today", "midnight", "yesterday", "tomorrow")
_NUMBER_RE = re.compile(r"^[+-]?\d+(\.\d+)?\Z")


def _invalid_time(value: str, name: str) -> InvalidInput:
    return InvalidInput(
        f"invalid {name} {value!r}: use a unix timestamp, an ISO 8601 time (2025-06-01T12:00:00+00:00; "
        "without an offset it is UTC) or a relative phrase such as '-1 days' or '-2 hours'",
        code="tables.invalidTime",
    )


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _relative(text: str, now: datetime) -> datetime | None:
    """``now`` shifted by a strtotime-like phrase, or None when ``text`` is not one."""
    lower = text.lower().strip()
    base = now
    for word in _BASES:
        if lower == word or lower.startswith(word + " "):
            midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
            base = {
                "now": now,
                "today": midnight,
                "midnight": midnight,
                "yesterday": midnight - timedelta(days=1),
                "tomorrow": midnight + timedelta(days=1),
            }[word]
            lower = lower[len(word) :].strip()
            break
    else:
        if not _TERM_RE.match(lower):
            return None
    ago = False
    if lower.endswith(" ago") or lower == "ago":
        ago = True
        lower = lower[: -len("ago")].strip()
    pos = 0
    moment = base
    while pos < len(lower):
        m = _TERM_RE.match(lower, pos)
        if m is None:
            return None
        amount = int(m.group(2)) * (-1 if m.group(1) == "-" else 1) * (-1 if ago else 1)
        unit = _UNITS[m.group(3).lower()]
        if unit == "months":
            moment = _add_months(moment, amount)
        elif unit == "years":
            moment = _add_months(moment, 12 * amount)
        else:
            moment = moment + timedelta(**{unit: amount})
        pos = m.end()
        while pos < len(lower) and lower[pos] in " ,":
            pos += 1
    return moment


def _iso(text: str) -> datetime | None:
    """``text`` as ISO 8601 (naive = UTC), or None when it is not one."""
    if not text[:1].isdigit() or len(text) < 8:
        return None
    iso = text[:-4] + "+00:00" if text.upper().endswith(" UTC") else text
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_time(value: str, now: datetime | None = None, *, name: str = "time") -> datetime:
    """A ``changedSince``/``changedUntil`` value as an aware UTC datetime; ``InvalidInput`` otherwise."""
    text = str(value).strip()
    if not text:
        raise _invalid_time(text, name)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    try:
        if _NUMBER_RE.match(text):
            return datetime.fromtimestamp(float(text), UTC)
        iso = _iso(text)
        if iso is not None:
            return iso
        moment_or_none = _relative(text, now)
    except (ValueError, OverflowError, OSError) as exc:
        raise _invalid_time(text, name) from exc
    if moment_or_none is None:
        raise _invalid_time(text, name)
    return moment_or_none


def _values(raw: Any, what: str) -> list[str]:
    """A list parameter as strings, keeping empty strings (``whereValues[]=`` means the empty value)."""
    if raw is None:
        return []
    if isinstance(raw, Mapping):  # PHP's whereValues[0]=a; named keys are a malformed request
        if not all(str(k).isascii() and str(k).isdigit() for k in raw):
            raise InvalidInput(f"{what} must be a list of values, not an object with named keys")
        raw = [raw[k] for k in sorted(raw, key=lambda k: int(k))]
    if isinstance(raw, (str, int, float)):
        raw = [raw]
    if not isinstance(raw, Sequence):
        raise InvalidInput(f"{what} must be a list of values")
    out = []
    for v in raw:
        if isinstance(v, (Mapping, list)):
            raise InvalidInput(f"{what} must be a list of plain values")
        out.append("" if v is None else str(v))
    return out


@dataclass(frozen=True)
class WhereFilter:
    """One ``whereFilters`` item: ``column operator values`` (eq/ne: any of; gt/ge/lt/le: one value)."""

    column: str
    operator: str = "eq"
    values: tuple[str, ...] = ()
    data_type: str | None = None

    @classmethod
    def from_obj(cls, obj: Any, index: int) -> WhereFilter:
        what = f"whereFilters[{index}]"
        if not isinstance(obj, Mapping):
            raise InvalidInput(f"{what} must be an object with column, operator and values")
        column = str(obj.get("column") or "").strip()
        if not column:
            raise InvalidInput(f"{what}.column is required")
        operator = str(obj.get("operator") or "eq").strip().lower()
        if operator == "neq":
            operator = "ne"
        if operator not in FILTER_OPERATORS:
            raise InvalidInput(f"{what}.operator {operator!r} is not supported; use eq, ne, gt, ge, lt or le")
        values = _values(obj.get("values"), f"{what}.values")
        if not values:
            raise InvalidInput(f"{what}.values needs at least one value")
        if operator not in ("eq", "ne") and len(values) != 1:
            raise InvalidInput(f"{what}: operator {operator} takes exactly one value")
        data_type = str(obj.get("dataType") or "").strip().upper() or None
        if data_type is not None and data_type not in _NUMERIC_TYPES and data_type not in _STRING_TYPES:
            raise InvalidInput(
                f"{what}.dataType {data_type!r} is not supported; use INTEGER, DOUBLE, BIGINT, REAL or DECIMAL"
            )
        return cls(column=column, operator=operator, values=tuple(values), data_type=data_type)

    def to_obj(self) -> dict[str, Any]:
        out: dict[str, Any] = {"column": self.column, "operator": self.operator, "values": list(self.values)}
        if self.data_type:
            out["dataType"] = self.data_type
        return out

    def to_job(self) -> dict[str, Any]:
        out: dict[str, Any] = {"column": self.column, "operator": self.operator, "values": list(self.values)}
        if self.data_type:
            out["data_type"] = self.data_type
        return out

    @classmethod
    def from_job(cls, obj: Mapping[str, Any]) -> WhereFilter:
        return cls(
            column=str(obj["column"]),
            operator=str(obj.get("operator") or "eq"),
            values=tuple(str(v) for v in obj.get("values") or ()),
            data_type=obj.get("data_type") or None,
        )


def resolve_column(name: str, columns: Sequence[str], *, what: str = "column") -> str:
    """The table's spelling of column ``name`` (exact, else case-insensitive); ``InvalidInput`` otherwise."""
    if name in columns:
        return name
    for column in columns:
        if column.lower() == name.lower():
            return column
    raise InvalidInput(
        f"{what} {name!r} is not a column of the table; its columns are: {', '.join(columns)}",
        code="tables.columnNotFound",
    )


@dataclass(frozen=True)
class RowFilter:
    """Which rows a preview, export or delete-rows touches. An empty filter selects every row."""

    changed_since: datetime | None = None
    changed_until: datetime | None = None
    where_column: str | None = None
    where_operator: str = "eq"
    where_values: tuple[str, ...] = ()
    where_filters: tuple[WhereFilter, ...] = field(default_factory=tuple)

    @property
    def is_empty(self) -> bool:
        return (
            self.changed_since is None
            and self.changed_until is None
            and self.where_column is None
            and not self.where_filters
        )

    @classmethod
    def from_params(cls, params: Mapping[str, Any], now: datetime | None = None) -> RowFilter:
        """Read the filter from merged request (or job) parameters; relative times resolve against ``now``."""

        def text(name: str) -> str | None:
            value = params.get(name)
            if isinstance(value, list):
                value = value[-1] if value else None
            if value is None or (isinstance(value, str) and not value.strip()):
                return None
            if isinstance(value, Mapping):
                raise InvalidInput(f"parameter {name} must be a string")
            return str(value).strip()

        since_text, until_text = text("changedSince"), text("changedUntil")
        since = parse_time(since_text, now, name="changedSince") if since_text else None
        until = parse_time(until_text, now, name="changedUntil") if until_text else None
        where_column = text("whereColumn")
        operator = (text("whereOperator") or "eq").lower()
        if operator not in WHERE_OPERATORS:
            raise InvalidInput(f"invalid whereOperator {operator!r}: use eq or ne (neq)")
        values = _values(params.get("whereValues"), "whereValues")
        if where_column is None and values:
            raise InvalidInput("whereValues needs whereColumn: the column the values are compared with")
        if where_column is not None and not values:
            raise InvalidInput(f"whereColumn {where_column!r} needs whereValues: at least one value")
        raw_filters = params.get("whereFilters")
        if raw_filters in (None, "", []):
            raw_filters = []
        if isinstance(raw_filters, Mapping):
            if "column" in raw_filters:
                raw_filters = [raw_filters]
            else:
                raw_filters = [raw_filters[k] for k in sorted(raw_filters, key=str)]
        if not isinstance(raw_filters, list):
            raise InvalidInput("whereFilters must be a list of {column, operator, values} objects")
        filters = tuple(WhereFilter.from_obj(obj, i) for i, obj in enumerate(raw_filters))
        return cls(
            changed_since=since,
            changed_until=until,
            where_column=where_column,
            where_operator=WHERE_OPERATORS[operator],
            where_values=tuple(values),
            where_filters=filters,
        )

    def to_params(self) -> dict[str, Any]:
        """JSON-safe parameters that ``from_params`` reads back to an equal filter (absolute times)."""
        out: dict[str, Any] = {}
        if self.changed_since is not None:
            out["changedSince"] = self.changed_since.isoformat()
        if self.changed_until is not None:
            out["changedUntil"] = self.changed_until.isoformat()
        if self.where_column is not None:
            out["whereColumn"] = self.where_column
            out["whereOperator"] = self.where_operator
            out["whereValues"] = list(self.where_values)
        if self.where_filters:
            out["whereFilters"] = [f.to_obj() for f in self.where_filters]
        return out

    def to_job(self) -> dict[str, Any]:
        """The filter as job params (snake_case, absolute times) that :meth:`from_job` reads back."""
        out: dict[str, Any] = {}
        if self.changed_since is not None:
            out["changed_since"] = self.changed_since.isoformat()
        if self.changed_until is not None:
            out["changed_until"] = self.changed_until.isoformat()
        if self.where_column is not None:
            out["where_column"] = self.where_column
            out["where_operator"] = self.where_operator
            out["where_values"] = list(self.where_values)
        if self.where_filters:
            out["where_filters"] = [f.to_job() for f in self.where_filters]
        return out

    @classmethod
    def from_job(cls, params: Mapping[str, Any]) -> RowFilter:
        """The filter :meth:`to_job` wrote (already validated when the job was queued)."""
        since, until = params.get("changed_since"), params.get("changed_until")
        return cls(
            changed_since=datetime.fromisoformat(since) if since else None,
            changed_until=datetime.fromisoformat(until) if until else None,
            where_column=params.get("where_column"),
            where_operator=str(params.get("where_operator") or "eq"),
            where_values=tuple(str(v) for v in params.get("where_values") or ()),
            where_filters=tuple(WhereFilter.from_job(f) for f in params.get("where_filters") or ()),
        )

    def validate(self, columns: Sequence[str]) -> None:
        """Check that every filtered column exists (``InvalidInput`` naming it)."""
        self.to_sql(columns)

    def to_sql(self, columns: Sequence[str]) -> tuple[str, list[Any]]:
        """A SQL condition (``TRUE`` when empty) and its positional ``?`` parameters."""
        parts: list[str] = []
        params: list[Any] = []
        ts = quote_ident(TIMESTAMP_COLUMN)
        if self.changed_since is not None:
            parts.append(f"{ts} >= ?")
            params.append(self.changed_since)
        if self.changed_until is not None:
            parts.append(f"{ts} < ?")
            params.append(self.changed_until)
        if self.where_column is not None:
            column = resolve_column(self.where_column, columns, what="whereColumn")
            op = "IN" if self.where_operator == "eq" else "NOT IN"
            marks = ", ".join("?" for _ in self.where_values)
            parts.append(f"CAST({quote_ident(column)} AS VARCHAR) {op} ({marks})")
            params.extend(self.where_values)
        for i, f in enumerate(self.where_filters):
            column = resolve_column(f.column, columns, what=f"whereFilters[{i}].column")
            sql_type = _NUMERIC_TYPES.get(f.data_type or "", "VARCHAR")
            if sql_type == "VARCHAR":
                left, mark = f"CAST({quote_ident(column)} AS VARCHAR)", "?"
            else:
                left, mark = f"TRY_CAST({quote_ident(column)} AS {sql_type})", f"TRY_CAST(? AS {sql_type})"
            op = FILTER_OPERATORS[f.operator]
            if op in ("IN", "NOT IN"):
                parts.append(f"{left} {op} ({', '.join(mark for _ in f.values)})")
            else:
                parts.append(f"{left} {op} {mark}")
            params.extend(f.values)
        return (" AND ".join(f"({p})" for p in parts) if parts else "TRUE"), params
