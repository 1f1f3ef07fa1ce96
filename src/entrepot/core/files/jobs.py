"""The ``files.delete`` job: a file's deletion queued for a worker.

Params are ``{"v": 2, "file_id": <id>}``; jobs queued by an older server carry ``{"fileId": <id>}``
and are upgraded when they run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from entrepot.core.errors import InvalidInput
from entrepot.core.files.rows import delete_now
from entrepot.core.jobs import JobContext, JobRegistry

if TYPE_CHECKING:
    from entrepot.core.services import Services

DELETE_JOB = "files.delete"
PARAMS_VERSION = 2


def delete_params(file_id: int) -> dict[str, Any]:
    """The params of a ``files.delete`` job that deletes ``file_id``."""
    return {"v": PARAMS_VERSION, "file_id": file_id}


def _upgrade_params(params: dict[str, Any]) -> dict[str, Any]:
    """Params of any version as version 2 (version 1: unversioned, ``fileId``)."""
    if params.get("v") == PARAMS_VERSION:
        return params
    return {"v": PARAMS_VERSION, "file_id": params.get("fileId")}


def _delete_job(ctx: JobContext[Services]) -> dict[str, Any]:
    params = _upgrade_params(dict(ctx.params or {}))
    try:
        file_id = int(params["file_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput("files.delete needs an integer file id") from exc
    delete_now(ctx.services, ctx.project_id, file_id)
    return {"id": file_id, "deleted": True}


def register_jobs(registry: JobRegistry[Services]) -> None:
    registry.register(DELETE_JOB, _delete_job)
