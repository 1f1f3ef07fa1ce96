"""Keboola storage jobs: list, detail, and (entrepot extension) cancel.

A token sees only the jobs :mod:`entrepot.core.jobs.visibility` lets it see; others are 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse

from entrepot.core.auth import Principal
from entrepot.core.errors import InvalidInput
from entrepot.core.jobs import STATUSES
from entrepot.core.jobs import service as job_service
from entrepot.core.jobs.views import JobView
from entrepot.core.services import Services
from entrepot.core.tables import service as tables
from entrepot.faces.http import services_of
from entrepot.faces.storage_v2.deps import PREFIX, caller, numeric_id
from entrepot.faces.storage_v2.params import Params, keboola_params
from entrepot.faces.storage_v2.render import JOB_STATUS, job_json
from entrepot.faces.storage_v2.render_tables import table_json
from entrepot.faces.storage_v2.table_params import parse_after

MAX_WAIT = 30  # seconds a job detail request may wait for the job to finish

router = APIRouter(prefix=PREFIX)  # full paths: metrics and logs name the real route


def render_job(services: Services, job: JobView) -> dict[str, Any]:
    """The Job object; a finished ``tables.create`` shows the Table it made, as it is now."""
    out = job_json(services, job)
    table = tables.created_table(services, job)
    if table is not None:
        out["results"] = table_json(services, table)
    return out


def job_response(services: Services, job: JobView) -> JSONResponse:
    """202 with the Job object: how an asynchronous Keboola endpoint answers."""
    return JSONResponse(render_job(services, job), status_code=202)


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
    jobs = job_service.list_jobs(
        services,
        principal,
        statuses=statuses,
        limit=params.int("limit", 100, minimum=1) or 100,
        offset=params.int("offset", 0, minimum=0) or 0,
    )
    return [render_job(services, job) for job in jobs]


@router.get("/jobs/{job_id}", summary="Job detail")
def job_detail(job_id: str, request: Request, principal: Principal = Depends(caller)) -> dict[str, Any]:
    """With ``?wait=S`` (entrepot extension, at most 30 s) the answer comes when the job finishes
    or after S seconds, whichever is first: clients wait without polling."""
    services = services_of(request)
    number = _job_id(job_id)
    wait = parse_after(
        lambda: job_service.get_job(services, principal, number),
        lambda: _wait_seconds(request.query_params.get("wait")),
    )
    return render_job(services, job_service.get_job(services, principal, number, wait=wait))


def _wait_seconds(wait: str | None) -> float | None:
    if not wait:
        return None
    try:
        seconds = float(wait)
    except ValueError:
        raise InvalidInput(f"wait must be a number of seconds (0-{MAX_WAIT}), not {wait!r}") from None
    if not 0 <= seconds <= MAX_WAIT:
        raise InvalidInput(f"wait must be between 0 and {MAX_WAIT} seconds, not {wait}")
    return seconds


@router.post("/jobs/{job_id}/cancel", status_code=202, summary="Cancel a job (entrepot extension)")
def cancel_job(job_id: str, request: Request, principal: Principal = Depends(caller)) -> JSONResponse:
    services = services_of(request)
    return job_response(services, job_service.cancel_job(services, principal, _job_id(job_id)))
