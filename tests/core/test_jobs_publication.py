"""A finished job becomes visible only with its side effects: metrics and the log line.

The checks run at the moment waiters are woken (``JobQueue.finished``), when the new status
is already committed: anyone who sees the job finished must also see what its end recorded.
"""

from __future__ import annotations

import logging
import threading

import pytest

from entrepot.config import Settings
from entrepot.core.errors import InvalidInput
from entrepot.core.jobs import FAILED, SUCCEEDED, JobContext
from entrepot.core.projects import create_project
from entrepot.core.services import Services
from entrepot.metrics import REGISTRY


@pytest.fixture
def services(tmp_path):
    svc = Services.open(Settings(data_dir=tmp_path, job_poll_interval=0.05))
    yield svc
    svc.close()


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _finished(kind: str, status: str) -> float:
    labels = {"kind": kind, "status": status}
    return REGISTRY.get_sample_value("entrepot_job_duration_seconds_count", labels) or 0.0


@pytest.mark.parametrize(("kind", "status"), [("test.visible.ok", SUCCEEDED), ("test.visible.ko", FAILED)])
def test_metrics_and_log_line_are_there_when_the_job_is_seen_finished(services, monkeypatch, kind, status):
    def handler(ctx: JobContext) -> dict[str, bool]:
        if kind.endswith("ko"):
            raise InvalidInput("no")
        return {"ok": True}

    services.registry.register(kind, handler)
    project_id = create_project(services.catalog, "visible").project.id
    lines = _Lines()
    logger = logging.getLogger("entrepot.jobs")
    logger.addHandler(lines)
    level = logger.level
    logger.setLevel(logging.INFO)
    before = _finished(kind, status)
    seen: list[tuple[float, bool]] = []
    woken = threading.Event()
    notify = services.jobs.finished.notify

    def spy() -> None:  # the finished job is committed: waiters wake up now
        seen.append((_finished(kind, status), any(f"{status} in" in m for m in lines.messages)))
        woken.set()
        notify()

    monkeypatch.setattr(services.jobs.finished, "notify", spy)
    try:
        services.start_workers(1)
        job = services.jobs.submit(project_id, kind)
        assert woken.wait(30)
        assert services.jobs.wait(job.id, 10).status == status
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    assert seen[0] == (before + 1, True)


def test_a_running_job_is_ready_before_the_heartbeat_thread_can_see_it(services):
    from entrepot.core.jobs.worker import WorkerPool

    services.registry.register("test.visible.beat", lambda ctx: {})
    project_id = create_project(services.catalog, "beat").project.id
    pool = WorkerPool(services, 1)  # not started: _execute runs in this thread
    ready: list[bool] = []

    class Running(dict):  # type: ignore[type-arg]
        def __setitem__(self, key: int, ctx: JobContext) -> None:
            # the heartbeat thread reads renewed_at of every context it finds here
            ready.append(hasattr(ctx, "renewed_at") and hasattr(ctx, "lost"))
            super().__setitem__(key, ctx)

    pool.running = Running()
    services.jobs.submit(project_id, "test.visible.beat")
    job = services.jobs.claim("w-beat", ["test.visible.beat"])
    assert job is not None
    pool._execute(job, "w-beat")
    assert ready == [True]
    assert services.jobs.get(job.id).status == SUCCEEDED
