"""Keboola's vocabulary: timestamps, the error envelope, and the Token and Job objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from starlette.responses import JSONResponse, Response

from entrepot.core import errors as E
from entrepot.core.catalog import Job, Project, Token
from entrepot.core.jobs import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED
from entrepot.core.services import Services
from entrepot.faces.errors import Problem

# Keboola storage jobs only know four statuses; anything else makes kbcstorage poll forever.
JOB_STATUS = {
    QUEUED: "waiting",
    RUNNING: "processing",
    SUCCEEDED: "success",
    FAILED: "error",
    CANCELLED: "error",
}

# canonical job kind -> Keboola operationName
OPERATION_NAMES: dict[str, str] = {
    "tables.create": "tableCreate",
    "tables.import": "tableImport",
    "tables.export": "tableExport",
    "tables.drop": "tableDrop",
    "tables.delete_rows": "tableRowsDelete",
    "tables.add_primary_key": "tablePrimaryKeyAdd",
    "tables.remove_primary_key": "tablePrimaryKeyDelete",
    "tables.optimize": "tableOptimize",
    "buckets.delete": "bucketDelete",
    "files.delete": "fileDelete",
}


def ts(value: datetime | None) -> str | None:
    """Keboola's timestamp style: ``2025-06-01T12:00:00+0000``."""
    return value.strftime("%Y-%m-%dT%H:%M:%S%z") if value is not None else None


def _status_for(error: E.EntrepotError | None, status: int) -> int:
    # Keboola answers "already exists" with 400, not 409.
    if isinstance(error, E.AlreadyExists):
        return 400
    return status


def render_error(request: Request, problem: Problem) -> Response:
    body = {
        "error": problem.message,
        "code": problem.code,
        "status": "error",
        "exceptionId": problem.exception_id,
    }
    return JSONResponse(body, status_code=_status_for(problem.error, problem.status), headers=problem.headers)


def project_json(services: Services, project: Project) -> dict[str, Any]:
    backend = services.settings.backend_name
    return {
        "id": project.id,
        "name": project.name,
        "type": "production",
        "region": "local",
        "created": ts(project.created_at),
        "expires": None,
        "features": [],
        "dataSizeBytes": 0,
        "rowsCount": 0,
        "defaultBackend": backend,
        "hasSnowflake": False,
        "hasBigquery": False,
        "limits": {},
        "metrics": {},
        "isDisabled": project.disabled,
        "dataRetentionTimeInDays": 7,
        "fileStorageProvider": "aws",
        "assignedBackends": [backend],
    }


def token_json(
    services: Services,
    row: Token,
    project: Project,
    *,
    secret: str | None = None,
    creator: Token | None = None,
) -> dict[str, Any]:
    base = services.settings.effective_public_url
    now_expired = row.expires_at is not None and row.expires_at <= _now()
    out: dict[str, Any] = {
        "id": str(row.id),
        "description": row.description,
        "created": ts(row.created_at),
        "refreshed": ts(row.refreshed_at),
        "uri": f"{base}/v2/storage/tokens/{row.id}",
        "isMasterToken": row.is_master,
        "canManageBuckets": row.can_manage_buckets,
        "canManageTokens": row.can_manage_tokens,
        "canReadAllFileUploads": row.can_read_all_file_uploads,
        "canPurgeTrash": False,
        "canManageProtectedDefaultBranch": row.is_master,
        "canCreateJobs": row.is_master,
        "canReadAllProjectEvents": row.is_master,
        "canManageDevBranches": False,
        "expires": ts(row.expires_at),
        "isExpired": now_expired,
        "isDisabled": row.revoked_at is not None,
        "dailyCapacity": 0,
        "bucketPermissions": dict(row.bucket_permissions or {}),
        "componentAccess": [],
        "creatorToken": {"id": str(creator.id), "description": creator.description} if creator else None,
        "lastUsed": ts(row.last_used_at),
        # entrepot extensions: object-space permissions
        "canManageSpaces": row.can_manage_spaces,
        "spacePermissions": dict(row.space_permissions or {}),
        "ownerName": row.owner,  # the user (exports and templates); "owner" is Keboola's project
        "owner": project_json(services, project),
        "organization": {"id": "1"},
    }
    if row.is_master:
        out["admin"] = {
            "id": row.id,
            "name": row.description,
            "role": "admin",
            "features": [],
            "isOrganizationMember": True,
        }
    if secret is not None:
        out["token"] = secret
    return out


def job_json(services: Services, job: Job, creator: Token | None = None) -> dict[str, Any]:
    base = services.settings.effective_public_url
    params = job.params or {}
    out: dict[str, Any] = {
        "id": job.id,
        "status": JOB_STATUS.get(job.status, "error"),
        "url": f"{base}/v2/storage/jobs/{job.id}",
        "tableId": params.get("tableId") or (job.subject if job.kind.startswith("tables.") else None),
        "operationName": OPERATION_NAMES.get(job.kind, job.kind),
        "operationParams": params,
        "createdTime": ts(job.created_at),
        "startTime": ts(job.started_at),
        "endTime": ts(job.finished_at),
        "runId": job.run_id,
        "results": job.results if job.status == SUCCEEDED else None,
        "creatorToken": {"id": str(creator.id), "description": creator.description} if creator else None,
        "metrics": {
            "inCompressed": False,
            "inBytes": 0,
            "inBytesUncompressed": 0,
            "outCompressed": False,
            "outBytes": 0,
            "outBytesUncompressed": 0,
        },
        # entrepot extensions
        "progress": job.progress,
        "attempt": job.attempt,
    }
    if job.status in (FAILED, CANCELLED):
        error = dict(job.error or {})
        if job.status == CANCELLED:
            error["code"] = "storage.jobCancelled"
            error.setdefault("message", "the job was cancelled")
        error.setdefault("message", "the job failed")
        error.setdefault("code", "storage.jobFailed")
        error.setdefault("exceptionId", None)
        out["error"] = error
    return out


def _now() -> datetime:
    from entrepot.core.clock import utcnow

    return utcnow()
