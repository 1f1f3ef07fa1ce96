"""What every face package exports, so that ``app.py`` mounts them all the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from fastapi import APIRouter

from entrepot.core.errors import Kind
from entrepot.faces.errors import Renderer, default_renderer


@dataclass(frozen=True)
class Face:
    """One API the server speaks: its routes, where they live, and how it words its errors.

    ``prefixes`` are where its URLs start; an error on a path under one of them (even a 404
    for an unknown route) is rendered by ``render_error``, with the status of
    ``faces.errors.STATUSES`` unless ``statuses`` says this API answers that kind otherwise.
    """

    tag: str  # the OpenAPI tag of its routes
    description: str  # the tag's description in the OpenAPI document
    router: Callable[[], APIRouter]
    prefixes: tuple[str, ...] = ()
    render_error: Renderer = default_renderer
    statuses: Mapping[Kind, int] = field(default_factory=dict)
