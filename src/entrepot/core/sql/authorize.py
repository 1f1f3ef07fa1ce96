"""Whether a caller may run a script in a project.

1. **The project.** It must exist and be enabled, and a token acts only on its own project
   (anonymous callers may read public tables of any project).
2. **The script.** :func:`prepare` parses it against the project's namespace
   (``dialect.parse``, which enforces ``policy.py``), then :func:`authorize` checks every
   table (:func:`authorize`): a read needs ``select``, a write the permission of its kind,
   from the bucket's access or a CARTO key's table grants. Anonymous callers may read tables
   whose privacy is public or link, and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from entrepot.core import errors as E
from entrepot.core.auth import Principal, TablePermission
from entrepot.core.catalog import Project
from entrepot.core.engine.tables import TableRef
from entrepot.core.projects import get_project
from entrepot.core.sql import dialect
from entrepot.core.sql.catalog_sync import stored_table
from entrepot.core.sql.dialect import Statement
from entrepot.core.sql.namespace import ensure_default_bucket, namespace
from entrepot.core.sql.ownership import CREATE_KINDS, new_tables
from entrepot.core.sql.policy import Limits

if TYPE_CHECKING:
    from entrepot.core.services import Services


def find_project(services: Services, project: str | int) -> Project:
    """The project named (or numbered) ``project``; ``NotFound`` in CARTO's words otherwise."""
    try:
        row = get_project(services.catalog, project)
    except E.NotFound:
        row = None
    if row is None or row.disabled:
        raise E.NotFound(
            f"Sorry, we can't find CARTO user '{project}'. Please check that you have entered "
            "the correct domain.",
            code="sql.unknownUser",
        )
    return row


def check_member(principal: Principal, project: Project) -> None:
    """A token may only act on its own project (anonymous callers may read public tables anywhere)."""
    if not principal.anonymous and principal.project_id != project.id:
        raise E.PermissionDenied(
            f"permission denied: this key does not belong to user {project.name!r}", code="sql.otherProject"
        )


def member_project(services: Services, principal: Principal, project: str | int) -> Project:
    """``project``, checked to exist and to be one ``principal`` may act on."""
    row = find_project(services, project)
    check_member(principal, row)
    return row


def prepare(
    services: Services, principal: Principal, project: str | int, sql: str
) -> tuple[Project, list[Statement]]:
    """Parse and authorise ``sql`` for ``principal`` in ``project``."""
    row = member_project(services, principal, project)
    ensure_default_bucket(services, row)
    limits = Limits(
        max_tokens=services.settings.sql_max_statement_tokens,
        max_query_blocks=services.settings.sql_max_query_blocks,
    )
    statements = dialect.parse(sql, namespace(services, row, principal), limits)
    authorize(services, principal, row, statements)
    return row, statements


def _privacy(services: Services, project: Project, ref: TableRef) -> str | None:
    with services.catalog.session(readonly=True) as s:
        row = stored_table(s, project, ref)
        return row.privacy if row is not None else None


# a write statement's kind -> the CARTO table permission it needs (a key's table grants); other
# writes (DROP, ALTER, TRUNCATE, CDB_CartodbfyTable) need write access to the whole bucket
WRITE_PERMISSION: dict[str, TablePermission] = {
    "insert": "insert",
    "copy_from": "insert",
    "update": "update",
    "delete": "delete",
}


def _denied(ref: TableRef, why: str) -> E.PermissionDenied:
    """PostgreSQL's (and so CARTO's) words, with what to do about it as the hint."""
    return E.PermissionDenied(
        f"permission denied for table {ref.name}", code="sql.permissionDenied", details={"hint": why}
    )


def _may_write(principal: Principal, kind: str, ref: TableRef) -> bool:
    if kind in CREATE_KINDS:
        return principal.may_create_in(ref.schema)
    permission = WRITE_PERMISSION.get(kind)
    if permission is None:
        return principal.bucket_access(ref.schema) == "write" or principal.owns(ref.schema, ref.name)
    return principal.table_permits(ref.schema, ref.name, permission)


def authorize(
    services: Services, principal: Principal, project: Project, statements: Sequence[Statement]
) -> None:
    """Raise ``PermissionDenied``/``Unauthenticated`` unless ``principal`` may run every statement.

    A write needs the permission of its kind (``WRITE_PERMISSION``: a table grant or write access
    to the bucket); CREATE TABLE a schema grant or bucket write; other DDL bucket write. A read
    needs ``select`` (a grant or read access to the bucket), and so does a write that reads its
    target's columns (``Statement.reads_target``). The anonymous caller (CARTO's default public
    key) reads public and link tables only; a CARTO key reads them too, as CARTO's regular keys
    inherit the default public key's datasets. A CARTO key owns the tables it creates
    (``ownership.py``): the script's later statements may do anything to them.
    """
    if not principal.may_use_api("sql"):
        raise E.PermissionDenied(
            "permission denied",
            code="sql.apiNotGranted",
            details={"hint": f"the API key {principal.api_key_name} is not granted the SQL API"},
        )
    created = set(new_tables(services, project, statements)) if principal.api_key_name else set()
    for st in statements:
        for ref in st.writes:
            if principal.anonymous:
                raise _denied(
                    ref,
                    "the default public key may only read public tables; send an api_key with write permission",
                )
            if ref == st.renamed_to and st.target is not None:
                ref = st.target  # a rename's new name: whoever may alter the table may name it
            if not _may_write(principal, st.kind, ref):
                what = WRITE_PERMISSION.get(st.kind) or ("create" if st.kind in CREATE_KINDS else "write")
                raise _denied(ref, f"this key may not {what} table {ref.schema}.{ref.name}")
            if st.reads_target and not principal.table_permits(ref.schema, ref.name, "select"):
                raise _denied(ref, f"this statement reads the columns of {ref.name}, which needs select too")
            if st.kind in CREATE_KINDS and ref in created:
                principal = principal.owning(ref.schema, ref.name)
        for ref in st.reads:
            if not principal.anonymous and principal.table_permits(ref.schema, ref.name, "select"):
                continue
            if principal.anonymous or principal.api_key_name is not None:
                privacy = _privacy(services, project, ref)
                if privacy is None:
                    raise E.InvalidInput(f'relation "{ref.name}" does not exist', code="sql.missingRelation")
                if privacy in ("public", "link"):
                    continue
                raise _denied(ref, "it is private; send an api_key with select permission on it")
            raise _denied(ref, f"this key may not read bucket {ref.schema}")
