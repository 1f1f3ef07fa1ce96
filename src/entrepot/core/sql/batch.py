"""SQL batch jobs (CARTO Batch API) on the durable job system.

A job holds one query, a list of queries, or a *fallback* document::

    {"query": [{"query": "...", "onsuccess": "...", "onerror": "..."}, ...],
     "onsuccess": "...", "onerror": "..."}

Queries run in order, each in its own transaction, with the batch time limit. The first
failure stops the job (later queries become ``skipped`` in fallback jobs, stay ``pending``
otherwise); ``onerror``/``onsuccess`` run after their query or after the whole job, with
``<%= job_id %>`` and ``<%= error_message %>`` substituted. Results of plain SELECTs are
discarded, as in CARTO: write them into a table to keep them.

A job's status is the job row's canonical one (the face words it); each query's state is one of
``pending running done failed skipped cancelled``. Master keys (and CARTO regular keys, see
:func:`require_batch`) may use batch jobs. The
commands (create, read, update, cancel) are in ``service.py``; this module holds the job's
document, its view and its handler.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
    JobContext,
    JobRegistry,
)
from entrepot.core.sql.authorize import find_project
from entrepot.core.sql.dialect import Statement
from entrepot.core.sql.execute import run
from entrepot.core.sql.ownership import CREATE_KINDS

if TYPE_CHECKING:
    from entrepot.core.services import Services

KIND = "sql.batch"
MAX_PAYLOAD = 16 * 1024
# a job's status in the words of CARTO's Batch API, which the messages about it use
STATUS_WORDS = {
    QUEUED: "pending",
    RUNNING: "running",
    SUCCEEDED: "done",
    FAILED: "failed",
    CANCELLED: "cancelled",
}


class BatchError(E.InvalidInput):
    """A batch request CARTO answers with 400 and its own fixed wording."""


def require_batch(principal: Principal) -> None:
    """Batch jobs are CARTO's master key's; entrepot also lets a CARTO regular key granted the SQL
    API queue them (its grants are checked when the job is created and again when it runs)."""
    if principal.anonymous or not (principal.is_master or principal.api_key_name is not None):
        raise E.PermissionDenied(
            "permission denied: batch queries need the master api_key", code="sql.batch.masterRequired"
        )


def check_queries(
    principal: Principal,
    params: dict[str, Any],
    authorize: Callable[[Principal, str], Sequence[Statement]],
) -> None:
    """Authorise a regular key's job at creation: ``authorize(principal, sql)`` for each query.

    A table an earlier query creates is the key's for the later ones (``ownership.py``). A
    query that does not parse yet (it may name a table an earlier query creates) is left to
    fail when the job runs; a permission it lacks is refused now.
    """
    if principal.is_master:
        return
    hooks = [params.get("onsuccess"), params.get("onerror")]
    for item in params["queries"]:
        hooks += [item.get("onsuccess"), item.get("onerror")]
        for sql in [item["query"], *[h for h in hooks if h]]:
            try:
                statements = authorize(principal, _substitute(sql, 0, None))
            except E.PermissionDenied:
                raise
            except E.EntrepotError:
                continue
            for st in statements:
                if st.kind in CREATE_KINDS and st.target is not None:
                    principal = principal.owning(st.target.schema, st.target.name)
        hooks = []


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


# -- the worker side ---------------------------------------------------------------------------


def _substitute(sql: str, job_id: int, error: str | None) -> str:
    sql = sql.replace("<%= job_id %>", str(job_id))
    return sql.replace("<%= error_message %>", (error or "").replace("'", "''"))


def _run_one(ctx: JobContext[Services], project: str, sql: str) -> None:
    """Run one query as the job's token is now (a table an earlier query created is its key's)."""
    from entrepot.core.tables.extract import job_principal

    settings = ctx.services.settings
    principal = job_principal(ctx)
    with run(
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
    params = ctx.params
    project = ctx.job.subject or find_project(ctx.services, ctx.project_id).name
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
            _run_one(ctx, project, _substitute(item["query"], ctx.job.id, None))
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
            states[i]["fallback_status"] = _run_hook(ctx, project, hook, error)
        ctx.progress(100 * (i + 1) / len(states))
        publish()
        if error is not None:
            break
    hook = params.get("onerror" if error is not None else "onsuccess")
    if hook:
        outcome["fallback_status"] = _run_hook(ctx, project, hook, error)
    if error is not None:
        outcome["failed_reason"] = error.message
        publish()
        raise E.InvalidInput(error.message, code="sql.batch.failed")
    return outcome


def _run_hook(ctx: JobContext[Services], project: str, sql: str, error: E.EntrepotError | None) -> str:
    try:
        _run_one(ctx, project, _substitute(sql, ctx.job.id, error.message if error else None))
    except E.JobCancelled:
        raise
    except E.EntrepotError:
        return "failed"
    return "done"


# -- the view ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchQuery:
    """One query of a batch job and its state."""

    sql: str
    onsuccess: str | None  # SQL run after it succeeded (fallback jobs)
    onerror: str | None  # SQL run after it failed (fallback jobs)
    status: str  # pending | running | done | failed | skipped | cancelled
    failed_reason: str | None = None
    fallback_status: str | None = None  # how its onsuccess/onerror went: done | failed


@dataclass(frozen=True)
class BatchJob:
    """A batch job as its owner sees it."""

    id: int
    status: str  # the job's canonical status (core.jobs: queued, running, succeeded, failed, cancelled)
    shape: str | None  # single (one SQL string) | multi (a list of them) | fallback (queries with hooks)
    sql: str | None  # the SQL of a single-query job, as sent
    queries: tuple[BatchQuery, ...]
    onsuccess: str | None  # SQL run after the whole job succeeded (fallback jobs)
    onerror: str | None  # SQL run after the job failed (fallback jobs)
    created_at: datetime | None
    updated_at: datetime | None
    failed_reason: str | None  # why a failed job failed
    fallback_status: str | None  # how the job's onsuccess/onerror went: done | failed


def view(job: Job, *, status: str | None = None) -> BatchJob:
    """The view of a batch job row (``status`` overrides the row's, for a cancel answered at once)."""
    params, results = job.params or {}, job.results or {}
    states = results.get("queries") or [{"status": "pending"} for _ in params.get("queries", [])]
    status = status or job.status
    queries = tuple(
        BatchQuery(
            sql=item["query"],
            onsuccess=item.get("onsuccess"),
            onerror=item.get("onerror"),
            status=state.get("status", "pending"),
            failed_reason=state.get("failed_reason"),
            fallback_status=state.get("fallback_status"),
        )
        for item, state in zip(params.get("queries", []), states, strict=False)
    )
    reason = (results.get("failed_reason") or (job.error or {}).get("message")) if status == FAILED else None
    return BatchJob(
        id=job.id,
        status=status,
        shape=params.get("shape"),
        sql=params.get("original") if params.get("shape") == "single" else None,
        queries=queries,
        onsuccess=params.get("onsuccess"),
        onerror=params.get("onerror"),
        created_at=job.created_at,
        updated_at=job.updated_at,
        failed_reason=reason or None,
        fallback_status=results.get("fallback_status"),
    )


def register_jobs(registry: JobRegistry[Services]) -> None:
    registry.register(KIND, run_job)
