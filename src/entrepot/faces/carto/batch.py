"""A batch job in the JSON of CARTO's Batch API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

# a batch job's words are those of CARTO's Batch API in the core too: its queries' stored
# states and its messages use them
from entrepot.core.sql.batch import STATUS_WORDS, BatchJob, BatchQuery


def job_json(job: BatchJob, user: str) -> dict[str, Any]:
    """``{"job_id", "user", "status", "query", "created_at", "updated_at"[, "failed_reason"][, "fallback_status"]}``.

    ``query`` has the shape the job was created with: the SQL string, a list of queries, or a
    fallback document, each query with its status.
    """
    status = STATUS_WORDS.get(job.status, "unknown")
    items = [_query_json(q, cancelled=status == "cancelled") for q in job.queries]
    if job.shape == "single":
        query: Any = job.sql
    elif job.shape == "multi":
        query = items
    else:
        query = {"query": items}
        for hook, sql in (("onsuccess", job.onsuccess), ("onerror", job.onerror)):
            if sql is not None:
                query[hook] = sql
    body: dict[str, Any] = {
        "job_id": str(job.id),
        "user": user,
        "status": status,
        "query": query,
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
    }
    if job.failed_reason:
        body["failed_reason"] = job.failed_reason
    if job.fallback_status is not None:
        body["fallback_status"] = job.fallback_status
    return body


def _query_json(q: BatchQuery, *, cancelled: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"query": q.sql}
    for hook, sql in (("onsuccess", q.onsuccess), ("onerror", q.onerror)):
        if sql is not None:
            out[hook] = sql
    out["status"] = "cancelled" if cancelled and q.status in ("pending", "running") else q.status
    if q.failed_reason is not None:
        out["failed_reason"] = q.failed_reason
    if q.fallback_status is not None:
        out["fallback_status"] = q.fallback_status
    return out


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
