"""Routes of the CARTO face's JSON APIs under every project prefix, with and without a trailing slash."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter

PROJECT_PREFIXES = ("/user/{project}", "/u/{project}", "")


def add_routes(
    r: APIRouter,
    routes: Sequence[tuple[str, Callable[..., Any], list[str], str]],
    descriptions: dict[str, str],
) -> None:
    """Mount each ``(path, endpoint, methods, summary)`` under every prefix (documented once).

    An endpoint served under several paths (``api/v1/…`` and its ``api/v2/…`` alias) is
    documented under the first: an OpenAPI operation id names one operation.
    """
    documented_ops: set[str] = set()
    for prefix in PROJECT_PREFIXES:
        for tail, endpoint, methods, summary in routes:
            path = f"{prefix}{tail}"
            documented = prefix == "/user/{project}"
            names = re.findall(r"{(\w+)}", path)
            parameters = [
                {
                    "name": n,
                    "in": "path",
                    "required": True,
                    "description": descriptions[n],
                    "schema": {"type": "string"},
                }
                for n in names
            ]
            ident = f"{endpoint.__module__.rsplit('.', 1)[-1]}_{endpoint.__name__}"
            for variant in (path, path + "/"):
                for method in methods:
                    operation = f"carto_{ident}_{method.lower()}"
                    shown = documented and variant == path and operation not in documented_ops
                    if shown:
                        documented_ops.add(operation)
                    r.add_api_route(
                        variant,
                        endpoint,
                        methods=[method],
                        summary=summary,
                        include_in_schema=shown,
                        name=f"carto.{ident}.{method.lower()}",
                        operation_id=operation if shown else None,
                        openapi_extra={"parameters": parameters} if shown else None,
                    )
