"""The command line: serve, projects, tokens, migrate, as scripts use them."""

from __future__ import annotations

import json
import re
import shlex
import ssl
import subprocess
import sys
import time

import httpx
import pytest

from entrepot.config import Settings
from entrepot.core.services import Services
from support.server import Process, cli_env, free_port, printed_token, run_cli

TOKEN = re.compile(r"\d+-\d+-[0-9a-f]{64}")  # <project id>-<token id>-<secret>, like Keboola's


def _verify(url: str, token: str, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def]
    return httpx.get(f"{url}/v2/storage/tokens/verify", headers={"X-StorageApi-Token": token}, **kwargs)


def test_serve_help_lists_every_flag(tmp_path):
    proc = run_cli("serve", "--help", env=cli_env(tmp_path), timeout=30)
    for flag in (
        "--data-dir", "--config", "--host", "--port", "--public-url", "--workers", "--no-workers", "--tls",
        "--tls-cert", "--tls-key", "--catalog-url", "--blob-url", "--max-request-body", "--log-level",
    ):  # fmt: skip
        assert flag in proc.stdout, flag


def test_python_dash_m_entrepot_is_the_cli(tmp_path):
    proc = run_cli("--help", env=cli_env(tmp_path), timeout=30)
    for command in ("serve", "worker", "migrate", "config", "projects", "tokens"):
        assert command in proc.stdout


def test_first_start_prints_the_default_projects_token_once_and_a_restart_how_to_make_one(tmp_path):
    data = tmp_path / "data"
    port = free_port()
    env = cli_env(data)
    first = Process(["serve", "--port", str(port)], env, tmp_path / "first.log")
    url = f"http://127.0.0.1:{port}"
    try:
        first.wait_http(url)
        token = printed_token(first.output())
        response = _verify(url, token)
        assert response.status_code == 200, response.text
        assert response.json()["isMasterToken"] is True
        assert response.json()["owner"]["name"] == "default"
    finally:
        first.stop()  # uvicorn shuts down gracefully, then re-raises SIGTERM
    assert "Traceback" not in first.output()
    assert token.encode() not in b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())

    second = Process(["serve", "--port", str(port)], env, tmp_path / "second.log")
    try:
        second.wait_http(url)
        assert "shown only this once" not in second.output()
        assert _verify(url, token).status_code == 200  # the same project and token survive a restart
        # instead, one line says how to make a token; run as printed, from elsewhere, it works
        hints = [line for line in second.output().splitlines() if line.startswith("To create a token: ")]
        assert len(hints) == 1, second.output()
        command = hints[0].removeprefix("To create a token: ")
        assert command.startswith("entrepot tokens create --project default --master")
        words = shlex.split(command)
        assert words[0] == "entrepot"
        bare_env = {k: v for k, v in env.items() if k != "ENTREPOT_DATA_DIR"}
        minted = subprocess.run(
            [sys.executable, "-m", "entrepot", *words[1:], "--quiet"],
            env=bare_env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert minted.returncode == 0, minted.stderr
        assert _verify(url, minted.stdout.strip()).json()["isMasterToken"] is True
    finally:
        second.stop()


def test_self_signed_tls_serves_https_trusted_through_the_generated_ca(tmp_path):
    data = tmp_path / "data"
    port = free_port()
    proc = Process(
        ["serve", "--port", str(port), "--tls", "self-signed"], cli_env(data), tmp_path / "tls.log"
    )
    url = f"https://127.0.0.1:{port}"
    ca = data / "tls" / "ca.pem"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if (
                    ca.exists()
                    and httpx.get(f"{url}/health", verify=ssl.create_default_context(cafile=ca)).is_success
                ):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, proc.output()
            assert proc.proc.poll() is None, proc.output()
            time.sleep(0.1)
        token = printed_token(proc.output())
        for host in ("127.0.0.1", "localhost"):
            response = _verify(f"https://{host}:{port}", token, verify=ssl.create_default_context(cafile=ca))
            assert response.status_code == 200
            assert response.json()["uri"].startswith("https://")
        with pytest.raises(httpx.ConnectError):  # not trusted without the CA
            httpx.get(f"{url}/health")
    finally:
        proc.stop()


def test_projects_and_tokens_are_scriptable(tmp_path):
    env = cli_env(tmp_path / "data")
    master = run_cli("projects", "create", "acme", "--quiet", env=env).stdout.strip()
    assert TOKEN.fullmatch(master)
    listed = json.loads(run_cli("projects", "list", "--json", env=env).stdout)
    assert [p["name"] for p in listed] == ["acme"]

    limited = run_cli(
        "tokens", "create", "--project", "acme", "--description", "loader",
        "--bucket-permission", "in.c-x=read", "--space-permission", "private=write",
        "--expires-in", "3600", "--quiet", env=env,
    ).stdout.strip()  # fmt: skip
    assert TOKEN.fullmatch(limited)
    tokens = json.loads(run_cli("tokens", "list", "--project", "acme", "--json", env=env).stdout)
    loader = next(t for t in tokens if t["description"] == "loader")
    assert loader["bucketPermissions"] == {"in.c-x": "read"}
    assert loader["spacePermissions"] == {"private": "write"}
    assert loader["expires"] is not None
    assert limited not in json.dumps(tokens) and master not in json.dumps(tokens)

    run_cli("tokens", "revoke", str(loader["id"]), env=env)
    remaining = json.loads(run_cli("tokens", "list", "--project", "acme", "--json", env=env).stdout)
    assert loader["id"] not in [t["id"] for t in remaining]


def test_revoked_cli_token_is_rejected_by_the_server(tmp_path):
    data = tmp_path / "data"
    env = cli_env(data)
    run_cli("migrate", env=env)
    port = free_port()
    proc = Process(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    url = f"http://127.0.0.1:{port}"
    try:
        proc.wait_http(url)
        token = run_cli("tokens", "create", "--project", "default", "--quiet", env=env).stdout.strip()
        assert _verify(url, token).status_code == 200
        token_id = token.split("-")[1]
        run_cli("tokens", "revoke", token_id, env=env)
        response = _verify(url, token)
        assert response.status_code == 401
        assert response.json()["status"] == "error"
    finally:
        proc.stop()


def test_cli_errors_are_messages_not_tracebacks(tmp_path):
    env = cli_env(tmp_path / "data")
    run_cli("projects", "create", "acme", "--quiet", env=env)
    again = run_cli("projects", "create", "acme", env=env, check=False)
    assert again.returncode == 1
    assert "already exists" in again.stderr and "Traceback" not in again.stderr
    unknown = run_cli("tokens", "create", "--project", "nope", env=env, check=False)
    assert unknown.returncode == 1 and "nope" in unknown.stderr
    bad = run_cli(
        "tokens", "create", "--project", "acme", "--bucket-permission", "in.c-x=admin", env=env, check=False
    )
    assert bad.returncode == 1 and "read" in bad.stderr and "Traceback" not in bad.stderr
    assert run_cli("tokens", "revoke", "99999", env=env, check=False).returncode == 1


def test_migrate_prints_the_revision_and_is_repeatable(tmp_path):
    env = cli_env(tmp_path / "data")
    first = run_cli("migrate", env=env).stdout
    assert "revision" in first
    assert run_cli("migrate", env=env).stdout == first
    services = Services.open(Settings(data_dir=tmp_path / "data"), migrate=False)
    try:
        services.catalog.ping()
    finally:
        services.close()
