"""The durable job queue and worker pools, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import update

from entrepot.config import Settings
from entrepot.core.catalog import Job
from entrepot.core.clock import utcnow
from entrepot.core.errors import Conflict, EntrepotError, InvalidInput, NotFound
from entrepot.core.jobs import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, JobContext
from entrepot.core.projects import create_project
from entrepot.core.services import Services


@pytest.fixture
def services(tmp_path, catalog_url):
    settings = Settings(
        data_dir=tmp_path,
        catalog_url=catalog_url,
        job_lease_seconds=2,
        job_heartbeat_seconds=0.5,
        job_poll_interval=0.05,
    )
    svc = Services.open(settings)
    yield svc
    svc.close()


@pytest.fixture
def project_id(services):
    return create_project(services.catalog, "jobs").project.id


def finish(services, job_id, timeout=15.0):
    job = services.jobs.wait(job_id, timeout)
    assert job.status in (SUCCEEDED, FAILED, CANCELLED), f"job {job_id} still {job.status}"
    return job


def test_submitted_job_runs_and_records_results(services, project_id):
    services.start_workers(1)
    job = services.jobs.submit(project_id, "system.noop", {"x": 1})
    assert job.status == QUEUED
    done = finish(services, job.id)
    assert done.status == SUCCEEDED
    assert done.progress == 100
    assert done.attempt == 1
    assert done.results["worker"] == done.worker_id
    assert done.started_at is not None and done.finished_at >= done.started_at


def test_claim_is_exactly_once_with_four_workers_and_200_jobs(services, project_id):
    seen: Counter[int] = Counter()
    lock = threading.Lock()

    def count(ctx: JobContext):
        with lock:
            seen[ctx.job.id] += 1
        return {"worker": ctx.worker_id}

    services.registry.register("test.count", count)
    ids = [services.jobs.submit(project_id, "test.count").id for _ in range(200)]
    pools = [services.start_workers(1, name=f"w{i}") for i in range(4)]  # four independent pools
    try:
        jobs = [finish(services, i, timeout=60) for i in ids]
    finally:
        for pool in pools:
            pool.stop()
        services.workers = None
    assert all(j.status == SUCCEEDED and j.attempt == 1 for j in jobs)
    assert set(seen) == set(ids)
    assert max(seen.values()) == 1
    assert len({j.worker_id for j in jobs}) > 1  # the work was actually shared


def test_workers_wake_on_submit_instead_of_polling(tmp_path, catalog_url):
    settings = Settings(data_dir=tmp_path, catalog_url=catalog_url, job_poll_interval=30)
    svc = Services.open(settings)
    try:
        pid = create_project(svc.catalog, "wake").project.id
        svc.start_workers(1)
        time.sleep(0.2)  # the worker is now idle, waiting up to 30 s
        start = time.monotonic()
        job = svc.jobs.submit(pid, "system.noop")
        done = svc.jobs.wait(job.id, 10)
        assert done.status == SUCCEEDED
        assert time.monotonic() - start < 5, "the idle worker was not woken by the submit"
    finally:
        svc.close()


def test_an_idle_sqlite_worker_sees_another_processs_submission_without_polling_claims(tmp_path):
    """Another process's submit wakes an idle worker through the SQLite catalog's change marker
    (a stat of its files), long before the idle claim interval (30 s here). PostgreSQL's workers
    are woken by NOTIFY."""
    catalog_url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    settings = Settings(
        data_dir=tmp_path, catalog_url=catalog_url, job_poll_interval=0.05, job_idle_claim_interval=30
    )
    worker_side, submitter_side = Services.open(settings), Services.open(settings)  # two "processes"
    try:
        pid = create_project(submitter_side.catalog, "marker").project.id
        worker_side.start_workers(1)
        claims = Counter[str]()
        claim = worker_side.jobs.claim

        def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
            claims["claim"] += 1
            return claim(*args, **kwargs)

        worker_side.jobs.claim = counted  # type: ignore[method-assign]
        start = time.monotonic()
        job = submitter_side.jobs.submit(pid, "system.noop")
        done = submitter_side.jobs.wait(job.id, 10)
        assert done.status == SUCCEEDED
        assert time.monotonic() - start < 5, "the idle worker did not see the other process's submit"
        assert claims["claim"] <= 5  # woken by the commit, not by a claim every poll interval
    finally:
        worker_side.close()
        submitter_side.close()


def test_change_marker_moves_with_every_commit(tmp_path):
    from entrepot.core.catalog import Catalog

    catalog = Catalog(f"sqlite:///{tmp_path / 'c.sqlite'}")
    catalog.migrate()
    other = Catalog(f"sqlite:///{tmp_path / 'c.sqlite'}")
    before = catalog.change_marker()
    assert before is not None and catalog.change_marker() == before  # reading changes nothing
    create_project(other, "moved")  # a commit through another engine, as another process makes
    assert catalog.change_marker() != before
    assert Catalog("sqlite://").change_marker() is None


def test_handler_error_fails_the_job_with_its_message(services, project_id):
    services.start_workers(1)
    job = services.jobs.submit(project_id, "system.fail", {"message": "column x is missing"})
    done = finish(services, job.id)
    assert done.status == FAILED
    assert done.error["message"] == "column x is missing"
    assert done.error["code"] == "job.failedOnPurpose"
    assert done.error["exceptionId"]
    assert done.results is None


def test_unexpected_exception_fails_the_job_without_a_traceback(services, project_id):
    def boom(ctx):
        raise KeyError("secret internals")

    services.registry.register("test.boom", boom)
    services.start_workers(1)
    done = finish(services, services.jobs.submit(project_id, "test.boom").id)
    assert done.status == FAILED
    assert done.error["code"] == "internal"
    assert done.error["exceptionId"] in done.error["message"]
    assert "Traceback" not in done.error["message"] and "secret internals" not in done.error["message"]


def test_progress_is_reported_while_running(services, project_id):
    services.start_workers(1)
    job = services.jobs.submit(project_id, "system.sleep", {"seconds": 1.5})
    seen = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        current = services.jobs.get(job.id)
        seen.add(current.progress)
        if current.status == SUCCEEDED:
            break
        time.sleep(0.05)
    assert any(0 < p < 100 for p in seen), seen
    assert services.jobs.get(job.id).progress == 100


def test_cancelling_a_queued_job_cancels_it_at_once(services, project_id):
    job = services.jobs.submit(project_id, "system.noop")  # no workers yet
    cancelled = services.jobs.cancel(job.id)
    assert cancelled.status == CANCELLED
    services.start_workers(1)
    time.sleep(0.3)
    assert services.jobs.get(job.id).status == CANCELLED


def test_cancelling_a_running_job_interrupts_it(services, project_id):
    services.start_workers(1)
    job = services.jobs.submit(project_id, "system.sleep", {"seconds": 60})
    deadline = time.monotonic() + 10
    while services.jobs.get(job.id).status != RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    started = time.monotonic()
    services.jobs.cancel(job.id)
    done = finish(services, job.id, timeout=10)
    assert done.status == CANCELLED
    assert time.monotonic() - started < 5
    assert done.error["code"] == "job.cancelled"


def test_cancel_callbacks_run_for_engine_interrupts(services, project_id):
    interrupted = threading.Event()

    def waits(ctx: JobContext):
        ctx.on_cancel(interrupted.set)
        interrupted.wait(30)
        ctx.check_cancelled()

    services.registry.register("test.waits", waits)
    services.start_workers(1)
    job = services.jobs.submit(project_id, "test.waits")
    while services.jobs.get(job.id).status != RUNNING:
        time.sleep(0.02)
    services.jobs.cancel(job.id)
    assert interrupted.wait(5)
    assert finish(services, job.id).status == CANCELLED


def test_cancelling_a_finished_job_is_a_conflict(services, project_id):
    services.start_workers(1)
    job = services.jobs.submit(project_id, "system.noop")
    finish(services, job.id)
    with pytest.raises(Conflict, match="already finished"):
        services.jobs.cancel(job.id)


def test_expired_lease_requeues_the_job_and_fences_the_old_worker(services, project_id):
    job = services.jobs.submit(project_id, "system.noop")
    stale = services.jobs.claim("dead-worker")
    assert stale is not None and stale.id == job.id and stale.attempt == 1
    with services.catalog.session() as s:
        s.execute(
            update(Job).where(Job.id == job.id).values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    assert services.jobs.recover_expired() == [job.id]
    assert services.jobs.get(job.id).status == QUEUED
    fresh = services.jobs.claim("live-worker")
    assert fresh.attempt == 2
    # the stale worker comes back to life: its writes are fenced off
    assert services.jobs.succeed(stale, {"from": "stale"}) is False
    assert services.jobs.heartbeat(stale).lost is True
    assert services.jobs.succeed(fresh, {"from": "fresh"}) is True
    assert services.jobs.get(job.id).results == {"from": "fresh"}


def test_job_whose_worker_keeps_dying_fails_after_max_attempts(services, project_id):
    job = services.jobs.submit(project_id, "system.noop", max_attempts=2)
    for attempt in (1, 2):
        claimed = services.jobs.claim(f"dies-{attempt}")
        assert claimed.attempt == attempt
        with services.catalog.session() as s:
            s.execute(
                update(Job).where(Job.id == job.id).values(lease_expires_at=utcnow() - timedelta(seconds=1))
            )
        services.jobs.recover_expired()
    final = services.jobs.get(job.id)
    assert final.status == FAILED
    assert final.error["code"] == "job.workerLost"
    assert "attempt 2 of 2" in final.error["message"]


def test_heartbeat_keeps_a_long_job_alive_beyond_its_lease(services, project_id):
    services.start_workers(1)
    job = services.jobs.submit(project_id, "system.sleep", {"seconds": 4})  # lease is 2 s
    done = finish(services, job.id)
    assert done.status == SUCCEEDED and done.attempt == 1


def test_workers_leave_unknown_kinds_queued(services, project_id):
    services.start_workers(1)
    job = services.jobs.submit(project_id, "future.kind")
    marker = services.jobs.submit(project_id, "system.noop")
    finish(services, marker.id)
    assert services.jobs.get(job.id).status == QUEUED


def test_jobs_are_listed_newest_first_per_project(services, project_id):
    other = create_project(services.catalog, "other-project").project.id
    ids = [services.jobs.submit(project_id, "system.noop").id for _ in range(3)]
    services.jobs.submit(other, "system.noop")
    listed = services.jobs.list(project_id)
    assert [j.id for j in listed] == sorted(ids, reverse=True)
    assert [j.id for j in services.jobs.list(project_id, limit=1, offset=1)] == [sorted(ids)[1]]
    with pytest.raises(NotFound):
        services.jobs.get(ids[0], project_id=other)
    with pytest.raises(InvalidInput):
        services.jobs.list(project_id, limit=0)


def test_catalog_outage_is_reported_as_unavailable(tmp_path):
    from entrepot.core.catalog import Catalog

    catalog = Catalog("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(EntrepotError) as info:
        catalog.ping()
    assert info.value.code == "catalog.unavailable"


def test_jobs_on_one_subject_run_one_after_another_in_submission_order(services, project_id, tmp_path):
    order: list[str] = []
    release = threading.Event()

    def slow(ctx):  # type: ignore[no-untyped-def]
        release.wait(20)
        order.append(f"slow-{ctx.params['subject']}")

    def quick(ctx):  # type: ignore[no-untyped-def]
        order.append(f"quick-{ctx.params['subject']}")

    services.registry.register("test.slow", slow)
    services.registry.register("test.quick", quick)
    services.start_workers(4)
    a1 = services.jobs.submit(project_id, "test.slow", {"subject": "a"}, subject="in.c-x.a")
    a2 = services.jobs.submit(project_id, "test.quick", {"subject": "a"}, subject="in.c-x.a")
    b1 = services.jobs.submit(project_id, "test.quick", {"subject": "b"}, subject="in.c-x.b")
    try:
        assert services.jobs.wait(b1.id, timeout=20).status == SUCCEEDED  # other subjects are not held up
        assert services.jobs.get(a2.id).status == QUEUED  # waits for the earlier job on its subject
    finally:
        release.set()
    for job in (a1, a2):
        assert services.jobs.wait(job.id, timeout=20).status == SUCCEEDED
    assert order == ["quick-b", "slow-a", "quick-a"]
