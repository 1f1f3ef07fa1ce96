"""Who may see a job: one rule, used by every face that shows jobs.

A job of a project is visible to a token of that project when

* the token is a master token (it sees every job of its project), or
* the token started the job (``Job.token_id``), or
* the token may read the job's *subject*, which the job's kind says how to read:

  ============  ===================  ==================================================
  kind          subject              readable when
  ============  ===================  ==================================================
  ``tables.*``  a table id           the token may read the table's bucket
  ``buckets.*`` a bucket id          the token may read the bucket
  ``exports.*`` ``export:<uuid>``    the export is the token's owner's (core/exports' rule)
  ``files.*``   a file id            the token may see the file (its own, or all files)
  ``spaces.*``  ``space:<id>``       the token may read the space (a deleted space: only
                                     a token that may read every space)
  ============  ===================  ==================================================

Every other job (SQL batch jobs, whose params are SQL text; diagnostics; plugin kinds) is
seen by its own token and master tokens only. Anonymous callers see no job.

A job carries its subject's data (a table export's download URL, an import's source, the
SQL of a batch), so whoever sees a job may see all of it: the rule above is what protects
those results. An invisible job is "not found", exactly like one that does not exist, and
is absent from listings. The rule is one SQL condition (:func:`visible_to`), so listings
filter in the catalog and pages stay full; :func:`can_see` asks the same condition of one job.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, cast, false, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from entrepot.core.auth import ACCESS_LEVELS, Principal
from entrepot.core.catalog import Catalog, ExportJob, File, Job, Space


def visible_to(principal: Principal) -> ColumnElement[bool]:
    """The condition on :class:`Job` rows that ``principal`` may see (project included)."""
    if principal.anonymous or principal.project_id is None:
        return false()
    in_project = Job.project_id == principal.project_id
    if principal.is_master:
        return in_project
    return in_project & or_(Job.token_id == principal.token_id, *_readable_subjects(principal))


def can_see(catalog: Catalog, principal: Principal, job: Job | int) -> bool:
    """Whether ``principal`` may see ``job`` (a row or an id): :func:`visible_to` for one job."""
    job_id = job if isinstance(job, int) else job.id
    with catalog.session(readonly=True) as s:
        return s.scalar(select(Job.id).where(Job.id == job_id, visible_to(principal))) is not None


def _kind(prefix: str) -> ColumnElement[bool]:
    return Job.kind.startswith(prefix, autoescape=True)


def _readable_subjects(principal: Principal) -> list[ColumnElement[bool]]:
    """One condition per kind of subject: the jobs whose subject the principal may read."""
    project = principal.project_id
    out: list[ColumnElement[bool]] = []
    # tables and buckets: bucket read access (table ids are "<bucket id>.<name>", names have no dots)
    if principal.can_manage_buckets:
        out += [_kind("tables."), _kind("buckets.")]
    else:
        buckets = sorted(b for b, level in principal.bucket_permissions.items() if level in ACCESS_LEVELS)
        if buckets:
            out.append(
                _kind("tables.") & or_(*(Job.subject.startswith(f"{b}.", autoescape=True) for b in buckets))
            )
            out.append(_kind("buckets.") & Job.subject.in_(buckets))
    # exports: the owner's exports (a master token was handled above)
    exports: Any = select(literal("export:", String) + ExportJob.uuid).where(
        ExportJob.project_id == project, ExportJob.owner == principal.owner_key
    )
    out.append(_kind("exports.") & Job.subject.in_(exports))
    # files: the token's own files, or every file with canReadAllFileUploads
    if principal.can_read_all_file_uploads:
        out.append(_kind("files."))
    else:
        own_files: Any = select(cast(File.id, String)).where(
            File.project_id == project, File.token_id == principal.token_id
        )
        out.append(_kind("files.") & Job.subject.in_(own_files))
    # spaces: space read access (a job on a deleted space: only who may read every space)
    if principal.can_manage_spaces:
        out.append(_kind("spaces."))
    else:
        names = sorted(n for n, level in principal.space_permissions.items() if level in ACCESS_LEVELS)
        if names:
            spaces: Any = select(literal("space:", String) + cast(Space.id, String)).where(
                Space.project_id == project, Space.name.in_(names)
            )
            out.append(_kind("spaces.") & Job.subject.in_(spaces))
    return out or [false()]
