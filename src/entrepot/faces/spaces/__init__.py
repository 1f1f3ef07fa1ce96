"""The native object-storage face (``/spaces/v1``): spaces, objects, presigned URLs, multipart.

Paths name the project: ``/spaces/v1/<project>/<space>/objects/<key>``, so that anonymous
readers of a public space need nothing but the URL.
"""

from __future__ import annotations

from fastapi import APIRouter

from entrepot.faces.errors import default_renderer
from entrepot.faces.face import Face
from entrepot.faces.spaces import objects, spaces, uploads
from entrepot.faces.spaces.deps import PREFIX

__all__ = ["FACE", "PREFIX", "PREFIXES", "TAG", "render_error", "router"]

PREFIXES = (PREFIX + "/",)
render_error = default_renderer  # the common envelope: {"error": {"code", "message"}, "exceptionId"}
TAG = "Object spaces"


def router() -> APIRouter:
    r = APIRouter(tags=[TAG])
    # uploads and objects before the space routes: their paths are longer, and more specific
    for sub in (uploads.router, objects.router, spaces.router):
        r.include_router(sub)
    return r


FACE = Face(
    tag=TAG,
    description="Object storage spaces (DCSS): objects, presigned URLs, multipart uploads.",
    router=router,
    prefixes=PREFIXES,
    render_error=render_error,
)
