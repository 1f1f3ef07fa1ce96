"""Durable jobs: a queue in the catalog, handlers by kind, and worker pools."""

from entrepot.core.jobs.queue import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    STATUSES,
    SUCCEEDED,
    TERMINAL,
    JobQueue,
)
from entrepot.core.jobs.registry import JobContext, JobRegistry, register_builtin

__all__ = [
    "CANCELLED",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "STATUSES",
    "SUCCEEDED",
    "TERMINAL",
    "JobContext",
    "JobQueue",
    "JobRegistry",
    "register_builtin",
]
