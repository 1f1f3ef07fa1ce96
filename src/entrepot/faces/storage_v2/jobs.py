"""Keboola storage jobs: list, detail, and (entrepot extension) cancel.

A token sees only the jobs :mod:`entrepot.core.jobs.visibility` lets it see; others are 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse

from entrepot.core.auth import Principal
from entrepot.core.catalog import Job, Token
from entrepot.core.errors import InvalidInput, NotFound
from entrepot.core.jobs import STATUSES
from entrepot.core.services import Services
from entrepot.faces.http import services_of
from entrepot.faces.storage_v2.deps import PREFIX, caller, numeric_id
from entrepot.faces.storage_v2.params import Params, keboola_params
from entrepot.faces.storage_v2.render import JOB_STATUS, job_json

MAX_WAIT = 30  # seconds a job detail request may wait for the job to finish

router = APIRouter(prefix=PREFIX)  # full paths: metrics and logs name the real route


def render_job(services: Services, job: Job) -> dict[str, Any]:
    creator = None
    if job.token_id is not None:
        with services.catalog.session(readonly=True) as s:
            creator = s.get(Token, job.token_id)
    out = job_json(services, job, creator)
    if job.kind == "tables.create" and isinstance(out.get("results"), dict) and out["results"].get("id"):
        out["results"] = _created_table(services, job.project_id, out["results"])
    return out


def _created_table(services: Services, project_id: int, results: dict[str, Any]) -> dict[str, Any]:
    """A finished ``tables.create`` job's results: the Table object as it is now (Keboola's shape)."""
    from entrepot.core.tables.store import find_table
    from entrepot.core.tables.tables import view_of
    from entrepot.faces.storage_v2.render_tables import table_json

    try:
        table, _ = find_table(services, project_id, str(results["id"]))
    except NotFound:  # dropped since: the stored id and name are all there is
        return results
    return table_json(services, view_of(services, table))


def _job_id(value: str) -> int:
    return numeric_id(value, "job", "storage.jobs.notFound")


@router.get("/jobs", summary="List the project's jobs the token may see, newest first")
def list_jobs(
    request: Request, principal: Principal = Depends(caller), params: Params = Depends(keboola_params)
) -> list[dict[str, Any]]:
    services = services_of(request)
    wanted = params.str("storage_job_status") or params.str("status")
    statuses = None
    if wanted:
        statuses = [s for s in STATUSES if JOB_STATUS[s] == wanted]
        if not statuses:
            raise InvalidInput(f"unknown job status {wanted!r}; use waiting, processing, success or error")
    jobs = services.jobs.list(
        principal.project_id or 0,
        limit=params.int("limit", 100, minimum=1) or 100,
        offset=params.int("offset", 0, minimum=0) or 0,
        statuses=statuses,
        visible_to=principal,
    )
    return [render_job(services, job) for job in jobs]


@router.get("/jobs/{job_id}", summary="Job detail")
def job_detail(job_id: str, request: Request, principal: Principal = Depends(caller)) -> dict[str, Any]:
    """With ``?wait=S`` (entrepot extension, at most 30 s) the answer comes when the job finishes
    or after S seconds, whichever is first: clients wait without polling."""
    services = services_of(request)
    job = services.jobs.get(_job_id(job_id), principal.project_id, visible_to=principal)
    wait = request.query_params.get("wait")
    if wait:
        try:
            seconds = float(wait)
        except ValueError:
            raise InvalidInput(f"wait must be a number of seconds (0-{MAX_WAIT}), not {wait!r}") from None
        if not 0 <= seconds <= MAX_WAIT:
            raise InvalidInput(f"wait must be between 0 and {MAX_WAIT} seconds, not {wait}")
        job = services.jobs.wait(job.id, timeout=seconds)
    return render_job(services, job)


@router.post("/jobs/{job_id}/cancel", status_code=202, summary="Cancel a job (entrepot extension)")
def cancel_job(job_id: str, request: Request, principal: Principal = Depends(caller)) -> JSONResponse:
    services = services_of(request)
    job = services.jobs.get(_job_id(job_id), principal.project_id, visible_to=principal)
    if job.token_id != principal.token_id:
        principal.require_master("cancel a job started by another token")
    job = services.jobs.cancel(job.id, principal.project_id)
    return JSONResponse(render_job(services, job), status_code=202)


def start_job(
    request: Request, principal: Principal, kind: str, params: dict[str, Any], *, subject: str | None = None
) -> JSONResponse:
    """Queue a job for an asynchronous Keboola endpoint and answer 202 with the Job object.

    Waits up to ``job_response_wait`` seconds first: a small job is then already finished
    when the client polls for the first time (kbcstorage otherwise sleeps 4 s).
    """
    services = services_of(request)
    job = services.jobs.submit(
        principal.project_id or 0,
        kind,
        params,
        token_id=principal.token_id,
        subject=subject,
        run_id=request.headers.get("x-kbc-runid") or None,
    )
    wait = services.settings.job_response_wait
    if wait > 0:
        job = services.jobs.wait(job.id, timeout=wait)
    return JSONResponse(render_job(services, job), status_code=202)
