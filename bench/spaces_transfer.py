"""Object spaces: 1 GiB through the HTTP API and the SDK against nginx and cp; many small objects.

    python bench/spaces_transfer.py [--size-mib 1024] [--clients 64] [--seconds 30]

* transfer: one ``size``-MiB object (incompressible bytes).
  - ``cp``: the file copied on the same disk (into the page cache, not yet durable), and
    ``dd conv=fsync``: the same copy made durable, the floor of a store that fsyncs (entrepot
    does before an object becomes visible; nginx's WebDAV PUT does not).
  - nginx: the same file served statically (GET) and written with WebDAV PUT, both with
    ``curl`` as the client: the practical HTTP limit of this machine.
  - entrepot HTTP API: ``curl -T`` PUT and ``curl`` GET of ``/spaces/v1/...`` (one stream).
  - entrepot SDK: ``DataClient.storage(...).upload(path)`` (multipart, parallel parts) and
    ``download(key, path)`` (streamed to a file).
  The server's resident memory is sampled every 50 ms during each entrepot transfer.
* small objects: ``clients`` concurrent clients (asyncio + httpx, one process) each doing
  PUT then GET of its own 4 KiB key for ``seconds``; ops/s, errors, latency. The same client
  fetching a 4 KiB file from nginx shows how much of the limit is the client itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server, _free_port

MiB = 1024 * 1024


def make_file(path: Path, size_mib: int) -> None:
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        for i in range(size_mib):
            f.write(block[i % 251 :] + block[: i % 251])  # every MiB differs: no dedup, no compression


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class RssSampler:
    """Peak RSS of the server while a block runs (sampled every 50 ms)."""

    def __init__(self, server: Server):
        self.server = server
        self.peak = 0.0
        self._stop = threading.Event()

    def __enter__(self) -> RssSampler:
        self.baseline = self.server.rss_mb()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.server.rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Nginx:
    """nginx serving ``root`` on a free port (GET static, PUT via WebDAV)."""

    def __init__(self, tmp: Path, root: Path):
        self.binary = shutil.which("nginx") or (
            "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
        )
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = tmp / "nginx"
        self.dir.mkdir()
        (self.dir / "body").mkdir()
        conf = self.dir / "nginx.conf"
        conf.write_text(
            ("user root;\n" if os.geteuid() == 0 else "")  # workers must read the (0700) temp dir
            + f"""
