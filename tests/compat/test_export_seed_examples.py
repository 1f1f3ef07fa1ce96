"""Every request/response example of the Export API seed (004) against a real entrepot server.

The seed's bodies are used verbatim; only the made-up ids (datasource, job, template) are
replaced by real ones. Each example is checked with and without the trailing slash (the
contract: every path works both ways, never redirecting). Jobs that must stay ``processing``
(the 409 on delete, cancelling a running job) run on a second server with the failpoint
``exports.run.before_write`` paused and a single job worker, so everything queued behind the
held job stays ``pending`` until the pause ends: no timing races.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from support import exports_api
from support.exports_api import (
    TERMINAL,
    call,
    create_bucket,
    create_export,
    datasource_id,
    get_job,
    make_token,
    wait_job,
)
from support.server import RunningServer, start_server

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SLASHES = pytest.mark.parametrize("slash", ["/", ""], ids=["slash", "noslash"])
HOLD_SECONDS = 8  # how long the failpoint holds an export job in 'processing'
_names = itertools.count(1)

# The seed's bodies, verbatim (ids replaced where the seed has made-up ones).
SEED_CREATE_FILTERS = {
    "columns": ["col1", "col2", "col3"],
    "limit": 1000,
    "where_conditions": [{"column": "col1", "operator": ">", "value": 100}],
}
SEED_TEMPLATE = {
    "name": "CSV Full Export Template",
    "description": "Template for full CSV exports with headers",
    "configuration": {
        "format": "csv",
        "filters": {"include_headers": True, "columns": ["*"]},
        "options": {"delimiter": ",", "encoding": "utf-8"},
    },
}
SEED_TEMPLATE_UPDATE = {
    "name": "Updated CSV Template",
    "description": "Updated description",
    "configuration": {"format": "csv", "filters": {"columns": ["col1", "col2"], "limit": 5000}},
}
PERMISSION_MESSAGE = "You do not have permission to modify this template"
JOB_KEYS = {
    "id",
    "status",
    "format",
    "progress",
    "row_count",
    "file_size",
    "file_name",
    "content_type",
    "created_at",
    "started_at",
    "completed_at",
    "error_message",
    "datasource",
    "filters",
    "options",
    "template",
    "owner",
    "expires_at",
    "file_expired",
    "download_url",
    "download_url_expires_at",
}
PAGINATION_KEYS = {"total_count", "page_count", "current_page", "has_next", "has_previous", "page_size"}
# col1 is 1..150: the seed's condition col1 > 100 keeps 101..150 (compared as numbers).
ROWS = [{"col1": str(i), "col2": f"name {i}", "col3": f"c{i % 3}", "col4": f"x{i}"} for i in range(1, 151)]


# -- helpers ---------------------------------------------------------------------------------------


def make_table(server: RunningServer, bucket: str, name: str, rows: list[dict[str, str]]) -> str:
    """A table in ``in.c-<bucket>`` (created if missing) from dict rows."""
    header = list(rows[0])
    bucket_id = create_bucket(server, bucket, exist_ok=True)
    return exports_api.make_table(server, bucket_id, name, header, [[r[c] for c in header] for r in rows])


def expected_seed_rows() -> list[list[str]]:
    return [[r["col1"], r["col2"], r["col3"]] for r in ROWS if int(r["col1"]) > 100]


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(server: RunningServer) -> dict[str, Any]:
    table_id = make_table(server, "main", "my_data", ROWS)
    return {
        "ds": datasource_id(server, table_id),
        "table_id": table_id,
        "alice": make_token(server, "alice", "in.c-main"),
        "bob": make_token(server, "bob", "in.c-main"),
    }


def fresh_owner(server: RunningServer) -> str:
    """A token of an owner nobody else uses, so that lists have exact counts."""
    return make_token(server, f"owner{next(_names)}", "in.c-main")


# -- export jobs -----------------------------------------------------------------------------------


@SLASHES
def test_seed_create_export_job(server, env, slash) -> None:  # type: ignore[no-untyped-def]
    body = {"datasource": env["ds"], "format": "csv", "filters": SEED_CREATE_FILTERS}
    r = call(server, "POST", f"/exports{slash}", env["alice"], json=body)
    assert r.status_code == 201, r.text
    payload = r.json()
    assert payload["success"] is True
    assert payload["message"] == "Export job created successfully"
    data = payload["data"]
    assert uuid.UUID(data["id"])
    assert data["status"] == "pending"
    assert data["format"] == "csv"
    assert data["progress"] == 0
    assert ISO_Z.match(data["created_at"]), data["created_at"]
    assert data["datasource"]["id"] == env["ds"]
    assert isinstance(data["datasource"]["name"], str) and data["datasource"]["name"]
    done = wait_job(server, env["alice"], data["id"])
    assert done["status"] == "completed", done
    assert done["row_count"] == len(expected_seed_rows())  # col1 > 100 as numbers: 101..150


@SLASHES
def test_seed_list_completed_jobs_with_pagination(server, env, slash) -> None:  # type: ignore[no-untyped-def]
    token = fresh_owner(server)
    ids = [
        create_export(server, token, {"datasource": env["ds"], "format": f})["id"] for f in ("csv", "json")
    ]
    for job_id in ids:
        assert wait_job(server, token, job_id)["status"] == "completed"
    r = call(server, "GET", f"/exports{slash}?page=1&page_size=20&status=completed", token)
    assert r.status_code == 200, r.text
    payload = r.json()
    assert payload["success"] is True
    assert payload["message"] == "Export jobs retrieved successfully"
    jobs = payload["data"]["export_jobs"]
    assert sorted(j["id"] for j in jobs) == sorted(ids)
    for job in jobs:
        assert job["status"] == "completed" and job["progress"] == 100
        assert job["format"] in ("csv", "json")
        assert isinstance(job["file_size"], int) and job["file_size"] > 0
        assert job["row_count"] == len(ROWS)
        assert ISO_Z.match(job["created_at"]) and ISO_Z.match(job["completed_at"])
    created = [j["created_at"] for j in jobs]
    assert created == sorted(created, reverse=True)  # newest first
    assert payload["data"]["pagination"] == {
        "total_count": 2,
        "page_count": 1,
        "current_page": 1,
        "has_next": False,
        "has_previous": False,
        "page_size": 20,
    }
    assert set(payload["data"]["pagination"]) == PAGINATION_KEYS
    for status in ("pending", "failed", "cancelled", "processing"):
        other = call(server, "GET", f"/exports{slash}", token, params={"status": status}).json()
        assert other["data"]["export_jobs"] == [] and other["data"]["pagination"]["total_count"] == 0


def test_list_pages_through_the_jobs(server, env) -> None:  # type: ignore[no-untyped-def]
    token = fresh_owner(server)
    ids = {create_export(server, token, {"datasource": env["ds"], "format": "csv"})["id"] for _ in range(3)}
    first = call(server, "GET", "/exports/", token, params={"page": 1, "page_size": 2}).json()["data"]
    assert first["pagination"] == {
        "total_count": 3,
        "page_count": 2,
        "current_page": 1,
        "has_next": True,
        "has_previous": False,
        "page_size": 2,
    }
    second = call(server, "GET", "/exports/", token, params={"page": 2, "page_size": 2}).json()["data"]
    assert second["pagination"]["current_page"] == 2
    assert second["pagination"]["has_next"] is False and second["pagination"]["has_previous"] is True
    assert {j["id"] for j in first["export_jobs"] + second["export_jobs"]} == ids
    assert len(first["export_jobs"]) == 2 and len(second["export_jobs"]) == 1
    past = call(server, "GET", "/exports/", token, params={"page": 3, "page_size": 2})
    assert past.status_code == 200 and past.json()["data"]["export_jobs"] == []


@SLASHES
def test_seed_get_export_job_detail(server, env, slash) -> None:  # type: ignore[no-untyped-def]
    body = {"datasource": env["ds"], "format": "csv", "filters": SEED_CREATE_FILTERS}
    job_id = create_export(server, env["alice"], body)["id"]
    wait_job(server, env["alice"], job_id)
    r = call(server, "GET", f"/exports/{job_id}{slash}", env["alice"])
    assert r.status_code == 200, r.text
    payload = r.json()
    assert payload["success"] is True
    assert payload["message"] == "Export job retrieved successfully"
    job = payload["data"]
    assert set(job) >= JOB_KEYS, JOB_KEYS - set(job)
    assert job["id"] == job_id and job["status"] == "completed" and job["progress"] == 100
    assert job["datasource"]["id"] == env["ds"] and job["datasource"]["table_id"] == env["table_id"]
    assert job["filters"]["columns"] == ["col1", "col2", "col3"] and job["filters"]["limit"] == 1000
    assert job["filters"]["where_conditions"] == [{"column": "col1", "operator": ">", "value": 100}]
    assert job["owner"] == "alice"
    assert job["template"] is None and job["error_message"] is None and job["file_expired"] is False
    assert job["file_name"].endswith(".csv")
    assert job["content_type"] == "text/csv; charset=utf-8"
    for key in ("created_at", "started_at", "completed_at", "download_url_expires_at"):
        assert ISO_Z.match(job[key]), (key, job[key])
    assert f"/exports/{job_id}/download" in job["download_url"]
    assert "expires=" in job["download_url"] and "signature=" in job["download_url"]


@SLASHES
def test_seed_download_export_file(server, env, slash) -> None:  # type: ignore[no-untyped-def]
    body = {"datasource": env["ds"], "format": "csv", "filters": SEED_CREATE_FILTERS}
    job_id = create_export(server, env["alice"], body)["id"]
    job = wait_job(server, env["alice"], job_id)
    r = call(server, "GET", f"/exports/{job_id}/download{slash}", env["alice"])
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Content-Disposition"] == f'attachment; filename="{job["file_name"]}"'
    assert len(r.content) == job["file_size"]
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8"))))
    assert rows[0] == ["col1", "col2", "col3"]
    assert sorted(rows[1:], key=lambda row: int(row[0])) == expected_seed_rows()


@SLASHES
def test_seed_delete_export_job(server, env, slash) -> None:  # type: ignore[no-untyped-def]
    job_id = create_export(server, env["alice"], {"datasource": env["ds"], "format": "csv"})["id"]
    wait_job(server, env["alice"], job_id)
    r = call(server, "DELETE", f"/exports/{job_id}{slash}", env["alice"])
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "message": "Export job deleted successfully", "data": None}
    gone = call(server, "GET", f"/exports/{job_id}/", env["alice"])
    assert gone.status_code == 404 and gone.json() == {"success": False, "error": "Export job not found"}
    again = call(server, "GET", f"/exports/{job_id}/download/", env["alice"])
    assert again.status_code == 404


def test_finished_jobs_cannot_be_cancelled_or_retried(server, env) -> None:  # type: ignore[no-untyped-def]
    job_id = create_export(server, env["alice"], {"datasource": env["ds"], "format": "csv"})["id"]
    assert wait_job(server, env["alice"], job_id)["status"] == "completed"
    for action in ("cancel", "retry"):
        r = call(server, "POST", f"/exports/{job_id}/{action}/", env["alice"])
        assert r.status_code == 409, (action, r.text)
        assert r.json()["success"] is False and isinstance(r.json()["error"], str)
    assert get_job(server, env["alice"], job_id)["status"] == "completed"


# -- templates -------------------------------------------------------------------------------------


@SLASHES
def test_seed_create_export_template(server, env, slash) -> None:  # type: ignore[no-untyped-def]
    r = call(server, "POST", f"/export-templates{slash}", env["alice"], json=SEED_TEMPLATE)
    assert r.status_code == 201, r.text
    payload = r.json()
    assert payload["success"] is True
    assert payload["message"] == "Export template created successfully"
    data = payload["data"]
    assert uuid.UUID(data["id"])
    assert data["name"] == "CSV Full Export Template"
    assert data["template_type"] == "user"
    assert data["is_active"] is True
    assert data["usage_count"] == 0
    assert ISO_Z.match(data["created_at"]), data["created_at"]
    detail = call(server, "GET", f"/export-templates/{data['id']}{slash}", env["alice"])
    assert detail.status_code == 200, detail.text
    assert detail.json()["message"] == "Export template retrieved successfully"
    tpl = detail.json()["data"]
    assert tpl["description"] == SEED_TEMPLATE["description"] and tpl["format"] == "csv"
    assert tpl["configuration"]["options"] == {"delimiter": ",", "encoding": "utf-8"}
    assert tpl["owner"] == "alice"


@SLASHES
def test_seed_list_export_templates(server, env, slash) -> None:  # type: ignore[no-untyped-def]
    token = fresh_owner(server)
    mine = call(server, "POST", "/export-templates/", token, json=SEED_TEMPLATE).json()["data"]["id"]
    other_format = {"name": "json one", "configuration": {"format": "json"}}
    assert call(server, "POST", "/export-templates/", token, json=other_format).status_code == 201
    shared = {**SEED_TEMPLATE, "name": "shared one", "template_type": "shared"}
    assert call(server, "POST", "/export-templates/", token, json=shared).status_code == 201
    r = call(server, "GET", f"/export-templates{slash}?type=user&format=csv", token)
    assert r.status_code == 200, r.text
    payload = r.json()
    assert payload["success"] is True
    assert payload["message"] == "Export templates retrieved successfully"
    assert payload["data"]["total_count"] == 1
    (tpl,) = payload["data"]["templates"]
    assert tpl["id"] == mine and tpl["name"] == "CSV Full Export Template"
    assert tpl["template_type"] == "user" and tpl["format"] == "csv"
    assert tpl["usage_count"] == 0
    assert tpl["has_filters"] is True


def test_using_a_template_counts_and_applies_its_configuration(server, env) -> None:  # type: ignore[no-untyped-def]
    tpl = call(server, "POST", "/export-templates/", env["alice"], json=SEED_TEMPLATE).json()["data"]
    job = create_export(server, env["alice"], {"datasource": env["ds"], "template": tpl["id"]})
    assert job["format"] == "csv"
    assert job["template"] == {"id": tpl["id"], "name": "CSV Full Export Template"}
    done = wait_job(server, env["alice"], job["id"])
    assert done["status"] == "completed" and done["row_count"] == len(ROWS)
    after = call(server, "GET", f"/export-templates/{tpl['id']}/", env["alice"]).json()["data"]
    assert after["usage_count"] == 1


@pytest.mark.parametrize("method", ["PUT", "PUT-noslash"])
def test_seed_update_export_template(server, env, method) -> None:  # type: ignore[no-untyped-def]
    tpl_id = call(server, "POST", "/export-templates/", env["alice"], json=SEED_TEMPLATE).json()["data"]["id"]
    slash = "" if method.endswith("noslash") else "/"
    r = call(server, "PUT", f"/export-templates/{tpl_id}{slash}", env["alice"], json=SEED_TEMPLATE_UPDATE)
    assert r.status_code == 200, r.text
    payload = r.json()
    assert payload["success"] is True
    assert payload["message"] == "Export template updated successfully"
    data = payload["data"]
    assert data["id"] == tpl_id
    assert data["name"] == "Updated CSV Template" and data["description"] == "Updated description"
    assert data["configuration"]["filters"]["columns"] == ["col1", "col2"]
    assert data["configuration"]["filters"]["limit"] == 5000
    stored = call(server, "GET", f"/export-templates/{tpl_id}/", env["alice"]).json()["data"]
    assert stored["name"] == "Updated CSV Template"
    assert stored["configuration"]["filters"] == {"columns": ["col1", "col2"], "limit": 5000}


def test_patch_updates_only_the_given_fields(server, env) -> None:  # type: ignore[no-untyped-def]
    tpl_id = call(server, "POST", "/export-templates/", env["alice"], json=SEED_TEMPLATE).json()["data"]["id"]
    r = call(server, "PATCH", f"/export-templates/{tpl_id}", env["alice"], json={"description": "patched"})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["description"] == "patched" and data["name"] == "CSV Full Export Template"
    assert data["configuration"]["options"] == {"delimiter": ",", "encoding": "utf-8"}


@SLASHES
def test_seed_delete_export_template(server, env, slash) -> None:  # type: ignore[no-untyped-def]
    tpl_id = call(server, "POST", "/export-templates/", env["alice"], json=SEED_TEMPLATE).json()["data"]["id"]
    r = call(server, "DELETE", f"/export-templates/{tpl_id}{slash}", env["alice"])
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "message": "Export template deleted successfully", "data": None}
    gone = call(server, "GET", f"/export-templates/{tpl_id}/", env["alice"])
    assert gone.status_code == 404
    assert gone.json() == {"success": False, "error": "Export template not found"}


# -- error examples --------------------------------------------------------------------------------


@SLASHES
def test_seed_validation_error_invalid_format(server, env, slash) -> None:  # type: ignore[no-untyped-def]
    before = call(server, "GET", "/exports/", env["alice"]).json()["data"]["pagination"]["total_count"]
    r = call(
        server, "POST", f"/exports{slash}", env["alice"], json={"datasource": env["ds"], "format": "xml"}
    )
    assert r.status_code == 400, r.text
    assert r.json() == {
        "success": False,
        "error": {"format": "Invalid format. Must be one of: csv, json, parquet, excel"},
    }
    after = call(server, "GET", "/exports/", env["alice"]).json()["data"]["pagination"]["total_count"]
    assert after == before


@SLASHES
def test_seed_permission_error_on_someone_elses_shared_template(server, env, slash) -> None:  # type: ignore[no-untyped-def]
    shared = {**SEED_TEMPLATE, "name": f"bob shared {slash or 'none'}", "template_type": "shared"}
    r = call(server, "POST", "/export-templates/", env["bob"], json=shared)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["template_type"] == "shared"
    tpl_id = r.json()["data"]["id"]
    expected = {"success": False, "error": PERMISSION_MESSAGE}
    put = call(server, "PUT", f"/export-templates/{tpl_id}{slash}", env["alice"], json=SEED_TEMPLATE_UPDATE)
    assert put.status_code == 403 and put.json() == expected, put.text
    delete = call(server, "DELETE", f"/export-templates/{tpl_id}{slash}", env["alice"])
    assert delete.status_code == 403 and delete.json() == expected, delete.text
    still = call(server, "GET", f"/export-templates/{tpl_id}/", env["alice"])
    assert still.status_code == 200 and still.json()["data"]["name"] == shared["name"]


@SLASHES
def test_seed_not_found_error(server, env, slash) -> None:  # type: ignore[no-untyped-def]
    missing = str(uuid.uuid4())
    expected = {"success": False, "error": "Export job not found"}
    for method, path in (
        ("GET", f"/exports/{missing}{slash}"),
        ("DELETE", f"/exports/{missing}{slash}"),
        ("POST", f"/exports/{missing}/cancel{slash}"),
        ("POST", f"/exports/{missing}/retry{slash}"),
        ("GET", f"/exports/{missing}/download{slash}"),
    ):
        r = call(server, method, path, env["alice"])
        assert r.status_code == 404 and r.json() == expected, (method, path, r.status_code, r.text)


# -- jobs held in 'processing' by the failpoint ----------------------------------------------------


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with one job worker, held by the failpoint inside export job A ('processing')."""
    running = start_server(
        tmp_path_factory.mktemp("held"),
        workers=1,
        failpoints=f"exports.run.before_write=pause({HOLD_SECONDS})",
    )
    try:
        table_id = make_table(running, "main", "my_data", ROWS)
        ds = datasource_id(running, table_id)
        token = make_token(running, "alice", "in.c-main")
        doomed = datasource_id(running, make_table(running, "main", "doomed", ROWS[:3]))
        job_a = create_export(running, token, {"datasource": ds, "format": "csv"})["id"]
        wait_job(running, token, job_a, until=("processing", *TERMINAL))
        # Queued behind A, on a table dropped before the job can run: it will fail.
        job_x = create_export(running, token, {"datasource": doomed, "format": "csv"})["id"]
        r = requests.delete(f"{running.url}/v2/storage/tables/in.c-main.doomed", headers=running.headers())
        assert r.status_code == 204, r.text
        yield {"server": running, "ds": ds, "token": token, "a": job_a, "x": job_x}
        call(running, "POST", f"/exports/{job_a}/cancel/", token)
    finally:
        running.stop()


