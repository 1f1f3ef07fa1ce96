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
    """Mount each ``(path, endpoint, methods, summary)`` under every prefix (documented once)."""
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
                    r.add_api_route(
                        variant,
                        endpoint,
                        methods=[method],
                        summary=summary,
                        include_in_schema=documented and variant == path,
                        name=f"carto.{ident}.{method.lower()}",
                        operation_id=f"carto_{ident}_{method.lower()}" if documented else None,
                        openapi_extra={"parameters": parameters} if documented else None,
                    )
