"""``entrepot import``, ``datasets`` and ``api-keys`` against a real server, run as a subprocess."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from entrepot.client.carto import IMPORT_STATES
from support.server import RunningServer, cli_env, run_cli, start_server
from support.sources import serve_source

STORES = "store,lat,lon\nLouvre,48.8606,2.3376\nBellecour,45.7578,4.8320\n"


@pytest.fixture(scope="module")
def carto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("carto-cli"), job_response_wait=0, url_import_allowed_hosts=["127.0.0.1"]
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def env(carto_server: RunningServer, tmp_path) -> dict[str, str]:
    return cli_env(tmp_path / "unused", ENTREPOT_URL=carto_server.url, ENTREPOT_TOKEN=carto_server.token)


def _states(stderr: str, label: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in stderr.splitlines() if line.startswith(label + ": ")]


def test_import_a_file_prints_the_table_and_a_line_per_state(env, tmp_path):
    path = tmp_path / "cli_stores.csv"
    path.write_text(STORES)
    done = run_cli("import", str(path), env=env)
    assert done.stdout.strip() == "cli_stores"
    lines = [line for line in done.stderr.splitlines() if line.startswith("import ")]
    label = lines[0].split(": ")[0]
    states = _states(done.stderr, label)
    assert states[-1] == "complete"
    positions = [IMPORT_STATES.index(s) for s in states]
    assert positions == sorted(positions), states

    as_json = run_cli(
        "import", str(path), "--table-name", "cli_named", "--privacy", "public", "--json", env=env
    )
    body = json.loads(as_json.stdout)
    assert body["state"] == "complete" and body["table_name"] == "cli_named" and body["success"] is True
    shown = json.loads(run_cli("datasets", "show", "cli_named", env=env).stdout)
    assert shown["privacy"] == "PUBLIC" and shown["table"]["row_count"] == 2


def test_a_failed_import_exits_1_with_cartos_message(env, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    failed = run_cli("import", str(empty), env=env, check=False)
    assert failed.returncode == 1 and failed.stdout == ""
    assert (
        "error:" in failed.stderr and "error_code 1005" in failed.stderr and "Traceback" not in failed.stderr
    )
    assert "failure" in failed.stderr  # the last state line

    missing = run_cli("import", str(tmp_path / "nope.csv"), env=env, check=False)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    bad = run_cli("import", str(empty), "--privacy", "secret", env=env, check=False)
    assert bad.returncode == 2 and "--privacy" in bad.stderr
    not_url = run_cli("import", str(empty), "--sync-interval", "3600", env=env, check=False)
    assert not_url.returncode == 2 and "URL" in not_url.stderr


def test_import_a_url_as_a_sync_table(env):
    with serve_source("cli_places.csv") as source:
        source.body = b"place,lat,lon\nA,1.0,2.0\n"
        done = run_cli("import", source.url, "--sync-interval", "3600", "--json", env=env)
    sync = json.loads(done.stdout)
    assert sync["state"] == "success" and sync["name"] == "cli_places" and sync["interval"] == 3600
    assert "every 3600 s" in done.stderr


def test_datasets_and_api_keys_commands(env, tmp_path):
    path = tmp_path / "cli_ds.csv"
    path.write_text(STORES)
    run_cli("import", str(path), env=env)
    listed = json.loads(run_cli("datasets", "list", "--json", env=env).stdout)
    assert "cli_ds" in [d["name"] for d in listed]
    assert "cli_ds" in run_cli("datasets", "list", env=env).stdout
    changed = run_cli("datasets", "privacy", "cli_ds", "link", env=env)
    assert "cli_ds: link" in changed.stderr
    run_cli("datasets", "rm", "cli_ds", env=env)
    gone = run_cli("datasets", "show", "cli_ds", env=env, check=False)
    assert gone.returncode == 1 and "error:" in gone.stderr

    token = run_cli(
        "api-keys", "create", "cli-app", "--table", "cli_stores:select,insert", env=env
    ).stdout.strip()
    assert token
    keys = json.loads(run_cli("api-keys", "list", "--json", env=env).stdout)
    assert [k["name"] for k in keys] == ["Master", "Default public", "cli-app"]
    assert "cli-app" in run_cli("api-keys", "list", "--type", "regular", env=env).stdout
    bad_grant = run_cli("api-keys", "create", "x", "--table", "nope", env=env, check=False)
    assert bad_grant.returncode == 2
    run_cli("api-keys", "rm", "cli-app", env=env)
    again = run_cli("api-keys", "rm", "cli-app", env=env, check=False)
    assert again.returncode == 1 and "error:" in again.stderr


def test_maps_create_and_tile(env, carto_server, tmp_path):
    import io

    import mapbox_vector_tile
    from PIL import Image

    run_cli("import", _stores(tmp_path), "--table-name", "cli_map_stores", env=env)
    done = run_cli("maps", "create", "--sql", "select * from cli_map_stores", env=env)
    group = done.stdout.strip()
    assert ":" in group and "mvt: http://" in done.stderr and "/{z}/{x}/{y}.mvt" in done.stderr
    tile = run_cli("maps", "tile", group, "0", "0", "0", "-o", str(tmp_path / "t.mvt"), env=env)
    assert "bytes" in tile.stderr
    decoded = mapbox_vector_tile.decode((tmp_path / "t.mvt").read_bytes())
    assert sorted(f["properties"]["store"] for f in decoded["layer0"]["features"]) == ["Bellecour", "Louvre"]
    config = tmp_path / "map.json"
    config.write_text(json.dumps({"layers": [{"type": "cartodb", "options": {
        "sql": "select * from cli_map_stores", "cartocss": "#layer { marker-fill: #00FF00; }"}}]}))  # fmt: skip
    as_json = json.loads(run_cli("maps", "create", str(config), "--json", env=env).stdout)
    run_cli("maps", "tile", as_json["layergroupid"], "1", "1", "0", "--format", "png", "-o", str(tmp_path / "t.png"),
            env=env)  # fmt: skip
    assert Image.open(io.BytesIO((tmp_path / "t.png").read_bytes())).size == (256, 256)
    # a config that is not JSON, a bad format: usage errors, nothing asked of the server
    (tmp_path / "bad.json").write_text("{nope")
    bad = run_cli("maps", "create", str(tmp_path / "bad.json"), env=env, check=False)
    assert bad.returncode == 2 and "not JSON" in bad.stderr
    bad = run_cli("maps", "tile", group, "0", "0", "0", "--format", "jpg", env=env, check=False)
    assert bad.returncode == 2 and "--format" in bad.stderr


def _stores(tmp_path) -> str:
    path = tmp_path / "cli_map_stores.csv"
    path.write_text(STORES)
    return str(path)
