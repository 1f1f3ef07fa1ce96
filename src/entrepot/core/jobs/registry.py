"""Job handlers, registered by kind, and the context a handler runs in."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from entrepot.core.catalog import Job
from entrepot.core.errors import InvalidInput, JobCancelled

if TYPE_CHECKING:
    from entrepot.core.jobs.queue import JobQueue

# The services a handler is given (``entrepot.core.services.Services``). The job machinery is
# generic over them, so it never imports the composition root that is built on top of it.
S = TypeVar("S")


class JobContext(Generic[S]):
    """What a running handler sees: its job, the services, progress and cancellation."""

    def __init__(self, job: Job, queue: JobQueue, services: S, worker_id: str):
        self.job = job
        self.queue = queue
        self.services = services
        self.worker_id = worker_id
        self.cancelled = threading.Event()
        self._on_cancel: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._last_progress = (-1, 0.0)

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    @property
    def project_id(self) -> int:
        return self.job.project_id

    def progress(self, fraction_or_percent: float) -> None:
        """Report progress 0-100 (writes are throttled to one per 0.5 s unless it reaches 100)."""
        pct = int(max(0, min(100, fraction_or_percent)))
        last_pct, last_t = self._last_progress
        now = time.monotonic()
        if pct == last_pct or (pct < 100 and now - last_t < 0.5):
            return
        self._last_progress = (pct, now)
        self.queue.set_progress(self.job, pct)

    def check_cancelled(self) -> None:
        """Raise ``JobCancelled`` if the job was cancelled; call it between units of work."""
        if self.cancelled.is_set():
            raise JobCancelled("the job was cancelled")

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` (e.g. a DuckDB interrupt) when the job is cancelled; returns an unregister."""
        with self._lock:
            if self.cancelled.is_set():
                callback()
            self._on_cancel.append(callback)

        def unregister() -> None:
            with self._lock:
                if callback in self._on_cancel:
                    self._on_cancel.remove(callback)

        return unregister

    def cancel(self) -> None:
        with self._lock:
            if self.cancelled.is_set():
                return
            self.cancelled.set()
            callbacks = list(self._on_cancel)
        for cb in callbacks:
            with contextlib.suppress(Exception):  # an interrupt that fails must not stop the others
                cb()


Handler: TypeAlias = Callable[[JobContext[S]], "dict[str, Any] | None"]


class JobRegistry(Generic[S]):
    """Handlers by job kind. Core modules register theirs with ``register(kind, fn)``."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler[S]] = {}
        self._periodic: dict[str, Callable[[S], Any]] = {}

    def register(self, kind: str, handler: Handler[S]) -> None:
        if kind in self._handlers:
            raise ValueError(f"a handler for job kind {kind!r} is already registered")
        self._handlers[kind] = handler

    def get(self, kind: str) -> Handler[S] | None:
        return self._handlers.get(kind)

    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    def register_periodic(self, name: str, task: Callable[[S], Any]) -> None:
        """A maintenance task every worker pool runs each ``maintenance_interval`` seconds.

        Tasks must be idempotent: with several worker processes, each runs them.
        """
        if name in self._periodic:
            raise ValueError(f"a periodic task {name!r} is already registered")
        self._periodic[name] = task

    def periodic(self) -> dict[str, Callable[[S], Any]]:
        return dict(self._periodic)


# -- built-in diagnostic kinds ---------------------------------------------------------------


def noop(ctx: JobContext[Any]) -> dict[str, Any]:
    """Does nothing; measures queue latency (bench) and proves a worker is alive."""
    return {"worker": ctx.worker_id}


def sleep(ctx: JobContext[Any]) -> dict[str, Any]:
    """Sleeps ``seconds`` in small steps, reporting progress and honouring cancellation."""
    try:
        seconds = float(ctx.params.get("seconds", 1.0))
    except (TypeError, ValueError) as exc:
        raise InvalidInput("seconds must be a number") from exc
    if not 0 <= seconds <= 3600:
        raise InvalidInput("seconds must be between 0 and 3600")
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        ctx.check_cancelled()
        ctx.progress(100 * elapsed / seconds)
        ctx.cancelled.wait(min(0.05, seconds - elapsed))
    ctx.check_cancelled()
    return {"worker": ctx.worker_id, "slept": seconds}


def fail(ctx: JobContext[Any]) -> dict[str, Any]:
    """Always fails with the given message (exercises error reporting end to end)."""
    raise InvalidInput(
        str(ctx.params.get("message", "this job fails on purpose")), code="job.failedOnPurpose"
    )


def register_builtin(registry: JobRegistry[Any]) -> None:
    registry.register("system.noop", noop)
    registry.register("system.sleep", sleep)
    registry.register("system.fail", fail)
