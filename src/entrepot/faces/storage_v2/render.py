"""Keboola's vocabulary: timestamps, the error envelope, and the Token and Job objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from starlette.responses import JSONResponse, Response

from entrepot.core.jobs import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED
from entrepot.core.jobs.views import JobView
from entrepot.core.projects import ProjectView
from entrepot.core.services import Services
from entrepot.core.tokens import TokenView
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


# The core's error codes name no API ("tables.notFound"); Keboola's carry its "storage." prefix
# for the Storage API's own areas, and two token codes have names of their own.
_KEBOOLA_AREAS = ("tables.", "buckets.", "files.", "metadata.", "jobs.", "tokens.")
_KEBOOLA_CODES = {"tokens.invalid": "storage.tokenInvalid", "tokens.expired": "storage.tokenExpired"}


def keboola_code(code: str) -> str:
    """The Keboola spelling of a core error code (``tables.notFound`` → ``storage.tables.notFound``)."""
    if code in _KEBOOLA_CODES:
        return _KEBOOLA_CODES[code]
    return "storage." + code if code.startswith(_KEBOOLA_AREAS) else code


def render_error(request: Request, problem: Problem) -> Response:
    body = {
        "error": problem.message,
        "code": keboola_code(problem.code),
        "status": "error",
        "exceptionId": problem.exception_id,
    }
    return JSONResponse(body, status_code=problem.status, headers=problem.headers)


def project_json(services: Services, project: ProjectView) -> dict[str, Any]:
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
        "isDisabled": project.is_disabled,
        "dataRetentionTimeInDays": 7,
        "fileStorageProvider": "aws",
        "assignedBackends": [backend],
    }


def token_json(services: Services, row: TokenView) -> dict[str, Any]:
    """The Keboola Token object; ``token`` (the secret) only when it was just issued."""
    base = services.settings.effective_public_url
    creator = row.creator
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
        "isExpired": row.is_expired,
        "isDisabled": row.is_disabled,
        "dailyCapacity": 0,
        "bucketPermissions": dict(row.bucket_permissions or {}),
        "componentAccess": [],
        "creatorToken": {"id": str(creator.id), "description": creator.description} if creator else None,
        "lastUsed": ts(row.last_used_at),
        # entrepot extensions: object-space permissions
        "canManageSpaces": row.can_manage_spaces,
        "spacePermissions": dict(row.space_permissions or {}),
        "ownerName": row.owner,  # the user (exports and templates); "owner" is Keboola's project
        "owner": project_json(services, row.project),
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
    if row.secret is not None:
        out["token"] = row.secret
    return out


def job_json(services: Services, job: JobView) -> dict[str, Any]:
    base = services.settings.effective_public_url
    params = operation_params(job)
    creator = job.creator
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
        error["code"] = keboola_code(error.get("code") or "storage.jobFailed")
        error.setdefault("exceptionId", None)
        out["error"] = error
    return out


# Kinds whose params Keboola clients have seen in camelCase (``tableId``, ``dataFileId``): the
# core keeps them snake_case and versioned (``"v": 2``), so they are renamed back here.
_KEBOOLA_NAMED_PARAMS = frozenset({*OPERATION_NAMES, "spaces.purge"})


def operation_params(job: JobView) -> dict[str, Any]:
    """A job's ``operationParams``: its params in Keboola's names, as clients have always seen them."""
    if job.kind not in _KEBOOLA_NAMED_PARAMS or job.params.get("v") != 2:
        return dict(job.params)  # an older server's params are already in Keboola's names
    return {_camel(key): _camel_keys(value) for key, value in job.params.items() if key != "v"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _camel_keys(value: Any) -> Any:
    """``value``, with the keys of the objects of a list renamed (``whereFilters`` items' ``dataType``)."""
    if isinstance(value, list):
        return [{_camel(k): v for k, v in item.items()} if isinstance(item, dict) else item for item in value]
    return value
