"""Worker processes sharing one catalog: exactly-once claims, recovery after kill -9, scale-out serve.

These tests run real ``entrepot worker`` / ``entrepot serve`` subprocesses on SQLite and on
PostgreSQL. Jobs of kind ``test.record`` (tests/support/jobkinds.py) append one line per
completed execution to a file, so "exactly once" is checked on the file, not on our own
bookkeeping.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from entrepot.config import Settings
from entrepot.core.auth import TokenSpec, create_token
from entrepot.core.catalog import Job
from entrepot.core.jobs import RUNNING, SUCCEEDED
from entrepot.core.projects import create_project
from entrepot.core.services import Services
from support.jobs import poll_kbc_job
from support.server import Process, cli_env, free_port

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def shared(tmp_path, catalog_url):
    """The catalog every process of the test shares, migrated, with one project."""
    settings = Settings(data_dir=tmp_path / "data", catalog_url=catalog_url, job_lease_seconds=2)
    services = Services.open(settings)
    project = create_project(services.catalog, "acme")
    yield services, project.project.id, catalog_url
    services.close()


def _env(tmp_path: Path, catalog_url: str | None) -> dict[str, str]:
    extra = {
        "ENTREPOT_PLUGINS": '["support.jobkinds"]',
        "ENTREPOT_JOB_LEASE_SECONDS": "2",
        "ENTREPOT_JOB_HEARTBEAT_SECONDS": "0.3",
    }
    if catalog_url:
        extra["ENTREPOT_CATALOG_URL"] = catalog_url
    return cli_env(tmp_path / "data", **extra)


def _wait_for(predicate, timeout: float, what: str, procs: list[Process] = ()):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it holds: only for a state no wait answers (a job *started* in
    another process); finished jobs are awaited with ``_succeeded``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)  # nothing signals "running" across processes: re-read the shared catalog
    logs = "\n".join(p.output() for p in procs)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def _succeeded(services: Services, job_ids: list[int], timeout: float, procs: list[Process]) -> list[Job]:
    """The jobs, each waited for with ``JobQueue.wait`` until it finishes, all succeeded."""
    deadline = time.monotonic() + timeout
    done = [services.jobs.wait(job_id, timeout=max(0.0, deadline - time.monotonic())) for job_id in job_ids]
    failed = [(j.id, j.status) for j in done if j.status != SUCCEEDED]
    if failed:
        logs = "\n".join(p.output() for p in procs)
        raise AssertionError(f"jobs not succeeded in {timeout} s: {failed[:10]}\n{logs}")
    return done


def test_killed_worker_job_is_finished_by_another_worker_exactly_once(tmp_path, shared):
    services, project_id, catalog_url = shared
    out = tmp_path / "record.txt"
    env = _env(tmp_path, catalog_url)
    first = Process(["worker", "--concurrency", "1"], env, tmp_path / "first.log")
    try:
        job = services.jobs.submit(project_id, "test.record", {"path": str(out), "seconds": 3})
        running = _wait_for(
            lambda: (j := services.jobs.get(job.id)).status == RUNNING and j, 30, "the job to start", [first]
        )
        assert f"-{first.proc.pid}-" in running.worker_id
        first.kill()
    finally:
        first.stop()
    assert not out.exists()  # the killed run did not get to record anything

    second = Process(["worker", "--concurrency", "1"], env, tmp_path / "second.log")
    try:
        [done] = _succeeded(services, [job.id], 60, [second])  # recovered by the second worker
    finally:
        second.stop()
    lines = out.read_text().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{job.id} ") and f"-{second.proc.pid}-" in lines[0]
    assert done.attempt == 2
    assert f"-{second.proc.pid}-" in done.worker_id


def test_four_worker_processes_run_200_jobs_each_exactly_once(tmp_path, shared):
    services, project_id, catalog_url = shared
    out = tmp_path / "record.txt"
    jobs = [services.jobs.submit(project_id, "test.record", {"path": str(out)}) for _ in range(200)]
    env = _env(tmp_path, catalog_url)
    workers = [Process(["worker", "--concurrency", "2"], env, tmp_path / f"w{i}.log") for i in range(4)]
    try:
        _succeeded(services, [j.id for j in jobs], 120, workers)
    finally:
        for w in workers:
            w.stop()
    lines = out.read_text().splitlines()
    ids = [int(line.split()[0]) for line in lines]
    assert sorted(ids) == sorted(j.id for j in jobs)  # every job once, none twice
    pids = {line.split()[1].split("-")[-2] for line in lines}
    assert len(pids) >= 2, "the jobs should have been shared between worker processes"
    assert all(services.jobs.get(j.id).attempt == 1 for j in jobs[:20])


def test_serve_without_workers_leaves_jobs_to_entrepot_worker(tmp_path, shared):
    services, project_id, catalog_url = shared
    token = create_token(services.catalog, project_id, TokenSpec(is_master=True)).token
    out = tmp_path / "record.txt"
    env = _env(tmp_path, catalog_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = Process(["serve", "--port", str(port), "--no-workers"], env, tmp_path / "serve.log")
    worker = None
    try:
        serve.wait_http(url)
        job = services.jobs.submit(project_id, "test.record", {"path": str(out)})
        headers = {"X-StorageApi-Token": token}
        # the long poll gives the job half a second to finish: nobody runs it yet
        r = httpx.get(f"{url}/v2/storage/jobs/{job.id}", headers=headers, params={"wait": 0.5})
        assert r.status_code == 200 and r.json()["status"] == "waiting", r.text
        worker = Process(["worker"], env, tmp_path / "worker.log")
        try:
            body = poll_kbc_job(f"{url}/v2/storage", headers, job.id, timeout=30, status="success")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{serve.output()}\n{worker.output()}") from exc
        assert f"-{worker.proc.pid}-" in body["results"]["worker"]
        assert out.read_text().splitlines() == [f"{job.id} {body['results']['worker']}"]
    finally:
        serve.stop()
        if worker is not None:
            worker.stop()