def _held_pending_job(held: dict[str, Any]) -> str:
    """A job queued behind A: the only worker is held, so it stays 'pending'."""
    job = create_export(held["server"], held["token"], {"datasource": held["ds"], "format": "csv"})
    assert job["status"] == "pending"
    return job["id"]


@SLASHES
def test_seed_conflict_deleting_a_processing_job(held, slash) -> None:  # type: ignore[no-untyped-def]
    server, token, job_a = held["server"], held["token"], held["a"]
    assert get_job(server, token, job_a)["status"] == "processing", "the failpoint should hold job A"
    r = call(server, "DELETE", f"/exports/{job_a}{slash}", token)
    assert r.status_code == 409, r.text
    assert r.json() == {
        "success": False,
        "error": "Cannot delete job that is currently processing. Cancel it first.",
    }
    assert get_job(server, token, job_a)["status"] == "processing"


def test_download_of_an_unfinished_job_is_409(held) -> None:  # type: ignore[no-untyped-def]
    server, token = held["server"], held["token"]
    for job_id in (held["a"], _held_pending_job(held)):
        r = call(server, "GET", f"/exports/{job_id}/download/", token)
        assert r.status_code == 409, r.text
        assert r.json()["success"] is False


@SLASHES
def test_seed_cancel_export_job(held, slash) -> None:  # type: ignore[no-untyped-def]
    server, token = held["server"], held["token"]
    job_id = _held_pending_job(held)
    r = call(server, "POST", f"/exports/{job_id}/cancel{slash}", token)
    assert r.status_code == 200, r.text
    payload = r.json()
    assert payload["success"] is True
    assert payload["message"] == "Export job cancelled successfully"
    assert payload["data"]["id"] == job_id
    assert payload["data"]["status"] == "cancelled"
    assert ISO_Z.match(payload["data"]["completed_at"]), payload["data"]
    assert get_job(server, token, job_id)["status"] == "cancelled"
    again = call(server, "POST", f"/exports/{job_id}/cancel{slash}", token)
    assert again.status_code == 409, again.text


