"""Whether a caller may run a script in a project.

1. **The project.** It must exist and be enabled, and a token acts only on its own project
   (anonymous callers may read public tables of any project).
2. **The script.** :func:`prepare` parses it against the project's namespace
   (``dialect.parse``, which enforces ``policy.py``), then :func:`authorize` checks every
   table: a table read needs read access to its bucket, a table written write access.
   Anonymous callers may read tables whose privacy is public or link, and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from entrepot.core import errors as E
from entrepot.core.auth import Principal
from entrepot.core.catalog import Project
from entrepot.core.engine.tables import TableRef
from entrepot.core.projects import get_project
from entrepot.core.sql import dialect
from entrepot.core.sql.catalog_sync import stored_table
from entrepot.core.sql.dialect import Statement
from entrepot.core.sql.namespace import ensure_default_bucket, namespace
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


def authorize(
    services: Services, principal: Principal, project: Project, statements: Sequence[Statement]
) -> None:
    """Raise ``PermissionDenied``/``Unauthenticated`` unless ``principal`` may run every statement."""
    for st in statements:
        for ref in st.writes:
            if principal.anonymous:
                raise E.PermissionDenied(
                    f"permission denied for table {ref.name}: the default public key may only read public "
                    "tables; send an api_key with write permission",
                    code="sql.permissionDenied",
                )
            if principal.bucket_access(ref.schema) != "write":
                raise E.PermissionDenied(
                    f"permission denied for table {ref.name}: this key may not write bucket {ref.schema}",
                    code="sql.permissionDenied",
                )
        for ref in st.reads:
            if principal.anonymous:
                privacy = _privacy(services, project, ref)
                if privacy is None:
                    raise E.InvalidInput(f'relation "{ref.name}" does not exist', code="sql.missingRelation")
                if privacy not in ("public", "link"):
                    raise E.PermissionDenied(
                        f"permission denied for table {ref.name}: it is private; send an api_key with read "
                        "permission",
                        code="sql.permissionDenied",
                    )
            elif principal.bucket_access(ref.schema) is None:
                raise E.PermissionDenied(
                    f"permission denied for table {ref.name}: this key may not read bucket {ref.schema}",
                    code="sql.permissionDenied",
                )
