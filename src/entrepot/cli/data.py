"""Client commands over HTTP (the SDK): buckets and tables, with progress bars.

They talk to a running server: ``--url``/``ENTREPOT_URL`` and ``--token``/``ENTREPOT_TOKEN``.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import typer

from entrepot.cli.options import (
    AsJson,
    Col,
    Token,
    Url,
    Wide,
    err,
    fail,
    print_json,
    print_table,
    progress_bars,
)
from entrepot.cli.options import api_client as _client

buckets = typer.Typer(help="Buckets of a running server (Keboola Storage API).", no_args_is_help=True)
tables = typer.Typer(
    help="Tables of a running server: create, import, export, preview.", no_args_is_help=True
)


def _print_rows(rows: list[dict[str, Any]], columns: list[Col], as_json: bool, wide: bool = False) -> None:
    if as_json:
        print_json(rows)
    else:
        print_table(rows, columns, wide=wide)


# -- buckets -------------------------------------------------------------------------------
@buckets.command("list")
def buckets_list(url: Url = None, token: Token = None, as_json: AsJson = False, wide: Wide = False) -> None:
    """List buckets."""
    with _client(url, token) as client:
        rows = client.buckets.list()
    columns = [Col("id", "id"), Col("description", "description"), Col("created", "created", "time")]
    _print_rows(rows, columns, as_json, wide)


@buckets.command("create")
def buckets_create(
    name: str,
    stage: Annotated[str, typer.Option(help="in or out.")] = "in",
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    url: Url = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Create the bucket <stage>.c-<name> and print its id (with --json, the bucket)."""
    if stage not in ("in", "out"):
        raise fail(f"--stage must be in or out, not {stage!r}", 2)
    with _client(url, token) as client:
        bucket = client.buckets.create(name, stage=cast(Literal["in", "out"], stage), description=description)
    if as_json:
        print_json(bucket)
    else:
        print(bucket["id"])


@buckets.command("delete")
def buckets_delete(
    bucket_id: str,
    force: Annotated[bool, typer.Option("--force", help="Drop its tables too.")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Delete a bucket."""
    with _client(url, token) as client:
        client.buckets.delete(bucket_id, force=force)
    err.print(f"deleted {bucket_id}")


# -- tables --------------------------------------------------------------------------------
def _csv_list(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


@tables.command("list")
def tables_list(
    bucket: Annotated[str | None, typer.Option(help="Only this bucket.")] = None,
    url: Url = None,
    token: Token = None,
    as_json: AsJson = False,
    wide: Wide = False,
) -> None:
    """List tables with their row counts."""
    with _client(url, token) as client:
        rows = client.tables.list(bucket)
    columns = [
        Col("id", "id"),
        Col("rows", "rowsCount", "number"),
        Col("primary key", "primaryKey"),
        Col("last change", "lastChangeDate", "time"),
    ]
    _print_rows(rows, columns, as_json, wide)


@tables.command("create")
def tables_create(
    bucket: str,
    name: str,
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV with a header row (or .gz).")
    ],
    primary_key: Annotated[str | None, typer.Option(help="Comma-separated key columns.")] = None,
    delimiter: Annotated[str, typer.Option(help="Field delimiter.")] = ",",
    url: Url = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Create a table from a CSV file and print its id (with --json, the table)."""
    with _client(url, token) as client, progress_bars() as bars:
        table = client.tables.create(
            bucket, name, file, primary_key=_csv_list(primary_key), delimiter=delimiter,
            on_upload=bars.transfer("upload"), on_progress=bars.job("create"),
        )  # fmt: skip
    if as_json:
        print_json(table)
    else:
        print(table["id"])
    err.print(f"{table['rowsCount']} rows")


@tables.command("import")
def tables_import(
    table_id: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV file (or .gz).")],
    incremental: Annotated[bool, typer.Option("--incremental", help="Upsert by primary key.")] = False,
    columns: Annotated[str | None, typer.Option(help="The file's columns, when it has no header.")] = None,
    delimiter: Annotated[str, typer.Option(help="Field delimiter.")] = ",",
    url: Url = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Load a CSV file into a table (replace, or upsert with --incremental); --json prints the results."""
    cols = _csv_list(columns)
    with _client(url, token) as client, progress_bars() as bars:
        results = client.tables.load(
            table_id, file, incremental=incremental, columns=cols or None, without_headers=bool(cols),
            delimiter=delimiter, on_upload=bars.transfer("upload"), on_progress=bars.job("import"),
        )  # fmt: skip
    if as_json:
        print_json(results)
    err.print(f"{table_id}: {results.get('totalRowsCount')} rows")


@tables.command("export")
def tables_export(
    table_id: str,
    dest: Annotated[Path, typer.Argument(help="CSV file to write (with a header row); - for stdout.")],
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns, in output order.")] = None,
    where: Annotated[
        list[str] | None, typer.Option(help="COLUMN=v1,v2 (repeatable; rows matching all).")
    ] = None,
    changed_since: Annotated[str | None, typer.Option(help="ISO time, unix time or e.g. '-1 days'.")] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Export a table (or a filtered part of it) to a CSV file."""
    filters: dict[str, list[str]] = {}
    for item in where or []:
        column, _, values = item.partition("=")
        if not column or not _:
            raise fail(f"--where takes COLUMN=v1,v2, not {item!r}", 2)
        filters[column] = values.split(",")
    with _client(url, token) as client, progress_bars() as bars:
        target: Any = sys.stdout.buffer if str(dest) == "-" else dest
        client.tables.export(
            table_id, target, columns=_csv_list(columns) or None, where=filters or None,
            changed_since=changed_since, on_progress=bars.job("export"), on_download=bars.transfer("download"),
        )  # fmt: skip
    if str(dest) != "-":
        err.print(f"wrote {dest}")


@tables.command("preview")
def tables_preview(
    table_id: str,
    limit: Annotated[int, typer.Option(help="Rows (at most 1000).")] = 20,
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns.")] = None,
    url: Url = None,
    token: Token = None,
    as_json: AsJson = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """Show the first rows of a table."""
    with _client(url, token) as client:
        rows = client.tables.preview(table_id, columns=_csv_list(columns) or None, limit=limit)
        names = _csv_list(columns) or (list(rows[0]) if rows else client.tables.get(table_id)["columns"])
    if as_csv:
        writer = csv.DictWriter(sys.stdout, names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    _print_rows(rows, [Col(n, n) for n in names], as_json)


@tables.command("delete")
def tables_delete(table_id: str, url: Url = None, token: Token = None) -> None:
    """Drop a table."""
    with _client(url, token) as client:
        client.tables.delete(table_id)
    err.print(f"deleted {table_id}")
