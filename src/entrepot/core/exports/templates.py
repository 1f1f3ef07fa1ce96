"""Export templates: saved ``{format, filters, options}`` configurations.

* ``system`` templates are built in: every project has them, nobody may change them.
* ``shared`` templates are visible to the whole project; only their owner changes them.
* ``user`` templates are visible to their owner only (anyone else gets "not found").

A project's master token sees and manages every template of its project except the system
ones. ``usage_count`` counts the exports created from a template.
"""

from __future__ import annotations

import enum
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

import entrepot.core.exports.spec as spec
from entrepot.core import errors as E
from entrepot.core.auth import Principal
from entrepot.core.catalog import ExportTemplate
from entrepot.core.clock import utcnow
from entrepot.core.ids import parse_uuid

if TYPE_CHECKING:
    from entrepot.core.services import Services

TYPES = ("user", "system", "shared")
NOT_FOUND = "Export template not found"
FORBIDDEN = "You do not have permission to modify this template"
FIELDS = ("name", "description", "template_type", "is_active", "configuration")

# key -> (name, description, format, filters, options)
SYSTEM_TEMPLATES: dict[str, tuple[str, str, str, dict[str, Any], dict[str, Any]]] = {
    "full-csv": ("Full CSV export", "Every row and column as UTF-8 CSV with a header row", "csv", {}, {}),
    "full-parquet": ("Full Parquet export", "Every row and column as Parquet (snappy)", "parquet", {}, {}),
    "excel-headers": (
        "Excel with headers",
        "Every row and column as an Excel sheet with a header row (formulas escaped)",
        "excel",
        {},
        {"include_headers": True},
    ),
    "json-lines": (
        "JSON lines export",
        "Every row as one JSON object per line",
        "json",
        {},
        {"json_format": "lines"},
    ),
}


class Missing(enum.Enum):
    """The value of a field a request did not send (a partial update leaves it as it is)."""

    MISSING = "missing"


MISSING = Missing.MISSING


@dataclass(frozen=True)
class TemplateFields:
    """A template as a request sent it: JSON values, checked by :func:`create` and :func:`update`.

    ``unknown_fields`` are the names the request sent that a template does not have.
    """

    name: Any = MISSING
    description: Any = MISSING
    template_type: Any = MISSING
    is_active: Any = MISSING
    configuration: Any = MISSING
    unknown_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class TemplateView:
    """A template as the faces show it."""

    id: str
    name: str
    description: str
    template_type: str
    format: str
    configuration: dict[str, Any]
    is_active: bool
    usage_count: int
    has_filters: bool
    owner: str | None
    created_at: datetime
    updated_at: datetime


