"""Options every command shares, turning them into Settings, and the shared output pieces.

Output for people: tables that fit the terminal (:func:`print_table`: UUIDs cut to 8 characters,
compact UTC times, lists as ``a, b``; ``--wide`` for full values) and progress bars on stderr
(:func:`progress_bars`: jobs in percent and rows, transfers in bytes). Output for scripts:
``--json`` (:func:`print_json`), always the full data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.filesize import decimal
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column, Table
from rich.text import Text
from typer.core import TyperGroup

from entrepot.config import Settings, load_settings

if TYPE_CHECKING:
    from entrepot.client import Client

err = Console(stderr=True)
out = Console()

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="ENTREPOT_DATA_DIR", help="Data directory (default: ./entrepot-data)."),
]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", envvar="ENTREPOT_CONFIG", help="TOML file with settings.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the data as JSON on stdout (for scripts).")]
Wide = Annotated[
    bool, typer.Option("--wide", help="Full ids and times in tables (lines may be wider than the terminal).")
]
Url = Annotated[
    str | None, typer.Option("--url", envvar="ENTREPOT_URL", help="Server URL.", show_envvar=True)
]
Token = Annotated[
    str | None, typer.Option("--token", envvar="ENTREPOT_TOKEN", help="API token.", show_envvar=True)
]
CatalogUrl = Annotated[
    str | None,
    typer.Option("--catalog-url", help="Catalog database URL (SQLite default, or postgresql+psycopg://)."),
]


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    """Load settings or exit with a message that says what is wrong."""
    try:
        return load_settings(config, **overrides)
    except FileNotFoundError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        err.print("[red]error:[/red] invalid settings:\n" + "\n".join(lines))
        raise typer.Exit(2) from exc


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` to stderr; the ``typer.Exit(code)`` to raise."""
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


def failure_message(exc: Exception) -> str | None:
    """What to tell the user of an error that ended a command; None for a bug (its traceback shows).

    API errors (the server's message, the job's error), the core's errors (admin commands that
    open the data directory) and the system's (a file, a connection) are the user's to fix.
    """
    from entrepot.client.errors import APIError, JobFailed
    from entrepot.core.errors import EntrepotError

    if isinstance(exc, JobFailed):
        return f"job failed: {exc}"
    if isinstance(exc, EntrepotError):
        return exc.message
    if isinstance(exc, APIError | OSError | ValueError):
        return str(exc)
    return None


class Commands(TyperGroup):
    """The root command group: the one place where an error that ends any command becomes
    ``error: <what to fix>`` on stderr and exit status 1 (usage errors exit 2 before this)."""

    def invoke(self, ctx: Any) -> Any:  # click.Context (typer vendors click privately)
        try:
            return super().invoke(ctx)
        except Exception as exc:  # typer's own exits and usage errors are none of failure_message's
            message = failure_message(exc)
            if message is None:
                raise
            raise fail(message) from exc


@contextmanager
def api_client(url: str | None, token: str | None) -> Iterator[Client]:
    """An SDK client for commands that talk to a server (their errors end at :class:`Commands`)."""
    from entrepot.client import Client

    if not url or not token:
        raise fail("give --url and --token (or set ENTREPOT_URL and ENTREPOT_TOKEN)", 2)
    with Client(url, token) as client:
        yield client


# -- JSON and tables ----------------------------------------------------------------------------
def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout, for scripts (plain ``print``: no markup, no wrapping)."""
    print(json.dumps(data, indent=2, default=str))


SHORT_ID = 8  # characters of a UUID shown in tables without --wide (as git shows commits)
MIN_LONG = 12  # a ``long`` column is cut (with an ellipsis) to fit the terminal, down to this
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


def text_of(value: Any) -> str:
    """A value as table text: None empty, booleans yes/no, lists ``a, b``, flat mappings ``k=v, k2=v2``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat()
    nested = (Mapping, list, tuple)
    if isinstance(value, (list, tuple)):
        if any(isinstance(v, nested) for v in value):
            return json.dumps(value, default=str)
        return ", ".join(text_of(v) for v in value)
    if isinstance(value, Mapping):
        if any(isinstance(v, nested) for v in value.values()):
            return json.dumps(value, default=str)
        return ", ".join(f"{k}={text_of(v)}" for k, v in value.items())
    return str(value)


