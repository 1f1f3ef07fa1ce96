"""``entrepot sql`` against a real server, as a script would use it."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import uuid

import duckdb
import pytest

from support.server import cli_env, run_cli


@pytest.fixture
def env(server, tmp_path):
    return cli_env(tmp_path / "unused", ENTREPOT_URL=server.url, ENTREPOT_TOKEN=server.token)


@pytest.fixture
def table(env):
    name = f"cli_{uuid.uuid4().hex[:8]}"
    run_cli("sql", f"create table {name} (a int, b text)", env=env)
    yield name
    run_cli("sql", f"drop table if exists {name}", env=env, check=False)


def _cli_with_stdin(*args: str, env: dict[str, str], stdin: bytes) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args], env=env, input=stdin, capture_output=True, timeout=60
    )


def _no_traceback(proc: subprocess.CompletedProcess) -> None:
    stderr = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode()
    assert "Traceback" not in stderr, stderr


def test_a_query_prints_a_table_in_both_forms(env):
    for args in (("sql",), ("sql", "query")):
        proc = run_cli(*args, "select 1 as one, 'hello' as greeting", env=env)
        lines = proc.stdout.splitlines()
        header = next(line for line in lines if "one" in line)
        assert "greeting" in header
        assert any("1" in line and "hello" in line for line in lines)
        assert "1 row(s)" in proc.stderr
    options_first = run_cli("sql", "--format", "json", "select 2 as two", env=env)
    assert json.loads(options_first.stdout)["rows"] == [{"two": 2}]
    from_stdin = _cli_with_stdin("sql", "-", "--format", "json", env=env, stdin=b"select 3 as three")
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert json.loads(from_stdin.stdout)["rows"] == [{"three": 3}]


def test_formats_to_stdout_and_to_files(env, table, tmp_path):
    run_cli("sql", f"insert into {table} (a, b) values (1, 'x'), (2, 'y'), (3, NULL)", env=env)
    query = f"select a, b from {table} order by a"
    as_csv = run_cli("sql", query, "--format", "csv", env=env).stdout
    assert list(csv.reader(io.StringIO(as_csv))) == [["a", "b"], ["1", "x"], ["2", "y"], ["3", ""]]
    as_json = json.loads(run_cli("sql", query, "-f", "json", env=env).stdout)
    assert as_json["rows"] == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": None}]
    assert as_json["total_rows"] == 3

    table_out = run_cli("sql", query, env=env).stdout
    assert "NULL" in table_out and "y" in table_out

    parquet = tmp_path / "out.parquet"  # the format follows the suffix
    proc = run_cli("sql", query, "-o", str(parquet), env=env)
    assert "parquet" in proc.stderr and proc.stdout == ""
    assert duckdb.sql(f"select count(*), sum(a) from '{parquet}'").fetchall() == [(3, 6)]
    out_csv = tmp_path / "out.txt"
    run_cli("sql", query, "--format", "csv", "-o", str(out_csv), env=env)
    assert out_csv.read_text().splitlines()[0] == "a,b"


def test_copy_from_a_file_and_stdin_then_copy_to(env, table, tmp_path):
    rows = "".join(f"{i}\tname {i}\n" for i in range(1, 1001))
    source = tmp_path / "rows.tsv"
    source.write_text(rows)
    proc = run_cli("sql", "copy-from", f"COPY {table} (a, b) FROM STDIN", str(source), "--json", env=env)
    assert json.loads(proc.stdout)["total_rows"] == 1000 and "1000 row(s) copied" in proc.stderr

    csv_rows = "".join(f"{i},name {i}\n" for i in range(1001, 1101)).encode()
    piped = _cli_with_stdin(
        "sql", "copy-from", f"COPY {table} (a, b) FROM STDIN WITH (FORMAT csv)", "-", "--no-compress",
        env=env, stdin=csv_rows,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert b"100 row(s) copied" in piped.stderr

    to_stdout = run_cli(
        "sql", "copy-to", f"COPY (select a, b from {table} where a <= 1000 order by a) TO STDOUT", env=env
    )
    assert to_stdout.stdout == rows
    dest = tmp_path / "out.csv"
    run_cli(
        "sql", "copy-to", f"COPY (select a, b from {table} order by a) TO STDOUT WITH (FORMAT csv)", "-o", str(dest),
        env=env,
    )  # fmt: skip
    assert dest.read_bytes().decode() == rows.replace("\t", ",") + csv_rows.decode()


def test_batch_create_wait_get_and_cancel(env, table):
    created = run_cli(
        "sql", "batch", "create", f"insert into {table} (a, b) values (1, 'one')",
        f"insert into {table} (a, b) values (2, 'two')", "--wait", env=env,
    )  # fmt: skip
    job_id = created.stdout.strip()
    assert job_id and "done" in created.stderr
    job = json.loads(run_cli("sql", "batch", "get", job_id, env=env).stdout)
    assert job["job_id"] == job_id and job["status"] == "done"
    counted = json.loads(run_cli("sql", f"select count(*) as n from {table}", "-f", "json", env=env).stdout)
    assert counted["rows"] == [{"n": 2}]

    finished = run_cli("sql", "batch", "cancel", job_id, env=env, check=False)
    assert finished.returncode == 1 and "Cannot set status from done to cancelled" in finished.stderr
    _no_traceback(finished)

    slow = "select count(*) from generate_series(1, 100000000000) a"
    queued = run_cli("sql", "batch", "create", slow, slow, "--json", env=env)
    slow_id = json.loads(queued.stdout)["job_id"]
    cancelled = run_cli("sql", "batch", "cancel", slow_id, "--json", env=env)
    assert json.loads(cancelled.stdout)["status"] == "cancelled"
    waited = run_cli("sql", "batch", "wait", slow_id, "--timeout", "30", env=env, check=False)
    assert waited.returncode == 1 and "cancelled" in waited.stderr

    failing = run_cli(
        "sql", "batch", "create", "select * from no_such_table_here", "--wait", env=env, check=False
    )
    assert failing.returncode == 1 and 'relation "no_such_table_here" does not exist' in failing.stderr
    _no_traceback(failing)


def test_errors_are_one_line_without_traceback(env, server, tmp_path):
    missing = run_cli("sql", "select * from no_such_table_here", env=env, check=False)
    assert missing.returncode == 1
    assert 'relation "no_such_table_here" does not exist' in missing.stderr and "HTTP 400" in missing.stderr
    _no_traceback(missing)

    bad_token = cli_env(tmp_path / "unused", ENTREPOT_URL=server.url, ENTREPOT_TOKEN="1-1-" + "0" * 64)
    unauthorized = run_cli("sql", "select 1", env=bad_token, check=False)
    assert unauthorized.returncode == 1 and "Unauthorized" in unauthorized.stderr
    _no_traceback(unauthorized)

    no_token = run_cli("sql", "select 1", env=cli_env(tmp_path / "unused"), check=False)
    assert no_token.returncode == 2 and "ENTREPOT_TOKEN" in no_token.stderr
    bad_format = run_cli("sql", "select 1", "--format", "shp", env=env, check=False)
    assert bad_format.returncode == 2 and "--format" in bad_format.stderr
    no_file = run_cli(
        "sql", "copy-from", "COPY t FROM STDIN", str(tmp_path / "nope.tsv"), env=env, check=False
    )
    assert no_file.returncode == 2 and "no such file" in no_file.stderr
