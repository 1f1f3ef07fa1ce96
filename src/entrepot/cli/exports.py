"""``entrepot export``, ``entrepot exports`` and ``entrepot export-templates``: the Export API over HTTP.

``entrepot export in.c-main.users -f parquet -o users.parquet --where 'age>18'`` queues an
export job, follows it with a progress bar and downloads the file. ``exports`` lists and
manages jobs, ``export-templates`` the reusable configurations. The server is
``--url``/``ENTREPOT_URL``, the token ``--token``/``ENTREPOT_TOKEN`` (the SDK's ``client.exports``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from entrepot.cli.options import (
    AsJson,
    Col,
    Token,
    Url,
    Wide,
    err,
    out,
    print_json,
    print_table,
    progress_bars,
    text_of,
)
from entrepot.cli.options import api_client as _client
from entrepot.cli.options import byte_progress as _bytes_bar
from entrepot.cli.options import fail as _fail

if TYPE_CHECKING:
    from entrepot.client import Client

exports = typer.Typer(
    help="Export jobs of a running server: list, show, cancel, retry, download, delete.", no_args_is_help=True
)
templates = typer.Typer(
    help="Export templates: reusable format, filters and options for exports.", no_args_is_help=True
)

FORMATS = ("csv", "json", "parquet", "excel")

Columns = Annotated[str | None, typer.Option("--columns", help="Comma-separated columns, in output order.")]
Where = Annotated[
    list[str] | None,
    typer.Option(
        "--where",
        help="A condition, repeatable (all must hold): 'age>18', \"name like 'A%'\", 'id in (1,2)', "
        "'score between 1 and 5', 'email is null'.",
    ),
]
OrderBy = Annotated[str | None, typer.Option("--order-by", help="e.g. 'created_at desc, id'.")]
GroupBy = Annotated[
    str | None, typer.Option("--group-by", help="Comma-separated columns; the output is them plus count.")
]
Limit = Annotated[int | None, typer.Option("--limit", min=1, help="At most this many rows.")]
Option = Annotated[
    list[str] | None,
    typer.Option(
        "--option",
        help="KEY=VALUE, repeatable (delimiter=';', compression=zstd, sheet_name=Report); "
        "the value is JSON when it parses, else a string.",
    ),
]


# -- parsing --------------------------------------------------------------------------------
class UsageError(ValueError):
    """A bad option value: printed as a usage error (exit 2)."""


# numbers with a leading zero (007, a zip code) stay strings: they would lose their zeros
_INT = re.compile(r"[+-]?(0|[1-9]\d*)\Z")
_FLOAT = re.compile(r"[+-]?((0|[1-9]\d*)(\.\d+)?|\.\d+)([eE][+-]?\d+)?\Z")
_QUOTED = r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\""
_COLUMN = r"(?P<column>\"(?:[^\"]|\"\")+\"|[^\s=<>!(),'\"]+)"
_WORD_OPERATORS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (op, re.compile(rf"\s*{_COLUMN}\s+{pattern}\s*\Z", re.IGNORECASE | re.DOTALL))
    for op, pattern in (
        ("is_not_null", r"is\s+not\s+null"),
        ("is_null", r"is\s+null"),
        ("not_in", r"not\s+in\s*\((?P<list>.*)\)"),
        ("in", r"in\s*\((?P<list>.*)\)"),
        ("between", rf"between\s+(?P<low>{_QUOTED}|\S+)\s+and\s+(?P<high>.+)"),
        ("ilike", r"ilike\s+(?P<value>.+)"),
        ("like", r"like\s+(?P<value>.+)"),
    )
)
_SYMBOL = re.compile(rf"\s*{_COLUMN}\s*(?P<op>>=|<=|!=|<>|=|>|<)\s*(?P<value>.*?)\s*\Z", re.DOTALL)
WHERE_HELP = (
    "expected COLUMN OP VALUE with OP one of = != <> > >= < <=, or COLUMN like|ilike VALUE, "
    "COLUMN in (A,B), COLUMN not in (A,B), COLUMN between A and B, COLUMN is null, COLUMN is not null"
)


def parse_value(text: str) -> Any:
    """A typed literal: 'x' or "x" is the string x, 42 an int, 4.2 a float, anything else a string."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        quote = text[0]
        return text[1:-1].replace(quote * 2, quote)
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def _split_list(text: str) -> list[Any]:
    """``a, 'b,c', 3`` → ``["a", "b,c", 3]``: commas outside quotes separate items."""
    items: list[str] = []
    current: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            current.append(ch)
            if ch == quote:
                if i + 1 < len(text) and text[i + 1] == quote:
                    current.append(quote)
                    i += 1
                else:
                    quote = None
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == ",":
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    if quote:
        raise UsageError(f"unbalanced {quote} in the list ({text})")
    items.append("".join(current))
    values = [item.strip() for item in items]
    if any(not v for v in values):
        raise UsageError(f"empty item in the list ({text})")
    return [parse_value(v) for v in values]


