"""Job kinds of buckets and tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from entrepot.core.jobs import JobRegistry
from entrepot.core.tables import buckets, load, tables

if TYPE_CHECKING:
    from entrepot.core.services import Services


def register_jobs(registry: JobRegistry[Services]) -> None:
    registry.register("tables.create", load.create_job)
    registry.register("tables.import", load.import_job)
    registry.register("tables.drop", tables.drop_job)
    registry.register("tables.add_primary_key", tables.add_primary_key_job)
    registry.register("tables.remove_primary_key", tables.remove_primary_key_job)
    registry.register("tables.optimize", tables.optimize_job)
    registry.register("buckets.delete", buckets.delete_job)