worker_processes 2;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
daemon off;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  client_max_body_size 0;
  client_body_temp_path {self.dir}/body;
  proxy_temp_path {self.dir}/body; fastcgi_temp_path {self.dir}/body;
  uwsgi_temp_path {self.dir}/body; scgi_temp_path {self.dir}/body;
  server {{
    listen 127.0.0.1:{self.port};
    root {root};
    location / {{ dav_methods PUT; create_full_put_path on; }}
  }}
}}
"""
        )
        self.conf = conf
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> bool:
        if self.binary is None:
            return False
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf), "-p", str(self.dir)], stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/", timeout=1)
                return True
            except httpx.HTTPError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


def curl_get(url: str, headers: dict[str, str] | None = None) -> None:
    args = ["curl", "-sf", "-o", "/dev/null", url]
    for k, v in (headers or {}).items():
        args += ["-H", f"{k}: {v}"]
    subprocess.run(args, check=True)


def curl_put(url: str, path: Path, headers: dict[str, str] | None = None) -> None:
    args = ["curl", "-sf", "-o", "/dev/null", "-T", str(path), url]
    for k, v in (headers or {}).items():
        args += ["-H", f"{k}: {v}"]
    subprocess.run(args, check=True)


def transfer(tmp: Path, size_mib: int) -> list[tuple[str, float, str]]:
    src = tmp / "big.bin"
    make_file(src, size_mib)
    rows: list[tuple[str, float, str]] = []
    mb = size_mib * MiB / 1e6

    def row(name: str, seconds: float, note: str = "") -> None:
        rows.append((name, mb / seconds, note))
        print(f"  {name}: {mb / seconds:,.0f} MB/s {note}", file=sys.stderr, flush=True)

    row("cp (same disk)", timed(lambda: shutil.copyfile(src, tmp / "copy.bin")))
    (tmp / "copy.bin").unlink()
    dd = ["dd", f"if={src}", f"of={tmp / 'copy.bin'}", "bs=1M", "conv=fsync", "status=none"]
    row("dd conv=fsync (durable write floor)", timed(lambda: subprocess.run(dd, check=True)))
    (tmp / "copy.bin").unlink()

    nginx = Nginx(tmp, tmp)
    if nginx.start():
        try:
            row("nginx GET (static, sendfile)", timed(lambda: curl_get(f"{nginx.url}/big.bin")))
            row("nginx PUT (WebDAV)", timed(lambda: curl_put(f"{nginx.url}/up/big.bin", src)))
        finally:
            nginx.stop()
    else:
        print("  nginx not found: apt-get install nginx-light (skipped)", file=sys.stderr)

    server = Server(tmp)
    try:
        auth = {"Authorization": f"Bearer {server.token}"}
        url = f"{server.url}/spaces/v1/default/private/objects/bench/big.bin"
        with RssSampler(server) as rss:
            seconds = timed(lambda: curl_put(url, src, auth))
        row(
            "entrepot HTTP PUT (curl, one stream)",
            seconds,
            f"server RSS {rss.baseline:.0f} → peak {rss.peak:.0f} MB",
        )
        with RssSampler(server) as rss:
            seconds = timed(lambda: curl_get(url, auth))
        row("entrepot HTTP GET (curl)", seconds, f"server RSS {rss.baseline:.0f} → peak {rss.peak:.0f} MB")

        from entrepot import DataClient

        client = DataClient(server.token, url=server.url)
        storage = client.storage("private")
        with RssSampler(server) as rss:
            seconds = timed(lambda: storage.upload(str(src), "bench/sdk.bin").join())
        row(
            "entrepot SDK upload (multipart)",
            seconds,
            f"server RSS {rss.baseline:.0f} → peak {rss.peak:.0f} MB",
        )
        dest = tmp / "down.bin"
        with RssSampler(server) as rss:
            seconds = timed(lambda: storage.download("bench/sdk.bin", str(dest)).join())
        row(
            "entrepot SDK download (to a file)",
            seconds,
            f"server RSS {rss.baseline:.0f} → peak {rss.peak:.0f} MB",
        )
        assert dest.stat().st_size == src.stat().st_size
    finally:
        server.stop()
    return rows


async def small_objects(
    url: str, headers: dict[str, str], clients: int, seconds: float, *, put: bool
) -> dict[str, float]:
    body = os.urandom(4096)
    latencies: list[float] = []
    errors = 0
    ops = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as http:

        async def worker(i: int) -> None:
            nonlocal errors, ops
            key = f"{url}/small/{i}.bin" if put else url
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                try:
                    if put:
                        r = await http.put(key, content=body)
                        if r.status_code != 201:
                            errors += 1
                            continue
                        ops += 1
                    r = await http.get(key)
                    if r.status_code != 200 or len(r.content) != 4096:
                        errors += 1
                        continue
                    ops += 1
                    latencies.append(time.perf_counter() - t0)
                except httpx.HTTPError:
                    errors += 1

        started = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        elapsed = time.monotonic() - started
    lat = sorted(latencies)
    return {
        "ops_per_s": ops / elapsed,
        "errors": errors,
        "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
        "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))] if lat else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="entrepot-bench-") as d:
        tmp = Path(d)
        print(f"\n### {args.size_mib} MiB object\n")
        rows = transfer(tmp, args.size_mib)
        print("| transfer | MB/s | note |\n|---|---|---|")
        for name, rate, note in rows:
            print(f"| {name} | {rate:,.0f} | {note} |")

        print(f"\n### {args.clients} clients, 4 KiB objects, {args.seconds:.0f} s\n")
        results = []
        small = tmp / "small"
        small.mkdir()
        (small / "4k.bin").write_bytes(os.urandom(4096))
        nginx = Nginx(tmp / "small", small)
        if nginx.start():
            try:
                r = asyncio.run(
                    small_objects(f"{nginx.url}/4k.bin", {}, args.clients, args.seconds, put=False)
                )
                results.append(("nginx GET 4 KiB static (client limit)", r))
            finally:
                nginx.stop()
        server = Server(tmp / "small")
        try:
            auth = {"Authorization": f"Bearer {server.token}"}
            base = f"{server.url}/spaces/v1/default/private/objects"
            with RssSampler(server) as rss:
                r = asyncio.run(small_objects(base, auth, args.clients, args.seconds, put=True))
            r["rss_peak_mb"] = rss.peak
            results.append(("entrepot PUT+GET 4 KiB", r))
        finally:
            server.stop()
        print("| load | ops/s | errors | p50 ms | p99 ms |\n|---|---|---|---|---|")
        for name, r in results:
            print(
                f"| {name} | {r['ops_per_s']:,.0f} | {int(r['errors'])} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
            )
        for name, r in results:
            if "rss_peak_mb" in r:
                print(f"\n{name}: server peak RSS {r['rss_peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
