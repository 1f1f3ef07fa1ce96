"""Named maps: templates kept per project, and their placeholders filled in safely.

A template is CARTO's document: ``version`` (``0.0.1``), ``name`` (its id), ``auth``
(``{"method": "open"}`` or ``{"method": "token", "valid_tokens": [...]}``), ``placeholders``
(``{"name": {"type", "default"}}``), ``layergroup`` (a MapConfig) and ``view``. Only a master
key manages templates; whoever the template's auth lets in instantiates it, and its layers then
read as the project's owner (CARTO's rule: a named map shows what its owner chose to show).

Placeholders (``<%= name %>`` in a layer's ``sql`` and ``cartocss``) are checked by type before
they are put in: ``number`` must be a number, ``css_color`` a ``#rgb``/``#rrggbb`` colour or a
colour word, ``sql_ident`` a plain identifier (letters, digits, ``_``), and ``sql_literal``
has its single quotes doubled, so inside the template's quotes it stays one string. The filled
SQL is then parsed and authorised like any other (``layergroups.instantiate``).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from entrepot.core import errors as E
from entrepot.core.auth import Principal
from entrepot.core.catalog import MapTemplate, Project
from entrepot.core.clock import utcnow
from entrepot.core.maps import config as mapconfig

if TYPE_CHECKING:
    from entrepot.core.services import Services

VERSION = "0.0.1"
TYPES = ("sql_literal", "sql_ident", "number", "css_color")
KEYS = ("version", "name", "auth", "placeholders", "layergroup", "view")
MAX_TEMPLATES = 4096
MAX_VALUE = 4096
_NAME = re.compile(r"^[a-z0-9][0-9a-z_-]*$", re.IGNORECASE)
_PLACEHOLDER_NAME = re.compile(r"^[a-z][0-9a-z_]*$", re.IGNORECASE)
_USE = re.compile(r"<%=\s*([^%]*?)\s*%>")
_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_COLOR = re.compile(r"^(#([0-9a-f]{3}|[0-9a-f]{6})|[a-z]{3,24})$", re.IGNORECASE)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class TemplateView:
    name: str
    template: Mapping[str, Any]  # the six keys, as stored
    created_at: datetime
    updated_at: datetime


def _invalid(message: str, code: str = "maps.template.invalid") -> E.InvalidInput:
    return E.InvalidInput(message, code=code)


def template_id(raw: str) -> str:
    """A template id as the path gives it: ``user@name`` refers to ``name``."""
    return raw.rsplit("@", 1)[-1]


def check(doc: Any) -> dict[str, Any]:
    """The template ``doc``, checked and reduced to CARTO's six keys (absent ones ``None``)."""
    if not isinstance(doc, Mapping):
        raise _invalid("a template must be a JSON object")
    if doc.get("version") != VERSION:
        raise _invalid(f"Unsupported template version {doc.get('version')!r}: use {VERSION!r}")
    name = doc.get("name")
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > 128:
        raise _invalid(f"Invalid template name {str(name)[:80]!r}: use letters, digits, '_' and '-'")
    auth = doc.get("auth") or {"method": "open"}
    if not isinstance(auth, Mapping) or auth.get("method") not in ("open", "token"):
        raise _invalid("Invalid auth: method must be 'open' or 'token'")
    if auth.get("method") == "token":
        tokens = auth.get("valid_tokens")
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t for t in tokens):
            raise _invalid("Invalid auth: a token method needs a non-empty valid_tokens list of strings")
    placeholders = doc.get("placeholders") or {}
    if not isinstance(placeholders, Mapping):
        raise _invalid("placeholders must be an object")
    for key, spec in placeholders.items():
        if not _PLACEHOLDER_NAME.match(str(key)):
            raise _invalid(
                f"Invalid placeholder name {str(key)[:80]!r}: use a letter, then letters, digits, '_'"
            )
        if not isinstance(spec, Mapping) or spec.get("type") not in TYPES:
            raise _invalid(f"Invalid placeholder {key!r}: type must be one of {', '.join(TYPES)}")
        if "default" not in spec:
            raise _invalid(f"Invalid placeholder {key!r}: it needs a default value")
        _value(str(key), spec["type"], spec["default"])
    layergroup = doc.get("layergroup")
    if not isinstance(layergroup, Mapping):
        raise _invalid("Missing layergroup in template")
    for use in _uses(layergroup):
        if use not in placeholders:
            raise _invalid(f"Invalid placeholder {use!r}: the template uses it but does not declare it")
    mapconfig.parse(_fill(layergroup, {k: str(spec["default"]) for k, spec in placeholders.items()}))
    out = {k: doc.get(k) for k in KEYS}
    out["auth"] = dict(auth)
    out["placeholders"] = dict(placeholders)
    return out


def create(services: Services, principal: Principal, project: Project, doc: Any) -> str:
    """Keep a new template; its name. ``AlreadyExists`` when the project has one of that name."""
    principal.require_master("manage named maps")
    template = check(doc)
    name = template["name"]
    now = utcnow()
    try:
        with services.catalog.session() as s:
            count = s.scalar(select(func.count()).where(MapTemplate.project_id == project.id)) or 0
            if count >= MAX_TEMPLATES:
                raise E.Conflict(
                    f"You have reached the limit of {MAX_TEMPLATES} templates of user '{project.name}'",
                    code="maps.template.quota",
                )
            if _row(s, project, name) is not None:
                raise _exists(name, project)
            s.add(
                MapTemplate(
                    project_id=project.id, name=name, template=template, created_at=now, updated_at=now
                )
            )
    except IntegrityError as exc:
        raise _exists(name, project) from exc
    return str(name)


