"""The native object-storage face (``/spaces/v1``): spaces, objects, presigned URLs, multipart.

Paths name the project: ``/spaces/v1/<project>/<space>/objects/<key>``, so that anonymous
readers of a public space need nothing but the URL.
"""

from __future__ import annotations

from fastapi import APIRouter

from entrepot.faces.spaces import objects, spaces, uploads
from entrepot.faces.spaces.deps import PREFIX

__all__ = ["PREFIX", "TAG", "router"]
TAG = "Object spaces"


def router() -> APIRouter:
    r = APIRouter(tags=[TAG])
    # uploads and objects before the space routes: their paths are longer, and more specific
    for sub in (uploads.router, objects.router, spaces.router):
        r.include_router(sub)
    return r