@SLASHES
def test_seed_retry_cancelled_export_job(held, slash) -> None:  # type: ignore[no-untyped-def]
    server, token = held["server"], held["token"]
    job_id = _held_pending_job(held)
    assert call(server, "POST", f"/exports/{job_id}/cancel/", token).status_code == 200
    r = call(server, "POST", f"/exports/{job_id}/retry{slash}", token)
    assert r.status_code == 200, r.text
    payload = r.json()
    assert payload["success"] is True
    assert payload["message"] == "Export job queued for retry"
    assert payload["data"]["id"] == job_id and payload["data"]["status"] == "pending"
    assert payload["data"]["completed_at"] is None
    not_again = call(server, "POST", f"/exports/{job_id}/retry{slash}", token)
    assert not_again.status_code == 409, not_again.text  # pending is neither failed nor cancelled
    # Cancel it again so that the single worker has nothing queued once A is released.
    assert call(server, "POST", f"/exports/{job_id}/cancel/", token).status_code == 200


def test_seed_cancel_a_processing_job(held) -> None:  # type: ignore[no-untyped-def]
    server, token, job_a = held["server"], held["token"], held["a"]
    assert get_job(server, token, job_a)["status"] == "processing"
    r = call(server, "POST", f"/exports/{job_a}/cancel/", token)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["status"] == "cancelled" and ISO_Z.match(r.json()["data"]["completed_at"])
    job = get_job(server, token, job_a)
    assert job["status"] == "cancelled" and job["download_url"] is None
    deleted = call(server, "DELETE", f"/exports/{job_a}/", token)
    assert deleted.status_code == 200, deleted.text


def test_seed_retry_failed_export_job(held) -> None:  # type: ignore[no-untyped-def]
    server, token, job_x = held["server"], held["token"], held["x"]
    failed = wait_job(server, token, job_x)  # runs once A is released (cancelled above)
    assert failed["status"] == "failed", failed
    assert isinstance(failed["error_message"], str) and failed["error_message"]
    assert failed["download_url"] is None and ISO_Z.match(failed["completed_at"])
    listed = call(server, "GET", "/exports/", token, params={"status": "failed"}).json()["data"]
    assert [j["id"] for j in listed["export_jobs"]] == [job_x]
    r = call(server, "POST", f"/exports/{job_x}/retry/", token)
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "Export job queued for retry"
    assert r.json()["data"]["id"] == job_x and r.json()["data"]["status"] == "pending"
    assert r.json()["data"]["error_message"] is None
    again = wait_job(server, token, job_x)
    assert again["status"] == "failed" and again["error_message"]  # the table is still gone