def _column(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('""', '"')
    return text


def parse_where(text: str) -> dict[str, Any]:
    """One ``--where`` as a where condition ``{"column", "operator", "value"?}``; ``UsageError`` if bad."""
    for operator, pattern in _WORD_OPERATORS:
        match = pattern.match(text)
        if match is None:
            continue
        condition: dict[str, Any] = {"column": _column(match["column"]), "operator": operator}
        if operator in ("in", "not_in"):
            try:
                condition["value"] = _split_list(match["list"])
            except UsageError as exc:
                raise UsageError(f"bad --where {text!r}: {exc}") from None
        elif operator == "between":
            condition["value"] = [parse_value(match["low"]), parse_value(match["high"])]
        elif operator in ("like", "ilike"):  # a pattern is a string, even when it looks like a number
            value = parse_value(match["value"])
            condition["value"] = value if isinstance(value, str) else match["value"].strip()
        return condition
    match = _SYMBOL.match(text)
    if match is None or not match["value"]:
        raise UsageError(f"bad --where {text!r}: {WHERE_HELP}")
    return {"column": _column(match["column"]), "operator": match["op"], "value": parse_value(match["value"])}


def parse_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with the value as JSON when it parses (``true``, ``3``, ``"x"``), else the string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"bad --option {text!r}: expected KEY=VALUE, e.g. delimiter=';'")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def _csv_list(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def build_filters(
    *,
    columns: str | None = None,
    where: list[str] | None = None,
    order_by: str | None = None,
    group_by: str | None = None,
    limit: int | None = None,
    since: str | None = None,
    until: str | None = None,
    date_column: str | None = None,
) -> dict[str, Any]:
    """The ``filters`` object of the command line's filter options (empty when none is given)."""
    filters: dict[str, Any] = {}
    if columns:
        filters["columns"] = _csv_list(columns)
    if where:
        filters["where_conditions"] = [parse_where(w) for w in where]
    if order_by:
        filters["order_by"] = order_by
    if group_by:
        groups = _csv_list(group_by)
        filters["group_by"] = groups[0] if len(groups) == 1 else groups
    if limit is not None:
        filters["limit"] = limit
    if date_column and not (since or until):
        raise UsageError("--date-column needs --since and/or --until")
    if since or until:
        date_range: dict[str, Any] = {}
        if since:
            date_range["start"] = since
        if until:
            date_range["end"] = until
        if date_column:
            date_range["column"] = date_column
        filters["date_range"] = date_range
    return filters


def build_options(option: list[str] | None) -> dict[str, Any]:
    return dict(parse_option(o) for o in option or [])


def _format(value: str | None) -> str | None:
    if value is None:
        return None
    fmt = value.lower()
    if fmt == "xlsx":
        fmt = "excel"
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {value}")
    return fmt


# -- printing -------------------------------------------------------------------------------
_print_json = print_json


def _size(n: Any) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def _text(value: Any) -> str:
    return text_of(value)


def _job_status(job: Mapping[str, Any]) -> str:
    status = _text(job.get("status"))
    return f"{status} {job.get('progress') or 0}%" if status == "processing" else status


def _job_table_name(job: Mapping[str, Any]) -> str:
    ds = job.get("datasource") or {}
    return _text(ds.get("table_id") or ds.get("name"))


def _print_jobs(jobs: list[dict[str, Any]], wide: bool) -> None:
    columns = [
        Col("id", "id", "id"),
        Col("status", _job_status),
        Col("format", "format"),
        Col("rows", "row_count", "number"),
        Col("size", lambda job: _size(job.get("file_size")), "number"),
        Col("table", _job_table_name),
        Col("created", "created_at", "time"),
    ]
    if wide:
        columns.append(Col("owner", "owner"))
    print_table(jobs, columns, wide=wide)


def _details(item: dict[str, Any]) -> Table:
    table = Table("field", "value", show_header=False)
    for key, value in item.items():
        table.add_row(escape(key), escape(_text(value)))
    return table


# -- export ---------------------------------------------------------------------------------
def _download(client: Client, job_id: str, output: str | None) -> Path:
    with _bytes_bar("download") as update:
        return client.exports.download(job_id, output, on_progress=update)


def _wait(client: Client, job_id: str, timeout: float | None) -> dict[str, Any]:
    from entrepot.client import ExportFailed, JobTimeout

    try:
        with progress_bars() as bars:
            return client.exports.wait(job_id, timeout=timeout, on_progress=bars.job("export"))
    except ExportFailed as exc:
        raise _fail(f"export {job_id} {exc.job.get('status')}: {exc.message}") from exc
    except JobTimeout as exc:
        raise _fail(f"{exc}; follow it with: entrepot exports show {job_id}") from exc
    except KeyboardInterrupt:
        err.print(
            f"interrupted; export {job_id} goes on (entrepot exports cancel {job_id} stops it)",
            highlight=False,
        )
        raise typer.Exit(130) from None


def export(
    table: Annotated[str, typer.Argument(help="A table id (in.c-main.users) or a datasource uuid.")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", "-f", help="csv, json, parquet or excel (default csv, or the template's format)."
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", help="File or directory to write (default: the server's file name here)."
        ),
    ] = None,
    columns: Columns = None,
    where: Where = None,
    order_by: OrderBy = None,
    group_by: GroupBy = None,
    limit: Limit = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Rows from this date or time (ISO 8601).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Rows up to this date (inclusive) or time.")
    ] = None,
    date_column: Annotated[
        str | None,
        typer.Option("--date-column", help="The column --since/--until apply to (default: row change time)."),
    ] = None,
    template: Annotated[str | None, typer.Option("--template", help="An export template id.")] = None,
    option: Option = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Print the job id and exit; do not wait or download.")
    ] = False,
    timeout: Annotated[float | None, typer.Option(help="Seconds to wait at most (the job goes on).")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the finished job, with its file's 'path', as JSON.")
    ] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Export a table to a file: queue the job, follow its progress, download the file."""
    try:
        fmt = _format(fmt)
        filters = build_filters(
            columns=columns, where=where, order_by=order_by, group_by=group_by, limit=limit,
            since=since, until=until, date_column=date_column,
        )  # fmt: skip
        options = build_options(option)
    except UsageError as exc:
        raise _fail(str(exc), 2) from exc
    with _client(url, token) as client:
        job = client.exports.create(
            table, fmt, filters=filters or None, options=options or None, template=template
        )
        job_id = str(job["id"])
        if no_wait:
            if as_json:
                print_json(job)
            else:
                print(job_id)
            return
        done = _wait(client, job_id, timeout)
        path = _download(client, job_id, output)
    err.print(
        f"export {escape(job_id)}: {done.get('row_count')} rows, {_size(done.get('file_size'))} "
        f"of {done.get('format')} written to {escape(str(path))}",
        highlight=False,
    )
    if as_json:
        print_json({**done, "path": str(path)})
    else:
        print(path)


# -- exports --------------------------------------------------------------------------------
@exports.command("list")
def exports_list(
    status: Annotated[
        str | None, typer.Option(help="pending, processing, completed, failed or cancelled.")
    ] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv, json, parquet or excel.")] = None,
    datasource: Annotated[str | None, typer.Option(help="A table id or datasource uuid.")] = None,
    search: Annotated[str | None, typer.Option(help="Text in the datasource name or error.")] = None,
    page: Annotated[int, typer.Option(min=1, help="Page number.")] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=100, help="Jobs per page.")] = 20,
    as_json: AsJson = False,
    wide: Wide = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """List export jobs, newest first (--json: the jobs and the pagination)."""
    with _client(url, token) as client:
        data = client.exports.list(
            page=page, page_size=page_size, status=status, format=fmt, datasource=datasource, search=search
        )
    if as_json:
        _print_json(data)
        return
    _print_jobs(data.get("export_jobs") or [], wide)
    p = data.get("pagination") or {}
    err.print(
        f"page {p.get('current_page')} of {p.get('page_count')}, {p.get('total_count')} job(s)",
        highlight=False,
    )


@exports.command("show")
def exports_show(job_id: str, as_json: AsJson = False, url: Url = None, token: Token = None) -> None:
    """Show one export job."""
    with _client(url, token) as client:
        job = client.exports.get(job_id)
    if as_json:
        _print_json(job)
    else:
        out.print(_details(job))


@exports.command("cancel")
def exports_cancel(job_id: str, as_json: AsJson = False, url: Url = None, token: Token = None) -> None:
    """Cancel a pending or processing export job."""
    with _client(url, token) as client:
        job = client.exports.cancel(job_id)
    if as_json:
        _print_json(job)
    else:
        err.print(f"export {escape(job_id)}: {job.get('status')}", highlight=False)


@exports.command("retry")
def exports_retry(
    job_id: str,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for it to finish (exit 1 if it fails).")] = False,
    as_json: AsJson = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Queue a failed or cancelled export job again."""
    with _client(url, token) as client:
        job = client.exports.retry(job_id)
        if wait:
            job = _wait(client, job_id, None)
    if as_json:
        _print_json(job)
    else:
        err.print(f"export {escape(job_id)}: {job.get('status')}", highlight=False)


@exports.command("delete")
def exports_delete(job_id: str, url: Url = None, token: Token = None) -> None:
    """Delete an export job and its file."""
    with _client(url, token) as client:
        client.exports.delete(job_id)
    err.print(f"export {escape(job_id)}: deleted", highlight=False)


@exports.command("download")
def exports_download(
    job_id: str,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="File or directory (default: the server's file name here)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"path": ...} as JSON.')] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Download the file of a completed export job; print where it went."""
    with _client(url, token) as client:
        path = _download(client, job_id, output)
    if as_json:
        print_json({"path": str(path)})
    else:
        print(path)


@exports.command("datasources")
def exports_datasources(
    search: Annotated[str | None, typer.Option(help="Text in the name or table id.")] = None,
    as_json: AsJson = False,
    wide: Wide = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """List the tables this token may export."""
    with _client(url, token) as client:
        rows = client.exports.datasources(search=search)
    if as_json:
        _print_json(rows)
        return
    columns = [
        Col("id", "id", "id"),
        Col("table", "table_id"),
        Col("name", "name"),
        Col("rows", "row_count", "number"),
        Col("columns", "columns", "long"),
        Col("last change", "last_change_at", "time"),
    ]
    print_table(rows, columns, wide=wide)


# -- export-templates -----------------------------------------------------------------------
def _print_templates(rows: list[dict[str, Any]], wide: bool) -> None:
    columns = [
        Col("id", "id", "id"),
        Col("name", "name"),
        Col("type", "template_type"),
        Col("format", "format"),
        Col("active", "is_active"),
        Col("owner", "owner"),
        Col("description", "description", "long"),
    ]
    if wide:
        columns[-2:-2] = [Col("uses", "usage_count", "number"), Col("filters", "has_filters")]
    print_table(rows, columns, wide=wide)


def _config_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        value = json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read --config-file {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise UsageError(f"--config-file {path} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise UsageError(f"--config-file {path} must hold a JSON object: format, filters, options")
    return value


def _merge_configuration(
    base: dict[str, Any], fmt: str | None, filters: dict[str, Any], options: dict[str, Any]
) -> dict[str, Any]:
    config = dict(base)
    if fmt is not None:
        config["format"] = fmt
    if filters:
        config["filters"] = {**(config.get("filters") or {}), **filters}
    if options:
        config["options"] = {**(config.get("options") or {}), **options}
    return config


ConfigFile = Annotated[
    Path | None,
    typer.Option("--config-file", help="JSON file with the configuration: {format, filters, options}."),
]


@templates.command("list")
def templates_list(
    type_: Annotated[str | None, typer.Option("--type", help="user, shared or system.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv, json, parquet or excel.")] = None,
    search: Annotated[str | None, typer.Option(help="Text in the name or description.")] = None,
    as_json: AsJson = False,
    wide: Wide = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """List the templates this token can use (its own, shared and system ones)."""
    with _client(url, token) as client:
        rows = client.export_templates.list(type=type_, format=fmt, search=search)
    if as_json:
        _print_json(rows)
    else:
        _print_templates(rows, wide)


@templates.command("show")
def templates_show(template_id: str, as_json: AsJson = False, url: Url = None, token: Token = None) -> None:
    """Show one template."""
    with _client(url, token) as client:
        template = client.export_templates.get(template_id)
    if as_json:
        _print_json(template)
    else:
        out.print(_details(template))


@templates.command("create")
def templates_create(
    name: str,
    fmt: Annotated[
        str | None, typer.Option("--format", "-f", help="csv, json, parquet or excel (or in --config-file).")
    ] = None,
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    shared: Annotated[
        bool, typer.Option("--shared", help="Visible to every token of the project (default: yours only).")
    ] = False,
    columns: Columns = None,
    where: Where = None,
    order_by: OrderBy = None,
    group_by: GroupBy = None,
    limit: Limit = None,
    option: Option = None,
    config_file: ConfigFile = None,
    inactive: Annotated[bool, typer.Option("--inactive", help="Create it disabled.")] = False,
    as_json: AsJson = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Create a template and print its id; flags add to (and override) --config-file."""
    try:
        config = _merge_configuration(
            _config_file(config_file),
            _format(fmt),
            build_filters(columns=columns, where=where, order_by=order_by, group_by=group_by, limit=limit),
            build_options(option),
        )
    except UsageError as exc:
        raise _fail(str(exc), 2) from exc
    if not config.get("format"):
        raise _fail("give --format (or a format in --config-file)", 2)
    with _client(url, token) as client:
        template = client.export_templates.create(
            name,
            config,
            description=description,
            template_type="shared" if shared else "user",
            is_active=not inactive,
        )
    if as_json:
        _print_json(template)
    else:
        print(template["id"])


@templates.command("update")
def templates_update(
    template_id: str,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="csv, json, parquet or excel.")] = None,
    shared: Annotated[
        bool | None, typer.Option("--shared/--user", help="Share it with the project, or make it yours only.")
    ] = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive", help="Enable or disable it.")] = None,
    columns: Columns = None,
    where: Where = None,
    order_by: OrderBy = None,
    group_by: GroupBy = None,
    limit: Limit = None,
    option: Option = None,
    config_file: ConfigFile = None,
    as_json: AsJson = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Change a template: only the given fields. Filters and options merge into the current ones;
    --config-file replaces the configuration."""
    try:
        new_fmt = _format(fmt)
        filters = build_filters(
            columns=columns, where=where, order_by=order_by, group_by=group_by, limit=limit
        )
        options = build_options(option)
        base = _config_file(config_file) if config_file is not None else None
    except UsageError as exc:
        raise _fail(str(exc), 2) from exc
    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = name
    if description is not None:
        fields["description"] = description
    if shared is not None:
        fields["template_type"] = "shared" if shared else "user"
    if active is not None:
        fields["is_active"] = active
    with _client(url, token) as client:
        if base is not None or new_fmt is not None or filters or options:
            if base is None:
                base = dict(client.export_templates.get(template_id).get("configuration") or {})
            fields["configuration"] = _merge_configuration(base, new_fmt, filters, options)
        if not fields:
            raise _fail("nothing to change: give --name, --description, --format, --columns, ... ", 2)
        template = client.export_templates.update(template_id, **fields)
    if as_json:
        _print_json(template)
    else:
        err.print(f"template {escape(template_id)}: updated", highlight=False)


@templates.command("delete")
def templates_delete(template_id: str, url: Url = None, token: Token = None) -> None:
    """Delete a template."""
    with _client(url, token) as client:
        client.export_templates.delete(template_id)
    err.print(f"template {escape(template_id)}: deleted", highlight=False)
