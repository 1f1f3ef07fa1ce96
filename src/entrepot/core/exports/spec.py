"""What an export asks for: format, filters and options, validated and normalised.

:func:`normalize` checks the *shape* of a request (before any table is known) and returns the
normalised ``(format, filters, options)`` stored with the export or template. Checks against a
table's columns and types happen when the query is compiled (:mod:`entrepot.core.exports.query`).

Every problem is a :class:`FieldError`: a 400 whose ``fields`` map a dotted field name
(``filters.where_conditions[0]``, ``options.delimiter``) to a message that says what to fix.
A request is checked whole: :class:`FieldErrors` collects the problem of every field, and one
``FieldError`` names them all.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from entrepot.core import errors as E

FORMATS = ("csv", "json", "parquet", "excel")
FORMAT_MESSAGE = "Invalid format. Must be one of: csv, json, parquet, excel"
OPERATORS = (
    "=",
    "!=",
    "<>",
    ">",
    ">=",
    "<",
    "<=",
    "in",
    "not_in",
    "like",
    "ilike",
    "is_null",
    "is_not_null",
    "between",
)
FILTER_KEYS = ("columns", "where_conditions", "limit", "order_by", "group_by", "date_range")
ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-16": "utf-16", "utf16": "utf-16", "latin-1": "latin-1"}
ENCODINGS |= {"latin1": "latin-1", "iso-8859-1": "latin-1"}
COMPRESSIONS = ("snappy", "zstd", "gzip", "none")
JSON_FORMATS = ("array", "lines")
MAX_CONDITIONS = 100
MAX_LIST_VALUES = 1000
MAX_LIMIT = 2**62

# option -> (formats it applies to, default per format)
OPTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "delimiter": {"csv": ","},
    "encoding": {"csv": "utf-8"},
    "include_headers": {"csv": True, "excel": True},
    "escape_formulas": {"csv": False, "excel": True},
    "json_format": {"json": "array"},
    "compression": {"parquet": "snappy"},
    "sheet_name": {"excel": "Sheet1"},
}


class FieldError(E.InvalidInput):
    """Invalid request fields: ``fields`` maps each field to what is wrong with it."""

    def __init__(self, fields: Mapping[str, str], *, code: str = "exports.invalid"):
        self.fields = dict(fields)
        message = "; ".join(f"{k}: {v}" for k, v in self.fields.items())
        super().__init__(message, code=code, details={"fields": self.fields})


class FieldErrors:
    """The problems of a whole request, field by field, raised at the end as one :class:`FieldError`."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self.fields)

    def add(self, field: str, message: str) -> None:
        """Record ``field``'s problem (the first one found for a field is kept)."""
        self.fields.setdefault(field, message)

    @contextmanager
    def check(self) -> Iterator[None]:
        """Run the checks of one field: a ``FieldError`` inside is recorded and the request goes on."""
        try:
            yield
        except FieldError as exc:
            for field, message in exc.fields.items():
                self.add(field, message)

    def raise_if_any(self) -> None:
        if self.fields:
            raise FieldError(self.fields)


def check_format(value: Any) -> str:
    fmt = value.strip().lower() if isinstance(value, str) else value
    if fmt not in FORMATS:
        raise FieldError({"format": FORMAT_MESSAGE})
    return fmt


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255 or "\x00" in value:
        raise FieldError({field: "must be a column name (a non-empty string of at most 255 characters)"})
    return value.strip()


