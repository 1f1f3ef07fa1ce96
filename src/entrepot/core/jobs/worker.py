"""Workers: threads that claim jobs, run their handlers, and keep their leases alive.

A :class:`WorkerPool` runs ``count`` worker threads plus one heartbeat thread that renews
the lease of every job running in this process and relays cancellations. The same pool
runs inside ``entrepot serve`` and in a standalone ``entrepot worker`` process.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from entrepot.core.catalog import Job
from entrepot.core.errors import EntrepotError, JobCancelled
from entrepot.core.jobs.queue import NOTIFY_CHANNEL, JobQueue, new_worker_id
from entrepot.core.jobs.registry import JobContext, JobRegistry
from entrepot.core.jobs.service import JobServices
from entrepot.logs import job_log_context
from entrepot.metrics import JOB_DURATION, JOBS_FINISHED

if TYPE_CHECKING:
    pass

log = logging.getLogger("entrepot.jobs")


class WorkerServices(JobServices, Protocol):
    """What a pool needs of the services it hands to handlers (``entrepot.core.services.Services``)."""

    @property
    def registry(self) -> JobRegistry[Any]: ...


class WorkerPool:
    """Worker threads of one process."""

    def __init__(self, services: WorkerServices, count: int, *, name: str = "worker"):
        self.services = services
        self.queue: JobQueue = services.jobs
        self.registry: JobRegistry[Any] = services.registry
        self.count = count
        self.name = name
        self.stopping = threading.Event()
        self.running: dict[int, JobContext[Any]] = {}
        self._running_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._last_recovery = 0.0
        self._recovery_lock = threading.Lock()
        settings = services.settings
        self.heartbeat_every = settings.job_heartbeat_seconds
        self.tick = min(1.0, settings.job_heartbeat_seconds, settings.job_lease_seconds / 3)
        self.idle_claim_interval = settings.job_idle_claim_interval
        self.queue.add_cancel_listener(self._cancel_local)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        for i in range(self.count):
            worker_id = new_worker_id(f"{self.name}{i}")
            t = threading.Thread(
                target=self._work, args=(worker_id,), name=f"entrepot-{worker_id}", daemon=True
            )
            t.start()
            self._threads.append(t)
        if self.registry.periodic():
            sweeper = threading.Thread(target=self._maintenance, name="entrepot-maintenance", daemon=True)
            sweeper.start()
            self._threads.append(sweeper)
        hb = threading.Thread(target=self._heartbeats, name="entrepot-heartbeat", daemon=True)
        hb.start()
        self._threads.append(hb)
        if self.services.catalog.is_postgres:
            listener = threading.Thread(target=self._listen_postgres, name="entrepot-listen", daemon=True)
            listener.start()
            self._threads.append(listener)
        log.info("started %d job worker(s)", self.count)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; wait up to ``timeout`` for running jobs. Unfinished ones are recovered later."""
        self.stopping.set()
        self.queue.submitted.notify()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    # -- the loop ------------------------------------------------------------------------
    def _work(self, worker_id: str) -> None:
        while not self.stopping.is_set():
            try:
                self._maybe_recover()
                seen = self.queue.submitted.generation
                marker = self.services.catalog.change_marker()  # before the claim: no commit slips between
                job = self.queue.claim(worker_id, self.registry.kinds())
            except EntrepotError as exc:  # catalog unreachable: back off, keep the worker alive
                log.warning("worker %s cannot claim jobs: %s", worker_id, exc)
                self.stopping.wait(1.0)
                continue
            if job is None:
                self._idle(seen, marker)
                continue
            self._execute(job, worker_id)

    def _idle(self, seen: int, marker: tuple[int, ...] | None) -> None:
        """Wait for work: a wake-up from this process (a submission, PostgreSQL's NOTIFY), a
        commit by another process (the catalog's change marker: a stat of SQLite's files every
        ``job_poll_interval``), or ``job_idle_claim_interval`` at the most (a job whose retry is
        due, leases to recover). An idle worker thus runs a claim query about once a second
        instead of twenty times: the idle server's cost is a condition wait and a stat."""
        catalog = self.services.catalog
        deadline = time.monotonic() + self.idle_claim_interval
        while not self.stopping.is_set():
            if self.queue.submitted.wait(seen, self.queue.poll_interval) != seen:
                return
            if time.monotonic() >= deadline:
                return
            if marker is not None and catalog.change_marker() != marker:
                return

    def _maybe_recover(self) -> None:
        now = time.monotonic()
        interval = max(0.5, self.queue.lease.total_seconds() / 4)
        if now - self._last_recovery < interval or not self._recovery_lock.acquire(blocking=False):
            return
        try:
            self._last_recovery = now
            for job_id in self.queue.recover_expired():
                log.warning("recovered job %s whose worker stopped renewing its lease", job_id)
        finally:
            self._recovery_lock.release()

    def _execute(self, job: Job, worker_id: str) -> None:
        ctx = JobContext(job, self.queue, self.services, worker_id)
        # ready before the heartbeat thread can see it in ``running`` (it reads renewed_at)
        ctx.lost = False  # type: ignore[attr-defined]
        ctx.renewed_at = time.monotonic()  # type: ignore[attr-defined]
        with self._running_lock:
            self.running[job.id] = ctx
        handler = self.registry.get(job.kind)
        started = time.monotonic()
        status = "failed"

        def recorded_as(outcome: str) -> Callable[[], None]:
            # runs once the outcome is ours and before it is committed: whoever sees the job
            # finished (JobQueue.wait, the API's long poll) also sees its metrics and log line
            def account() -> None:
                elapsed = time.monotonic() - started
                JOB_DURATION.labels(job.kind, outcome).observe(elapsed)
                JOBS_FINISHED.labels(job.kind, outcome).inc()
                log.info("job %s (%s) %s in %.3fs", job.id, job.kind, outcome, elapsed)

            return account

        with job_log_context(job.id, job.project_id):
            try:
                if job.cancel_requested:
                    raise JobCancelled("the job was cancelled")
                if handler is None:
                    raise EntrepotError(f"no handler for job kind {job.kind!r}", code="job.unknownKind")
                # A handler that returns has done its work (its data may be committed): a cancel
                # that came too late to stop it must not report the job as not done.
                results = handler(ctx)
                status = "succeeded"
                recorded = self.queue.succeed(job, results or {}, on_recorded=recorded_as(status))
            except JobCancelled:
                status = "cancelled"
                recorded = self.queue.mark_cancelled(job, on_recorded=recorded_as(status))
            except EntrepotError as exc:
                status = "failed"
                error = _error_dict(exc.message, exc.code, exc.details)
                recorded = self.queue.fail(job, error, on_recorded=recorded_as(status))
            except Exception as exc:
                exception_id = uuid.uuid4().hex
                log.exception("job %s (%s) crashed [exceptionId=%s]", job.id, job.kind, exception_id)
                message = f"internal error while running the job ({type(exc).__name__}); exception id {exception_id}"
                status = "failed"
                error = _error_dict(message, "internal", None, exception_id)
                recorded = self.queue.fail(job, error, on_recorded=recorded_as(status))
            finally:
                with self._running_lock:
                    self.running.pop(job.id, None)
            if not recorded:
                log.warning(
                    "job %s: outcome %s discarded, the lease was lost to another worker", job.id, status
                )

    # -- maintenance -----------------------------------------------------------------------
    def _maintenance(self) -> None:
        """Run the registered periodic tasks every ``maintenance_interval`` seconds."""
        interval = self.services.settings.maintenance_interval
        while not self.stopping.wait(interval):
            for name, task in self.registry.periodic().items():
                if self.stopping.is_set():
                    return
                try:
                    task(self.services)
                except Exception:  # a failing sweep must not stop the next one
                    log.exception("maintenance task %s failed", name)

    # -- leases and cancellation -----------------------------------------------------------
    def _heartbeats(self) -> None:
        while not (self.stopping.is_set() and not self.running):
            time.sleep(self.tick)
            with self._running_lock:
                contexts = list(self.running.values())
            for ctx in contexts:
                now = time.monotonic()
                renew = now - ctx.renewed_at >= self.heartbeat_every  # type: ignore[attr-defined]
                try:
                    beat = self.queue.heartbeat(ctx.job, renew=renew)
                except EntrepotError as exc:
                    log.warning("heartbeat for job %s failed: %s", ctx.job.id, exc)
                    continue
                if renew:
                    ctx.renewed_at = now  # type: ignore[attr-defined]
                if beat.lost:
                    ctx.lost = True  # type: ignore[attr-defined]
                    ctx.cancel()
                elif beat.cancel_requested:
                    ctx.cancel()

    def _cancel_local(self, job_id: int) -> None:
        with self._running_lock:
            ctx = self.running.get(job_id)
        if ctx is not None:
            ctx.cancel()

    def _listen_postgres(self) -> None:
        """Turn PostgreSQL NOTIFY messages from other processes into local wake-ups."""
        import psycopg

        dsn = self.services.catalog.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self.stopping.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while not self.stopping.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._on_notify(note.payload)
            except Exception as exc:  # reconnect after a dropped connection
                log.warning("job notification listener reconnecting: %s", exc)
                self.stopping.wait(1.0)

    def _on_notify(self, payload: str) -> None:
        if payload == "queued":
            self.queue.submitted.notify()
        elif payload == "finished":
            self.queue.finished.notify()
        elif payload.startswith("cancel:"):
            self._cancel_local(int(payload.split(":", 1)[1]))


def _error_dict(
    message: str, code: str, details: dict[str, Any] | None, exception_id: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "message": message,
        "code": code,
        "exceptionId": exception_id or uuid.uuid4().hex,
    }
    if details:
        error["details"] = details
    return error
