"""Make docs/maps-page.png: the map page of docs/maps.md in headless Chromium.

    python docs/dev/maps_screenshot.py NODE_MODULES_DIR

NODE_MODULES_DIR holds ``maplibre-gl`` and ``leaflet`` (``npm install maplibre-gl leaflet``).
A server with docs/maps.md's table is started on a free port, the page (the guide's ``html``
block, its port rewritten) is served from a second port (another origin, as a real site
would), and Chromium (Debian's ``chromium``) takes the screenshot once both maps have drawn.
"""

from __future__ import annotations

import base64
import functools
import http.server
import itertools
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from support.server import start_server  # noqa: E402


def screenshot(url: str) -> bytes:
    """A PNG of ``url`` once both maps have drawn (MapLibre idle, Leaflet's tiles loaded), by the
    DevTools protocol: a ``--screenshot`` run cannot wait for MapLibre's workers."""
    port = _free_port()
    browser = subprocess.Popen(
        [shutil.which("chromium") or "chromium", "--headless", "--no-sandbox", "--use-angle=swiftshader",
         "--enable-unsafe-swiftshader", "--hide-scrollbars", "--window-size=500,750",
         f"--remote-debugging-port={port}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                targets = requests.get(f"http://127.0.0.1:{port}/json", timeout=2).json()
                page = next(t for t in targets if t["type"] == "page")
                break
            except (requests.ConnectionError, StopIteration):
                assert time.monotonic() < deadline, "chromium did not start"
                time.sleep(0.2)
        with connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            calls = itertools.count(1)

            def call(method: str, **params: object) -> dict[str, object]:
                ident = next(calls)
                ws.send(json.dumps({"id": ident, "method": method, "params": params}))
                while True:
                    message = json.loads(ws.recv(timeout=60))
                    if message.get("id") == ident:
                        return message.get("result", {})  # type: ignore[no-any-return]

            call(
                "Emulation.setDeviceMetricsOverride", width=496, height=744, deviceScaleFactor=1, mobile=False
            )
            call("Page.navigate", url=url)
            deadline = time.monotonic() + 60
            while True:
                done = call("Runtime.evaluate", expression="document.title", returnByValue=True)
                if done.get("result", {}).get("value") == "drawn":  # type: ignore[union-attr]
                    break
                assert time.monotonic() < deadline, "the maps did not draw within a minute"
                time.sleep(0.25)
            shot = call("Page.captureScreenshot", format="png")
            return base64.b64decode(str(shot["data"]))
    finally:
        browser.terminate()
        browser.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


DRAWN = """
<script>
let pending = 2;
const drawn = () => { if (--pending === 0) document.title = "drawn"; };
const watch = setInterval(() => {
  const vector = document.querySelector("#vector canvas");
  const tiles = document.querySelectorAll("#raster img.leaflet-tile-loaded");
  if (window.maplibreReady && tiles.length) { clearInterval(watch); drawn(); drawn(); }
}, 100);
</script>
"""


def main() -> None:
    modules = Path(sys.argv[1]).resolve()
    guide = (REPO / "docs" / "maps.md").read_text()
    page = re.search(r"```html\n(.*?)```", guide, re.S)
    assert page is not None
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        base = f"{server.url}/user/default/"

        def sql(q: str) -> None:
            requests.post(base + "api/v2/sql", data={"q": q, "api_key": server.token}).raise_for_status()

        sql("CREATE TABLE cities (name text, population integer, the_geom geometry(Geometry, 4326))")
        sql("SELECT CDB_CartodbfyTable('cities')")
        sql(
            "INSERT INTO cities (name, population, the_geom) VALUES "
            "('Paris', 2100000, ST_SetSRID(ST_MakePoint(2.35, 48.85), 4326)), "
            "('Madrid', 3300000, ST_SetSRID(ST_MakePoint(-3.70, 40.42), 4326)), "
            "('Rome', 2800000, ST_SetSRID(ST_MakePoint(12.50, 41.90), 4326)), "
            "('Lisbon', 550000, ST_SetSRID(ST_MakePoint(-9.14, 38.72), 4326))"
        )
        requests.put(
            base + "api/v2/sql/tables/cities/privacy", data={"privacy": "public", "api_key": server.token}
        ).raise_for_status()
        site = Path(tmp) / "site"
        site.mkdir()
        (site / "node_modules").symlink_to(modules)
        html = page.group(1).replace("http://127.0.0.1:8000", server.url)
        # the guide's page, plus a signal that both maps have drawn (the title becomes "drawn")
        html = html.replace("new maplibregl.Map(", "window.vectorMap = new maplibregl.Map(")
        html = html.replace(
            "const map = L.map(",
            "vectorMap.once('idle', () => { window.maplibreReady = true; });\n    const map = L.map(",
        )
        (site / "index.html").write_text(html + DRAWN)
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        out = REPO / "docs" / "maps-page.png"
        url = f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
        out.write_bytes(screenshot(url))
        httpd.shutdown()
        server.stop()
        print(out)


if __name__ == "__main__":
    main()