def template_view(row: ExportTemplate) -> TemplateView:
    return TemplateView(
        id=row.uuid,
        name=row.name,
        description=row.description,
        template_type=row.template_type,
        format=row.format,
        configuration=row.configuration,
        is_active=row.is_active,
        usage_count=row.usage_count,
        has_filters=bool((row.configuration or {}).get("filters")),
        owner=row.owner,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _configuration(fmt: str, filters: Any, options: Any) -> dict[str, Any]:
    """What a template stores: the filters and options as written (checked by :func:`spec.normalize`)."""
    spec.normalize(fmt, filters, options)
    return _stored(fmt, filters, options)


def _stored(fmt: str, filters: Any, options: Any) -> dict[str, Any]:
    return {"format": fmt, "filters": dict(filters or {}), "options": dict(options or {})}


def ensure_system(services: Services, project_id: int) -> None:
    """Create the project's built-in templates that are missing (idempotent, race-safe)."""
    with services.catalog.session(readonly=True) as s:
        have = set(
            s.scalars(
                select(ExportTemplate.system_key).where(
                    ExportTemplate.project_id == project_id, ExportTemplate.system_key.is_not(None)
                )
            )
        )
    missing = [k for k in SYSTEM_TEMPLATES if k not in have]
    for key in missing:
        name, description, fmt, filters, options = SYSTEM_TEMPLATES[key]
        now = utcnow()
        try:
            with services.catalog.session() as s:
                s.add(
                    ExportTemplate(
                        uuid=str(uuidlib.uuid4()),
                        project_id=project_id,
                        name=name,
                        description=description,
                        template_type="system",
                        system_key=key,
                        format=fmt,
                        configuration=_configuration(fmt, filters, options),
                        is_active=True,
                        usage_count=0,
                        owner=None,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            pass  # another request created it first


def _visible(principal: Principal) -> Any:
    cond = ExportTemplate.project_id == principal.project_id
    if not principal.is_master:
        cond = cond & or_(
            ExportTemplate.template_type.in_(("system", "shared")),
            ExportTemplate.owner == principal.owner_key,
        )
    return cond


def _key(template_id: Any) -> str:
    key = parse_uuid(template_id)
    if key is None:
        raise E.NotFound(NOT_FOUND, code="exports.templateNotFound")
    return key


def get(services: Services, principal: Principal, template_id: Any) -> ExportTemplate:
    principal.require_authenticated()
    ensure_system(services, principal.project_id or 0)
    key = _key(template_id)
    with services.catalog.session(readonly=True) as s:
        row = s.scalar(select(ExportTemplate).where(ExportTemplate.uuid == key, _visible(principal)))
    if row is None:
        raise E.NotFound(NOT_FOUND, code="exports.templateNotFound")
    return row


def usable(services: Services, principal: Principal, template_id: Any) -> ExportTemplate:
    """A template an export may be created from: visible and active."""
    if not isinstance(template_id, str):
        raise spec.FieldError({"template": "must be the id of an export template"})
    row = get(services, principal, template_id)
    if not row.is_active:
        raise spec.FieldError({"template": f"template {row.name!r} is inactive; activate it or pick another"})
    return row


def list_templates(
    services: Services,
    principal: Principal,
    *,
    type: str | None = None,
    format: str | None = None,
    search: str | None = None,
) -> list[ExportTemplate]:
    """Templates the caller sees: system first, then by name."""
    principal.require_authenticated()
    ensure_system(services, principal.project_id or 0)
    conds = [_visible(principal)]
    errors = spec.FieldErrors()
    if type:
        if type not in TYPES:
            errors.add("type", f"must be one of: {', '.join(TYPES)}")
        conds.append(ExportTemplate.template_type == type)
    if format:
        with errors.check():
            conds.append(ExportTemplate.format == spec.check_format(format))
    errors.raise_if_any()
    if search:
        needle = f"%{search.lower().replace('%', '').replace('_', '')}%"
        conds.append(
            or_(
                func.lower(ExportTemplate.name).like(needle),
                func.lower(ExportTemplate.description).like(needle),
            )
        )
    order = (ExportTemplate.template_type != "system", func.lower(ExportTemplate.name), ExportTemplate.id)
    with services.catalog.session(readonly=True) as s:
        return list(s.scalars(select(ExportTemplate).where(*conds).order_by(*order)))


def _given(value: Any) -> Any:
    return None if value is MISSING else value


def _clean(fields: TemplateFields | None, *, partial: bool) -> dict[str, Any]:
    """The checked fields of a template (None: the request's body was no JSON object); one
    ``FieldError`` names every bad field."""
    if fields is None:
        raise spec.FieldError({"body": "must be a JSON object"})
    errors = spec.FieldErrors()
    for key in fields.unknown_fields:
        errors.add(key, f"unknown field; a template has {', '.join(FIELDS)}")
    out: dict[str, Any] = {}
    if fields.name is not MISSING or not partial:
        name = _given(fields.name)
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            errors.add("name", "is required: 1-255 characters")
        else:
            out["name"] = name.strip()
    if fields.description is not MISSING:
        description = fields.description or ""
        if not isinstance(description, str) or len(description) > 10000:
            errors.add("description", "must be a string of at most 10000 characters")
        else:
            out["description"] = description
    if fields.template_type is not MISSING:
        kind = fields.template_type
        if kind not in ("user", "shared"):
            errors.add("template_type", "must be user or shared (system templates are built in)")
        else:
            out["template_type"] = kind
    if fields.is_active is not MISSING:
        if not isinstance(fields.is_active, bool):
            errors.add("is_active", "must be true or false")
        else:
            out["is_active"] = fields.is_active
    if fields.configuration is not MISSING or not partial:
        config = _given(fields.configuration)
        if not isinstance(config, Mapping):
            errors.add(
                "configuration", 'is required: an object {"format": ..., "filters": ..., "options": ...}'
            )
        else:
            for key in sorted(set(config) - {"format", "filters", "options"}):
                errors.add(f"configuration.{key}", "unknown key; use format, filters and options")
            # the fields of a configuration are named like an export's (format, filters.limit, ...)
            filters, options = config.get("filters"), config.get("options")
            fmt, _, _ = spec.normalize_checked(config.get("format"), filters, options, errors)
            if not errors and fmt is not None:
                out["configuration"] = _stored(fmt, filters, options)
                out["format"] = fmt
    errors.raise_if_any()
    return out


def create(services: Services, principal: Principal, fields: TemplateFields | None) -> ExportTemplate:
    principal.require_authenticated()
    values = _clean(fields, partial=False)
    now = utcnow()
    with services.catalog.session() as s:
        row = ExportTemplate(
            uuid=str(uuidlib.uuid4()),
            project_id=principal.project_id,
            name=values["name"],
            description=values.get("description", ""),
            template_type=values.get("template_type", "user"),
            system_key=None,
            format=values["format"],
            configuration=values["configuration"],
            is_active=values.get("is_active", True),
            usage_count=0,
            owner=principal.owner_key,
            token_id=principal.token_id,
            created_at=now,
            updated_at=now,
        )
        s.add(row)
    return row


def _modifiable(services: Services, principal: Principal, template_id: Any) -> ExportTemplate:
    row = get(services, principal, template_id)
    if row.template_type == "system" or (not principal.is_master and row.owner != principal.owner_key):
        raise E.PermissionDenied(FORBIDDEN, code="exports.templateForbidden")
    return row


def update(
    services: Services, principal: Principal, template_id: Any, fields: TemplateFields | None
) -> ExportTemplate:
    row = _modifiable(services, principal, template_id)
    values = _clean(fields, partial=True)
    with services.catalog.session() as s:
        fresh = s.get(ExportTemplate, row.id)
        if fresh is None:
            raise E.NotFound(NOT_FOUND, code="exports.templateNotFound")
        for key, value in values.items():
            setattr(fresh, key, value)
        fresh.updated_at = utcnow()
    return fresh


def delete(services: Services, principal: Principal, template_id: Any) -> None:
    row = _modifiable(services, principal, template_id)
    with services.catalog.session() as s:
        fresh = s.get(ExportTemplate, row.id)
        if fresh is not None:
            s.delete(fresh)
