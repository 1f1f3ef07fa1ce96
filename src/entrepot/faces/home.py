"""``GET /``: what this server is, its APIs and where their docs are (HTML, or JSON on request).

A stand-in until the console face exists. The page is built here from escaped values and
references nothing outside the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from entrepot._version import __version__
from entrepot.faces import apidocs, carto, exports, ops, s3, s3keys, spaces, storage_v2
from entrepot.faces.face import Face
from entrepot.faces.http import services_of

TAG = ops.TAG  # the home page is an operations route
DESCRIPTION = (
    "A self-hosted data storage service: tables (Keboola Storage API v2), object spaces, "
    "SQL (CARTO SQL API) and exports, behind one set of tokens."
)


@dataclass(frozen=True)
class Family:
    name: str  # the OpenAPI tag of its routes
    prefix: str  # where its URLs start (``<project>`` stands for a project's name)
    summary: str


def families() -> list[Family]:
    return [
        Family(storage_v2.TAG, storage_v2.PREFIX, "buckets, tables, files and jobs; index at /v2/storage/"),
        Family(spaces.TAG, spaces.PREFIX, "DCSS-style spaces: objects, presigned URLs, multipart uploads"),
        Family(
            carto.TAG,
            "/user/<project>/api/v2/sql",
            "queries, batch jobs, COPY FROM/TO; also under /u/<project>/ and /api/v2/sql",
        ),
        Family(
            s3.TAG,
            "/<bucket>/<key>",
            "S3-compatible API over the spaces (requests signed with SigV4); access keys at " + s3keys.PREFIX,
        ),
        Family(exports.TAG, exports.PREFIX, "export jobs (csv, json, parquet, excel) and templates"),
        Family(ops.TAG, "/health", "liveness /health, readiness /ready, Prometheus /metrics"),
    ]


def token_command(project: str) -> str:
    """The command that mints a master token for ``project`` (run where the server's data is)."""
    return f"entrepot tokens create --project {project} --master"


def index(request: Request) -> dict[str, Any]:
    root = request.scope.get("root_path", "")
    settings = services_of(request).settings
    return {
        "name": "entrepot",
        "version": __version__,
        "description": DESCRIPTION,
        "docs": {
            "swaggerUi": f"{root}{apidocs.DOCS_URL}",
            "redoc": f"{root}{apidocs.REDOC_URL}",
            "openapi": f"{root}{request.app.openapi_url}",
        },
        "apis": [
            {
                "name": f.name,
                "prefix": f.prefix,
                "summary": f.summary,
                "docs": f"{root}{apidocs.DOCS_URL}#/{quote(f.name, safe='()')}",
            }
            for f in families()
        ],
        "token": {
            "command": token_command(settings.default_project),
            "headers": ["X-StorageApi-Token: <token>", "Authorization: Bearer <token>"],
        },
    }


def _wants_json(accept: str) -> bool:
    """JSON when the client ranks application/json above text/html (a tie, or no Accept, is HTML)."""
    weights: dict[str, float] = {}
    for part in accept.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        kind = kind.lower()
        weights[kind] = max(q, weights.get(kind, 0.0))

    def weight(*kinds: str) -> float:
        return max((weights[k] for k in kinds if k in weights), default=0.0)

    json_q = weight("application/json", "application/*", "*/*")
    html_q = weight("text/html", "text/*", "*/*")
    return json_q > html_q


def _html(doc: dict[str, Any]) -> str:
    e = escape
    rows = "\n".join(
        f'<tr><td><a href="{e(api["docs"])}">{e(api["name"])}</a></td>'
        f"<td><code>{e(api['prefix'])}</code></td><td>{e(api['summary'])}</td></tr>"
        for api in doc["apis"]
    )
    docs = doc["docs"]
    headers = " or ".join(f"<code>{e(h)}</code>" for h in doc["token"]["headers"])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>entrepot {e(doc["version"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }}
code, pre {{ background: #f4f4f4; border-radius: 3px; padding: 0 .2rem; }}
pre {{ padding: .6rem; overflow-x: auto; }}
</style>
</head>
<body>
<h1>entrepot <small>{e(doc["version"])}</small></h1>
<p>{e(doc["description"])}</p>
<h2>API documentation</h2>
<p><a href="{e(docs["swaggerUi"])}">Swagger UI</a> (try requests) &middot;
<a href="{e(docs["redoc"])}">ReDoc</a> (reference) &middot;
<a href="{e(docs["openapi"])}">OpenAPI document</a></p>
<h2>APIs</h2>
<table>
<tr><th>API</th><th>URL prefix</th><th>what</th></tr>
{rows}
</table>
<h2>Tokens</h2>
<p>Every API takes a token, sent as {headers}. The first start of the server printed the master
token of its first project once; to create another, run on the server's machine (with the
server's <code>--data-dir</code> or <code>--config</code>):</p>
<pre>{e(doc["token"]["command"])}</pre>
</body>
</html>
"""


router = APIRouter(tags=[TAG])


@router.get("/", include_in_schema=False)
def home(request: Request) -> Response:
    doc = index(request)
    if _wants_json(request.headers.get("accept", "")):
        return JSONResponse(doc)
    return HTMLResponse(_html(doc))


FACE = Face(tag=TAG, description=ops.FACE.description, router=lambda: router)
