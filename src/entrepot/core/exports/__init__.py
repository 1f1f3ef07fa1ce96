"""The Export API's core (seed 004): export jobs with filters into csv/json/parquet/excel, and templates.

* :mod:`.spec` validates and normalises formats, filters and options;
* :mod:`.query` compiles filters to one parameterised DuckDB query over a lake table;
* :mod:`.writer` writes the rows with ``COPY ... TO`` and reports progress;
* :mod:`.jobs` is the service (create, list, cancel, retry, delete, download) and the job;
* :mod:`.templates` holds saved configurations (user, shared and built-in system ones).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from entrepot.core.jobs import JobRegistry

if TYPE_CHECKING:
    from entrepot.core.services import Services


def register_jobs(registry: JobRegistry[Services]) -> None:
    from entrepot.core.exports import jobs

    registry.register(jobs.KIND, jobs.run)
    registry.register_periodic("exports.expire_files", jobs.expire_files)
