"""Options every command shares, and turning them into Settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

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


@contextmanager
def api_client(url: str | None, token: str | None) -> Iterator[Client]:
    """An SDK client for commands that talk to a server; API and connection errors exit 1."""
    from entrepot.client import APIError, Client

    if not url or not token:
        raise fail("give --url and --token (or set ENTREPOT_URL and ENTREPOT_TOKEN)", 2)
    try:
        with Client(url, token) as client:
            yield client
    except APIError as exc:
        raise fail(str(exc)) from exc
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from exc


@contextmanager
def byte_progress(label: str) -> Iterator[Callable[[int, int | None], None]]:
    """A transient byte-count bar on stderr; yields the ``on_progress(done, total)`` callback."""
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=True) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        yield update
