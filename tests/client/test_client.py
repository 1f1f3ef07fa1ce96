"""The SDK against a real entrepot server: tokens, jobs, errors, environment defaults."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

import entrepot
from entrepot import Client
from entrepot.client import (
    APIError,
    Conflict,
    InvalidToken,
    JobCancelled,
    JobFailed,
    JobTimeout,
    NotFound,
    PermissionDenied,
)


@pytest.fixture
def client(server) -> Iterator[Client]:
    with Client(server.url, server.token) as c:
        yield c


def _submit(server, kind: str, params: dict | None = None) -> int:
    return server.services.jobs.submit(server.project_id, kind, params or {}).id


def _cancel_quietly(client: Client, job_id: int) -> None:
    with contextlib.suppress(Conflict):
        client.jobs.cancel(job_id)


# -- tokens -------------------------------------------------------------------------------------


def test_verify_returns_the_tokens_id_and_description(client, server):
    token = client.tokens.verify()
    assert token["description"] == "Master token of default"
    assert token["id"].isdigit()
    assert token["isMasterToken"] is True
    assert token["owner"]["id"] == server.project_id


def test_invalid_token_raises_invalid_token_with_status_and_message(server):
    with Client(server.url, "not-a-real-token") as c, pytest.raises(InvalidToken) as info:
        c.tokens.verify()
    err = info.value
    assert err.status == 401
    assert err.message and "token" in err.message.lower()
    assert err.code
    assert err.exception_id
    assert err.response is not None and err.response.status_code == 401
    assert isinstance(err, APIError)


def test_token_created_by_the_sdk_can_verify_itself(client, server):
    created = client.tokens.create(
        "sdk-loader", bucket_permissions={"in.c-main": "read"}, can_manage_buckets=True, expires_in=3600
    )
    assert created["description"] == "sdk-loader"
    assert created["bucketPermissions"] == {"in.c-main": "read"}
    assert created["canManageBuckets"] is True and created["expires"] is not None
    with Client(server.url, created["token"]) as own:
        me = own.tokens.verify()
    assert me["id"] == created["id"]
    assert me["description"] == "sdk-loader"


def test_list_get_refresh_and_delete_tokens(client, server):
    created = client.tokens.create("to-rotate", space_permissions={"private": "write"})
    assert created["id"] in {t["id"] for t in client.tokens.list()}
    assert client.tokens.get(created["id"])["spacePermissions"] == {"private": "write"}
    refreshed = client.tokens.refresh(created["id"])
    assert refreshed["token"] != created["token"]
    with Client(server.url, created["token"], retries=0) as old, pytest.raises(InvalidToken):
        old.tokens.verify()
    client.tokens.delete(created["id"])
    with Client(server.url, refreshed["token"], retries=0) as gone, pytest.raises(InvalidToken):
        gone.tokens.verify()


def test_limited_token_creating_tokens_raises_permission_denied(server):
    limited = server.token_for(description="limited")
    with Client(server.url, limited) as c, pytest.raises(PermissionDenied) as info:
        c.tokens.create("not allowed")
    assert info.value.status == 403
    assert info.value.message


def test_unknown_token_id_raises_not_found(client):
    with pytest.raises(NotFound) as info:
        client.tokens.get(999_999)
    assert info.value.status == 404


# -- jobs ---------------------------------------------------------------------------------------


def test_unknown_job_raises_not_found(client):
    with pytest.raises(NotFound) as info:
        client.jobs.get(999_999)
    assert info.value.status == 404
    assert "999999" in info.value.message


def test_wait_on_noop_job_returns_the_successful_job(client, server):
    job_id = _submit(server, "system.noop")
    job = client.jobs.wait(job_id, timeout=30)
    assert job["id"] == job_id
    assert job["status"] == "success"
    assert job["progress"] == 100
    assert "worker" in job["results"]


def test_get_and_list_jobs(client, server):
    job_id = _submit(server, "system.noop")
    client.jobs.wait(job_id, timeout=30)
    assert client.jobs.get(job_id)["operationName"] == "system.noop"
    listed = client.jobs.list(status="success", limit=5)
    assert job_id in {j["id"] for j in listed}
    assert all(j["status"] == "success" for j in listed)
    assert len(client.jobs.list(limit=1)) == 1


def test_wait_on_failing_job_raises_job_failed_with_its_message(client, server):
    job_id = _submit(server, "system.fail", {"message": "boom on purpose"})
    with pytest.raises(JobFailed) as info:
        client.jobs.wait(job_id, timeout=30)
    err = info.value
    assert not isinstance(err, JobCancelled)
    assert err.message == "boom on purpose"
    assert err.code == "job.failedOnPurpose"
    assert err.job["id"] == job_id and err.job["status"] == "error"


def test_wait_reports_increasing_progress_to_the_callback(client, server):
    job_id = _submit(server, "system.sleep", {"seconds": 1.2})
    seen: list[int] = []
    statuses: list[str] = []

    def on_progress(job: dict) -> None:
        seen.append(job["progress"])
        statuses.append(job["status"])

    job = client.jobs.wait(job_id, timeout=30, on_progress=on_progress, poll_max=0.1)
    assert job["status"] == "success"
    assert seen == sorted(seen), seen
    assert seen[-1] == 100 and statuses[-1] == "success"
    assert len(set(seen)) >= 3, seen  # 0, something in between, 100


def test_cancelled_job_makes_wait_raise_job_cancelled_quickly(client, server):
    job_id = _submit(server, "system.sleep", {"seconds": 30})
    try:
        deadline = time.monotonic() + 10
        while client.jobs.get(job_id)["status"] != "processing" and time.monotonic() < deadline:
            time.sleep(0.02)
        client.jobs.cancel(job_id)
        started = time.monotonic()
        with pytest.raises(JobCancelled) as info:
            client.jobs.wait(job_id, timeout=10)
        assert time.monotonic() - started < 5
    finally:
        _cancel_quietly(client, job_id)
    assert info.value.code == "storage.jobCancelled"
    assert info.value.job["status"] == "error"


def test_cancelling_a_finished_job_raises_conflict(client, server):
    job_id = _submit(server, "system.noop")
    client.jobs.wait(job_id, timeout=30)
    with pytest.raises(Conflict) as info:
        client.jobs.cancel(job_id)
    assert info.value.status == 409


def test_wait_with_a_small_timeout_raises_job_timeout(client, server):
    job_id = _submit(server, "system.sleep", {"seconds": 30})
    try:
        started = time.monotonic()
        with pytest.raises(JobTimeout) as info:
            client.jobs.wait(job_id, timeout=0.3)
        assert time.monotonic() - started < 3
        assert info.value.job["id"] == job_id
        assert info.value.job["status"] in ("waiting", "processing")
    finally:
        _cancel_quietly(client, job_id)


# -- construction -------------------------------------------------------------------------------


def test_url_and_token_default_to_the_environment(server, monkeypatch):
    monkeypatch.setenv("ENTREPOT_URL", server.url)
    monkeypatch.setenv("ENTREPOT_TOKEN", server.token)
    with Client() as c:
        assert c.tokens.verify()["description"] == "Master token of default"


def test_explicit_arguments_win_over_the_environment(server, monkeypatch):
    monkeypatch.setenv("ENTREPOT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ENTREPOT_TOKEN", "wrong")
    with Client(server.url + "/v2/storage/", server.token) as c:
        assert c.tokens.verify()["isMasterToken"] is True


def test_missing_url_or_token_raises_a_clear_value_error(monkeypatch):
    monkeypatch.delenv("ENTREPOT_URL", raising=False)
    monkeypatch.delenv("ENTREPOT_TOKEN", raising=False)
    with pytest.raises(ValueError, match="ENTREPOT_URL"):
        Client()
    with pytest.raises(ValueError, match="ENTREPOT_TOKEN"):
        Client("http://127.0.0.1:8000")


def test_client_is_exported_lazily_from_the_package():
    from entrepot.client import Client as direct

    assert entrepot.Client is direct
    assert entrepot.__version__
