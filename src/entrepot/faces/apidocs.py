"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) served with the package's own assets, never a CDN.

The JavaScript and CSS are vendored under ``faces/assets`` (versions and licences in its README)
and served at ``/assets/``, so the pages work on an offline or firewalled machine.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS_DIR = Path(__file__).parent / "assets"
ASSETS_PREFIX = "/assets"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
# no online validator badge: Swagger UI would otherwise ask validator.swagger.io about the spec
_SWAGGER_PARAMETERS = {"validatorUrl": None}


def install(app: FastAPI) -> None:
    """Add ``/docs``, ``/redoc`` and ``/assets/`` to ``app`` (created with ``docs_url=redoc_url=None``)."""
    app.mount(ASSETS_PREFIX, StaticFiles(directory=ASSETS_DIR), name="assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} {app.version} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PREFIX}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PREFIX}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PREFIX}/swagger-ui/favicon-32x32.png",
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), **_SWAGGER_PARAMETERS},
        )

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} {app.version} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PREFIX}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PREFIX}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )
