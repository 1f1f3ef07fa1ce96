"""The Export API's JSON: the success envelope and the datasource, export and template objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.responses import JSONResponse

from entrepot.core.exports.service import DatasourceView, ExportPage, ExportView
from entrepot.core.exports.templates import TemplateView


def envelope(message: str, data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse({"success": True, "message": message, "data": data}, status_code=status)


def ts(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def render_datasource(ds: DatasourceView) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": ds.id,
        "name": ds.name,
        "table_id": ds.table_id,
        "columns": list(ds.columns),
        "row_count": ds.row_count,
        "created_at": ts(ds.created_at),
        "last_change_at": ts(ds.last_change_at),
    }
    if ds.column_types is not None:
        out["column_types"] = dict(ds.column_types)
    return out


def render_export(export: ExportView) -> dict[str, Any]:
    return {
        "id": export.id,
        "status": export.status,
        "format": export.format,
        "progress": export.progress,
        "row_count": export.row_count,
        "file_size": export.file_size,
        "file_name": export.file_name,
        "content_type": export.content_type,
        "created_at": ts(export.created_at),
        "started_at": ts(export.started_at),
        "completed_at": ts(export.completed_at),
        "error_message": export.error_message,
        "datasource": {
            "id": export.datasource_id,
            "name": export.datasource_name,
            "table_id": export.table_id,
        },
        "filters": export.filters,
        "options": export.options,
        "template": {"id": export.template_id, "name": export.template_name} if export.template_id else None,
        "owner": export.owner,
        "expires_at": ts(export.expires_at),
        "file_expired": export.file_expired,
        "download_url": export.download_url,
        "download_url_expires_at": ts(export.download_url_expires_at),
    }


def render_page(page: ExportPage) -> dict[str, Any]:
    return {
        "export_jobs": [render_export(e) for e in page.items],
        "pagination": {
            "total_count": page.total,
            "page_count": page.page_count,
            "current_page": page.page,
            "has_next": page.has_next,
            "has_previous": page.has_previous,
            "page_size": page.page_size,
        },
    }


def render_cancelled(export: ExportView) -> dict[str, Any]:
    return {"id": export.id, "status": export.status, "completed_at": ts(export.completed_at)}


def render_template(template: TemplateView) -> dict[str, Any]:
    return {
        "id": template.id,
        "name": template.name,
        "description": template.description,
        "template_type": template.template_type,
        "format": template.format,
        "configuration": template.configuration,
        "is_active": template.is_active,
        "usage_count": template.usage_count,
        "has_filters": template.has_filters,
        "owner": template.owner,
        "created_at": ts(template.created_at),
        "updated_at": ts(template.updated_at),
    }
