"""DuckDB extensions from the pip packages bundled with entrepot; nothing is ever downloaded.

Each extension ships as ``duckdb_extension_<name>/extensions/v<duckdb version>/<name>.duckdb_extension``
inside its pip package and is loaded by path. Every connection is created with autoinstall and
autoload of known extensions switched off, so a missing file is a clear error rather than a
silent download. json, parquet and icu are built into the duckdb wheel and need no loading.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from entrepot.core import errors as E
from entrepot.core.engine.statements import quote_literal

BUNDLED = ("ducklake", "sqlite_scanner", "postgres_scanner", "spatial", "excel", "httpfs")
BUILT_IN = ("json", "parquet", "icu", "core_functions")
DUCKDB_VERSION = duckdb.__version__

# Settings every entrepot DuckDB instance starts with.
BASE_CONFIG: dict[str, Any] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


@cache
def extension_path(name: str) -> Path:
    """The bundled binary of extension ``name``; ``Unavailable`` when its package is not installed."""
    if name not in BUNDLED:
        raise E.InvalidInput(
            f"unknown DuckDB extension {name!r}; bundled ones are: {', '.join(BUNDLED)}",
            code="engine.extension",
        )
    package = f"duckdb_extension_{name}"
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise E.Unavailable(
            f"the DuckDB extension {name!r} is not installed: pip install '{package.replace('_', '-')}"
            f"=={DUCKDB_VERSION}'",
            code="engine.extensionMissing",
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / "extensions" / f"v{DUCKDB_VERSION}" / f"{name}.duckdb_extension"
        if path.is_file():
            return path
    raise E.Unavailable(
        f"the package {package} has no extension binary for DuckDB {DUCKDB_VERSION}; "
        f"install the version matching duckdb ({package.replace('_', '-')}=={DUCKDB_VERSION})",
        code="engine.extensionMissing",
    )


def connect(database: str = ":memory:", config: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that never installs or autoloads extensions by itself."""
    try:
        return duckdb.connect(database, config={**(config or {}), **BASE_CONFIG})
    except duckdb.Error as exc:
        raise E.Unavailable(f"DuckDB could not start: {exc}", code="engine.unavailable") from exc


def load(conn: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Load bundled extensions into the instance of ``conn`` (idempotent; built-in names are skipped)."""
    for name in names:
        if name in BUILT_IN:
            continue
        path = extension_path(name)
        try:
            conn.execute(f"LOAD {quote_literal(str(path))}")
        except duckdb.Error as exc:
            raise E.Unavailable(
                f"DuckDB could not load the extension {name!r} from {path}: {exc}", code="engine.extension"
            ) from exc
