"""SQL batch jobs (CARTO Batch API) on the durable job system.

A job holds one query, a list of queries, or a *fallback* document::

    {"query": [{"query": "...", "onsuccess": "...", "onerror": "..."}, ...],
     "onsuccess": "...", "onerror": "..."}

Queries run in order, each in its own transaction, with the batch time limit. The first
failure stops the job (later queries become ``skipped`` in fallback jobs, stay ``pending``
otherwise); ``onerror``/``onsuccess`` run after their query or after the whole job, with
``<%= job_id %>`` and ``<%= error_message %>`` substituted. Results of plain SELECTs are
discarded, as in CARTO: write them into a table to keep them.

Status words are CARTO's (``pending running done failed cancelled``); the job row's canonical
status maps onto them. Only master keys may use batch jobs.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from entrepot.core import errors as E
from entrepot.core.auth import Principal
from entrepot.core.catalog import Job
from entrepot.core.jobs import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TERMINAL,
    JobContext,
    JobRegistry,
)
from entrepot.core.sql import service

if TYPE_CHECKING:
    from entrepot.core.services import Services

KIND = "sql.batch"
MAX_PAYLOAD = 16 * 1024
STATUS_WORDS = {
    QUEUED: "pending",
    RUNNING: "running",
    SUCCEEDED: "done",
    FAILED: "failed",
    CANCELLED: "cancelled",
}


class BatchError(E.InvalidInput):
    """A batch request CARTO answers with 400 and its own fixed wording."""


def _require_master(principal: Principal) -> None:
    if principal.anonymous or not principal.is_master:
        raise E.PermissionDenied(
            "permission denied: batch queries need the master api_key", code="sql.batch.masterRequired"
        )


def normalize(query: Any) -> dict[str, Any]:
    """The job params of a CARTO ``query`` document; ``InvalidInput`` for any other shape."""
    if len(json.dumps(query)) > MAX_PAYLOAD:
        raise E.InvalidInput(
            f"Your payload is too large: {MAX_PAYLOAD} bytes is the most a batch job may hold",
            code="sql.batch.tooLarge",
        )

    def text(value: Any, what: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise E.InvalidInput(f"{what} must be a non-empty SQL string", code="sql.batch.invalid")
        return value

    if isinstance(query, str):
        return {"shape": "single", "queries": [{"query": text(query, "query")}], "original": query}
    if isinstance(query, list):
        if not query:
            raise E.InvalidInput("query must not be an empty list", code="sql.batch.invalid")
        items = [{"query": text(q, f"query[{i}]")} for i, q in enumerate(query)]
        return {"shape": "multi", "queries": items, "original": query}
    if isinstance(query, dict) and isinstance(query.get("query"), list) and query["query"]:
        items = []
        for i, item in enumerate(query["query"]):
            if not isinstance(item, dict):
                raise E.InvalidInput(
                    f"query.query[{i}] must be an object with a query", code="sql.batch.invalid"
                )
            entry = {"query": text(item.get("query"), f"query.query[{i}].query")}
            for hook in ("onsuccess", "onerror"):
                if item.get(hook) is not None:
                    entry[hook] = text(item[hook], f"query.query[{i}].{hook}")
            items.append(entry)
        params: dict[str, Any] = {"shape": "fallback", "queries": items, "original": query}
        for hook in ("onsuccess", "onerror"):
            if query.get(hook) is not None:
                params[hook] = text(query[hook], f"query.{hook}")
        return params
    raise E.InvalidInput(
        "query must be a SQL string, a list of SQL strings or a fallback object "
        '{"query": [{"query": ..., "onsuccess": ..., "onerror": ...}], "onsuccess": ..., "onerror": ...}',
        code="sql.batch.invalid",
    )


def create(services: Services, principal: Principal, project: str, query: Any) -> Job:
    row = service.find_project(services, project)
    service.check_member(principal, row)
    _require_master(principal)
    params = normalize(query)
    return services.jobs.submit(
        row.id, KIND, params, token_id=principal.token_id, subject=project, max_attempts=1
    )


def get(services: Services, principal: Principal, project: str, job_id: str) -> Job:
    row = service.find_project(services, project)
    service.check_member(principal, row)
    if principal.anonymous:
        _require_master(principal)
    missing = BatchError(f"Job with id {job_id} not found", code="sql.batch.notFound")
    if not job_id.isdigit():
        raise missing
    try:  # a job the token may not see (core/jobs/visibility) is "not found", like no job at all
        job = services.jobs.get(int(job_id), row.id, visible_to=principal)
    except E.NotFound:
        raise missing from None
    if job.kind != KIND:
        raise missing
    _require_master(principal)
    return job


def update(services: Services, principal: Principal, project: str, job_id: str, query: Any) -> Job:
    job = get(services, principal, project, job_id)
    params = normalize(query)
    if not services.jobs.update_params(job.id, job.project_id, params):
        raise BatchError("Job is not pending, it cannot be updated", code="sql.batch.notPending")
    return services.jobs.get(job.id)


def cancel(services: Services, principal: Principal, project: str, job_id: str) -> Job:
    job = get(services, principal, project, job_id)
    if job.status in TERMINAL:
        raise BatchError(
            f"Cannot set status from {STATUS_WORDS[job.status]} to cancelled", code="sql.batch.finished"
        )
    try:
        services.jobs.cancel(job.id, job.project_id)
    except E.Conflict:  # it finished meanwhile
        job = services.jobs.get(job.id)
        raise BatchError(
            f"Cannot set status from {STATUS_WORDS[job.status]} to cancelled", code="sql.batch.finished"
        ) from None
    job = services.jobs.get(job.id)
    if job.status not in TERMINAL:  # a running job: cancelled cooperatively, answered at once
        job.status = CANCELLED
    return job


# -- the worker side ---------------------------------------------------------------------------


def _substitute(sql: str, job_id: int, error: str | None) -> str:
    sql = sql.replace("<%= job_id %>", str(job_id))
    return sql.replace("<%= error_message %>", (error or "").replace("'", "''"))


def _run_one(ctx: JobContext[Services], principal: Principal, project: str, sql: str) -> None:
    settings = ctx.services.settings
    with service.run(
        ctx.services,
        principal,
        project,
        sql,
        time_limit=settings.sql_batch_time_limit,
        cancel=ctx.cancelled,
        max_rows=None,
    ) as result:
        for _ in result.batches:  # results of plain queries are discarded, as in CARTO
            ctx.check_cancelled()


def run_job(ctx: JobContext[Services]) -> dict[str, Any]:
    """Job ``sql.batch``: run the queries in order; per-query statuses are published as they change."""
    from entrepot.core.tables.extract import job_principal

    params = ctx.params
    project = ctx.job.subject or service.find_project(ctx.services, ctx.project_id).name
    principal = job_principal(ctx)
    fallback = params.get("shape") == "fallback"
    states: list[dict[str, Any]] = [{"status": "pending"} for _ in params["queries"]]
    outcome: dict[str, Any] = {"queries": states}
    error: E.EntrepotError | None = None

    def publish() -> None:
        ctx.queue.set_results(ctx.job, outcome)

    for i, item in enumerate(params["queries"]):
        ctx.check_cancelled()
        states[i]["status"] = "running"
        publish()
        try:
            _run_one(ctx, principal, project, _substitute(item["query"], ctx.job.id, None))
        except E.JobCancelled:
            states[i]["status"] = "cancelled"
            publish()
            raise
        except E.EntrepotError as exc:
            error = exc
            states[i]["status"] = "failed"
            states[i]["failed_reason"] = exc.message
            if fallback:
                for later in states[i + 1 :]:
                    later["status"] = "skipped"
        else:
            states[i]["status"] = "done"
        hook = item.get("onerror" if error is not None else "onsuccess")
        if hook:
            states[i]["fallback_status"] = _run_hook(ctx, principal, project, hook, error)
        ctx.progress(100 * (i + 1) / len(states))
        publish()
        if error is not None:
            break
    hook = params.get("onerror" if error is not None else "onsuccess")
    if hook:
        outcome["fallback_status"] = _run_hook(ctx, principal, project, hook, error)
    if error is not None:
        outcome["failed_reason"] = error.message
        publish()
        raise E.InvalidInput(error.message, code="sql.batch.failed")
    return outcome


def _run_hook(
    ctx: JobContext[Services], principal: Principal, project: str, sql: str, error: E.EntrepotError | None
) -> str:
    try:
        _run_one(ctx, principal, project, _substitute(sql, ctx.job.id, error.message if error else None))
    except E.JobCancelled:
        raise
    except E.EntrepotError:
        return "failed"
    return "done"


def view(job: Job, project: str) -> dict[str, Any]:
    """The CARTO JSON of a batch job."""
    params, results = job.params or {}, job.results or {}
    states = results.get("queries") or [{"status": "pending"} for _ in params.get("queries", [])]
    status = STATUS_WORDS.get(job.status, "unknown")
    shape = params.get("shape")

    def with_state(item: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
        out = dict(item)
        out["status"] = state.get("status", "pending")
        if status == "cancelled" and out["status"] in ("pending", "running"):
            out["status"] = "cancelled"
        for key in ("failed_reason", "fallback_status"):
            if key in state:
                out[key] = state[key]
        return out

    items = [with_state(item, state) for item, state in zip(params.get("queries", []), states, strict=False)]
    if shape == "single":
        query: Any = params.get("original")
    elif shape == "multi":
        query = items
    else:
        query = {"query": items}
        for hook in ("onsuccess", "onerror"):
            if hook in params:
                query[hook] = params[hook]
    body: dict[str, Any] = {
        "job_id": str(job.id),
        "user": project,
        "status": status,
        "query": query,
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
    }
    reason = results.get("failed_reason") or (job.error or {}).get("message") if status == "failed" else None
    if reason:
        body["failed_reason"] = reason
    if "fallback_status" in results:
        body["fallback_status"] = results["fallback_status"]
    return body


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def register_jobs(registry: JobRegistry[Services]) -> None:
    registry.register(KIND, run_job)
