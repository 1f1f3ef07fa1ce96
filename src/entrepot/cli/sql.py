"""``entrepot sql``: the SQL API over HTTP (the SDK's ``client.sql``).

``entrepot sql "select …"`` is short for ``entrepot sql query "select …"``: any first
argument that is not a subcommand (``query``, ``copy-from``, ``copy-to``, ``batch``) is a query.
The server is ``--url``/``ENTREPOT_URL``, the token ``--token``/``ENTREPOT_TOKEN``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from entrepot.cli.options import AsJson, Token, Url, err, out, print_json
from entrepot.cli.options import api_client as _client
from entrepot.cli.options import byte_progress as _progress
from entrepot.cli.options import fail as _fail

if TYPE_CHECKING:
    from entrepot.client import Client


class _QueryByDefault(TyperGroup):
    """A group whose first argument, when it is not a subcommand, is the query of ``query``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # Typer's own vendored click Context
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["query", *args]
        return super().parse_args(ctx, args)


sql = typer.Typer(
    cls=_QueryByDefault,
    help='Run SQL on a running server: entrepot sql "select …" (a table), copy-from, copy-to, batch.',
    no_args_is_help=True,
)
batch = typer.Typer(
    help="SQL batch jobs: queries that run asynchronously on the server.", no_args_is_help=True
)
sql.add_typer(batch, name="batch")

Query = Annotated[str, typer.Argument(metavar="QUERY", help="SQL text; - reads it from stdin.")]

FORMATS = ("table", "json", "csv", "geojson", "parquet", "xlsx")
_BINARY = ("parquet", "xlsx")
_SUFFIXES = {".json": "json", ".csv": "csv", ".geojson": "geojson", ".parquet": "parquet", ".xlsx": "xlsx"}


def _query_text(q: str) -> str:
    text = sys.stdin.read() if q == "-" else q
    if not text.strip():
        raise _fail("the query is empty", 2)
    return text


def _stdout_binary(fmt: str) -> IO[bytes]:
    if fmt in _BINARY and sys.stdout.isatty():
        raise _fail(f"{fmt} is binary: write it to a file with -o FILE (or pipe it)", 2)
    return sys.stdout.buffer


def _cell(value: Any) -> Text:
    if value is None:
        return Text("NULL", style="dim")
    if isinstance(value, (dict, list)):
        return Text(json.dumps(value, default=str))
    return Text(str(value))


# -- query ------------------------------------------------------------------------------------
@sql.command("query")
def query(
    q: Query,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="table (printed), json, csv, geojson, parquet or xlsx.",
            case_sensitive=False,
        ),
    ] = "table",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the result here (format from the suffix unless --format)."
        ),
    ] = None,
    skipfields: Annotated[str | None, typer.Option(help="Comma-separated columns to leave out.")] = None,
    dp: Annotated[int | None, typer.Option(help="Decimals of GeoJSON coordinates.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Short for --format json.")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Run a query: a table on stdout, or the result in a format to stdout or -o FILE."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise _fail(f"--format must be one of {', '.join(FORMATS)}, not {fmt}", 2)
    if as_json:
        if fmt not in ("table", "json"):
            raise _fail(f"--json is --format json: it cannot go with --format {fmt}", 2)
        fmt = "json"
    if output is not None and fmt == "table":
        fmt = _SUFFIXES.get(output.suffix.lower(), "json")
    text = _query_text(q)
    with _client(url, token) as client:
        if fmt == "table":
            result = client.sql.query(text, skipfields=skipfields, dp=dp)
            columns = result.columns
            if not columns:  # a statement without a result set (insert, create, ...)
                err.print(f"OK, {result.total_rows} row(s) affected in {result.time:.3f} s", highlight=False)
                return
            table = Table(*columns)
            for row in result.rows:
                table.add_row(*(_cell(row.get(c)) for c in columns))
            out.print(table)
            err.print(f"{result.total_rows} row(s) in {result.time:.3f} s", highlight=False)
            return
        if output is None:
            written = client.sql.query(
                text, format=fmt, dest=_stdout_binary(fmt), skipfields=skipfields, dp=dp
            )
            sys.stdout.flush()
            return
        written = client.sql.query(text, format=fmt, dest=output, skipfields=skipfields, dp=dp)
    err.print(f"wrote {written} bytes of {fmt} to {escape(str(output))}", highlight=False)


# -- COPY -------------------------------------------------------------------------------------
@sql.command("copy-from")
def copy_from(
    q: Annotated[str, typer.Argument(metavar="QUERY", help="COPY table [(columns)] FROM STDIN [WITH (…)].")],
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="The data (a .gz file is sent as is); - for stdin.")
    ],
    compress: Annotated[
        bool, typer.Option("--compress/--no-compress", help="Gzip the body on the fly.")
    ] = True,
    as_json: AsJson = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Load a file (PostgreSQL text or CSV, as the COPY says) into a table, streamed."""
    source: Any = sys.stdin.buffer if file == "-" else Path(file)
    if isinstance(source, Path) and not source.is_file():
        raise _fail(f"no such file: {file}", 2)
    with _client(url, token) as client, _progress("copy-from") as update:
        result = client.sql.copy_from(q, source, compress=compress, on_progress=update)
    if as_json:
        print_json(result)
    err.print(
        f"{result.get('total_rows')} row(s) copied in {float(result.get('time') or 0):.3f} s", highlight=False
    )


@sql.command("copy-to")
def copy_to(
    q: Annotated[str, typer.Argument(metavar="QUERY", help="COPY (query) | table TO STDOUT [WITH (…)].")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Stream the output of COPY … TO STDOUT to stdout or a file."""
    with _client(url, token) as client:
        if output is None:
            client.sql.copy_to(q, sys.stdout.buffer)
            sys.stdout.flush()
            return
        with _progress("copy-to") as update:
            written = client.sql.copy_to(q, output, on_progress=update)
    err.print(f"wrote {written} bytes to {escape(str(output))}", highlight=False)


