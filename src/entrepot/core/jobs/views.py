"""What the faces render of a job: a frozen view of its row, with the token that started it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from entrepot.core.auth import TokenRef, token_refs
from entrepot.core.catalog import Catalog, Job


@dataclass(frozen=True)
class JobView:
    """A job as a caller sees it: canonical status, its kind's params and results, its creator.

    ``params`` are the kind's own (core-internal, versioned) parameters as stored; a face that
    shows them translates them into its API's names.
    """

    id: int
    project_id: int
    kind: str
    subject: str | None
    status: str  # queued, running, succeeded, failed or cancelled
    params: Mapping[str, Any]
    results: Mapping[str, Any] | None
    error: Mapping[str, Any] | None
    progress: int
    attempt: int
    run_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    creator: TokenRef | None  # None when no token started it, or that token was deleted


def job_views(catalog: Catalog, jobs: Iterable[Job]) -> list[JobView]:
    """Views of ``jobs``, their creators looked up in one query."""
    rows = list(jobs)
    creators = token_refs(catalog, {j.token_id for j in rows if j.token_id is not None})
    return [_view(j, creators.get(j.token_id) if j.token_id is not None else None) for j in rows]


def job_view(catalog: Catalog, job: Job) -> JobView:
    """The view of one job."""
    return job_views(catalog, [job])[0]


def _view(job: Job, creator: TokenRef | None) -> JobView:
    return JobView(
        id=job.id,
        project_id=job.project_id,
        kind=job.kind,
        subject=job.subject,
        status=job.status,
        params=dict(job.params or {}),
        results=job.results,
        error=job.error,
        progress=job.progress,
        attempt=job.attempt,
        run_id=job.run_id,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        creator=creator,
    )
