"""Who is calling, for which project, with which parameters — the CARTO way.

Credentials, first found: HTTP Basic (password = api_key), ``api_key`` in the query string,
the form or JSON body, ``Authorization: Bearer``, ``X-StorageApi-Token``. None, or CARTO's
``default_public``, is the anonymous caller. Parameters are the query string merged with the
body (form, multipart or JSON object; the body wins).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from entrepot.core import errors as E
from entrepot.core.sql.service import Caller, Credentials, identify
from entrepot.faces.errors import HTTPError, Problem
from entrepot.faces.http import decode_json, presented_token, read_body, services_of
from entrepot.logs import project_var, token_var

PREFIXES = (
    "/user/",
    "/u/",
    "/api/v1/sql",
    "/api/v2/sql",
    "/api/v3/",
    "/api/v1/imports",
    "/api/v1/synchronizations",
    "/api/v1/viz",
    "/api/v1/map",
    "/api/v1/tables",
    "/api/v1/organization/",
    "/api/v1/users",
    "/api/v2/organization/",
    "/api/v2/users",
)
AUTH_API = "/api/v3/"
DEFAULT_PUBLIC = "default_public"
MAX_PARAMS_BODY = 1024 * 1024  # a SQL query or batch document, not data


def render_error(request: Request, problem: Problem) -> Response:
    """CARTO's SQL API envelope: ``{"error": ["message"]}`` (+ ``context``/``detail`` when known).

    The Auth API (``api/v3``) answers in its own envelope, ``{"errors": "message",
    "errors_cause": null}``, and a validation failure (a bad grant, a taken name) with 422.
    """
    if AUTH_API in request.url.path:
        status = problem.status
        error = problem.error
        validation = (E.Kind.INVALID, E.Kind.ALREADY_EXISTS)
        if error is not None and error.kind in validation and not isinstance(error, HTTPError):
            status = 422
        return JSONResponse(
            {"errors": problem.message, "errors_cause": None}, status_code=status, headers=problem.headers
        )
    path = request.url.path
    if "/api/v1/map" in path:  # the Maps API: a list, and the same with context (a layer's index)
        context: dict[str, Any] = {"type": "unknown", "message": problem.message}
        details = problem.error.details if problem.error is not None else None
        if details and isinstance(details.get("layer"), dict):
            context = {"type": "layer", "message": problem.message, "layer": details["layer"]}
        taken = problem.error is not None and problem.error.kind is E.Kind.ALREADY_EXISTS
        return JSONResponse(
            {"errors": [problem.message], "errors_with_context": [context]},
            status_code=400 if taken else problem.status,  # CARTO: a taken template name is a 400
            headers=problem.headers,
        )
    if "/api/v1/synchronizations" in path:  # sync tables: {"errors": "message"}
        return JSONResponse({"errors": problem.message}, status_code=problem.status, headers=problem.headers)
    if "/api/v1/imports" in path:  # the Import API's envelope
        return JSONResponse(
            {"errors": {"imports": problem.message}}, status_code=problem.status, headers=problem.headers
        )
    if (
        "/organization/" in path or "/api/v1/users" in path or "/api/v2/users" in path
    ):  # the users API: Rails' envelope
        return JSONResponse(
            {"errors": problem.message, "errors_cause": None},
            status_code=problem.status,
            headers=problem.headers,
        )
    if "/api/v1/viz" in path or "/api/v1/tables" in path:  # Rails: show's envelope, else a list
        viz: dict[str, Any] = (
            {"errors": problem.message, "errors_cause": None}
            if request.method == "GET"
            else {"errors": [problem.message]}
        )
        return JSONResponse(viz, status_code=problem.status, headers=problem.headers)
    if problem.status == 401:
        body: dict[str, Any] = {"error": ["Unauthorized"], "hint": problem.message}
    else:
        body = {"error": [problem.message]}
    details = problem.error.details if problem.error is not None else None
    for key in ("context", "detail", "hint"):
        if details and key in details:
            body[key] = details[key]
    return JSONResponse(body, status_code=problem.status, headers=problem.headers)


async def params_of(request: Request, *, body: bool = True) -> dict[str, Any]:
    """Query string merged with the form/JSON body (the body wins)."""
    params: dict[str, Any] = dict(request.query_params)
    if not body or request.method in ("GET", "HEAD", "DELETE"):
        return params
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    elif kind == "application/json" or kind.endswith("+json"):
        raw = await read_body(request, MAX_PARAMS_BODY)
        if raw.strip():
            try:
                doc = decode_json(raw)
            except ValueError as exc:
                raise E.InvalidInput(f"the JSON body is malformed: {exc}", code="sql.invalidJson") from exc
            if not isinstance(doc, dict):
                raise E.InvalidInput("the JSON body must be an object", code="sql.invalidJson")
            params.update(doc)
    return params


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise E.Unauthenticated("malformed Basic authorization header") from exc
    return user, password


def presented_key(request: Request, params: dict[str, Any]) -> tuple[str | None, str | None]:
    """(api key, Basic-auth user name) of the request; the key is None for anonymous callers."""
    basic = _basic(request)
    if basic is not None:
        key: str | None = basic[1]
    else:
        key = params.get("api_key") or params.get("map_key") or presented_token(request, allow_api_key=False)
    if not isinstance(key, str) or not key.strip() or key.strip() == DEFAULT_PUBLIC:
        key = None
    return (key.strip() if key else None), (basic[0] if basic else None)


async def caller(request: Request, project: str | None, params: dict[str, Any]) -> Caller:
    """Who calls, for which project: the path's, else the Host's first label's, else the token's."""
    key, basic_user = presented_key(request, params)
    host = request.headers.get("host", "").split(":")[0]
    credentials = Credentials(
        key=key, project=project, subdomain=host.split(".")[0] if "." in host else "", basic_user=basic_user
    )
    call = await run_in_threadpool(identify, services_of(request), credentials)
    project_var.set(call.principal.project_id)
    token_var.set(call.principal.token_id)
    request.state.principal = call.principal
    return call
