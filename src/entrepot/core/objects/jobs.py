"""Background work of object spaces: purging a removed space's blobs, and the maintenance sweep."""

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


def purge_job(ctx: JobContext[Services]) -> dict[str, Any]:
    """Remove every blob of a space whose catalog rows are already gone."""
    space_id = ctx.params.get("spaceId")
    if not isinstance(space_id, int):
        raise InvalidInput("spaceId must be a number")
    with ctx.services.catalog.session(readonly=True) as s:
        if s.get(Space, space_id) is not None:  # never purge the bytes of a live space
            return {"spaceId": space_id, "blobsRemoved": 0, "skipped": "the space exists"}
    removed = ctx.services.blobs.delete_prefix(f"spaces/{space_id}")
    return {"spaceId": space_id, "blobsRemoved": removed}


def sweep(services: Services) -> dict[str, int]:
    """Remove spaces past their expiry and grace period; abort stale multipart uploads."""
    settings = services.settings
    removed = 0
    for project_id, space_id, name in spaces.expired_spaces(
        services.catalog, timedelta(days=settings.expired_space_grace_days)
    ):
        if spaces.remove_space(services, project_id, space_id):
            log.info("removed expired space %s (id %s) of project %s", name, space_id, project_id)
            removed += 1
    aborted = multipart.abort_stale_uploads(services, timedelta(hours=settings.multipart_max_age_hours))
    if aborted:
        log.info("aborted %d stale multipart upload(s)", aborted)
    return {"spacesRemoved": removed, "uploadsAborted": aborted}


def register_jobs(registry: JobRegistry[Services]) -> None:
    registry.register("spaces.purge", purge_job)
    registry.register_periodic("spaces.sweep", sweep)
