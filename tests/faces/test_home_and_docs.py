"""The home page, the offline API docs (/docs, /redoc) and the OpenAPI document's path parameters."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from entrepot import __version__

ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


class _Links(HTMLParser):
    """Every URL a page makes the browser load or offer: src, href, and <redoc spec-url>."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "spec-url") and value:
                self.urls.append(value)


def _links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


def _same_origin(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc  # relative: '/assets/...', '#...'


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_pages_load_only_same_origin_assets_that_the_server_serves(server, page):
    response = httpx.get(f"{server.url}{page}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "http://" not in html and "https://" not in html, "an external URL in the page"
    assert "fonts.googleapis" not in html
    assets = [u for u in _links(html) if not u.startswith("#")]
    assert assets, html
    assert all(_same_origin(u) for u in assets), assets
    # Swagger UI reads the OpenAPI URL from its script, ReDoc from spec-url
    assert "/openapi.json" in html
    for url in assets:
        if url == "/openapi.json":
            continue
        got = httpx.get(urljoin(server.url + "/", url))
        assert got.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert ASSET_TYPES[suffix] in got.headers["content-type"], (url, got.headers["content-type"])
        assert len(got.content) > 100


def test_swagger_ui_asks_no_online_validator(server):
    assert '"validatorUrl": null' in httpx.get(f"{server.url}/docs").text


def test_an_unknown_asset_is_a_404_and_faces_still_render_their_own_errors(server):
    missing = httpx.get(f"{server.url}/assets/swagger-ui/nope.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "routeNotFound"
    keboola = httpx.get(f"{server.url}/v2/storage/nope")
    assert keboola.status_code == 404 and "error" in keboola.json()
    carto = httpx.get(f"{server.url}/user/default/api/v2/nope")
    assert carto.status_code == 404 and isinstance(carto.json()["error"], list)
    elsewhere = httpx.get(f"{server.url}/nope")
    assert elsewhere.status_code == 404 and elsewhere.json()["error"]["code"] == "routeNotFound"


def test_openapi_declares_every_path_parameter(server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    missing = []
    for path, operations in spec["paths"].items():
        names = set(re.findall(r"{([^}]+)}", path))
        for method, operation in operations.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"}
            if names - declared:
                missing.append(f"{method.upper()} {path}: {sorted(names - declared)}")
            for p in operation.get("parameters", []):
                if p.get("in") == "path":
                    assert p.get("required") is True, (method, path, p)
    assert not missing, "\n".join(missing)
    operation_ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids)), sorted(
        {i for i in operation_ids if operation_ids.count(i) > 1}
    )
    job = spec["paths"]["/user/{project}/api/v2/sql/job/{job_id}"]["get"]
    assert {p["name"] for p in job["parameters"]} >= {"project", "job_id"}


def test_home_page_says_what_the_server_is_and_links_the_docs(server):
    response = httpx.get(f"{server.url}/", headers={"Accept": "text/html,*/*;q=0.8"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert __version__ in html
    assert "entrepot tokens create --project default --master" in html
    for prefix in ("/v2/storage", "/spaces/v1", "/user/&lt;project&gt;/api/v2/sql", "/data-tools/api/v1"):
        assert prefix in html, prefix
    links = _links(html)
    assert "/docs" in links and "/redoc" in links and "/openapi.json" in links
    assert all(_same_origin(u) for u in links), links
    assert "http://" not in html and "https://" not in html
    assert "<project>" not in html  # values are escaped
    # curl's default Accept (*/*) gets the page too
    assert httpx.get(f"{server.url}/").headers["content-type"].startswith("text/html")


def test_home_page_as_json_lists_the_api_families(server):
    response = httpx.get(f"{server.url}/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    doc = response.json()
    assert doc["name"] == "entrepot" and doc["version"] == __version__
    assert doc["docs"] == {"swaggerUi": "/docs", "redoc": "/redoc", "openapi": "/openapi.json"}
    prefixes = {api["prefix"] for api in doc["apis"]}
    assert {"/v2/storage", "/spaces/v1", "/user/<project>/api/v2/sql", "/data-tools/api/v1"} <= prefixes
    tags = {t["name"] for t in httpx.get(f"{server.url}/openapi.json").json()["tags"]}
    for api in doc["apis"]:
        assert api["name"] in tags and api["docs"].startswith("/docs#/")
    assert doc["token"]["command"] == "entrepot tokens create --project default --master"
    # a client that prefers HTML keeps the page
    both = httpx.get(f"{server.url}/", headers={"Accept": "application/json;q=0.5, text/html"})
    assert both.headers["content-type"].startswith("text/html")
