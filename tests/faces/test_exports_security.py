"""Export API security: hostile filters and options, authentication, permissions, ownership, lists.

Every rejected request must be a 400 that names the offending field (dotted, as the contract
says: ``filters.order_by``, ``filters.where_conditions[0]``, ``options.delimiter``) and must
leave everything as it was: no job created, no table created, changed or dropped.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests

from support.exports_api import (
    call,
    create_bucket,
    create_export,
    datasource_id,
    make_table,
    make_token,
    wait_job,
)
from support.server import RunningServer

PERMISSION_MESSAGE = "You do not have permission to modify this template"
SYSTEM_TEMPLATES = {
    "Full CSV export": "csv",
    "Full Parquet export": "parquet",
    "Excel with headers": "excel",
    "JSON lines export": "json",
}
INJECTION = "1' OR '1'='1"
USERS = [
    ("1", "Ann", "admin", "10", "a"),
    ("2", "Bob", "user", "20", "b"),
    ("3", "Cyd", "user", "30", "a"),
    ("4", INJECTION, "user", "40", "b"),
    ("5", "Dee; DROP TABLE users; --", "guest", "50", "c"),
    ("6", 'Eve "quoted"', "guest", "60", "c"),
]
USERS_HEADER = ["id", "name", "role", "score", "category"]


# -- helpers ---------------------------------------------------------------------------------------


def download(server: RunningServer, token: str, job_id: str) -> bytes:
    r = call(server, "GET", f"/exports/{job_id}/download/", token)
    assert r.status_code == 200, r.text
    return r.content


def list_ids(server: RunningServer, token: str, path: str = "/exports/", **params: Any) -> list[str]:
    r = call(server, "GET", path, token, params=params)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    items = data["export_jobs"] if "export_jobs" in data else data["templates"]
    return [item["id"] for item in items]


def assert_rejected(r: requests.Response, field: str) -> None:
    """A 400 whose error object names ``field`` (or an item of it) and nothing else."""
    assert r.status_code == 400, (field, r.status_code, r.text)
    body = r.json()
    assert body["success"] is False, body
    assert isinstance(body["error"], dict) and body["error"], body
    for key in body["error"]:
        assert key == field or key.startswith((f"{field}[", f"{field}.")), (field, body["error"])


def assert_error(r: requests.Response, status: int, message: str | None = None) -> None:
    assert r.status_code == status, (status, r.status_code, r.text)
    body = r.json()
    assert body["success"] is False, body
    assert isinstance(body["error"], str) and body["error"], body
    if message is not None:
        assert body["error"] == message, body


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(server: RunningServer) -> dict[str, Any]:
    for bucket in ("sec", "other"):
        create_bucket(server, bucket)
    users = make_table(server, "in.c-sec", "users", USERS_HEADER, USERS)
    orders = make_table(server, "in.c-sec", "orders", ["id", "item"], [("1", "pen"), ("2", "ink")])
    other = make_table(server, "in.c-other", "hidden", ["id"], [("1",)])
    return {
        "users": datasource_id(server, users),
        "orders": datasource_id(server, orders),
        "hidden": datasource_id(server, other),
        "alice": make_token(server, "alice", "in.c-sec"),
        "alice2": make_token(server, "alice", "in.c-sec"),
        "bob": make_token(server, "bob", "in.c-sec"),
        "carol": make_token(server, "carol", "in.c-other"),
        "mallory": make_token(server, "mallory", "in.c-sec"),
    }


def _state(server: RunningServer) -> tuple[list[str], list[tuple[Any, ...]]]:
    tables = requests.get(f"{server.url}/v2/storage/tables", headers=server.headers()).json()
    with server.services.engine.lake("default").cursor(write=False) as cur:
        rows = cur.execute('SELECT * EXCLUDE (_timestamp) FROM "in.c-sec"."users" ORDER BY id').fetchall()
    return sorted(t["id"] for t in tables), rows


@pytest.fixture
def unchanged(server, env):  # type: ignore[no-untyped-def]
    """Check after the test that mallory has no new job and no table was created or changed."""
    jobs_before = list_ids(server, env["mallory"], page_size=100)
    before = _state(server)
    yield
    assert list_ids(server, env["mallory"], page_size=100) == jobs_before
    tables, rows = _state(server)
    assert tables == before[0]
    assert rows == before[1] == sorted(USERS)


def _post(server: RunningServer, env: dict[str, Any], fmt: str = "csv", **body: Any) -> requests.Response:
    return call(
        server, "POST", "/exports/", env["mallory"], json={"datasource": env["users"], "format": fmt, **body}
    )


# -- hostile filters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "order_by",
    [
        "id; DROP TABLE x",
        "id DESC, (SELECT 1)",
        "1",
        "id -- comment",
        "name DESC; SELECT 1",
        'id" DESC, "name',
        "nope",
        "id SIDEWAYS",
        "random()",
    ],
)
def test_order_by_injection_is_rejected(server, env, unchanged, order_by) -> None:  # type: ignore[no-untyped-def]
    assert_rejected(_post(server, env, filters={"order_by": order_by}), "filters.order_by")


@pytest.mark.parametrize(
    "group_by",
    ['category"; DROP TABLE x; --', "category;", "cat'egory", ["category", 'x"y'], "count(*)", "nope"],
)
def test_group_by_injection_is_rejected(server, env, unchanged, group_by) -> None:  # type: ignore[no-untyped-def]
    assert_rejected(_post(server, env, filters={"group_by": group_by}), "filters.group_by")


@pytest.mark.parametrize(
    "columns",
    [['id"'], ["name)"], ['id", (SELECT 1) AS "x'], ["count(*)"], ["nope"], [1]],
)
def test_bad_columns_are_rejected(server, env, unchanged, columns) -> None:  # type: ignore[no-untyped-def]
    assert_rejected(_post(server, env, filters={"columns": columns}), "filters.columns")


@pytest.mark.parametrize(
    "condition",
    [
        {"column": "nope", "operator": "=", "value": "1"},
        {"column": 'name" OR 1=1 --', "operator": "=", "value": "1"},
        {"column": "name", "operator": "==", "value": "Ann"},
        {"column": "name", "operator": "; DROP TABLE x", "value": "Ann"},
        {"column": "name", "operator": "= 'Ann' OR 1=1 --", "value": "Ann"},
        {"column": "name", "operator": "regexp", "value": ".*"},
        {"column": "score", "operator": "between", "value": [1]},
        {"column": "score", "operator": "between", "value": [1, 2, 3]},
        {"column": "score", "operator": "between", "value": "1 AND 100"},
        {"column": "name", "operator": "in", "value": "Ann"},
        {"column": "name", "operator": "not_in", "value": {"a": 1}},
        {"column": "name", "operator": "=", "value": {"a": 1}},
        {"column": "score", "operator": ">", "value": [1, 2]},
        {"column": "score", "operator": ">"},
        {"operator": "=", "value": "Ann"},
        "id = 1",
    ],
    ids=lambda c: json.dumps(c)[:40],
)
def test_bad_where_condition_is_rejected_naming_it(server, env, unchanged, condition) -> None:  # type: ignore[no-untyped-def]
    assert_rejected(
        _post(server, env, filters={"where_conditions": [condition]}), "filters.where_conditions[0]"
    )


def test_the_error_names_the_index_of_the_bad_condition(server, env, unchanged) -> None:  # type: ignore[no-untyped-def]
    good = {"column": "name", "operator": "=", "value": "Ann"}
    bad = {"column": "name", "operator": "=="}
    assert_rejected(
        _post(server, env, filters={"where_conditions": [good, bad]}), "filters.where_conditions[1]"
    )
    r = _post(server, env, filters={"where_conditions": {"column": "name"}})
    assert_rejected(r, "filters.where_conditions")


@pytest.mark.parametrize("limit", [-1, 0, "ten", "10; DROP TABLE x", "-5", 1.5, [10], True])
def test_bad_limit_is_rejected(server, env, unchanged, limit) -> None:  # type: ignore[no-untyped-def]
    assert_rejected(_post(server, env, filters={"limit": limit}), "filters.limit")


@pytest.mark.parametrize(
    ("fmt", "body", "field"),
    [
        ("csv", {"filters": {"colums": ["id"]}}, "filters.colums"),
        ("csv", {"filters": {"date_range": {"start": "yesterday'; DROP TABLE x"}}}, "filters.date_range"),
        (
            "csv",
            {"filters": {"date_range": {"start": "2024-01-01", "column": 'x" OR 1=1'}}},
            "filters.date_range",
        ),
        ("csv", {"filters": "id > 1"}, "filters"),
        ("csv", {"options": {"delimter": ";"}}, "options.delimter"),
        ("csv", {"options": {"delimiter": ";;"}}, "options.delimiter"),
        ("csv", {"options": {"delimiter": ""}}, "options.delimiter"),
        ("csv", {"options": {"encoding": "ebcdic"}}, "options.encoding"),
        ("json", {"options": {"json_format": "xml"}}, "options.json_format"),
        ("parquet", {"options": {"compression": "lz4'; --"}}, "options.compression"),
        ("csv", {"options": {"include_headers": "yes please"}}, "options.include_headers"),
    ],
    ids=lambda v: json.dumps(v)[:40] if isinstance(v, dict) else str(v),
)
def test_bad_filters_and_options_are_rejected(server, env, unchanged, fmt, body, field) -> None:  # type: ignore[no-untyped-def]
    assert_rejected(_post(server, env, fmt, **body), field)


def test_missing_format_and_malformed_bodies(server, env, unchanged) -> None:  # type: ignore[no-untyped-def]
    r = call(server, "POST", "/exports/", env["mallory"], json={"datasource": env["users"]})
    assert_rejected(r, "format")
    for raw in ("{not json", "[1, 2]", '"csv"'):
        r = call(
            server,
            "POST",
            "/exports/",
            env["mallory"],
            data=raw,
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 400, (raw, r.text)
        assert r.json()["success"] is False


def test_unknown_datasource_is_404(server, env, unchanged) -> None:  # type: ignore[no-untyped-def]
    r = call(
        server, "POST", "/exports/", env["mallory"], json={"datasource": str(uuid.uuid4()), "format": "csv"}
    )
    assert_error(r, 404, "Datasource not found")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (INJECTION, ["4"]),
        ("x' OR 'a'='a", []),
        ("Dee; DROP TABLE users; --", ["5"]),
        ("'; DROP TABLE users; --", []),
        ('Eve "quoted"', ["6"]),
    ],
)
def test_values_are_literals(server, env, value, expected) -> None:  # type: ignore[no-untyped-def]
    for condition in (
        {"column": "name", "operator": "=", "value": value},
        {"column": "name", "operator": "in", "value": [value]},
    ):
        filters = {"columns": ["id"], "where_conditions": [condition], "order_by": "id"}
        job = wait_job(
            server,
            env["alice"],
            create_export(
                server, env["alice"], {"datasource": env["users"], "format": "json", "filters": filters}
            )["id"],
        )
        assert job["status"] == "completed", job
        assert [row["id"] for row in json.loads(download(server, env["alice"], job["id"]))] == expected
    assert _state(server)[1] == sorted(USERS)


def test_oversized_body_is_413(server, env, unchanged) -> None:  # type: ignore[no-untyped-def]
    body = {"datasource": env["users"], "format": "csv", "filters": {"columns": ["x" * 100] * 11000}}
    raw = json.dumps(body)
    assert len(raw) > 1024 * 1024
    r = call(
        server, "POST", "/exports/", env["mallory"], data=raw, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413, r.text[:500]
    assert r.json()["success"] is False
    tpl = {"name": "big", "configuration": {"format": "csv", "filters": body["filters"]}}
    r = call(server, "POST", "/export-templates/", env["mallory"], json=tpl)
    assert r.status_code == 413, r.text[:500]
    assert list_ids(server, env["mallory"], "/export-templates/", type="user") == []


# -- authentication and permissions ----------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "1-999-deadbeef", "garbage"])
def test_no_or_bad_token_is_401(server, env, token) -> None:  # type: ignore[no-untyped-def]
    job_id = str(uuid.uuid4())
    for method, path, body in (
        ("GET", "/exports/", None),
        ("POST", "/exports/", {"datasource": env["users"], "format": "csv"}),
        ("GET", f"/exports/{job_id}/", None),
        ("GET", f"/exports/{job_id}/download/", None),
        ("GET", "/export-templates/", None),
        ("POST", "/export-templates/", {"name": "x", "configuration": {"format": "csv"}}),
        ("GET", "/datasources/", None),
    ):
        r = call(server, method, path, token, json=body)
        assert_error(r, 401)


def test_bearer_header_works_too(server, env) -> None:  # type: ignore[no-untyped-def]
    r = call(server, "GET", "/exports/", "", headers={"Authorization": f"Bearer {env['alice']}"})
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True


def test_token_without_read_access_cannot_export_the_table(server, env) -> None:  # type: ignore[no-untyped-def]
    r = call(server, "POST", "/exports/", env["carol"], json={"datasource": env["users"], "format": "csv"})
    assert_error(r, 403)
    assert list_ids(server, env["carol"]) == []
    listed = call(server, "GET", "/datasources/", env["carol"]).json()["data"]
    assert [d["id"] for d in listed["datasources"]] == [env["hidden"]] and listed["total_count"] == 1
    own = call(server, "POST", "/exports/", env["carol"], json={"datasource": env["hidden"], "format": "csv"})
    assert own.status_code == 201, own.text
    # A template naming the table does not open it either.
    tpl = call(
        server,
        "POST",
        "/export-templates/",
        env["carol"],
        json={"name": "t", "configuration": {"format": "csv"}},
    )
    assert tpl.status_code == 201, tpl.text
    r = call(
        server,
        "POST",
        "/exports/",
        env["carol"],
        json={"datasource": env["users"], "template": tpl.json()["data"]["id"]},
    )
    assert_error(r, 403)


# -- ownership -------------------------------------------------------------------------------------


def test_jobs_belong_to_their_owner(server, env) -> None:  # type: ignore[no-untyped-def]
    job = create_export(server, env["alice"], {"datasource": env["users"], "format": "csv"})
    job_id = job["id"]
    assert job["owner"] == "alice"
    wait_job(server, env["alice"], job_id)
    not_found = {"success": False, "error": "Export job not found"}
    for method, path in (
        ("GET", f"/exports/{job_id}/"),
        ("POST", f"/exports/{job_id}/cancel/"),
        ("POST", f"/exports/{job_id}/retry/"),
        ("GET", f"/exports/{job_id}/download/"),
        ("DELETE", f"/exports/{job_id}/"),
    ):
        r = call(server, method, path, env["bob"])
        assert r.status_code == 404 and r.json() == not_found, (method, path, r.status_code, r.text)
    assert job_id not in list_ids(server, env["bob"])
    assert job_id in list_ids(server, env["alice2"])  # same owner, other token
    assert call(server, "GET", f"/exports/{job_id}/", env["alice2"]).json()["data"]["status"] == "completed"
    assert job_id in list_ids(server, server.token, page_size=100)  # the master token sees everything
    master = call(server, "GET", f"/exports/{job_id}/", server.token)
    assert master.status_code == 200 and master.json()["data"]["owner"] == "alice"
    assert download(server, env["alice"], job_id)  # bob's attempts changed nothing
    r = call(server, "DELETE", f"/exports/{job_id}/", server.token)
    assert r.status_code == 200, r.text
    assert call(server, "GET", f"/exports/{job_id}/", env["alice"]).status_code == 404


def test_templates_belong_to_their_owner(server, env) -> None:  # type: ignore[no-untyped-def]
    config = {"format": "csv", "filters": {"columns": ["id", "name"]}}
    user = call(
        server,
        "POST",
        "/export-templates/",
        env["alice"],
        json={"name": "alice private", "configuration": config},
    )
    shared = call(
        server,
        "POST",
        "/export-templates/",
        env["alice"],
        json={"name": "alice shared", "template_type": "shared", "configuration": config},
    )
    assert user.status_code == 201 and shared.status_code == 201, (user.text, shared.text)
    user_id, shared_id = user.json()["data"]["id"], shared.json()["data"]["id"]
    not_found = {"success": False, "error": "Export template not found"}
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        body = {"name": "stolen", "configuration": config} if method in ("PUT", "PATCH") else None
        r = call(server, method, f"/export-templates/{user_id}/", env["bob"], json=body)
        assert r.status_code == 404 and r.json() == not_found, (method, r.status_code, r.text)
    bob_sees = list_ids(server, env["bob"], "/export-templates/")
    assert user_id not in bob_sees and shared_id in bob_sees
    seen = call(server, "GET", f"/export-templates/{shared_id}/", env["bob"])
    assert seen.status_code == 200 and seen.json()["data"]["template_type"] == "shared"
    denied = {"success": False, "error": PERMISSION_MESSAGE}
    for method in ("PUT", "PATCH", "DELETE"):
        body = {"name": "stolen", "configuration": config} if method in ("PUT", "PATCH") else None
        r = call(server, method, f"/export-templates/{shared_id}/", env["bob"], json=body)
        assert r.status_code == 403 and r.json() == denied, (method, r.status_code, r.text)
    for tpl_id, name in ((user_id, "alice private"), (shared_id, "alice shared")):
        r = call(server, "GET", f"/export-templates/{tpl_id}/", env["alice2"])
        assert r.status_code == 200 and r.json()["data"]["name"] == name  # nothing was changed
        assert call(server, "GET", f"/export-templates/{tpl_id}/", server.token).status_code == 200
    renamed = call(server, "PATCH", f"/export-templates/{user_id}/", env["alice2"], json={"name": "renamed"})
    assert renamed.status_code == 200 and renamed.json()["data"]["name"] == "renamed"
    shared_list = call(server, "GET", "/export-templates/", env["bob"], params={"type": "shared"}).json()[
        "data"
    ]
    assert shared_id in [t["id"] for t in shared_list["templates"]]
    assert all(t["template_type"] == "shared" for t in shared_list["templates"])


@pytest.mark.parametrize("who", ["alice", "bob", "carol", "master"])
def test_system_templates_are_listed_for_everyone_and_read_only(server, env, who) -> None:  # type: ignore[no-untyped-def]
    token = server.token if who == "master" else env[who]
    r = call(server, "GET", "/export-templates/", token, params={"type": "system"})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert {t["name"]: t["format"] for t in data["templates"]} == SYSTEM_TEMPLATES
    assert data["total_count"] == 4
    assert all(t["template_type"] == "system" and t["owner"] is None for t in data["templates"])
    everything = list_ids(server, token, "/export-templates/")
    assert {t["id"] for t in data["templates"]} <= set(everything)
    if who == "master":
        return
    denied = {"success": False, "error": PERMISSION_MESSAGE}
    for tpl in data["templates"]:
        put = call(
            server,
            "PUT",
            f"/export-templates/{tpl['id']}/",
            token,
            json={"name": "mine now", "configuration": {"format": "csv"}},
        )
        assert put.status_code == 403 and put.json() == denied, put.text
        delete = call(server, "DELETE", f"/export-templates/{tpl['id']}/", token)
        assert delete.status_code == 403 and delete.json() == denied, delete.text
    again = call(server, "GET", "/export-templates/", token, params={"type": "system"}).json()["data"]
    assert {t["name"] for t in again["templates"]} == set(SYSTEM_TEMPLATES)


def test_a_system_template_drives_an_export(server, env) -> None:  # type: ignore[no-untyped-def]
    templates = call(server, "GET", "/export-templates/", env["alice"], params={"type": "system"}).json()[
        "data"
    ]
    lines = next(t for t in templates["templates"] if t["name"] == "JSON lines export")
    job = create_export(server, env["alice"], {"datasource": env["users"], "template": lines["id"]})
    assert job["format"] == "json" and job["template"]["id"] == lines["id"]
    assert wait_job(server, env["alice"], job["id"])["status"] == "completed"
    rows = [json.loads(line) for line in download(server, env["alice"], job["id"]).decode().splitlines()]
    assert sorted(r["id"] for r in rows) == [u[0] for u in USERS]


def test_nobody_creates_system_templates(server, env) -> None:  # type: ignore[no-untyped-def]
    body = {"name": "fake system", "template_type": "system", "configuration": {"format": "csv"}}
    for token in (env["alice"], server.token):
        assert_rejected(call(server, "POST", "/export-templates/", token, json=body), "template_type")
    names = [
        t["name"] for t in call(server, "GET", "/export-templates/", server.token).json()["data"]["templates"]
    ]
    assert "fake system" not in names


# -- list filters and pagination -------------------------------------------------------------------


def test_list_filters(server, env) -> None:  # type: ignore[no-untyped-def]
    token = make_token(server, "dave", "in.c-sec")
    csv_job = create_export(server, token, {"datasource": env["users"], "format": "csv"})["id"]
    json_job = create_export(server, token, {"datasource": env["users"], "format": "json"})["id"]
    parquet_job = create_export(server, token, {"datasource": env["orders"], "format": "parquet"})["id"]
    for job_id in (csv_job, json_job, parquet_job):
        assert wait_job(server, token, job_id)["status"] == "completed"
    every = {csv_job, json_job, parquet_job}
    assert set(list_ids(server, token)) == every
    assert set(list_ids(server, token, status="completed")) == every
    assert list_ids(server, token, status="pending") == []
    assert list_ids(server, token, format="json") == [json_job]
    assert list_ids(server, token, format="parquet") == [parquet_job]
    assert list_ids(server, token, datasource=env["orders"]) == [parquet_job]
    assert set(list_ids(server, token, datasource=env["users"])) == {csv_job, json_job}
    assert list_ids(server, token, format="csv", datasource=env["users"]) == [csv_job]
    assert list_ids(server, token, search="orders") == [parquet_job]
    assert list_ids(server, token, search="no-such-thing-anywhere") == []
    r = call(server, "GET", "/exports/", token, params={"search": "orders"})
    assert r.json()["data"]["pagination"]["total_count"] == 1


def test_template_list_filters(server, env) -> None:  # type: ignore[no-untyped-def]
    token = make_token(server, "erin", "in.c-sec")

    def make(name: str, description: str, fmt: str, kind: str = "user") -> str:
        body = {
            "name": name,
            "description": description,
            "template_type": kind,
            "configuration": {"format": fmt},
        }
        r = call(server, "POST", "/export-templates/", token, json=body)
        assert r.status_code == 201, r.text
        return r.json()["data"]["id"]

    sales = make("Quarterly sales", "numbers for finance", "excel")
    stock = make("Stock levels", "warehouse snapshot", "csv")
    shared = make("Erin shared feed", "for partners", "json", "shared")
    mine = set(list_ids(server, token, "/export-templates/", type="user"))
    assert mine == {sales, stock}
    assert shared in list_ids(server, token, "/export-templates/", type="shared")
    assert list_ids(server, token, "/export-templates/", type="user", format="excel") == [sales]
    assert list_ids(server, token, "/export-templates/", search="quarterly") == [sales]  # name, any case
    assert list_ids(server, token, "/export-templates/", search="warehouse") == [stock]  # description
    everything = call(server, "GET", "/export-templates/", token).json()["data"]
    assert {sales, stock, shared} <= {t["id"] for t in everything["templates"]}
    assert everything["total_count"] == len(everything["templates"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page_size": 101}, "page_size"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": "x"}, "page_size"),
        ({"page": 0}, "page"),
        ({"page": -1}, "page"),
        ({"page": "abc"}, "page"),
    ],
)
def test_pagination_bounds(server, env, params, field) -> None:  # type: ignore[no-untyped-def]
    assert_rejected(call(server, "GET", "/exports/", env["alice"], params=params), field)


def test_largest_page_size_is_allowed(server, env) -> None:  # type: ignore[no-untyped-def]
    r = call(server, "GET", "/exports/", env["alice"], params={"page_size": 100, "page": 1})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["pagination"]["page_size"] == 100
    far = call(server, "GET", "/exports/", env["alice"], params={"page": 999})
    assert far.status_code == 200 and far.json()["data"]["export_jobs"] == []
