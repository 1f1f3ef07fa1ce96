"""The durable job queue: submit, claim, lease, heartbeat, finish, cancel, recover.

Jobs are rows in the catalog. A worker *claims* the oldest queued job atomically
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite write transactions are ``BEGIN IMMEDIATE``,
so the select-and-update runs alone). A claim increments ``attempt`` and takes a *lease*
that the worker renews by heartbeat. Every later write of the worker is fenced by
``(worker_id, attempt)``: a worker that lost its lease cannot overwrite the outcome of the
attempt that replaced it. A job whose lease expired is requeued (up to ``max_attempts``) or
failed with a clear error.
"""

from __future__ import annotations

import builtins
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.orm import aliased

import entrepot.core.jobs.visibility as visibility
from entrepot.core.auth import Principal
from entrepot.core.catalog import Catalog, Job, affected
from entrepot.core.clock import utcnow
from entrepot.core.errors import Conflict, InvalidInput, NotFound
from entrepot.core.text import check_text

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
NOTIFY_CHANNEL = "entrepot_jobs"


class Waker:
    """A generation counter with a condition: cheap, lossless wake-ups between threads."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._gen = 0

    @property
    def generation(self) -> int:
        return self._gen

    def notify(self) -> None:
        with self._cond:
            self._gen += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        """Block until the generation moves past ``seen`` or ``timeout`` passes; return it."""
        with self._cond:
            self._cond.wait_for(lambda: self._gen != seen, timeout=timeout)
            return self._gen


@dataclass(frozen=True)
class Heartbeat:
    """What a worker learns when it renews its lease."""

    lost: bool  # the lease is no longer ours: stop and discard the outcome
    cancel_requested: bool


class JobQueue:
    """Operations on job rows. One instance per process; safe to share between threads."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        lease_seconds: float = 30.0,
        max_attempts: int = 3,
        poll_interval: float = 0.1,
    ):
        self.catalog = catalog
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self.submitted = Waker()  # a job may be claimable
        self.finished = Waker()  # a job reached a terminal state
        self._cancel_listeners: list[Callable[[int], None]] = []

    # -- producers ---------------------------------------------------------------------
    def submit(
        self,
        project_id: int,
        kind: str,
        params: dict[str, Any] | None = None,
        *,
        token_id: int | None = None,
        subject: str | None = None,
        run_id: str | None = None,
        max_attempts: int | None = None,
        link: Callable[[Any, Job], None] | None = None,
    ) -> Job:
        """Queue a job; workers in this process (and, on PostgreSQL, everywhere) wake at once.

        ``link(session, job)`` runs in the same transaction once the job has its id, so a row
        that points at the job is written atomically with it (no worker sees one without the other).
        """
        check_text(run_id, "the run id (X-KBC-RunId)", 256)
        now = utcnow()
        with self.catalog.session() as s:
            job = Job(
                project_id=project_id,
                token_id=token_id,
                kind=kind,
                subject=subject,
                params=params or {},
                status=QUEUED,
                progress=0,
                attempt=0,
                max_attempts=max_attempts or self.max_attempts,
                cancel_requested=False,
                run_id=run_id,
                created_at=now,
                updated_at=now,
            )
            s.add(job)
            s.flush()
            if link is not None:
                link(s, job)
            self._notify_others(s, "queued")
        self.submitted.notify()
        return job

    def get(self, job_id: int, project_id: int | None = None, *, visible_to: Principal | None = None) -> Job:
        """A job by id; ``NotFound`` if it is not in ``project_id`` or ``visible_to`` may not see it."""
        with self.catalog.session(readonly=True) as s:
            if visible_to is None:
                job = s.get(Job, job_id)
            else:
                job = s.scalars(
                    select(Job).where(Job.id == job_id, visibility.visible_to(visible_to))
                ).first()
        if job is None or (project_id is not None and job.project_id != project_id):
            raise NotFound(f"job {job_id} not found", code="jobs.notFound")
        return job

    def list(
        self,
        project_id: int,
        *,
        limit: int = 100,
        offset: int = 0,
        statuses: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        visible_to: Principal | None = None,
    ) -> list[Job]:
        """A project's jobs, newest first; only those ``visible_to`` may see, when given."""
        if not 0 < limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000")
        if offset < 0:
            raise InvalidInput("offset must not be negative")
        q = select(Job).where(Job.project_id == project_id)
        if statuses:
            q = q.where(Job.status.in_(list(statuses)))
        if kinds:
            q = q.where(Job.kind.in_(list(kinds)))
        if visible_to is not None:
            q = q.where(visibility.visible_to(visible_to))
        with self.catalog.session(readonly=True) as s:
            return list(s.scalars(q.order_by(Job.id.desc()).limit(limit).offset(offset)))

    def cancel(self, job_id: int, project_id: int | None = None) -> Job:
        """Cancel a job: a queued one at once; a running one cooperatively (and interrupted)."""
        with self.catalog.session() as s:
            job = s.get(Job, job_id)
            if job is None or (project_id is not None and job.project_id != project_id):
                raise NotFound(f"job {job_id} not found", code="jobs.notFound")
            if job.status in TERMINAL:
                raise Conflict(f"job {job_id} has already finished ({job.status}); it cannot be cancelled")
            now = utcnow()
            job.cancel_requested = True
            job.updated_at = now
            if job.status == QUEUED:
                job.status = CANCELLED
                job.finished_at = now
                job.error = {"message": "the job was cancelled before it started", "code": "job.cancelled"}
                self._notify_others(s, "finished")
            else:
                self._notify_others(s, f"cancel:{job_id}")
        if job.status == CANCELLED:
            self.finished.notify()
        else:
            for listener in list(self._cancel_listeners):
                listener(job_id)
        return job

    def wait(self, job_id: int, timeout: float) -> Job:
        """Wait up to ``timeout`` seconds for a job to finish; return its latest state."""
        deadline = utcnow() + timedelta(seconds=timeout)
        while True:
            seen = self.finished.generation
            job = self.get(job_id)
            remaining = (deadline - utcnow()).total_seconds()
            if job.status in TERMINAL or remaining <= 0:
                return job
            self.finished.wait(seen, min(remaining, self.poll_interval))

    def counts(self) -> dict[str, int]:
        """Number of jobs per status (for metrics)."""
        with self.catalog.session(readonly=True) as s:
            rows = s.execute(select(Job.status, func.count()).group_by(Job.status)).all()
        out = dict.fromkeys(STATUSES, 0)
        out.update({status: n for status, n in rows})
        return out

    # -- workers -------------------------------------------------------------------------
    def add_cancel_listener(self, listener: Callable[[int], None]) -> None:
        self._cancel_listeners.append(listener)

    def claim(self, worker_id: str, kinds: Iterable[str] | None = None) -> Job | None:
        """Atomically take the oldest queued job (of the given kinds), or return None.

        Jobs with the same ``subject`` in a project (a table id, say) run one after another in
        submission order: a job is only claimable when no earlier job on its subject is
        still queued or running.
        """
        earlier = aliased(Job)
        blocked = (
            select(earlier.id)
            .where(
                earlier.project_id == Job.project_id,
                earlier.subject == Job.subject,
                earlier.id < Job.id,
                earlier.status.in_((QUEUED, RUNNING)),
            )
            .exists()
        )
        q = select(Job).where(Job.status == QUEUED, or_(Job.subject.is_(None), ~blocked))
        if kinds is not None:
            q = q.where(Job.kind.in_(list(kinds)))
        if not self.catalog.is_postgres:
            # SQLite: look before taking the write lock, so idle workers polling other
            # processes' submissions never queue behind writers.
            with self.catalog.session(readonly=True) as s:
                if s.scalars(q.with_only_columns(Job.id).limit(1)).first() is None:
                    return None
        q = q.order_by(Job.id).limit(1).with_for_update(skip_locked=True)
        with self.catalog.session() as s:
            job = s.scalars(q).first()
            if job is None:
                return None
            now = utcnow()
            job.status = RUNNING
            job.attempt += 1
            job.worker_id = worker_id
            job.lease_expires_at = now + self.lease
            job.started_at = job.started_at or now
            job.updated_at = now
            return job

    def heartbeat(self, job: Job, *, renew: bool = True) -> Heartbeat:
        """Renew the lease of a claimed job and learn whether it was cancelled or lost."""
        now = utcnow()
        with self.catalog.session(readonly=not renew) as s:
            if renew:
                res = s.execute(
                    self._fenced(job)
                    .values(lease_expires_at=now + self.lease, updated_at=now)
                    .returning(Job.cancel_requested)
                ).first()
                return Heartbeat(lost=res is None, cancel_requested=bool(res and res[0]))
            row = s.execute(
                select(Job.cancel_requested, Job.worker_id, Job.attempt, Job.status).where(Job.id == job.id)
            ).first()
        lost = (
            row is None
            or row.worker_id != job.worker_id
            or row.attempt != job.attempt
            or row.status != RUNNING
        )
        return Heartbeat(lost=lost, cancel_requested=bool(row and row.cancel_requested))

    def set_progress(self, job: Job, progress: int) -> None:
        with self.catalog.session() as s:
            s.execute(self._fenced(job).values(progress=max(0, min(100, int(progress))), updated_at=utcnow()))

    def set_results(self, job: Job, results: dict[str, Any]) -> None:
        """Publish partial results of a running job (e.g. the status of each query of a batch)."""
        with self.catalog.session() as s:
            s.execute(self._fenced(job).values(results=results, updated_at=utcnow()))

    def update_params(self, job_id: int, project_id: int, params: dict[str, Any]) -> bool:
        """Replace the params of a job that is still queued; False if it has been claimed or has finished."""
        with self.catalog.session() as s:
            changed = affected(
                s,
                update(Job)
                .where(Job.id == job_id, Job.project_id == project_id, Job.status == QUEUED)
                .values(params=params, updated_at=utcnow()),
            )
            return changed == 1

    def succeed(
        self, job: Job, results: dict[str, Any] | None, *, on_recorded: Callable[[], None] | None = None
    ) -> bool:
        """Finish as succeeded; ``on_recorded()`` runs once the outcome is ours, before it is visible."""
        return self._finish(
            job, status=SUCCEEDED, results=results, error=None, progress=100, on_recorded=on_recorded
        )

    def fail(self, job: Job, error: dict[str, Any], *, on_recorded: Callable[[], None] | None = None) -> bool:
        """Finish as failed; partial results published with ``set_results`` are kept."""
        return self._finish(job, status=FAILED, error=error, on_recorded=on_recorded)

    def mark_cancelled(self, job: Job, *, on_recorded: Callable[[], None] | None = None) -> bool:
        error = {"message": "the job was cancelled", "code": "job.cancelled"}
        return self._finish(job, status=CANCELLED, error=error, on_recorded=on_recorded)

    def recover_expired(self) -> builtins.list[int]:
        """Requeue (or fail, after the last attempt) running jobs whose lease has expired."""
        now = utcnow()
        recovered: builtins.list[int] = []
        q = (
            select(Job)
            .where(Job.status == RUNNING, Job.lease_expires_at < now)
            .order_by(Job.id)
            .limit(100)
            .with_for_update(skip_locked=True)
        )
        with self.catalog.session() as s:
            for job in s.scalars(q):
                recovered.append(job.id)
                job.updated_at = now
                job.lease_expires_at = None
                if job.cancel_requested:
                    job.status, job.finished_at = CANCELLED, now
                    job.error = {"message": "the job was cancelled", "code": "job.cancelled"}
                elif job.attempt >= job.max_attempts:
                    job.status, job.finished_at = FAILED, now
                    job.error = {
                        "message": f"the worker running this job ({job.worker_id}) stopped responding "
                        f"on attempt {job.attempt} of {job.max_attempts}; the job was given up",
                        "code": "job.workerLost",
                    }
                else:
                    job.status = QUEUED
                    job.worker_id = None
            if recovered:
                self._notify_others(s, "queued")
        if recovered:
            self.submitted.notify()
            self.finished.notify()
        return recovered

    # -- internals -------------------------------------------------------------------------
    def _fenced(self, job: Job) -> Any:
        return update(Job).where(
            Job.id == job.id,
            Job.worker_id == job.worker_id,
            Job.attempt == job.attempt,
            Job.status == RUNNING,
        )

    def _finish(
        self,
        job: Job,
        *,
        status: str,
        error: dict[str, Any] | None,
        on_recorded: Callable[[], None] | None = None,
        **extra: Any,
    ) -> bool:
        """Move the job to ``status``; ``extra`` columns (results, progress) are set too.

        ``on_recorded()`` (the worker's metrics and log line) runs when the fenced update took,
        before the commit: whoever sees the job finished (a waiter, the API) sees its effects too.
        """
        now = utcnow()
        with self.catalog.session() as s:
            done = (
                affected(
                    s,
                    self._fenced(job).values(
                        status=status,
                        error=error,
                        finished_at=now,
                        updated_at=now,
                        lease_expires_at=None,
                        **extra,
                    ),
                )
                == 1
            )
            if done:
                self._notify_others(s, "finished")
                if on_recorded is not None:
                    on_recorded()
        if done:
            self.finished.notify()
        return done

    def _notify_others(self, session: Any, payload: str) -> None:
        if self.catalog.is_postgres:
            session.execute(text("SELECT pg_notify(:c, :p)"), {"c": NOTIFY_CHANNEL, "p": payload})


def new_worker_id(prefix: str = "worker") -> str:
    import os
    import socket

    return f"{prefix}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
