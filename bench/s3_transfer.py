"""The S3 API: 1 GiB PutObject/GetObject with boto3 and the AWS CLI, against nginx, the fsynced
write floor and moto's S3 server, in one run; then many small objects with wrk.

    python bench/s3_transfer.py [--size-mib 1024] [--clients 64] [--seconds 20] [--rounds 3]
    python bench/s3_transfer.py --only wrk    # just the small-object part (wrk)
    python bench/s3_transfer.py --only wrk --server-env ENTREPOT_S3_CREDENTIAL_CACHE_TTL=0

* floors: ``dd conv=fsync`` (a durable write of the file: entrepot fsyncs before an object
  becomes visible) and nginx serving the same file (static GET with sendfile, WebDAV PUT),
  with ``curl`` as the client.
* S3, each against entrepot (``entrepot serve``) and moto (``moto_server``, objects in memory):
  - ``curl`` PUT and GET of presigned URLs: the same client as the nginx rows;
  - boto3 ``put_object`` of the whole file (one request; over plain HTTP boto3 signs the
    payload's SHA-256, so it reads the file twice) and ``get_object`` streamed to a file;
  - ``aws s3 cp`` up and down (the CLI's TransferManager: 8 MiB multipart parts, 10 threads).
  The rounds are interleaved (entrepot, moto, entrepot, …) and the median is reported.
  The server's resident memory is sampled every 50 ms during each entrepot transfer.
* small objects: ``wrk`` with ``clients`` connections against presigned GET and PUT URLs of
  one 4 KiB object (the URL is signed once; the server verifies the signature per request),
  and the same GET from nginx as the client's limit.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import httpx
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server, _free_port
from spaces_transfer import Nginx, RssSampler, curl_get, curl_put, make_file, timed

BUCKET = "bench"
AWS_CP = (sys.executable, "-m", "awscli", "s3", "cp", "--only-show-errors")


class Moto:
    """moto's standalone S3 server on a free port (the peer a test suite would pick)."""

    def __init__(self, tmp: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-p", str(self.port), "-H", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "moto.log").open("w"),
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.url + "/", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "moto did not start"
                time.sleep(0.1)
        self.keys = ("testing", "testing")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def s3_client(url: str, keys: tuple[str, str]) -> object:
    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=keys[0],
        aws_secret_access_key=keys[1],
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def aws_env(url: str, keys: tuple[str, str], home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=keys[0],
        AWS_SECRET_ACCESS_KEY=keys[1],
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_S3=url,
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
        HOME=str(home),
    )
    return env


def entrepot_keys(server: Server) -> tuple[str, str]:
    r = httpx.post(
        f"{server.url}/s3/v1/keys",
        headers={"Authorization": f"Bearer {server.token}"},
        json={"description": "bench"},
    )
    r.raise_for_status()
    body = r.json()
    return body["accessKeyId"], body["secretAccessKey"]


def s3_rounds(
    tmp: Path, src: Path, targets: dict[str, tuple[str, tuple[str, str], Server | None]], rounds: int
) -> dict[str, list[tuple[float, float]]]:
    """name → [(seconds, server RSS growth MB)] per operation and target, interleaved."""
    results: dict[str, list[tuple[float, float]]] = {}
    dest = tmp / "down.bin"

    def measure(name: str, server: Server | None, fn: Callable[[], object]) -> None:
        if server is None:
            seconds, growth = timed(fn), float("nan")
        else:
            with RssSampler(server) as rss:
                seconds = timed(fn)
            growth = rss.peak - rss.baseline
        results.setdefault(name, []).append((seconds, growth))
        print(f"  {name}: {src.stat().st_size / 1e6 / seconds:,.0f} MB/s", file=sys.stderr, flush=True)

    for _ in range(rounds):
        for target, (url, keys, server) in targets.items():
            client = s3_client(url, keys)

            def put(client: object = client) -> None:
                with src.open("rb") as f:
                    client.put_object(Bucket=BUCKET, Key="big.bin", Body=f)  # type: ignore[attr-defined]

            def get(client: object = client) -> None:
                body = client.get_object(Bucket=BUCKET, Key="big.bin")["Body"]  # type: ignore[attr-defined]
                with dest.open("wb") as f:
                    for chunk in body.iter_chunks(1024 * 1024):
                        f.write(chunk)

            params = {"Bucket": BUCKET, "Key": "curl.bin"}
            put_url = client.generate_presigned_url("put_object", Params=params, ExpiresIn=3600)  # type: ignore[attr-defined]
            get_url = client.generate_presigned_url("get_object", Params=params, ExpiresIn=3600)  # type: ignore[attr-defined]
            measure(f"{target}: curl PUT (presigned URL)", server, lambda url=put_url: curl_put(url, src))
            measure(f"{target}: curl GET (presigned URL)", server, lambda url=get_url: curl_get(url))
            measure(f"{target}: boto3 put_object", server, put)
            measure(f"{target}: boto3 get_object", server, get)
            assert dest.stat().st_size == src.stat().st_size
            env = aws_env(url, keys, tmp)
            measure(
                f"{target}: aws s3 cp (upload)",
                server,
                lambda env=env: subprocess.run(
                    [*AWS_CP, str(src), f"s3://{BUCKET}/cli.bin"], env=env, check=True
                ),
            )
            measure(
                f"{target}: aws s3 cp (download)",
                server,
                lambda env=env: subprocess.run(
                    [*AWS_CP, f"s3://{BUCKET}/cli.bin", str(dest)], env=env, check=True
                ),
            )
            assert dest.stat().st_size == src.stat().st_size
            dest.unlink()
    return results


def wrk(url: str, clients: int, seconds: float, script: Path | None = None) -> dict[str, float]:
    args = ["wrk", "-t2", f"-c{clients}", f"-d{seconds:.0f}s", "--latency"]
    if script is not None:
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)

    def ms(m: re.Match[str] | None) -> float:
        if m is None:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    return {"rps": rate, "errors": float(errors.group(1)) if errors else 0.0, "p50": ms(p50), "p99": ms(p99)}