def short_id(value: Any, wide: bool = False) -> str:
    """A UUID's first 8 characters (the whole id with ``wide``, or when it is not a UUID)."""
    text = text_of(value)
    return text if wide or not _UUID.match(text) else text[:SHORT_ID]


def time_text(value: Any, wide: bool = False) -> str:
    """A time as ``YYYY-MM-DD HH:MM`` in UTC (as given with ``wide``, or when it does not parse)."""
    if value is None or value == "":
        return ""
    if wide:
        return text_of(value)
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return text_of(value)
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%d %H:%M")


ColumnKind = Literal["text", "id", "time", "number", "long"]


@dataclass(frozen=True)
class Col:
    """A column of :func:`print_table`: a header, the row's key (or a function of the row), a kind.

    Kinds: ``text`` wraps; ``id`` shortens UUIDs; ``time`` is compact UTC; ``number`` is
    right-aligned; ``long`` stays on one line and is cut with an ellipsis when space runs out.
    """

    header: str
    key: str | Callable[[Mapping[str, Any]], Any]
    kind: ColumnKind = "text"


def _cell(col: Col, row: Mapping[str, Any], wide: bool) -> Text:
    value = col.key(row) if callable(col.key) else row.get(col.key)
    if col.kind == "id":
        return Text(short_id(value, wide))
    if col.kind == "time":
        return Text(time_text(value, wide))
    return Text(text_of(value))


def _layout(col: Col, wide: bool, long_width: int | None) -> Column:
    if wide:
        return Column(col.header, no_wrap=True, justify="right" if col.kind == "number" else "left")
    if col.kind == "number":
        return Column(col.header, no_wrap=True, justify="right")
    if col.kind == "time":
        return Column(col.header, no_wrap=True)
    if col.kind == "long":
        return Column(col.header, no_wrap=True, overflow="ellipsis", max_width=long_width)
    if col.kind == "id":
        return Column(col.header, overflow="fold", min_width=SHORT_ID)
    return Column(col.header, overflow="fold")


_GAP = 2  # spaces between columns


def _long_width(columns: Sequence[Col], cells: list[list[Text]], width: int) -> int | None:
    """How wide ``long`` columns may be so that the others keep their natural width in ``width``.

    Rich squeezes the columns that wrap and leaves one-line columns alone, so a long description
    would crush the names beside it; it is cut instead (at least ``MIN_LONG`` characters).
    """
    longs = [i for i, c in enumerate(columns) if c.kind == "long"]
    if not longs:
        return None
    natural = [max([len(c.header), *(row[i].cell_len for row in cells)]) for i, c in enumerate(columns)]
    others = sum(w for i, w in enumerate(natural) if i not in longs)
    room = width - others - (_GAP * len(columns) - 1)  # the gaps, and the last column's padding
    return max(MIN_LONG, room // len(longs))


def table_of(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[Col], *, wide: bool = False, width: int = 80
) -> Table:
    """A borderless table of ``rows`` (see :class:`Col`) for ``width`` columns; cells are plain text."""
    cells = [[_cell(c, row, wide) for c in columns] for row in rows]
    long_width = None if wide else _long_width(columns, cells, width)
    table = Table(
        *(_layout(c, wide, long_width) for c in columns),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, _GAP - 1, 0, 0),  # and the box's blank divider
        header_style="bold",
    )
    for row_cells in cells:
        table.add_row(*row_cells)
    return table


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Col], *, wide: bool = False) -> None:
    """Print ``rows`` on stdout, fitted to the terminal (80 columns when not one).

    With ``wide`` the values are whole (full UUIDs and ISO times) and the table takes the width
    it needs, even beyond the terminal's.
    """
    table = table_of(rows, columns, wide=wide, width=out.width)
    console = out
    if wide:
        needed = Measurement.get(out, out.options.update_width(1_000_000), table).maximum
        if needed > out.width:
            console = Console(width=needed, highlight=False)
    console.print(table)


