"""The S3 access keys API (``/s3/v1/keys``): create, list and revoke the S3 keys of a token.

The keys themselves sign S3 requests (``faces/s3``); this JSON API manages them with the
usual token (``X-StorageApi-Token`` or ``Authorization: Bearer``). The logic is in
:mod:`entrepot.core.access_keys`; :mod:`.routes` parses requests, calls it and renders the views.
"""

from __future__ import annotations

from entrepot.faces.errors import default_renderer
from entrepot.faces.face import Face
from entrepot.faces.s3keys.routes import PREFIX, TAG, router

__all__ = ["FACE", "PREFIX", "PREFIXES", "TAG", "render_error", "router"]

PREFIXES = (PREFIX + "/",)
render_error = default_renderer  # the common envelope: {"error": {"code", "message"}, "exceptionId"}

FACE = Face(
    tag=TAG,
    description="S3 access keys of a token: create one (its secret is shown once), list, revoke.",
    router=router,
    prefixes=PREFIXES,
    render_error=render_error,
)