def small_objects(
    tmp: Path, clients: int, seconds: float, env: dict[str, str]
) -> list[tuple[str, dict[str, float]]]:
    rows: list[tuple[str, dict[str, float]]] = []
    body = os.urandom(4096)
    small = tmp / "small"
    small.mkdir()
    (small / "4k.bin").write_bytes(body)
    nginx = Nginx(tmp / "small", small)
    if nginx.start():
        try:
            rows.append(
                ("nginx GET 4 KiB static (client limit)", wrk(f"{nginx.url}/4k.bin", clients, seconds))
            )
        finally:
            nginx.stop()
    server = Server(tmp / "small", **env)
    try:
        client = s3_client(server.url, entrepot_keys(server))
        client.create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]
        client.put_object(Bucket=BUCKET, Key="4k.bin", Body=body)  # type: ignore[attr-defined]
        params = {"Bucket": BUCKET, "Key": "4k.bin"}
        get_url = client.generate_presigned_url("get_object", Params=params, ExpiresIn=3600)  # type: ignore[attr-defined]
        put_url = client.generate_presigned_url("put_object", Params=params, ExpiresIn=3600)  # type: ignore[attr-defined]
        script = tmp / "put.lua"
        script.write_text('wrk.method = "PUT"\nwrk.body = string.rep("x", 4096)\n')
        with RssSampler(server) as rss:
            rows.append(("entrepot S3 GET 4 KiB (presigned)", wrk(get_url, clients, seconds)))
            rows.append(("entrepot S3 PUT 4 KiB (presigned)", wrk(put_url, clients, seconds, script)))
        rows[-1][1]["rss_growth"] = rss.peak - rss.baseline
    finally:
        server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--only",
        choices=("all", "transfer", "wrk"),
        default="all",
        help="run only the 1 GiB transfers or only the small-object wrk part",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an ENTREPOT_* setting for the small-object server (repeatable), "
        "e.g. ENTREPOT_S3_CREDENTIAL_CACHE_TTL=0",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="entrepot-bench-") as d:
        tmp = Path(d)
        if args.only != "wrk":
            transfers(tmp, args)
        if args.only != "transfer":
            small_object_table(tmp, args)


def transfers(tmp: Path, args: argparse.Namespace) -> None:
    """The 1 GiB part: the floors, then entrepot and moto interleaved."""
    src = tmp / "big.bin"
    make_file(src, args.size_mib)
    mb = src.stat().st_size / 1e6
    print(f"\n### {args.size_mib} MiB object, median of {args.rounds} interleaved rounds\n")
    floors: dict[str, list[float]] = {}
    nginx = Nginx(tmp, tmp)
    nginx_ok = nginx.start()
    try:
        for _ in range(args.rounds):
            dd = ["dd", f"if={src}", f"of={tmp / 'copy.bin'}", "bs=1M", "conv=fsync", "status=none"]
            floors.setdefault("dd conv=fsync (durable write floor)", []).append(
                timed(lambda dd=dd: subprocess.run(dd, check=True))
            )
            (tmp / "copy.bin").unlink()
            if nginx_ok:
                floors.setdefault("nginx GET (static, sendfile)", []).append(
                    timed(lambda: curl_get(f"{nginx.url}/big.bin"))
                )
                floors.setdefault("nginx PUT (WebDAV)", []).append(
                    timed(lambda: curl_put(f"{nginx.url}/up/big.bin", src))
                )
    finally:
        nginx.stop()
    if not nginx_ok:
        print("nginx not found: apt-get install nginx-light (its rows are missing)", file=sys.stderr)

    server = Server(tmp)
    moto = Moto(tmp)
    try:
        keys = entrepot_keys(server)
        s3_client(server.url, keys).create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]
        s3_client(moto.url, moto.keys).create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]
        results = s3_rounds(
            tmp,
            src,
            {"entrepot": (server.url, keys, server), "moto": (moto.url, moto.keys, None)},
            args.rounds,
        )
    finally:
        server.stop()
        moto.stop()

    print("| transfer | MB/s (median) | server RSS growth (max) |\n|---|---|---|")
    for name, times in floors.items():
        print(f"| {name} | {mb / statistics.median(times):,.0f} | |")
    for name, runs in results.items():
        seconds = statistics.median(t for t, _ in runs)
        growth = max(g for _, g in runs)
        shown = "" if growth != growth else f"{growth:.0f} MB"  # NaN: not measured (moto)
        print(f"| {name} | {mb / seconds:,.0f} | {shown} |")


def small_object_table(tmp: Path, args: argparse.Namespace) -> None:
    """The small-object part: wrk against nginx and entrepot's presigned GET and PUT."""
    print(f"\n### {args.clients} connections, 4 KiB objects, {args.seconds:.0f} s each (wrk)\n")
    if subprocess.run(["which", "wrk"], capture_output=True).returncode != 0:
        print("wrk not found: apt-get install wrk (no small-object numbers)")
        return
    env = dict(kv.split("=", 1) for kv in args.server_env)
    rows = small_objects(tmp, args.clients, args.seconds, env)
    print("| load | requests/s | non-2xx | p50 ms | p99 ms |\n|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['rps']:,.0f} | {int(r['errors'])} | {r['p50']:.1f} | {r['p99']:.1f} |")
    for _, r in rows:
        if "rss_growth" in r:
            print(f"\nserver RSS growth during the entrepot small-object runs: {r['rss_growth']:.0f} MB")


if __name__ == "__main__":
    main()
