"""The Export API face (seed 004), under ``/data-tools/api/v1``.

Envelopes: ``{"success": true, "message": ..., "data": ...}``; errors
``{"success": false, "error": "..."}``, with a field → message object for validation errors.
The logic is in :mod:`entrepot.core.exports`; :mod:`.routes` parses requests and calls it,
:mod:`.render` shapes the answers.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import JSONResponse, Response

from entrepot.core.exports.spec import FieldError
from entrepot.faces.errors import Problem
from entrepot.faces.exports.routes import PREFIX, TAG, router
from entrepot.faces.face import Face

PREFIXES = (PREFIX + "/",)

__all__ = ["FACE", "PREFIX", "PREFIXES", "TAG", "render_error", "router"]


def render_error(request: Request, problem: Problem) -> Response:
    """``{"success": false, "error": ...}``: a field → message object for validation errors."""
    error: Any = problem.message
    if isinstance(problem.error, FieldError):
        error = problem.error.fields
    return JSONResponse(
        {"success": False, "error": error}, status_code=problem.status, headers=problem.headers
    )


FACE = Face(
    tag=TAG,
    description="Export jobs (csv, json, parquet, excel) with filters, and export templates.",
    router=router,
    prefixes=PREFIXES,
    render_error=render_error,
)