# -- progress bars ------------------------------------------------------------------------------
def _percent(task: Task) -> int:
    """Whole percent done: 100 only once everything is done (99.9 % shows 99)."""
    if task.total is None:
        return 0
    if task.total <= 0:
        return 100
    return max(0, min(100, int(task.completed * 100 // task.total)))


class _BarOrSpinner(ProgressColumn):
    """A bar when the total is known, a spinner while it is not."""

    def __init__(self) -> None:
        super().__init__()
        self._bar = BarColumn(bar_width=24)
        self._spinner = SpinnerColumn(finished_text=" ")

    def render(self, task: Task) -> Any:
        return self._spinner.render(task) if task.total is None else self._bar.render(task)


class _Amount(ProgressColumn):
    """Bytes as ``done/total unit  NN%`` (bytes so far while the size is unknown); jobs as ``NN%``
    and their rows when known."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes = DownloadColumn()

    def render(self, task: Task) -> Text:
        if task.fields.get("unit") == "bytes":
            if task.total is None:
                return Text(decimal(int(task.completed)), style="progress.download")
            text = self._bytes.render(task)
            text.append(f" {_percent(task):>3}%", style="progress.percentage")
            return text
        text = Text(f"{_percent(task):>3}%", style="progress.percentage")
        rows = task.fields.get("rows")
        if rows is not None:
            text.append(f" {rows:,} rows")
        return text


class _Speed(ProgressColumn):
    """Bytes per second of a transfer (nothing for a job, or before there is a measure)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if task.fields.get("unit") != "bytes" or speed is None:
            return Text("")
        return Text(f"{decimal(int(speed))}/s", style="progress.data.speed")


def progress_columns() -> tuple[ProgressColumn, ...]:
    """The columns of every progress display; tasks carry ``unit="bytes"`` or ``unit="job"``."""
    return (TextColumn("{task.description}"), _BarOrSpinner(), _Amount(), _Speed(), TimeElapsedColumn())


def job_rows(job: Mapping[str, Any]) -> int | None:
    """The rows a job reports (an export's ``row_count``, a table job's row count), if any."""
    results = job.get("results")
    candidates = [job.get("row_count")]
    if isinstance(results, Mapping):
        candidates += [results.get("totalRowsCount"), results.get("rowsCount")]
    for value in candidates:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


class Bars:
    """Progress bars on stderr: jobs in percent (and rows), transfers in bytes."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self._transfers: list[tuple[str, list[TaskID]]] = []  # (label, [its task once it has one])

    def transfer(self, label: str) -> Callable[[int, int | None], None]:
        """A bar for bytes (shown once they move); the ``on_progress(done, total)`` callback."""
        slot: list[TaskID] = []
        self._transfers.append((label, slot))

        def update(done: int, total: int | None) -> None:
            if not slot:
                slot.append(self.progress.add_task(label, total=total, unit="bytes"))
            self.progress.update(slot[0], completed=done, total=total)

        return update

    def job(self, label: str) -> Callable[[Mapping[str, Any]], None]:
        """A percentage bar for a job (from its first state); the ``on_progress(job)`` callback."""
        task: TaskID | None = None

        def update(job: Mapping[str, Any]) -> None:
            nonlocal task
            description = f"{label} (job {short_id(job.get('id'))}) {text_of(job.get('status'))}"
            done, rows = job.get("progress") or 0, job_rows(job)
            if task is None:  # born with its state: never drawn as "success 0%"
                task = self.progress.add_task(description, total=100, completed=done, unit="job", rows=rows)
            else:
                self.progress.update(task, completed=done, description=description, rows=rows)

        return update

    def finish(self) -> None:
        """Every transfer is over: a size that stayed unknown is the bytes moved (100 %).

        A transfer that moved no bytes at all (an empty file) gets its bar too: 0 bytes, 100 %.
        """
        for label, slot in self._transfers:
            if not slot:
                slot.append(self.progress.add_task(label, total=0, unit="bytes"))
            task = next(t for t in self.progress.tasks if t.id == slot[0])
            if task.total is None:
                self.progress.update(slot[0], total=task.completed)


@contextmanager
def progress_bars() -> Iterator[Bars]:
    """Bars on stderr that stay once done, so the last line shows the final state (100 %, all bytes).

    When the command fails, they stay where they stopped.
    """
    with Progress(*progress_columns(), console=err) as progress:
        bars = Bars(progress)
        yield bars
        bars.finish()


@contextmanager
def byte_progress(label: str) -> Iterator[Callable[[int, int | None], None]]:
    """One transfer bar on stderr (:func:`progress_bars`); yields the ``on_progress(done, total)`` callback."""
    with progress_bars() as bars:
        yield bars.transfer(label)
