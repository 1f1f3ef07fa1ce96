"""A CARTO key owns the tables it creates, as a PostgreSQL role owns the tables it creates.

In CARTO a regular key is a database role; a key granted ``create`` on a schema makes tables
there that it owns: it may read, write, alter and drop them, and its key JSON lists them. Here
a key is a token with grants (``core/api_keys.py``), so owning is one more grant: every table
permission, marked ``"owner"`` (``Principal.owns``: DDL on it), naming the table by ``uuid`` so
it follows a rename and ends with a drop (``auth.token_principal``).

:func:`new_tables` says which tables a script creates (they do not exist yet: ``CREATE TABLE IF
NOT EXISTS`` over someone else's table owns nothing); :func:`adopt` records them once they are
committed. Within the creating script, ``authorize`` already treats them as owned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from entrepot.core.auth import TABLE_PERMISSIONS, Principal
from entrepot.core.catalog import CartoApiKey, Project
from entrepot.core.engine.tables import TableRef
from entrepot.core.sql.catalog_sync import stored_table
from entrepot.core.sql.dialect import Statement
from entrepot.core.sql.namespace import DEFAULT_SCHEMA

if TYPE_CHECKING:
    from entrepot.core.services import Services

CREATE_KINDS = frozenset({"create_table", "create_table_as"})


def new_tables(services: Services, project: Project, statements: Sequence[Statement]) -> list[TableRef]:
    """The tables ``statements`` create that do not exist yet (in script order)."""
    targets = [st.target for st in statements if st.kind in CREATE_KINDS and st.target is not None]
    if not targets:
        return []
    with services.catalog.session(readonly=True) as s:
        return [ref for ref in dict.fromkeys(targets) if stored_table(s, project, ref) is None]


def adopt(services: Services, principal: Principal, project: Project, refs: Iterable[TableRef]) -> None:
    """Make ``principal``'s CARTO key the owner of ``refs`` (created by it, now committed).

    Nothing for a token that is no CARTO key (the master key owns everything already).
    """
    refs = list(refs)
    if principal.api_key_name is None or principal.token_id is None or not refs:
        return
    with services.catalog.session() as s:
        key = s.scalar(select(CartoApiKey).where(CartoApiKey.token_id == principal.token_id))
        if key is None:
            return
        grants: list[dict[str, Any]] = list(key.tables or [])
        for ref in refs:
            row = stored_table(s, project, ref)
            if row is None:  # the script dropped it again
                continue
            grants = [g for g in grants if g.get("uuid") != row.uuid]
            grants.append(
                {
                    "schema": project.name if ref.schema == DEFAULT_SCHEMA else ref.schema,
                    "name": row.name,
                    "bucket": ref.schema,
                    "table": row.name,
                    "uuid": row.uuid,
                    "permissions": list(TABLE_PERMISSIONS),
                    "owner": True,
                }
            )
        key.tables = grants
