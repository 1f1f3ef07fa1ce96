"""Options every command shares, and turning them into Settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from entrepot.config import Settings, load_settings

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
