"""The job commands the faces call: submit (and briefly wait), list, detail, cancel; views out.

Who sees a job is :mod:`entrepot.core.jobs.visibility`'s rule; an invisible job is "not found".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from entrepot.core.auth import Principal
from entrepot.core.jobs.queue import JobQueue
from entrepot.core.jobs.views import JobView, job_view, job_views

if TYPE_CHECKING:
    from entrepot.config import Settings
    from entrepot.core.catalog import Catalog


class JobServices(Protocol):
    """What these commands need of the services (``entrepot.core.services.Services``)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def jobs(self) -> JobQueue: ...


def submit(
    services: JobServices,
    principal: Principal,
    kind: str,
    params: dict[str, Any],
    *,
    subject: str | None = None,
    run_id: str | None = None,
    wait: float | None = None,
) -> JobView:
    """Queue a job for the caller's token and answer it after at most ``wait`` seconds.

    ``wait`` defaults to ``job_response_wait``: a small job is then already finished when the
    client looks at it for the first time (Keboola's clients otherwise sleep seconds first).
    """
    job = services.jobs.submit(
        principal.project_id or 0, kind, params, token_id=principal.token_id, subject=subject, run_id=run_id
    )
    seconds = services.settings.job_response_wait if wait is None else wait
    if seconds > 0:
        job = services.jobs.wait(job.id, timeout=seconds)
    return job_view(services.catalog, job)


def list_jobs(
    services: JobServices,
    principal: Principal,
    *,
    statuses: Sequence[str] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[JobView]:
    """The project's jobs the caller may see (of ``statuses``, when given), newest first."""
    jobs = services.jobs.list(
        principal.project_id or 0, limit=limit, offset=offset, statuses=statuses, visible_to=principal
    )
    return job_views(services.catalog, jobs)


def get_job(
    services: JobServices, principal: Principal, job_id: int, *, wait: float | None = None
) -> JobView:
    """A job the caller may see; with ``wait``, once it has finished or ``wait`` seconds have passed."""
    job = services.jobs.get(job_id, principal.project_id, visible_to=principal)
    if wait is not None:
        job = services.jobs.wait(job.id, timeout=wait)
    return job_view(services.catalog, job)


def cancel_job(services: JobServices, principal: Principal, job_id: int) -> JobView:
    """Cancel a job the caller may see; another token's job needs a master token."""
    job = services.jobs.get(job_id, principal.project_id, visible_to=principal)
    if job.token_id != principal.token_id:
        principal.require_master("cancel a job started by another token")
    return job_view(services.catalog, services.jobs.cancel(job.id, principal.project_id))