def _names(value: Any, field: str, *, allow_star: bool = False) -> list[str] | None:
    """A list of column names (a comma-separated string is accepted too); None for all columns."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        raise FieldError({field: "must be a list of column names"})
    if allow_star and any(v == "*" for v in value):
        if value != ["*"]:
            raise FieldError({field: '"*" (all columns) cannot be combined with column names'})
        return None
    if not value:
        raise FieldError({field: 'must name at least one column (or be ["*"] for all columns)'})
    if len(value) > 1000:
        raise FieldError({field: "names more than 1000 columns"})
    names = [_name(v, f"{field}[{i}]") for i, v in enumerate(value)]
    seen: set[str] = set()
    for name in names:
        if name.lower() in seen:
            raise FieldError({field: f"column {name!r} is listed twice"})
        seen.add(name.lower())
    return names


def _condition(raw: Any, i: int) -> dict[str, Any]:
    field = f"filters.where_conditions[{i}]"
    if not isinstance(raw, Mapping):
        raise FieldError({field: 'must be an object {"column": ..., "operator": ..., "value": ...}'})
    unknown = sorted(set(raw) - {"column", "operator", "value"})
    if unknown:
        raise FieldError({field: f"unknown key {unknown[0]!r}; a condition has column, operator and value"})
    column = _name(raw.get("column"), f"{field}.column")
    operator = raw.get("operator", "=")
    operator = operator.strip().lower().replace(" ", "_") if isinstance(operator, str) else operator
    if operator not in OPERATORS:
        raise FieldError(
            {field: f"operator {raw.get('operator')!r} is not supported; use one of: {', '.join(OPERATORS)}"}
        )
    value = raw.get("value")
    out: dict[str, Any] = {"column": column, "operator": operator}
    if operator in ("is_null", "is_not_null"):
        return out
    if operator in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise FieldError({field: f"operator {operator} needs a non-empty list as value"})
        if len(value) > MAX_LIST_VALUES:
            raise FieldError({field: f"operator {operator} takes at most {MAX_LIST_VALUES} values"})
        items = value
    elif operator == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise FieldError({field: "operator between needs a list of two values [low, high]"})
        items = value
    else:
        if "value" not in raw or isinstance(value, (list, Mapping)) or value is None:
            raise FieldError(
                {field: f"operator {operator} needs a single value (a string, number or boolean)"}
            )
        items = [value]
        if operator in ("like", "ilike") and not isinstance(value, str):
            raise FieldError({field: f"operator {operator} needs a string pattern (% and _ are wildcards)"})
    for item in items:
        if item is None or isinstance(item, (list, Mapping)):
            raise FieldError({field: "values must be strings, numbers or booleans (use is_null for NULL)"})
        if isinstance(item, str) and ("\x00" in item or len(item) > 65536):
            raise FieldError({field: "a value contains a NUL character or is longer than 65536 characters"})
    out["value"] = value
    return out


def _order_terms(value: Any) -> list[str] | None:
    """``"a DESC, b"`` or ``["a DESC", "b"]`` as a list of terms (parsed when compiled)."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        if len(value) > 4096 or "\x00" in value:
            raise FieldError({"filters.order_by": "is longer than 4096 characters or contains NUL"})
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value) and len(value) <= 100:
        return [", ".join(value)]
    raise FieldError({"filters.order_by": 'must be a string such as "created_at DESC, id"'})


