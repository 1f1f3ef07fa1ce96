"""The client commands (buckets, tables) against a real server, as a script would use them."""

from __future__ import annotations

import csv
import json

from support.server import cli_env, run_cli


def test_buckets_and_tables_from_the_command_line(server, tmp_path):
    env = cli_env(tmp_path / "unused", ENTREPOT_URL=server.url, ENTREPOT_TOKEN=server.token)
    assert run_cli("buckets", "create", "cli", env=env).stdout.strip() == "in.c-cli"
    assert "in.c-cli" in [b["id"] for b in json.loads(run_cli("buckets", "list", "--json", env=env).stdout)]

    source = tmp_path / "people.csv"
    source.write_text("id,name\n1,Ann\n2,Bob\n")
    created = run_cli("tables", "create", "in.c-cli", "people", str(source), "--primary-key", "id", env=env)
    assert created.stdout.strip() == "in.c-cli.people"

    changes = tmp_path / "changes.csv"
    changes.write_text("2,Bobby\n3,Cyd\n")
    run_cli(
        "tables", "import", "in.c-cli.people", str(changes), "--incremental", "--columns", "id,name", env=env
    )

    rows = json.loads(run_cli("tables", "preview", "in.c-cli.people", "--json", env=env).stdout)
    assert sorted((r["id"], r["name"]) for r in rows) == [("1", "Ann"), ("2", "Bobby"), ("3", "Cyd")]

    out = tmp_path / "out.csv"
    run_cli("tables", "export", "in.c-cli.people", str(out), "--where", "name=Ann,Cyd", env=env)
    header, *data = list(csv.reader(out.open()))
    assert header == ["id", "name"] and sorted(data) == [["1", "Ann"], ["3", "Cyd"]]
    stdout = run_cli("tables", "export", "in.c-cli.people", "-", "--columns", "name", env=env).stdout
    assert sorted(stdout.split()) == ['"Ann"', '"Bobby"', '"Cyd"', '"name"']

    listed = json.loads(run_cli("tables", "list", "--bucket", "in.c-cli", "--json", env=env).stdout)
    assert [(t["id"], t["rowsCount"]) for t in listed] == [("in.c-cli.people", 3)]
    run_cli("tables", "delete", "in.c-cli.people", env=env)
    run_cli("buckets", "delete", "in.c-cli", "--force", env=env)
    assert "in.c-cli" not in run_cli("buckets", "list", "--json", env=env).stdout


def test_client_commands_report_errors_without_tracebacks(server, tmp_path):
    env = cli_env(tmp_path / "unused", ENTREPOT_URL=server.url, ENTREPOT_TOKEN=server.token)
    missing = run_cli("tables", "preview", "in.c-nope.t", env=env, check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr.lower()
    assert "Traceback" not in missing.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text('a,b\n"x,1\n')
    run_cli("buckets", "create", "errs", env=env)
    failed = run_cli("tables", "create", "in.c-errs", "t", str(bad), env=env, check=False)
    assert failed.returncode == 1 and "line" in failed.stderr.lower()
    no_token = run_cli("buckets", "list", env=cli_env(tmp_path / "unused"), check=False)
    assert no_token.returncode == 2 and "ENTREPOT_TOKEN" in no_token.stderr