def _exists(name: str, project: Project) -> E.AlreadyExists:
    return E.AlreadyExists(
        f"Template '{name}' of user '{project.name}' already exists", code="maps.template.exists"
    )


def names(services: Services, principal: Principal, project: Project) -> list[str]:
    principal.require_master("list named maps")
    with services.catalog.session(readonly=True) as s:
        rows = s.scalars(
            select(MapTemplate.name).where(MapTemplate.project_id == project.id).order_by(MapTemplate.id)
        )
        return list(rows)


def get(services: Services, principal: Principal, project: Project, raw_id: str) -> TemplateView:
    principal.require_master("read named maps")
    return stored(services, project, raw_id)


def stored(services: Services, project: Project, raw_id: str) -> TemplateView:
    """The template ``raw_id`` of ``project`` (no permission check: instantiation checks its auth)."""
    name = template_id(raw_id)
    with services.catalog.session(readonly=True) as s:
        row = _row(s, project, name)
        if row is None:
            raise _not_found(name, project)
        return TemplateView(row.name, dict(row.template), row.created_at, row.updated_at)


def update(services: Services, principal: Principal, project: Project, raw_id: str, doc: Any) -> str:
    """Replace the template ``raw_id`` by ``doc`` (its name may not change)."""
    principal.require_master("change named maps")
    name = template_id(raw_id)
    if isinstance(doc, Mapping) and doc.get("name") not in (None, name):
        raise _invalid(f"Cannot update template name: the path names {name!r}, the body {doc.get('name')!r}")
    template = check({**doc, "name": name} if isinstance(doc, Mapping) else doc)
    with services.catalog.session() as s:
        row = _row(s, project, name)
        if row is None:
            raise _not_found(name, project)
        row.template = template
        row.updated_at = utcnow()
    return name


def delete(services: Services, principal: Principal, project: Project, raw_id: str) -> None:
    principal.require_master("delete named maps")
    name = template_id(raw_id)
    with services.catalog.session() as s:
        row = _row(s, project, name)
        if row is None:
            raise _not_found(name, project)
        s.delete(row)


def authorize(template: Mapping[str, Any], auth_token: str | None) -> None:
    """Raise ``PermissionDenied`` unless the template's auth lets ``auth_token`` instantiate it."""
    auth = template.get("auth") or {}
    if auth.get("method", "open") == "open":
        return
    if not auth_token or auth_token not in (auth.get("valid_tokens") or []):
        raise E.PermissionDenied("Unauthorized template instantiation", code="maps.template.unauthorized")


def fill(template: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The template's layergroup with its placeholders filled from ``params`` (else their defaults)."""
    placeholders: Mapping[str, Any] = template.get("placeholders") or {}
    values = {}
    for key, spec in placeholders.items():
        raw = params[key] if key in params else spec.get("default")
        values[key] = _value(key, spec["type"], raw)
    return _fill(template["layergroup"], values)


def _value(key: str, kind: str, raw: Any) -> str:
    """The text that replaces ``<%= key %>``: checked for its type, a literal escaped."""
    if isinstance(raw, bool) or raw is None or isinstance(raw, list | dict):
        raise _invalid(
            f"Invalid value for placeholder {key!r}: expected a {kind}", code="maps.placeholder.invalid"
        )
    text = str(raw)
    if len(text) > MAX_VALUE:
        raise _invalid(f"Invalid value for placeholder {key!r}: longer than {MAX_VALUE} characters")
    if kind == "number":
        if isinstance(raw, int | float):
            if isinstance(raw, float) and not math.isfinite(raw):
                raise _invalid(
                    f"Invalid number value for placeholder {key!r}", code="maps.placeholder.invalid"
                )
            return repr(raw) if isinstance(raw, float) else str(raw)
        if not _NUMBER.match(text.strip()):
            raise _invalid(
                f"Invalid number value for placeholder {key!r}: {text[:80]!r}",
                code="maps.placeholder.invalid",
            )
        return text.strip()
    if kind == "css_color":
        if not _COLOR.match(text.strip()):
            raise _invalid(
                f"Invalid css_color value for placeholder {key!r}: {text[:80]!r} (use #rgb, #rrggbb or a colour name)",
                code="maps.placeholder.invalid",
            )
        return text.strip()
    if kind == "sql_ident":
        if not _IDENT.match(text):
            raise _invalid(
                f"Invalid sql_ident value for placeholder {key!r}: {text[:80]!r} (letters, digits and '_' only)",
                code="maps.placeholder.invalid",
            )
        return text
    if "\x00" in text:
        raise _invalid(
            f"Invalid sql_literal value for placeholder {key!r}: NUL", code="maps.placeholder.invalid"
        )
    return text.replace("'", "''")


def _uses(layergroup: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for layer in layergroup.get("layers") or []:
        options = layer.get("options") if isinstance(layer, Mapping) else None
        if isinstance(options, Mapping):
            for key in ("sql", "cartocss"):
                if isinstance(options.get(key), str):
                    found.update(_USE.findall(options[key]))
    return found


def _fill(layergroup: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    out = copy.deepcopy(dict(layergroup))
    for layer in out.get("layers") or []:
        options = layer.get("options") if isinstance(layer, dict) else None
        if isinstance(options, dict):
            for key in ("sql", "cartocss"):
                if isinstance(options.get(key), str):
                    options[key] = _USE.sub(lambda m: values.get(m.group(1), m.group(0)), options[key])
    return out


def _row(s: Session, project: Project, name: str) -> MapTemplate | None:
    return s.scalar(select(MapTemplate).where(MapTemplate.project_id == project.id, MapTemplate.name == name))


def _not_found(name: str, project: Project) -> E.NotFound:
    return E.NotFound(
        f"Cannot find template '{name}' of user '{project.name}'", code="maps.template.notFound"
    )