def normalize_filters(raw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Normalised filters, and options found among them (the seed puts ``include_headers`` there)."""
    errors = FieldErrors()
    out, moved = filters_checked(raw, errors)
    errors.raise_if_any()
    return out, moved


def filters_checked(raw: Any, errors: FieldErrors) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`normalize_filters` recording every problem in ``errors``; returns the valid parts.

    A condition that fails stays in ``where_conditions`` as ``None``, so the ones after it keep
    their index (and their field name) when they are checked against a table.
    """
    if raw is None:
        return {}, {}
    if not isinstance(raw, Mapping):
        errors.add("filters", "must be an object")
        return {}, {}
    moved: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "include_headers":
            moved[key] = value
        elif key not in FILTER_KEYS:
            errors.add(f"filters.{key}", f"unknown filter; supported filters are: {', '.join(FILTER_KEYS)}")
    with errors.check():
        columns = _names(raw.get("columns"), "filters.columns", allow_star=True)
        if columns is not None:
            out["columns"] = columns
    conditions = raw.get("where_conditions")
    if conditions not in (None, []):
        if not isinstance(conditions, list):
            errors.add("filters.where_conditions", "must be a list of conditions")
        elif len(conditions) > MAX_CONDITIONS:
            errors.add("filters.where_conditions", f"at most {MAX_CONDITIONS} conditions are allowed")
        else:
            checked: list[dict[str, Any] | None] = []
            for i, c in enumerate(conditions):
                checked.append(None)
                with errors.check():
                    checked[-1] = _condition(c, i)
            out["where_conditions"] = checked
    limit = raw.get("limit")
    if limit is not None:
        if isinstance(limit, str) and limit.strip().isdigit():
            limit = int(limit)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
            errors.add("filters.limit", "must be a whole number of rows, at least 1")
        else:
            out["limit"] = limit
    with errors.check():
        order = _order_terms(raw.get("order_by"))
        if order is not None:
            out["order_by"] = order[0]
    group = raw.get("group_by")
    if group not in (None, "", []):
        with errors.check():
            out["group_by"] = _names(group, "filters.group_by")
    with errors.check():
        rng = _date_range(raw.get("date_range"), errors)
        if rng is not None:
            out["date_range"] = rng
    return out, moved


def _date_range(date_range: Any, errors: FieldErrors) -> dict[str, Any] | None:
    if date_range is None:
        return None
    if not isinstance(date_range, Mapping):
        raise FieldError(
            {"filters.date_range": 'must be an object {"start": ..., "end": ..., "column": ...}'}
        )
    unknown = sorted(set(date_range) - {"start", "end", "column"})
    if unknown:
        raise FieldError({"filters.date_range": f"unknown key {unknown[0]!r}; use start, end and column"})
    rng: dict[str, Any] = {}
    bad = False
    for key in ("start", "end"):
        value = date_range.get(key)
        if value in (None, ""):
            continue
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            errors.add(f"filters.date_range.{key}", "must be a date or time such as 2024-01-31")
            bad = True
            continue
        rng[key] = str(value)
    if not rng and not bad:
        raise FieldError({"filters.date_range": "needs a start, an end, or both"})
    if date_range.get("column") not in (None, ""):
        rng["column"] = _name(date_range["column"], "filters.date_range.column")
    return None if bad else rng


def _bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise FieldError({field: "must be true or false"})


def normalize_options(fmt: str, raw: Any, moved: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Options for ``fmt`` with defaults filled in; options of other formats are refused."""
    errors = FieldErrors()
    out = options_checked(fmt, raw, moved, errors)
    errors.raise_if_any()
    return out


def options_checked(
    fmt: str | None, raw: Any, moved: Mapping[str, Any] | None, errors: FieldErrors
) -> dict[str, Any]:
    """:func:`normalize_options` recording every problem in ``errors``.

    With ``fmt`` None (the format itself is invalid) each option's value is still checked.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        errors.add("options", "must be an object")
        raw = {}
    # options written among the filters (the seed's include_headers) count where they apply
    carried = {k: v for k, v in (moved or {}).items() if fmt in OPTION_DEFAULTS.get(k, {})}
    given = carried | dict(raw)
    out: dict[str, Any] = {}
    for key, value in given.items():
        with errors.check():
            out[key] = _option(fmt, key, value)
    if fmt is not None:
        for key, defaults in OPTION_DEFAULTS.items():
            if fmt in defaults:
                out.setdefault(key, defaults[fmt])
    return dict(sorted(out.items()))


def _option(fmt: str | None, key: str, value: Any) -> Any:
    field = f"options.{key}"
    if key not in OPTION_DEFAULTS:
        raise FieldError({field: f"unknown option; supported options are: {', '.join(OPTION_DEFAULTS)}"})
    if fmt is not None and fmt not in OPTION_DEFAULTS[key]:
        formats = ", ".join(OPTION_DEFAULTS[key])
        raise FieldError({field: f"applies to {formats} exports, not {fmt}"})
    if key == "delimiter":
        if value == "\\t":
            value = "\t"
        if not isinstance(value, str) or len(value) != 1 or value in ('"', "\n", "\r", "\x00"):
            raise FieldError(
                {field: "must be one character other than a quote or a line break (e.g. ; or \\t)"}
            )
    elif key == "encoding":
        value = ENCODINGS.get(str(value).strip().lower()) if isinstance(value, str) else None
        if value is None:
            raise FieldError({field: "must be one of: utf-8, utf-16, latin-1"})
    elif key in ("include_headers", "escape_formulas"):
        value = _bool(value, field)
    elif key == "json_format" and value not in JSON_FORMATS:
        raise FieldError({field: "must be array (one JSON array) or lines (one object per line)"})
    elif key == "compression" and value not in COMPRESSIONS:
        raise FieldError({field: f"must be one of: {', '.join(COMPRESSIONS)}"})
    elif key == "sheet_name" and (
        not isinstance(value, str) or not 1 <= len(value) <= 31 or any(c in value for c in "[]:*?/\\")
    ):
        raise FieldError({field: "must be 1-31 characters without [ ] : * ? / \\"})
    return value


def normalize(fmt: Any, filters: Any, options: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The checked ``(format, filters, options)`` of an export request; one error names every problem."""
    errors = FieldErrors()
    checked = normalize_checked(fmt, filters, options, errors)
    errors.raise_if_any()
    assert checked[0] is not None
    return checked[0], checked[1], checked[2]


def normalize_checked(
    fmt: Any, filters: Any, options: Any, errors: FieldErrors
) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """:func:`normalize` recording every problem in ``errors``; the format is None when invalid."""
    checked: str | None = None
    with errors.check():
        checked = check_format(fmt)
    clean, moved = filters_checked(filters, errors)
    return checked, clean, options_checked(checked, options, moved, errors)


def merge(base: Mapping[str, Any] | None, override: Mapping[str, Any] | None) -> dict[str, Any]:
    """Key-by-key merge of a template's filters or options with a request's (the request wins)."""
    out = dict(base or {})
    for key, value in (override or {}).items():
        out[key] = value
    return out
