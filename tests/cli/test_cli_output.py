"""What the client commands print: progress lines, tables that fit 80 columns, --wide, --json.

Against a real server, as a script (or someone at an 80-column terminal) would see it.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from entrepot.cli.options import Col, short_id, table_of, text_of, time_text
from entrepot.client import Client
from support.server import cli_env, run_cli

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def people(server, tmp_path_factory) -> str:
    """A table with a two-column primary key and three rows, made with the command line."""
    tmp = tmp_path_factory.mktemp("people")
    env = cli_env(tmp / "unused", ENTREPOT_URL=server.url, ENTREPOT_TOKEN=server.token)
    bucket = run_cli("buckets", "create", f"out{uuid.uuid4().hex[:6]}", env=env).stdout.strip()
    source = tmp / "people.csv"
    source.write_text("id,name\n1,Ann\n2,Bob\n3,Cyd\n")
    created = run_cli("tables", "create", bucket, "people", str(source), "--primary-key", "id,name", env=env)
    return created.stdout.strip()


@pytest.fixture
def env(server, tmp_path):
    return cli_env(tmp_path / "unused", ENTREPOT_URL=server.url, ENTREPOT_TOKEN=server.token, COLUMNS="80")


def _line(stderr: str, start: str) -> str:
    """The last line of stderr that begins with ``start`` (a progress bar's final state)."""
    lines = [line for line in stderr.splitlines() if line.startswith(start)]
    assert lines, f"no line starting with {start!r} in:\n{stderr}"
    return lines[-1]


def _widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


# -- progress ---------------------------------------------------------------------------------
def test_a_job_bar_shows_percent_and_rows_not_bytes(env, people, tmp_path):
    source = tmp_path / "more.csv"
    source.write_text("id,name\n4,Dan\n5,Eve\n")
    proc = run_cli("tables", "create", people.rsplit(".", 1)[0], "more", str(source), env=env)
    job = _line(proc.stderr, "create (job ")
    assert "100%" in job and "2 rows" in job, job
    assert "bytes" not in job and "/100" not in job, job
    upload = _line(proc.stderr, "upload")
    size = source.stat().st_size
    assert f"{size}/{size} bytes" in upload and "100%" in upload, upload


def test_a_table_download_ends_at_100_percent_of_its_size(env, people, tmp_path):
    out = tmp_path / "people.csv"
    proc = run_cli("tables", "export", people, str(out), env=env)
    size = out.stat().st_size
    assert size > 0
    download = _line(proc.stderr, "download")
    assert f"{size}/{size} bytes" in download and "100%" in download, download
    job = _line(proc.stderr, "export (job ")
    assert "100%" in job and "3 rows" in job and "bytes" not in job, job


def test_the_export_download_ends_at_100_percent_of_its_size(env, people, tmp_path):
    out = tmp_path / "people.json"
    proc = run_cli("export", people, "-f", "json", "-o", str(out), env=env)
    size = out.stat().st_size
    download = _line(proc.stderr, "download")
    assert f"{size}/{size} bytes" in download and "100%" in download, download
    job = _line(proc.stderr, "export (job ")
    assert "100%" in job and "3 rows" in job and "bytes" not in job, job


def test_a_download_of_unknown_size_ends_with_its_byte_count(env, tmp_path):
    out = tmp_path / "series.csv"
    proc = run_cli(
        "sql", "copy-to", "COPY (select * from generate_series(1, 100)) TO STDOUT", "-o", str(out), env=env
    )
    size = out.stat().st_size
    line = _line(proc.stderr, "copy-to")  # COPY TO streams: the size is known only at the end
    assert 0 < size < 1000 and f"{size}/{size} bytes" in line and "100%" in line, line


def test_the_sdk_download_of_a_table_export_knows_its_size(server, people, tmp_path):
    seen: list[tuple[int, int | None]] = []
    with Client(server.url, server.token) as client:
        client.tables.export(
            people, tmp_path / "p.csv", on_download=lambda done, total: seen.append((done, total))
        )
    size = (tmp_path / "p.csv").stat().st_size
    assert seen and seen[-1] == (size, size)  # Content-Length: header row + stored CSV


# -- tables -----------------------------------------------------------------------------------
def test_lists_print_comma_separated(env, people):
    listed = run_cli("tables", "list", env=env).stdout
    row = next(line for line in listed.splitlines() if line.startswith(people))
    assert "id, name" in row and "[" not in row and "'" not in row, row


def test_exports_list_fits_80_columns_and_wide_shows_whole_ids(server, env, people):
    ids = [run_cli("export", people, "--no-wait", env=env).stdout.strip() for _ in range(2)]
    with Client(server.url, server.token) as client:
        for job_id in ids:
            client.exports.wait(job_id, timeout=60)
    narrow = run_cli("exports", "list", "--page-size", "100", env=env).stdout
    assert _widest(narrow) <= 80, narrow
    assert not UUID.search(narrow)
    for job_id in ids:
        assert re.search(rf"^{job_id[:8]}\s", narrow, re.MULTILINE), narrow
    wide = run_cli("exports", "list", "--page-size", "100", "--wide", env=env).stdout
    for job_id in ids:
        assert job_id in wide
    assert _widest(wide) > 80  # --wide takes the width it needs


def test_list_commands_fit_80_columns(server, env, people, tmp_path):
    admin = cli_env(server.settings.data_dir, COLUMNS="80")
    run_cli(
        "tokens", "create", "--project", "default", "--description", "a token with a long description here",
        "--bucket-permission", "in.c-main=read", "--expires-in", "3600", "--quiet", env=admin,
    )  # fmt: skip
    for args, environment in [
        (("exports", "datasources"), env),
        (("export-templates", "list"), env),
        (("tables", "list"), env),
        (("buckets", "list"), env),
        (("spaces", "list"), env),
        (("tokens", "list", "--project", "default"), admin),
        (("projects", "list"), admin),
    ]:
        stdout = run_cli(*args, env=environment).stdout
        assert stdout.strip() and _widest(stdout) <= 80, f"{args}:\n{stdout}"
        assert not UUID.search(stdout), f"{args}:\n{stdout}"
    datasources = json.loads(run_cli("exports", "datasources", "--json", env=env).stdout)
    wide = run_cli("exports", "datasources", "--wide", env=env).stdout
    assert all(d["id"] in wide for d in datasources)


# -- --json -----------------------------------------------------------------------------------
def test_every_data_command_prints_json_for_scripts(server, env, people, tmp_path):
    def as_json(*args: str, environment: dict[str, str] = env) -> Any:
        proc = run_cli(*args, "--json", env=environment)
        try:
            return json.loads(proc.stdout)
        except ValueError as exc:
            raise AssertionError(f"entrepot {' '.join(args)} --json printed:\n{proc.stdout}") from exc

    tag = uuid.uuid4().hex[:6]
    source = tmp_path / "t.csv"
    source.write_text("id,v\n1,a\n")
    assert as_json("buckets", "create", f"j{tag}")["id"] == f"in.c-j{tag}"
    assert any(b["id"] == f"in.c-j{tag}" for b in as_json("buckets", "list"))
    table = as_json("tables", "create", f"in.c-j{tag}", "t", str(source), "--primary-key", "id")
    assert table["id"] == f"in.c-j{tag}.t" and table["primaryKey"] == ["id"]
    assert as_json("tables", "import", f"in.c-j{tag}.t", str(source))["totalRowsCount"] == 1
    assert as_json("tables", "list", "--bucket", f"in.c-j{tag}")[0]["rowsCount"] == 1
    assert as_json("tables", "preview", f"in.c-j{tag}.t") == [{"id": "1", "v": "a"}]

    done = as_json("export", people, "-o", str(tmp_path / "e.csv"))
    assert done["status"] == "completed" and done["path"] == str(tmp_path / "e.csv")
    queued = as_json("export", people, "--no-wait")
    assert UUID.fullmatch(queued["id"])
    assert as_json("exports", "show", done["id"])["id"] == done["id"]
    assert "export_jobs" in as_json("exports", "list")
    assert as_json("exports", "download", done["id"], "-o", str(tmp_path / "again.csv")) == {
        "path": str(tmp_path / "again.csv")
    }
    assert any(d["table_id"] == people for d in as_json("exports", "datasources"))
    template = as_json("export-templates", "create", f"t{tag}", "--format", "csv")
    assert as_json("export-templates", "show", template["id"])["name"] == f"t{tag}"
    assert as_json("export-templates", "update", template["id"], "--name", f"u{tag}")["name"] == f"u{tag}"
    assert any(t["id"] == template["id"] for t in as_json("export-templates", "list"))

    assert as_json("spaces", "create", f"s{tag}")["name"] == f"s{tag}"
    assert any(s["name"] == f"s{tag}" for s in as_json("spaces", "list"))
    assert isinstance(as_json("ls"), list) and as_json("ls", f"s{tag}") == []

    assert as_json("sql", "select 1 as one")["rows"] == [{"one": 1}]
    assert as_json("sql", "batch", "create", "select 1")["status"]

    admin = cli_env(server.settings.data_dir)
    created = as_json(
        "tokens", "create", "--project", "default", "--description", f"j{tag}", environment=admin
    )
    assert created["token"].startswith(f"{server.project_id}-")
    assert any(
        t["id"] == created["id"] for t in as_json("tokens", "list", "--project", "default", environment=admin)
    )
    project = as_json("projects", "create", f"p{tag}", environment=admin)
    assert project["name"] == f"p{tag}" and project["token"]
    assert any(p["name"] == f"p{tag}" for p in as_json("projects", "list", environment=admin))


# -- the shared pieces, without a server ------------------------------------------------------
def test_cells_ids_and_times():
    assert text_of(["id", "name"]) == "id, name"
    assert text_of({"in.c-main": "write"}) == "in.c-main=write"
    assert text_of({"a": [1]}) == '{"a": [1]}'
    assert text_of(None) == "" and text_of(True) == "yes"
    full = str(uuid.uuid4())
    assert short_id(full) == full[:8] and short_id(full, wide=True) == full
    assert short_id("in.c-main.people") == "in.c-main.people"  # not a UUID: whole
    assert time_text("2026-05-01T10:20:30.123+02:00") == "2026-05-01 08:20"
    assert time_text("2026-05-01T10:20:30+02:00", wide=True) == "2026-05-01T10:20:30+02:00"


def test_a_long_column_is_cut_so_the_others_stay_whole():
    from rich.console import Console

    rows = [{"id": str(uuid.uuid4()), "name": "Full Parquet export", "description": "x" * 200}]
    columns = [Col("id", "id", "id"), Col("name", "name"), Col("description", "description", "long")]
    console = Console(width=80, record=True)
    console.print(table_of(rows, columns, width=80))
    text = console.export_text()
    assert _widest(text) <= 80 and "Full Parquet export" in text and "…" in text
