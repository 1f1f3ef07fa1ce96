"""Job visibility follows permissions, on every face that shows jobs (core/jobs/visibility).

A token sees its own jobs and the jobs on what it may read; master tokens see every job of
their project. Anything else is 404 (CARTO: "Job with id … not found") and absent from listings,
so no download URL or SQL text leaks.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from support.exports_api import create_bucket, create_export, datasource_id, make_table, make_token
from support.exports_api import wait_job as wait_export
from support.jobs import wait_kbc_job
from support.server import RunningServer

SECRET_SQL = "select 'batch-secret-7f3a' as marker"


def _token_id(secret: str) -> int:
    return int(secret.split("-")[1])


def _jobs(server: RunningServer, token: str, **params: Any) -> list[dict[str, Any]]:
    r = requests.get(f"{server.url}/v2/storage/jobs", headers=server.headers(token), params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _job(server: RunningServer, token: str, job_id: int, **params: Any) -> requests.Response:
    return requests.get(
        f"{server.url}/v2/storage/jobs/{job_id}", headers=server.headers(token), params=params
    )


def _finished_export(server: RunningServer, table_id: str, token: str | None = None) -> dict[str, Any]:
    r = requests.post(
        f"{server.url}/v2/storage/tables/{table_id}/export-async", headers=server.headers(token), data={}
    )
    job = wait_kbc_job(server, r, token=token)
    assert job["status"] == "success", job
    assert job["results"]["file"]["url"]
    return job


def _carto(server: RunningServer, job_id: str = "") -> str:
    return f"{server.url}/user/default/api/v2/sql/job{'/' + job_id if job_id else ''}"


def _assert_not_found(r: requests.Response, *leaks: str) -> None:
    assert r.status_code == 404, (r.status_code, r.text)
    assert r.json()["code"] == "storage.jobs.notFound"
    for leak in leaks:
        assert leak not in r.text


@pytest.fixture(scope="module")
def env(server: RunningServer) -> dict[str, Any]:
    for name in ("vis", "hid"):
        create_bucket(server, name)
        make_table(server, f"in.c-{name}", "t", ["id", "v"], [("1", f"{name}-row")])
    hidden = _finished_export(server, "in.c-hid.t")
    shown = _finished_export(server, "in.c-vis.t")
    r = requests.post(_carto(server), json={"query": SECRET_SQL, "api_key": server.token})
    assert r.status_code == 201, r.text
    return {
        "hidden": hidden,
        "shown": shown,
        "batch": r.json()["job_id"],
        "nobody": server.token_for(description="no permissions"),
        "reader": server.token_for(description="reads in.c-vis", bucket_permissions={"in.c-vis": "read"}),
    }


def test_a_token_without_permissions_cannot_list_or_read_the_masters_export(server, env):
    nobody, hidden = env["nobody"], env["hidden"]
    url = hidden["results"]["file"]["url"]
    listed = _jobs(server, nobody)
    assert hidden["id"] not in {j["id"] for j in listed}
    assert url not in str(listed)
    _assert_not_found(_job(server, nobody, hidden["id"]), url)
    _assert_not_found(_job(server, nobody, hidden["id"], wait=1), url)  # the long poll too
    r = requests.post(f"{server.url}/v2/storage/jobs/{hidden['id']}/cancel", headers=server.headers(nobody))
    _assert_not_found(r, url)
    # the same answer as a job that does not exist
    missing = _job(server, nobody, 987654321)
    assert missing.status_code == 404 and missing.json()["code"] == "storage.jobs.notFound"


def test_a_bucket_reader_sees_jobs_on_its_buckets_tables_only(server, env):
    reader, hidden, shown = env["reader"], env["hidden"], env["shown"]
    ids = {j["id"] for j in _jobs(server, reader)}
    assert shown["id"] in ids and hidden["id"] not in ids
    r = _job(server, reader, shown["id"])
    assert r.status_code == 200 and r.json()["results"]["file"]["url"] == shown["results"]["file"]["url"]
    _assert_not_found(_job(server, reader, hidden["id"]), hidden["results"]["file"]["url"])
    # filtered in the catalog: a one-job page is the newest visible job, not an empty page
    newest = max(ids)
    assert [j["id"] for j in _jobs(server, reader, limit=1)] == [newest]


def test_a_token_sees_its_own_jobs(server, env):
    reader, nobody = env["reader"], env["nobody"]
    own = _finished_export(server, "in.c-vis.t", reader)
    assert own["id"] in {j["id"] for j in _jobs(server, reader)}
    job = server.services.jobs.submit(server.project_id, "system.noop", {}, token_id=_token_id(nobody))
    server.services.jobs.wait(job.id, 10)
    assert job.id in {j["id"] for j in _jobs(server, nobody)}
    assert _job(server, nobody, job.id).status_code == 200
    _assert_not_found(_job(server, reader, job.id))  # someone else's job without a readable subject
    assert job.id not in {j["id"] for j in _jobs(server, reader)}


def test_a_batch_job_is_not_found_for_another_non_master_token(server, env):
    batch, reader = env["batch"], env["reader"]
    marker = "batch-secret-7f3a"
    for method in ("GET", "DELETE"):
        r = requests.request(method, _carto(server, batch), params={"api_key": reader})
        assert r.status_code == 400 and "not found" in r.text, (method, r.status_code, r.text)
        assert marker not in r.text
        unknown = requests.request(method, _carto(server, "987654321"), params={"api_key": reader})
        assert unknown.status_code == r.status_code  # indistinguishable from a job that does not exist
    r = requests.put(_carto(server, batch), json={"query": "select 2", "api_key": reader})
    assert r.status_code == 400 and "not found" in r.text and marker not in r.text
    # nor through the Keboola face, where its params would show the SQL
    _assert_not_found(_job(server, reader, int(batch)), marker)
    assert marker not in str(_jobs(server, reader)) and marker not in str(_jobs(server, env["nobody"]))
    # the master reads it
    r = requests.get(_carto(server, batch), params={"api_key": server.token})
    assert r.status_code == 200 and marker in r.text


def test_the_master_sees_every_job(server, env):
    own = server.services.jobs.submit(server.project_id, "system.noop", {}, token_id=_token_id(env["nobody"]))
    ids = {j["id"] for j in _jobs(server, server.token, limit=1000)}
    assert {env["hidden"]["id"], env["shown"]["id"], int(env["batch"]), own.id} <= ids
    for job_id in (env["hidden"]["id"], int(env["batch"]), own.id):
        assert _job(server, server.token, job_id).status_code == 200


def test_cancel_needs_visibility_and_then_the_cancel_rule(server, env):
    # a kind no worker knows stays queued: a job on in.c-vis the reader may see but not cancel
    job = server.services.jobs.submit(
        server.project_id,
        "tables.visibilityProbe",
        {},
        token_id=_token_id(server.token),
        subject="in.c-vis.ghost",
    )
    try:
        assert _job(server, env["reader"], job.id).status_code == 200
        cancel = f"{server.url}/v2/storage/jobs/{job.id}/cancel"
        r = requests.post(cancel, headers=server.headers(env["reader"]))
        assert r.status_code == 403, r.text
        _assert_not_found(requests.post(cancel, headers=server.headers(env["nobody"])))
        r = requests.post(cancel, headers=server.headers())
        assert r.status_code == 202 and r.json()["error"]["code"] == "storage.jobCancelled"
    finally:
        if server.services.jobs.get(job.id).status == "queued":
            server.services.jobs.cancel(job.id)


def test_export_api_jobs_follow_the_exports_owner_rule(server, env):
    alice, alice2, bob = (make_token(server, owner, "in.c-vis") for owner in ("alice", "alice", "bob"))
    export = create_export(
        server, alice, {"datasource": datasource_id(server, "in.c-vis.t"), "format": "csv"}
    )
    wait_export(server, alice, export["id"])
    subject = f"export:{export['id']}"
    job = next(
        j for j in server.services.jobs.list(server.project_id, kinds=["exports.run"]) if j.subject == subject
    )
    assert job.id in {j["id"] for j in _jobs(server, alice2)}  # the same owner: the Export API shows it too
    assert _job(server, alice2, job.id).status_code == 200
    _assert_not_found(_job(server, bob, job.id))  # bob reads the table, but the export is alice's
    assert job.id not in {j["id"] for j in _jobs(server, bob)}
    r = requests.get(f"{server.url}/data-tools/api/v1/exports/{export['id']}/", headers=server.headers(bob))
    assert r.status_code == 404
