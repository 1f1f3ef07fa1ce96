"""``entrepot export``, ``exports`` and ``export-templates`` against a real server, as a script would use them."""

from __future__ import annotations

import csv
import io
import json
import uuid

import duckdb
import pytest

from entrepot.cli.exports import UsageError, parse_option, parse_where
from entrepot.client import Client
from support.server import cli_env, run_cli

CITIES = ("Paris", "Lyon", "Nice")
ROWS = [
    {"id": str(i), "name": f"user{i:03d}", "age": str(18 + (i * 7) % 50), "city": CITIES[i % 3]}
    for i in range(1, 41)
]


@pytest.fixture(scope="module")
def table(server) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(ROWS[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(ROWS)
    with Client(server.url, server.token) as client:
        bucket = client.buckets.create(f"cli{uuid.uuid4().hex[:6]}")["id"]
        return client.tables.create(bucket, "people", buffer.getvalue().encode(), primary_key=["id"])["id"]


@pytest.fixture
def env(server, tmp_path):
    # a wide terminal: Rich tables keep whole ids on one line
    return cli_env(tmp_path / "unused", ENTREPOT_URL=server.url, ENTREPOT_TOKEN=server.token, COLUMNS="250")


def _no_traceback(proc) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr


# -- parsing, without a server -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "condition"),
    [
        ("age>18", {"column": "age", "operator": ">", "value": 18}),
        ("age >= 18.5", {"column": "age", "operator": ">=", "value": 18.5}),
        ("zip = 007", {"column": "zip", "operator": "=", "value": "007"}),
        ("name = 'Ann'", {"column": "name", "operator": "=", "value": "Ann"}),
        ('name != "it\'s"', {"column": "name", "operator": "!=", "value": "it's"}),
        ("x <> 'a=b'", {"column": "x", "operator": "<>", "value": "a=b"}),
        ("n < -3", {"column": "n", "operator": "<", "value": -3}),
        ("n <= 4", {"column": "n", "operator": "<=", "value": 4}),
        ("name LIKE 'A%'", {"column": "name", "operator": "like", "value": "A%"}),
        ("code ilike 12%", {"column": "code", "operator": "ilike", "value": "12%"}),
        ("id in (1, 2, 'x,y')", {"column": "id", "operator": "in", "value": [1, 2, "x,y"]}),
        ("city NOT IN (Paris,Lyon)", {"column": "city", "operator": "not_in", "value": ["Paris", "Lyon"]}),
        ("d between '2024-01-01' and '2024-12-31'", {"column": "d", "operator": "between",
                                                     "value": ["2024-01-01", "2024-12-31"]}),
        ("age Between 1 AND 5", {"column": "age", "operator": "between", "value": [1, 5]}),
        ("email is null", {"column": "email", "operator": "is_null"}),
        ("email IS NOT NULL", {"column": "email", "operator": "is_not_null"}),
        ('"my col" = 3', {"column": "my col", "operator": "=", "value": 3}),
    ],
)  # fmt: skip
def test_where_parsing(text, condition):
    assert parse_where(text) == condition


@pytest.mark.parametrize("text", ["age", "age >", ">= 3", "a in ()", "a in (1,,2)", "a between 1", "a like"])
def test_bad_where_is_a_usage_error(text):
    with pytest.raises(UsageError, match="--where"):
        parse_where(text)


def test_option_values_are_json_when_they_parse():
    assert parse_option("delimiter=;") == ("delimiter", ";")
    assert parse_option("include_headers=false") == ("include_headers", False)
    assert parse_option("limit=3") == ("limit", 3)
    assert parse_option('sheet_name="2024"') == ("sheet_name", "2024")
    with pytest.raises(UsageError):
        parse_option("delimiter")


# -- against the server ------------------------------------------------------------------------
def test_export_with_where_columns_and_order_by_to_a_file(env, table, tmp_path):
    out = tmp_path / "adults.csv"
    proc = run_cli(
        "export", table, "--format", "csv", "-o", str(out), "--columns", "id,name,age",
        "--where", "age>40", "--where", "city in ('Paris', 'Nice')", "--order-by", "name desc", env=env,
    )  # fmt: skip
    assert proc.stdout.strip() == str(out)
    expected = [
        [r["id"], r["name"], r["age"]]
        for r in sorted(ROWS, key=lambda r: r["name"], reverse=True)
        if int(r["age"]) > 40 and r["city"] in ("Paris", "Nice")
    ]
    assert expected  # the filters keep some rows and drop others
    header, *rows = list(csv.reader(out.open()))
    assert header == ["id", "name", "age"] and rows == expected
    assert f"{len(expected)} rows" in proc.stderr and str(out) in proc.stderr


def test_export_parquet_grouped_with_options_into_a_directory(env, table, tmp_path):
    proc = run_cli(
        "export", table, "-f", "parquet", "-o", str(tmp_path), "--group-by", "city",
        "--option", "compression=zstd", env=env,
    )  # fmt: skip
    path = proc.stdout.strip()
    assert path.startswith(str(tmp_path)) and path.endswith(".parquet")
    counts = duckdb.sql(f"select city, count from '{path}' order by city").fetchall()
    assert counts == [("Lyon", 14), ("Nice", 13), ("Paris", 13)]


def test_no_wait_then_list_show_and_download(env, server, table, tmp_path):
    proc = run_cli("export", table, "--format", "json", "--limit", "3", "--no-wait", env=env)
    job_id = proc.stdout.strip()
    assert str(uuid.UUID(job_id)) == job_id
    with Client(server.url, server.token) as client:
        client.exports.wait(job_id, timeout=60)  # polls with a deadline
    job = json.loads(run_cli("exports", "show", job_id, "--json", env=env).stdout)
    assert job["status"] == "completed" and job["row_count"] == 3

    listed = json.loads(
        run_cli("exports", "list", "--json", "--format", "json", "--page-size", "100", env=env).stdout
    )
    assert job_id in [j["id"] for j in listed["export_jobs"]]
    assert {j["format"] for j in listed["export_jobs"]} == {"json"}
    assert listed["pagination"]["current_page"] == 1 and listed["pagination"]["page_size"] == 100
    table_view = run_cli("exports", "list", "--status", "completed", env=env)
    assert job_id[:8] in table_view.stdout

    dest = tmp_path / "three.json"
    assert run_cli("exports", "download", job_id, "-o", str(dest), env=env).stdout.strip() == str(dest)
    assert len(json.loads(dest.read_text())) == 3

    retried = run_cli("exports", "retry", job_id, env=env, check=False)
    assert retried.returncode == 1 and "Only failed or cancelled jobs can be retried" in retried.stderr
    _no_traceback(retried)
    run_cli("exports", "delete", job_id, env=env)
    gone = run_cli("exports", "show", job_id, env=env, check=False)
    assert gone.returncode == 1 and "Export job not found" in gone.stderr
    _no_traceback(gone)


def test_a_failed_export_prints_the_servers_message_and_exits_1(env, server, tmp_path):
    with Client(server.url, server.token) as client:
        bucket = client.buckets.create(f"clifail{uuid.uuid4().hex[:6]}")["id"]
        table = client.tables.create(bucket, "intl", "id,name\n1,日本\n".encode())["id"]
    proc = run_cli(
        "export", table, "-o", str(tmp_path / "x.csv"), "--option", "encoding=latin-1", env=env, check=False
    )
    assert proc.returncode == 1 and "failed" in proc.stderr and "cannot be written in latin-1" in proc.stderr
    assert not (tmp_path / "x.csv").exists()
    _no_traceback(proc)


def test_datasources_lists_the_table(env, table):
    rows = json.loads(run_cli("exports", "datasources", "--json", "--search", table, env=env).stdout)
    assert [d["table_id"] for d in rows] == [table] and rows[0]["row_count"] == len(ROWS)
    assert table in run_cli("exports", "datasources", env=env).stdout


def test_templates_create_list_use_update_and_delete(env, table, tmp_path):
    name = f"cli template {uuid.uuid4().hex[:6]}"
    created = run_cli(
        "export-templates", "create", name, "--format", "csv", "--description", "two columns",
        "--columns", "id,name", "--order-by", "id", "--limit", "2", "--option", "delimiter=;", env=env,
    )  # fmt: skip
    template_id = created.stdout.strip()
    listed = json.loads(run_cli("export-templates", "list", "--type", "user", "--json", env=env).stdout)
    mine = [t for t in listed if t["id"] == template_id]
    assert len(mine) == 1 and mine[0]["name"] == name and mine[0]["format"] == "csv"
    assert mine[0]["has_filters"] is True and mine[0]["usage_count"] == 0
    assert mine[0]["configuration"]["options"]["delimiter"] == ";"
    assert name in run_cli("export-templates", "list", "--search", name, env=env).stdout

    out = tmp_path / "t.csv"
    run_cli("export", table, "--template", template_id, "-o", str(out), env=env)
    assert out.read_text().splitlines() == ["id;name", "1;user001", "10;user010"]

    run_cli("export-templates", "update", template_id, "--name", name + " v2", "--limit", "1", env=env)
    shown = json.loads(run_cli("export-templates", "show", template_id, "--json", env=env).stdout)
    assert (
        shown["name"] == name + " v2" and shown["usage_count"] == 1 and shown["description"] == "two columns"
    )
    assert shown["configuration"]["filters"]["limit"] == 1 and shown["configuration"]["filters"][
        "columns"
    ] == [
        "id",
        "name",
    ]

    run_cli("export-templates", "delete", template_id, env=env)
    after = json.loads(run_cli("export-templates", "list", "--json", env=env).stdout)
    assert template_id not in [t["id"] for t in after]
    missing = run_cli("export-templates", "show", template_id, env=env, check=False)
    assert missing.returncode == 1 and "Export template not found" in missing.stderr


def test_template_config_file_and_system_templates_are_read_only(env, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"format": "json", "options": {"json_format": "lines"}}))
    template_id = run_cli("export-templates", "create", "from file", "--config-file", str(config), env=env)
    shown = json.loads(
        run_cli("export-templates", "show", template_id.stdout.strip(), "--json", env=env).stdout
    )
    assert shown["format"] == "json" and shown["configuration"]["options"]["json_format"] == "lines"
    system = json.loads(run_cli("export-templates", "list", "--type", "system", "--json", env=env).stdout)
    assert "Full CSV export" in [t["name"] for t in system]
    denied = run_cli("export-templates", "delete", system[0]["id"], env=env, check=False)
    assert denied.returncode == 1 and "You do not have permission to modify this template" in denied.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--where", "age >"), "bad --where"),
        (("--where", "age between 1"), "bad --where"),
        (("--option", "delimiter"), "bad --option"),
        (("--format", "xml"), "--format must be one of"),
        (("--date-column", "created_at"), "--date-column needs"),
    ],
)
def test_bad_options_exit_2_with_a_message(env, table, args, message):
    proc = run_cli("export", table, *args, env=env, check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    _no_traceback(proc)


def test_server_side_validation_is_exit_1_with_the_field(env, table):
    proc = run_cli("export", table, "--where", "nope = 1", env=env, check=False)
    assert proc.returncode == 1 and "filters.where_conditions[0]" in proc.stderr and "nope" in proc.stderr
    _no_traceback(proc)


def test_tokens_create_owner(server, tmp_path):
    env = cli_env(server.settings.data_dir)
    token = run_cli("tokens", "create", "--project", "default", "--owner", "carol", "--quiet", env=env).stdout
    with Client(server.url, token.strip()) as as_carol:
        assert as_carol.tokens.verify()["ownerName"] == "carol"
        assert as_carol.export_templates.create("carol's", {"format": "csv"})["owner"] == "carol"
    bad = run_cli("tokens", "create", "--project", "default", "--owner", "token:7", env=env, check=False)
    assert bad.returncode == 1 and "invalid owner" in bad.stderr
