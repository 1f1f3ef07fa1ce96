"""The API index (no token needed) and answers for Keboola features entrepot does not implement."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from entrepot._version import __version__
from entrepot.core.errors import NotSupported
from entrepot.faces.http import services_of
from entrepot.faces.storage_v2.deps import PREFIX

router = APIRouter(prefix=PREFIX)  # full paths: metrics and logs name the real route

# Out of scope for a storage service (reference §11): answer 501, not 404.
UNSUPPORTED = (
    "components",
    "configurations",
    "workspaces",
    "triggers",
    "events",
    "snapshots",
    "shared-buckets",
    "merge-requests",
    "sandboxes",
)


def index(request: Request, exclude: str = "") -> dict[str, Any]:
    base = services_of(request).settings.effective_public_url
    body: dict[str, Any] = {
        "api": "storage",
        "version": "v2",
        "documentation": f"{base}/docs",
        "components": [],
        "services": [{"id": "storage", "url": base}],
        "features": [],
        "urlTemplates": {},
        "entrepot": {"version": __version__},
    }
    if "components" in exclude.split(","):
        body.pop("components")
    return body


def _unsupported(feature: str) -> None:
    raise NotSupported(
        f"Keboola {feature} are not part of entrepot (a storage service); this endpoint is not implemented",
        code="storage.notImplemented",
    )


for _feature in UNSUPPORTED:

    def _make(feature: str) -> Any:
        def handler(rest: str = "") -> None:
            _unsupported(feature)

        return handler

    for _path in (f"/{_feature}", f"/{_feature}/{{rest:path}}"):
        router.add_api_route(
            _path,
            _make(_feature),
            methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            include_in_schema=False,
        )
