"""Extensions load from the files bundled in pip packages; DuckDB never installs or autoloads any."""

from __future__ import annotations

import pytest

from entrepot.core import errors as E
from entrepot.core.engine import extensions


@pytest.mark.parametrize("name", extensions.BUNDLED)
def test_extension_path_points_into_its_pip_package(name: str) -> None:
    path = extensions.extension_path(name)
    assert path.is_file()
    assert path.name == f"{name}.duckdb_extension"
    assert f"duckdb_extension_{name}" in path.parts
    assert path.parent.name == f"v{extensions.DUCKDB_VERSION}"


def test_bundled_extensions_load_with_autoinstall_and_autoload_off() -> None:
    conn = extensions.connect()
    try:
        extensions.load(conn, *extensions.BUNDLED, "json", "parquet")
        settings = dict(
            conn.execute(
                "SELECT name, value FROM duckdb_settings() "
                "WHERE name IN ('autoinstall_known_extensions', 'autoload_known_extensions')"
            ).fetchall()
        )
        assert settings == {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}
        rows = conn.execute(
            "SELECT extension_name, loaded, installed FROM duckdb_extensions() WHERE extension_name IN "
            "(SELECT unnest(?::VARCHAR[]))",
            [list(extensions.BUNDLED)],
        ).fetchall()
        # loaded straight from the bundled file: loaded, but never installed into ~/.duckdb
        assert {r[0]: (r[1], r[2]) for r in rows} == {n: (True, False) for n in extensions.BUNDLED}
    finally:
        conn.close()


def test_unknown_extension_is_invalid_input() -> None:
    with pytest.raises(E.InvalidInput, match="unknown DuckDB extension"):
        extensions.extension_path("no_such_thing")


def test_an_extension_is_not_autoloaded_when_not_loaded() -> None:
    conn = extensions.connect()
    try:
        with pytest.raises(Exception, match=r"(?i)excel|read_xlsx"):
            conn.execute("SELECT * FROM read_xlsx('nothing.xlsx')")
    finally:
        conn.close()
