"""Background work of object spaces: purging a removed space's blobs, and the maintenance sweep.

A space's catalog rows go in one transaction; its blobs (possibly millions) are removed by a
durable ``spaces.purge`` job queued in the same request, with params
``{"v": 2, "space_id": <id>}``. Jobs queued by an older server carry ``{"spaceId": <id>}``
and are read through :func:`_upgrade_params`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from entrepot.core.catalog import Space
from entrepot.core.errors import InvalidInput
from entrepot.core.jobs import JobRegistry
from entrepot.core.jobs.registry import JobContext
from entrepot.core.objects import multipart, spaces

if TYPE_CHECKING:
    from entrepot.core.services import Services

log = logging.getLogger("entrepot.spaces")

PURGE = "spaces.purge"
PARAMS_VERSION = 2


def queue_purge(services: Services, project_id: int, space_id: int, token_id: int | None) -> None:
    """Queue the removal of every blob of a space whose catalog rows are gone."""
    services.jobs.submit(
        project_id,
        PURGE,
        {"v": PARAMS_VERSION, "space_id": space_id},
        token_id=token_id,
        subject=f"space:{space_id}",
    )


def _upgrade_params(params: dict[str, Any]) -> dict[str, Any]:
    """A purge job's params in the current version; version 1 (unversioned) was ``{"spaceId": id}``."""
    if params.get("v", 1) == 1:
        return {"v": PARAMS_VERSION, "space_id": params.get("spaceId")}
    return params


def purge_job(ctx: JobContext[Services]) -> dict[str, Any]:
    """Remove every blob of a space whose catalog rows are already gone."""
    space_id = _upgrade_params(ctx.params).get("space_id")
    if not isinstance(space_id, int):
        raise InvalidInput("space_id must be a number")
    with ctx.services.catalog.session(readonly=True) as s:
        if s.get(Space, space_id) is not None:  # never purge the bytes of a live space
            return {"spaceId": space_id, "blobsRemoved": 0, "skipped": "the space exists"}
    removed = ctx.services.blobs.delete_prefix(f"spaces/{space_id}")
    return {"spaceId": space_id, "blobsRemoved": removed}


def remove_space(services: Services, project_id: int, space_id: int) -> bool:
    """Delete a space's rows (objects and uploads cascade) and queue its blob purge."""
    with services.catalog.session() as s:
        space = s.get(Space, space_id)
        if space is None:
            return False
        s.delete(space)
    queue_purge(services, project_id, space_id, None)
    return True


def sweep(services: Services) -> dict[str, int]:
    """Remove spaces past their expiry and grace period; abort stale multipart uploads."""
    settings = services.settings
    removed = 0
    for project_id, space_id, name in spaces.expired_spaces(
        services.catalog, timedelta(days=settings.expired_space_grace_days)
    ):
        if remove_space(services, project_id, space_id):
            log.info("removed expired space %s (id %s) of project %s", name, space_id, project_id)
            removed += 1
    aborted = multipart.abort_stale_uploads(services, timedelta(hours=settings.multipart_max_age_hours))
    if aborted:
        log.info("aborted %d stale multipart upload(s)", aborted)
    return {"spaces_removed": removed, "uploads_aborted": aborted}


def register_jobs(registry: JobRegistry[Services]) -> None:
    registry.register(PURGE, purge_job)
    registry.register_periodic("spaces.sweep", sweep)