# -- batch ------------------------------------------------------------------------------------
def _print_job(job: dict[str, Any]) -> None:
    print_json(job)


def _wait(client: Client, job_id: str, timeout: float | None) -> dict[str, Any]:
    from entrepot.client import JobFailed

    def on_status(job: dict[str, Any]) -> None:
        err.print(f"job {escape(str(job_id))}: {job.get('status')}", highlight=False)

    try:
        return client.sql.batch.wait(job_id, timeout=timeout, on_status=on_status)
    except JobFailed as exc:
        raise _fail(f"job {job_id} {exc.job.get('status')}: {exc.message}") from exc


Wait = Annotated[bool, typer.Option("--wait", help="Wait for the job to finish (exit 1 if it fails).")]
Timeout = Annotated[float | None, typer.Option(help="Seconds to wait at most (the job goes on).")]


@batch.command("create")
def batch_create(
    queries: Annotated[
        list[str], typer.Argument(metavar="QUERY...", help="One or more queries, run in order.")
    ],
    wait: Wait = False,
    timeout: Timeout = None,
    as_json: AsJson = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Queue a batch job and print its id (with --json, the job)."""
    with _client(url, token) as client:
        job = client.sql.batch.create(queries[0] if len(queries) == 1 else queries)
        if not as_json:
            print(job["job_id"], flush=True)
        if wait:
            job = _wait(client, job["job_id"], timeout)
    if as_json:
        _print_job(job)


@batch.command("get")
def batch_get(
    job_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="The job is always printed as JSON.")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Print a job as JSON."""
    with _client(url, token) as client:
        _print_job(client.sql.batch.get(job_id))


@batch.command("wait")
def batch_wait(
    job_id: str, timeout: Timeout = None, as_json: AsJson = False, url: Url = None, token: Token = None
) -> None:
    """Wait until a job finishes; exit 1 if it failed or was cancelled."""
    with _client(url, token) as client:
        job = _wait(client, job_id, timeout)
    if as_json:
        _print_job(job)


@batch.command("update")
def batch_update(
    job_id: str,
    queries: Annotated[list[str], typer.Argument(metavar="QUERY...", help="The new queries.")],
    as_json: AsJson = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Replace the queries of a job that is still pending."""
    with _client(url, token) as client:
        job = client.sql.batch.update(job_id, queries[0] if len(queries) == 1 else queries)
    if as_json:
        _print_job(job)
    else:
        err.print(f"job {escape(job_id)}: updated ({job.get('status')})", highlight=False)


@batch.command("cancel")
def batch_cancel(job_id: str, as_json: AsJson = False, url: Url = None, token: Token = None) -> None:
    """Cancel a pending or running job."""
    with _client(url, token) as client:
        job = client.sql.batch.cancel(job_id)
    if as_json:
        _print_job(job)
    else:
        err.print(f"job {escape(job_id)}: {job.get('status')}", highlight=False)
