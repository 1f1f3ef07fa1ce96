"""The SDK's Export API (``client.exports``, ``client.export_templates``).

The first tests check what the SDK sends and how it reads answers against a scripted
``httpx.MockTransport``; the rest run against real servers: the module's ``server`` (two job
workers) and ``idle`` (no workers: export jobs stay pending until a test starts a worker).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from entrepot.client import (
    Client,
    Conflict,
    ExportCancelled,
    ExportFailed,
    InvalidRequest,
    JobTimeout,
    NotFound,
    PermissionDenied,
)
from entrepot.client.exports import filename_from_disposition
from support.server import RunningServer, start_server
from support.transport import scripted

API = "/data-tools/api/v1"


# -- against a scripted transport ------------------------------------------------------------
def ok(data: Any, status: int = 200, message: str = "ok") -> httpx.Response:
    return httpx.Response(status, json={"success": True, "message": message, "data": data})


def job(status: str, progress: int, **extra: Any) -> dict[str, Any]:
    return {"id": "j1", "status": status, "progress": progress, "row_count": None, **extra}


DS_ID = "123e4567-e89b-12d3-a456-426614174000"
DATASOURCES = {
    "datasources": [
        {"id": "00000000-0000-0000-0000-000000000001", "table_id": "in.c-main.users_old", "name": "old"},
        {"id": DS_ID, "table_id": "in.c-main.users", "name": "users"},
    ],
    "total_count": 2,
}


def test_create_resolves_a_table_id_and_sends_the_body():
    with scripted(ok(DATASOURCES), ok(job("pending", 0), 201)) as (client, rec):
        created = client.exports.create(
            "in.c-main.users", "PARQUET", filters={"limit": 5}, options={"compression": "zstd"}
        )
    assert created == job("pending", 0)
    lookup, post = rec.requests
    assert lookup.method == "GET" and lookup.url.path == f"{API}/datasources/"
    assert lookup.url.params["search"] == "in.c-main.users"
    assert post.method == "POST" and post.url.path == f"{API}/exports/"
    assert post.headers["X-StorageApi-Token"] == "tok"
    assert json.loads(post.content) == {
        "datasource": DS_ID,
        "format": "parquet",
        "filters": {"limit": 5},
        "options": {"compression": "zstd"},
    }


def test_create_with_a_uuid_or_a_template_sends_no_lookup_and_no_default_format():
    with scripted(ok(job("pending", 0), 201)) as (client, rec):
        client.exports.create(DS_ID, template="tpl-1")
        client.exports.create(DS_ID)
    assert [r.url.path for r in rec.requests] == [f"{API}/exports/", f"{API}/exports/"]
    assert json.loads(rec.requests[0].content) == {"datasource": DS_ID, "template": "tpl-1"}
    assert json.loads(rec.requests[1].content) == {"datasource": DS_ID, "format": "csv"}


def test_an_unknown_table_id_is_not_found_before_any_post():
    with scripted(ok(DATASOURCES)) as (client, rec), pytest.raises(NotFound, match=r"in\.c-main\.nope"):
        client.exports.create("in.c-main.nope")
    assert [r.method for r in rec.requests] == ["GET"]


def test_error_envelopes_become_typed_errors_with_the_servers_message():
    field_errors = {"success": False, "error": {"format": "Invalid format", "options.delimiter": "one char"}}
    with (
        scripted(httpx.Response(400, json=field_errors)) as (client, _),
        pytest.raises(InvalidRequest) as info,
    ):
        client.exports.get("x")
    assert info.value.message == "format: Invalid format; options.delimiter: one char"
    assert info.value.fields == field_errors["error"] and info.value.status == 400
    for status, cls in ((403, PermissionDenied), (404, NotFound), (409, Conflict)):
        body = {"success": False, "error": f"the {status} message"}
        with scripted(httpx.Response(status, json=body)) as (client, _), pytest.raises(cls) as raised:
            client.export_templates.delete("t")
        assert raised.value.message == f"the {status} message" and raised.value.fields is None


def test_wait_reports_each_change_and_raises_the_failure_message():
    states = [job("pending", 0), job("processing", 40), job("processing", 40), job("processing", 90)]
    states.append(job("failed", 90, error_message="Excel holds at most 1048575 data rows"))
    with scripted(*(ok(s) for s in states)) as (client, rec):
        seen: list[tuple[str, int]] = []
        with pytest.raises(ExportFailed) as info:
            client.exports.wait(
                "j1", poll=0.001, on_progress=lambda j: seen.append((j["status"], j["progress"]))
            )
    assert seen == [("pending", 0), ("processing", 40), ("processing", 90), ("failed", 90)]
    assert info.value.message == "Excel holds at most 1048575 data rows"
    assert info.value.job["status"] == "failed" and len(rec.requests) == 5
    assert not isinstance(info.value, ExportCancelled)

    with scripted(ok(job("cancelled", 10))) as (client, _), pytest.raises(ExportCancelled, match="cancelled"):
        client.exports.wait("j1")
    with scripted(ok(job("processing", 10))) as (client, _), pytest.raises(JobTimeout):
        client.exports.wait("j1", timeout=0.05, poll=0.01)


def test_download_names_the_file_from_content_disposition(tmp_path, monkeypatch):
    payload = b"id,name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(20_000))
    headers = {"Content-Disposition": 'attachment; filename="users-1a2b.csv"', "Content-Type": "text/csv"}
    with scripted(httpx.Response(200, content=payload, headers=headers)) as (client, rec):
        monkeypatch.chdir(tmp_path)
        assert client.exports.download("j1") == tmp_path / "users-1a2b.csv"
        folder = tmp_path / "sub"
        folder.mkdir()
        chunks: list[int] = []
        into = client.exports.download(
            "j1", folder, chunk_size=4096, on_progress=lambda d, t: chunks.append(d)
        )
        assert into == folder / "users-1a2b.csv"
        assert client.exports.download("j1", tmp_path / "mine.csv") == tmp_path / "mine.csv"
    for path in (tmp_path / "users-1a2b.csv", folder / "users-1a2b.csv", tmp_path / "mine.csv"):
        assert path.read_bytes() == payload
    assert chunks[-1] == len(payload) and len(chunks) > 1
    assert not list(tmp_path.rglob("*.part"))
    assert rec.requests[0].url.path == f"{API}/exports/j1/download/"


def test_content_disposition_names_never_leave_the_directory():
    assert filename_from_disposition('attachment; filename="../../etc/passwd"') == "passwd"
    assert filename_from_disposition("attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.csv") == "résumé.csv"
    assert filename_from_disposition("attachment; filename=plain.json") == "plain.json"
    assert filename_from_disposition('attachment; filename=".."') is None
    assert filename_from_disposition(None) is None


def test_template_update_sends_only_the_given_fields():
    with scripted(ok({"id": "t1", "name": "new"})) as (client, rec):
        client.export_templates.update("t1", name="new", is_active=False)
        with pytest.raises(TypeError, match="colour"):
            client.export_templates.update("t1", colour="red")
    assert len(rec.requests) == 1 and rec.requests[0].method == "PUT"
    assert json.loads(rec.requests[0].content) == {"name": "new", "is_active": False}


# -- against a real server ----------------------------------------------------------------------
CITIES = ("Paris", "Lyon", "Nice")


def user_rows(n: int = 60) -> list[dict[str, str]]:
    return [
        {"id": str(i), "name": f"user{i:03d}", "age": str(18 + (i * 7) % 50), "city": CITIES[i % 3]}
        for i in range(1, n + 1)
    ]


def as_csv(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def make_table(client: Client, bucket_name: str, table: str = "users") -> str:
    with contextlib.suppress(NotFound):
        client.buckets.delete(f"in.c-{bucket_name}", force=True)
    bucket = client.buckets.create(bucket_name)["id"]
    return client.tables.create(bucket, table, as_csv(user_rows()), primary_key=["id"])["id"]


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[Client]:
    with Client(server.url, server.token) as c:
        yield c


@pytest.fixture(scope="module")
def users(client: Client) -> str:
    return make_table(client, f"exp{uuid.uuid4().hex[:6]}")


def read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def test_csv_export_by_table_id_with_filters_progress_and_download(client, users, tmp_path):
    progress: list[tuple[str, int]] = []
    created = client.exports.create(
        users,
        "csv",
        filters={
            "columns": ["id", "name", "age"],
            "where_conditions": [{"column": "age", "operator": ">", "value": 40}],
            "order_by": "name DESC",
        },
    )
    assert created["status"] in ("pending", "processing", "completed")
    assert created["datasource"]["table_id"] == users and created["format"] == "csv"
    done = client.exports.wait(
        created["id"], timeout=60, on_progress=lambda j: progress.append((j["status"], j["progress"]))
    )
    assert done["status"] == "completed" and done["progress"] == 100
    assert progress[-1] == ("completed", 100)
    assert [p for _, p in progress] == sorted(p for _, p in progress)  # progress never goes back
    expected = sorted(
        ({"id": r["id"], "name": r["name"], "age": r["age"]} for r in user_rows() if int(r["age"]) > 40),
        key=lambda r: r["name"],
        reverse=True,
    )
    assert done["row_count"] == len(expected) > 0

    path = client.exports.download(done["id"], tmp_path)
    assert path == tmp_path / done["file_name"] and path.suffix == ".csv"
    assert path.stat().st_size == done["file_size"]
    assert read_csv(path) == expected  # numeric comparison on a string column, ordered by name desc
    fetched = duckdb.sql(f"select id, name, age from read_csv('{path}', all_varchar=true)").fetchall()
    assert fetched == [(r["id"], r["name"], r["age"]) for r in expected]
    assert client.exports.read_bytes(done["id"]) == path.read_bytes()


def test_parquet_export_by_datasource_uuid_reads_back_with_duckdb(client, users, tmp_path):
    ds = client.exports.datasource(users)
    assert ds["table_id"] == users and ds["columns"] == ["id", "name", "age", "city"]
    assert ds["row_count"] == 60
    assert client.exports.datasource(ds["id"])["id"] == ds["id"]
    assert ds["id"] in [d["id"] for d in client.exports.datasources()]
    job_ = client.exports.create(
        ds["id"],
        "parquet",
        filters={"where_conditions": [{"column": "city", "operator": "in", "value": ["Paris", "Nice"]}]},
        options={"compression": "zstd"},
    )
    done = client.exports.wait(job_["id"], timeout=60)
    assert done["options"]["compression"] == "zstd"
    out = client.exports.download(done["id"], tmp_path / "users.parquet")
    rows = duckdb.sql(f"select id, name, age, city from '{out}' order by cast(id as int)").fetchall()
    expected = [
        (r["id"], r["name"], r["age"], r["city"]) for r in user_rows() if r["city"] in ("Paris", "Nice")
    ]
    assert rows == expected and done["row_count"] == len(expected)


def test_json_lines_and_group_by(client, users, tmp_path):
    job_ = client.exports.create(
        users, "json", filters={"group_by": "city", "order_by": "city"}, options={"json_format": "lines"}
    )
    done = client.exports.wait(job_["id"], timeout=60)
    lines = client.exports.read_bytes(done["id"]).decode().splitlines()
    counted = [json.loads(line) for line in lines]
    assert [(c["city"], int(c["count"])) for c in counted] == [("Lyon", 20), ("Nice", 20), ("Paris", 20)]


def test_list_paginates_and_iter_walks_every_page(client):
    table = make_table(client, f"pages{uuid.uuid4().hex[:6]}")
    created = [client.exports.create(table, "csv", filters={"limit": 1})["id"] for _ in range(5)]
    for job_id in created:
        client.exports.wait(job_id, timeout=60)
    first = client.exports.list(page=1, page_size=2, datasource=table)
    assert first["pagination"] == {
        "total_count": 5,
        "page_count": 3,
        "current_page": 1,
        "has_next": True,
        "has_previous": False,
        "page_size": 2,
    }
    last = client.exports.list(page=3, page_size=2, datasource=table)
    assert len(last["export_jobs"]) == 1 and last["pagination"]["has_next"] is False
    assert last["pagination"]["has_previous"] is True
    assert client.exports.list(page=4, page_size=2, datasource=table)["export_jobs"] == []
    walked = [j["id"] for j in client.exports.iter(datasource=table, page_size=2)]
    assert sorted(walked) == sorted(created) and len(walked) == 5
    assert {j["status"] for j in client.exports.iter(datasource=table, status="completed")} == {"completed"}
    assert list(client.exports.iter(datasource=table, status="failed")) == []
    assert len(client.exports.list(datasource=table, format="parquet")["export_jobs"]) == 0


def test_a_job_that_fails_raises_export_failed_with_the_servers_message(client):
    bucket = client.buckets.create(f"intl{uuid.uuid4().hex[:6]}")["id"]
    table = client.tables.create(bucket, "names", "id,name\n1,Zoë\n2,日本\n".encode(), primary_key=["id"])[
        "id"
    ]
    job_ = client.exports.create(table, "csv", options={"encoding": "latin-1"})
    seen: list[str] = []
    with pytest.raises(ExportFailed) as info:
        client.exports.wait(job_["id"], timeout=60, on_progress=lambda j: seen.append(j["status"]))
    assert not isinstance(info.value, ExportCancelled) and seen[-1] == "failed"
    failed = client.exports.get(job_["id"])
    assert failed["status"] == "failed" and info.value.message == failed["error_message"]
    assert "cannot be written in latin-1" in info.value.message and "日" in info.value.message
    assert str(info.value).startswith(f"export {job_['id']} failed: ")
    assert failed["download_url"] is None and failed["file_name"] is None
    with pytest.raises(Conflict):
        client.exports.download(job_["id"])
    assert [j["id"] for j in client.exports.iter(status="failed", search="latin-1")] == [job_["id"]]

    again = client.exports.retry(job_["id"])  # the same failure again: the data did not change
    assert again["id"] == job_["id"] and again["status"] in ("pending", "processing", "failed")
    with pytest.raises(ExportFailed, match="latin-1"):
        client.exports.wait(job_["id"], timeout=60)
    utf8 = client.exports.wait(
        client.exports.create(table, "csv", options={"encoding": "utf-8"})["id"], timeout=60
    )
    assert "日本" in client.exports.read_bytes(utf8["id"]).decode()


def test_validation_errors_name_the_field(client, users):
    with pytest.raises(InvalidRequest) as info:
        client.exports.create(users, "xml")
    assert info.value.fields == {"format": "Invalid format. Must be one of: csv, json, parquet, excel"}
    assert str(info.value).startswith("format: Invalid format")
    with pytest.raises(InvalidRequest) as bad_column:
        client.exports.create(users, "csv", filters={"where_conditions": [{"column": "nope", "value": 1}]})
    assert bad_column.value.fields and "nope" in bad_column.value.message
    with pytest.raises(InvalidRequest) as bad_option:
        client.exports.create(users, "parquet", options={"delimiter": ";"})
    assert bad_option.value.fields is not None and "options.delimiter" in bad_option.value.fields


def test_unknown_ids_are_not_found(client):
    missing = str(uuid.uuid4())
    with pytest.raises(NotFound, match="Export job not found"):
        client.exports.get(missing)
    with pytest.raises(NotFound, match="Export job not found"):
        client.exports.download(missing)
    with pytest.raises(NotFound, match="Export template not found"):
        client.export_templates.get(missing)
    with pytest.raises(NotFound, match="Datasource not found"):
        client.exports.datasource(missing)


def test_templates_crud_usage_count_and_template_defaults(client, users, tmp_path):
    name = f"semicolons {uuid.uuid4().hex[:6]}"
    config = {"format": "csv", "filters": {"columns": ["id", "name"], "limit": 3, "order_by": "id"}}
    config["options"] = {"delimiter": ";"}
    created = client.export_templates.create(name, config, description="first")
    assert created["name"] == name and created["template_type"] == "user" and created["is_active"] is True
    assert created["usage_count"] == 0 and created["has_filters"] is True and created["format"] == "csv"
    assert client.export_templates.get(created["id"])["configuration"]["options"]["delimiter"] == ";"
    assert created["id"] in [t["id"] for t in client.export_templates.list(type="user")]
    assert [t["id"] for t in client.export_templates.list(search=name)] == [created["id"]]
    assert created["id"] not in [t["id"] for t in client.export_templates.list(format="parquet")]
    system = {t["name"] for t in client.export_templates.list(type="system")}
    assert {"Full CSV export", "Full Parquet export", "Excel with headers", "JSON lines export"} <= system

    updated = client.export_templates.update(created["id"], name=name + " v2")
    assert updated["name"] == name + " v2" and updated["description"] == "first"  # other fields kept
    assert updated["configuration"] == created["configuration"]

    job_ = client.exports.create(users, template=created["id"], filters={"limit": 2})
    assert job_["template"] == {"id": created["id"], "name": name + " v2"}
    assert job_["format"] == "csv" and job_["filters"]["limit"] == 2  # the request overrides the template
    done = client.exports.wait(job_["id"], timeout=60)
    path = client.exports.download(done["id"], tmp_path)
    assert path.read_text().splitlines() == ["id;name", "1;user001", "10;user010"]  # ids sort as strings
    assert client.export_templates.get(created["id"])["usage_count"] == 1

    client.export_templates.delete(created["id"])
    with pytest.raises(NotFound):
        client.export_templates.get(created["id"])
    assert client.exports.get(done["id"])["status"] == "completed"  # its jobs stay


def test_system_templates_are_read_only_and_usable(client, users):
    system = client.export_templates.list(type="system", search="Full Parquet export")
    assert len(system) == 1 and system[0]["template_type"] == "system"
    with pytest.raises(PermissionDenied, match="You do not have permission to modify this template"):
        client.export_templates.update(system[0]["id"], name="mine now")
    with pytest.raises(PermissionDenied):
        client.export_templates.delete(system[0]["id"])
    done = client.exports.wait(client.exports.create(users, template=system[0]["id"])["id"], timeout=60)
    assert done["format"] == "parquet" and done["row_count"] == 60


def test_owners_see_their_own_exports_and_tokens_need_read_access(server, client, users):
    bucket = users.rsplit(".", 1)[0]
    alice = client.tokens.create("alice 1", owner="alice", bucket_permissions={bucket: "read"})
    alice2 = client.tokens.create("alice 2", owner="alice", bucket_permissions={bucket: "read"})
    bob = client.tokens.create("bob", owner="bob", bucket_permissions={bucket: "read"})
    nobody = client.tokens.create("no buckets")
    assert client.tokens.get(alice["id"])["ownerName"] == "alice"
    with (
        Client(server.url, alice["token"]) as as_alice,
        Client(server.url, alice2["token"]) as as_alice2,
        Client(server.url, bob["token"]) as as_bob,
        Client(server.url, nobody["token"]) as as_nobody,
    ):
        job_ = as_alice.exports.create(users, "csv", filters={"limit": 1})
        assert job_["owner"] == "alice"
        assert as_alice2.exports.get(job_["id"])["id"] == job_["id"]  # same owner, other token
        assert client.exports.get(job_["id"])["owner"] == "alice"  # the master sees everything
        with pytest.raises(NotFound):
            as_bob.exports.get(job_["id"])
        assert job_["id"] not in [j["id"] for j in as_bob.exports.iter()]
        with pytest.raises(NotFound):
            as_bob.exports.cancel(job_["id"])

        private = as_alice.export_templates.create("alice only", {"format": "csv"})
        shared = as_alice.export_templates.create("for all", {"format": "json"}, template_type="shared")
        bob_sees = {t["id"] for t in as_bob.export_templates.list()}
        assert shared["id"] in bob_sees and private["id"] not in bob_sees
        with pytest.raises(NotFound):
            as_bob.export_templates.get(private["id"])
        with pytest.raises(PermissionDenied, match="permission to modify"):
            as_bob.export_templates.update(shared["id"], description="bob was here")
        assert as_alice2.export_templates.update(private["id"], description="ok")["description"] == "ok"

        assert users not in [d["table_id"] for d in as_nobody.exports.datasources()]
        ds_id = client.exports.datasource(users)["id"]
        with pytest.raises(PermissionDenied):
            as_nobody.exports.create(ds_id, "csv")


# -- cancel, retry, delete: a server whose export jobs wait for a worker --------------------------
@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Client, str]]:
    """A server without job workers: tables are made with a worker started for the purpose."""
    running = start_server(tmp_path_factory.mktemp("idle"), workers=0)
    pool = running.services.start_workers(1, name="setup")
    try:
        with Client(running.url, running.token) as c:
            table = make_table(c, "idle")
            pool.stop()
            yield running, c, table
    finally:
        pool.stop()
        running.stop()


def test_cancel_retry_and_delete(idle, tmp_path):
    running, client, table = idle
    job_ = client.exports.create(table, "csv")
    assert client.exports.get(job_["id"])["status"] == "pending"  # no worker: it waits
    with pytest.raises(Conflict):
        client.exports.download(job_["id"])  # not completed yet
    with pytest.raises(JobTimeout):
        client.exports.wait(job_["id"], timeout=0.2)

    cancelled = client.exports.cancel(job_["id"])
    assert cancelled["id"] == job_["id"] and cancelled["status"] == "cancelled" and cancelled["completed_at"]
    with pytest.raises(ExportCancelled, match="cancelled"):
        client.exports.wait(job_["id"], timeout=5)
    with pytest.raises(Conflict):
        client.exports.cancel(job_["id"])

    retried = client.exports.retry(job_["id"])
    assert retried["id"] == job_["id"] and retried["status"] == "pending"
    pool = running.services.start_workers(1, name="test")
    try:
        done = client.exports.wait(job_["id"], timeout=60)
    finally:
        pool.stop()
    assert done["status"] == "completed" and done["row_count"] == 60
    with pytest.raises(Conflict):
        client.exports.retry(job_["id"])  # only failed or cancelled jobs
    with pytest.raises(Conflict):
        client.exports.cancel(job_["id"])  # already finished

    assert client.exports.download(job_["id"], tmp_path / "all.csv").read_text().count("\n") == 61
    client.exports.delete(job_["id"])
    with pytest.raises(NotFound):
        client.exports.get(job_["id"])
    with pytest.raises(NotFound):
        client.exports.delete(job_["id"])
    assert job_["id"] not in [j["id"] for j in client.exports.iter()]

    pending = client.exports.create(table, "json")
    client.exports.delete(pending["id"])  # a job that has not started can go at once
    with pytest.raises(NotFound):
        client.exports.get(pending["id"])


class _Reached(logging.Handler):
    """Sets ``event`` when the server (in this process) logs that a job reached ``failpoint``."""

    def __init__(self, failpoint: str) -> None:
        super().__init__(logging.WARNING)
        self.failpoint = failpoint
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(f"failpoint {self.failpoint} reached"):
            self.event.set()


@contextlib.contextmanager
def failpoint_reached(failpoint: str) -> Iterator[threading.Event]:
    """An event set when a job of the in-process server pauses at ``failpoint``."""
    handler = _Reached(failpoint)
    logger = logging.getLogger("entrepot.failpoints")
    logger.addHandler(handler)
    try:
        yield handler.event
    finally:
        logger.removeHandler(handler)


@pytest.fixture(scope="module")
def paused(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, str]]:
    """A server whose export jobs stop at ``exports.run.before_write`` (processing) until cancelled."""
    running = start_server(tmp_path_factory.mktemp("paused"), failpoints="exports.run.before_write=pause(60)")
    try:
        with Client(running.url, running.token) as c:
            yield c, make_table(c, "paused")
    finally:
        running.stop()


def test_a_processing_job_cannot_be_deleted_until_cancelled(paused):
    client, table = paused
    with failpoint_reached("exports.run.before_write") as reached:
        job_ = client.exports.create(table, "parquet")
        assert reached.wait(30), "the export job did not reach its failpoint"
    processing = client.exports.get(job_["id"])
    assert processing["status"] == "processing", processing
    assert processing["started_at"] and processing["completed_at"] is None
    with pytest.raises(Conflict, match=r"Cannot delete job that is currently processing\. Cancel it first\."):
        client.exports.delete(job_["id"])
    cancelled = client.exports.cancel(job_["id"])
    assert cancelled["status"] == "cancelled"
    with pytest.raises(ExportCancelled):
        client.exports.wait(job_["id"], timeout=10)
    client.exports.delete(job_["id"])
    with pytest.raises(NotFound):
        client.exports.get(job_["id"])
