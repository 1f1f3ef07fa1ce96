"""Export API lifecycle details: retention, token owners, retry after a dropped table, progress."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from entrepot.client import Client
from support.exports_api import API, call, create_export, datasource_id, wait_job
from support.server import RunningServer, start_server


def csv_rows(n: int) -> bytes:
    return ("id,name\n" + "".join(f"{i},n{i}\n" for i in range(n))).encode()


@pytest.fixture
def short_retention(tmp_path) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    running = start_server(tmp_path / "data", export_retention_days=2 / 86400, maintenance_interval=0.2)
    yield running
    running.stop()


def test_expired_files_are_removed_and_the_job_stays(short_retention: RunningServer):
    server = short_retention
    with Client(server.url, server.token) as client:
        table = client.tables.create(client.buckets.create("ret")["id"], "t", csv_rows(10))["id"]
    ds = datasource_id(server, table)
    r = requests.post(
        f"{server.url}{API}/exports/", json={"datasource": ds, "format": "csv"}, headers=server.headers()
    )
    export_id = r.json()["data"]["id"]
    job = wait_job(server, None, export_id, timeout=60)
    assert job["status"] == "completed" and job["file_expired"] is False and job["download_url"]
    blob_dir = server.settings.data_dir / "blobs" / "exports"
    assert any(p.is_file() for p in blob_dir.rglob("*"))
    job = wait_job(server, None, export_id, lambda j: j["file_expired"], timeout=60)
    assert job["status"] == "completed" and job["download_url"] is None and job["row_count"] == 10
    r = requests.get(f"{server.url}{API}/exports/{export_id}/download/", headers=server.headers())
    assert r.status_code == 410 and r.json()["success"] is False and "expired" in r.json()["error"]
    assert not any(p.is_file() for p in blob_dir.rglob("*"))


def test_tokens_of_one_owner_share_exports_and_templates(server: RunningServer):
    with Client(server.url, server.token) as client:
        bucket = client.buckets.create("owners")["id"]
        table = client.tables.create(bucket, "t", csv_rows(5))["id"]
        alice1 = client.tokens.create("alice laptop", bucket_permissions={bucket: "read"}, owner="alice")
        assert alice1["ownerName"] == "alice"
    alice2 = server.token_for(description="alice ci", bucket_permissions={bucket: "read"}, owner="alice")
    bob = server.token_for(description="bob", bucket_permissions={bucket: "read"})
    ds = datasource_id(server, table)
    r = requests.post(
        f"{server.url}{API}/exports/",
        json={"datasource": ds, "format": "json"},
        headers=server.headers(alice1["token"]),
    )
    assert r.status_code == 201 and r.json()["data"]["owner"] == "alice"
    export_id = r.json()["data"]["id"]
    assert wait_job(server, alice2, export_id, timeout=60)["status"] == "completed"
    r = requests.get(f"{server.url}{API}/exports/{export_id}/", headers=server.headers(bob))
    assert r.status_code == 404 and r.json() == {"success": False, "error": "Export job not found"}
    listed = requests.get(f"{server.url}{API}/exports/", headers=server.headers(bob)).json()["data"]
    assert listed["export_jobs"] == [] and listed["pagination"]["total_count"] == 0
    # a token manager that is not master cannot mint tokens for another owner
    manager = server.token_for(description="mgr", can_manage_tokens=True, owner="carol")
    r = requests.post(
        f"{server.url}/v2/storage/tokens",
        json={"description": "x", "owner": "alice"},
        headers=server.headers(manager),
    )
    assert r.status_code == 403 and "owner" in r.text
    r = requests.post(
        f"{server.url}/v2/storage/tokens",
        json={"description": "x", "owner": "bad owner!"},
        headers=server.headers(),
    )
    assert r.status_code == 400 and "owner" in r.text


def test_a_dropped_datasource_fails_the_job_with_a_message_and_retry_fails_again(server: RunningServer):
    with Client(server.url, server.token) as client:
        bucket = client.buckets.create("dropped")["id"]
        table = client.tables.create(bucket, "t", csv_rows(3))["id"]
        ds = datasource_id(server, table)
        r = requests.post(
            f"{server.url}{API}/exports/", json={"datasource": ds, "format": "csv"}, headers=server.headers()
        )
        first = wait_job(server, None, r.json()["data"]["id"], timeout=60)
        assert first["status"] == "completed"
        client.tables.delete(table)
    r = requests.post(
        f"{server.url}{API}/exports/", json={"datasource": ds, "format": "csv"}, headers=server.headers()
    )
    assert r.status_code == 404 and r.json() == {"success": False, "error": "Datasource not found"}
    # the completed export keeps its file and cannot be retried
    r = requests.post(f"{server.url}{API}/exports/{first['id']}/retry/", headers=server.headers())
    assert r.status_code == 409 and "completed" in r.json()["error"]
    assert (
        requests.get(
            f"{server.url}{API}/exports/{first['id']}/download/", headers=server.headers()
        ).status_code
        == 200
    )


def test_progress_moves_on_a_large_export(server: RunningServer):
    with Client(server.url, server.token) as client:
        bucket = client.buckets.create("progress")["id"]
        table = client.tables.create(bucket, "t", csv_rows(300_000))["id"]
    ds = datasource_id(server, table)
    r = requests.post(
        f"{server.url}{API}/exports/", json={"datasource": ds, "format": "json"}, headers=server.headers()
    )
    export_id = r.json()["data"]["id"]
    seen: list[int] = []
    job = wait_job(
        server,
        None,
        export_id,
        lambda j: seen.append(j["progress"]) or j["status"] == "completed",
        timeout=60,
    )
    assert job["row_count"] == 300_000 and job["progress"] == 100
    assert seen == sorted(seen), seen  # never goes backwards
    assert seen[0] < 100


def test_exports_and_templates_on_either_catalog(tmp_path, catalog_url):  # type: ignore[no-untyped-def]
    """Listing filters (status join, JSON error searched as text) and templates on SQLite and PostgreSQL."""
    server = start_server(tmp_path / "data", catalog_url=catalog_url)
    try:
        with Client(server.url, server.token) as client:
            data = csv_rows(20) + "20,日本\n".encode()
            table = client.tables.create(client.buckets.create("cat")["id"], "sales", data)["id"]
        ds = datasource_id(server, table)
        ok = create_export(server, server.token, {"datasource": ds, "format": "parquet"})
        bad = create_export(
            server, server.token, {"datasource": ds, "format": "csv", "options": {"encoding": "latin-1"}}
        )
        assert wait_job(server, None, ok["id"])["status"] == "completed"
        failed = wait_job(server, None, bad["id"])
        assert failed["status"] == "failed" and "cannot be written in latin-1" in failed["error_message"]
        listed = call(server, "GET", "/exports/?status=completed&search=sales&format=parquet").json()["data"]
        assert [j["id"] for j in listed["export_jobs"]] == [ok["id"]]
        assert listed["pagination"]["total_count"] == 1
        found = call(server, "GET", "/exports/?search=CANNOT BE WRITTEN").json()["data"]["export_jobs"]
        assert [j["id"] for j in found] == [bad["id"]]
        body = {"name": "Nightly", "configuration": {"format": "csv"}}
        template = call(server, "POST", "/export-templates/", json=body).json()["data"]
        assert template["template_type"] == "user" and template["usage_count"] == 0
        create_export(server, server.token, {"datasource": ds, "template": template["id"]})
        found = call(server, "GET", "/export-templates/?search=night").json()["data"]["templates"]
        assert [t["name"] for t in found] == ["Nightly"]
        systems = call(server, "GET", "/export-templates/?type=system").json()["data"]["templates"]
        assert len(systems) == 4 and {t["template_type"] for t in systems} == {"system"}
        assert call(server, "GET", f"/export-templates/{template['id']}/").json()["data"]["usage_count"] == 1
    finally:
        server.stop()
