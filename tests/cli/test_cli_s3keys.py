"""``entrepot s3-keys`` against a real server, as a user or a script would run it."""

from __future__ import annotations

import json
import subprocess
import sys

from entrepot.core.errors import Unauthenticated
from entrepot.core.s3_credentials import resolve
from support.server import cli_env, run_cli


def test_create_list_and_revoke_from_the_command_line(server, tmp_path):
    token = server.token_for(description="cli user")
    env = cli_env(tmp_path / "unused", ENTREPOT_URL=server.url, ENTREPOT_TOKEN=token)

    created = run_cli(
        "s3-keys", "create", "--description", "laptop", "--expires-in", "3600", "--json", env=env
    )
    key = json.loads(created.stdout)
    assert key["description"] == "laptop" and key["expiresAt"] is not None
    assert "shown only this once" in created.stderr
    assert resolve(server.services, key["accessKeyId"], None).secret_access_key == key["secretAccessKey"]

    plain = run_cli("s3-keys", "create", env=env)
    lines = dict(line.split(":", 1) for line in plain.stdout.strip().splitlines())
    assert {k: v.strip() for k, v in lines.items()}["endpoint URL"] == server.url
    second = lines["access key id"].strip()
    assert resolve(server.services, second, None).secret_access_key == lines["secret access key"].strip()

    listed = json.loads(run_cli("s3-keys", "list", "--json", env=env).stdout)
    assert [k["accessKeyId"] for k in listed] == [key["accessKeyId"], second]
    assert all("secretAccessKey" not in k for k in listed)
    table = run_cli("s3-keys", "list", env=env).stdout
    assert key["accessKeyId"] in table and "laptop" in table and key["secretAccessKey"] not in table

    revoked = run_cli("s3-keys", "revoke", key["accessKeyId"], env=env)
    assert key["accessKeyId"] in revoked.stderr
    try:
        resolve(server.services, key["accessKeyId"], None)
        raise AssertionError("a revoked key still resolves")
    except Unauthenticated as exc:
        assert exc.code == "s3.invalidAccessKeyId"
    assert [k["accessKeyId"] for k in json.loads(run_cli("s3-keys", "list", "--json", env=env).stdout)] == [
        second
    ]


def test_create_env_prints_lines_a_shell_evaluates(server, tmp_path):
    token = server.token_for(description="eval user")
    env = cli_env(tmp_path / "unused", ENTREPOT_URL=server.url, ENTREPOT_TOKEN=token)
    script = (
        f'eval "$({sys.executable} -m entrepot s3-keys create --env)"; '
        'python3 -c \'import os; print(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"], '
        'os.environ["AWS_ENDPOINT_URL_S3"])\''
    )
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    akid, secret, endpoint = done.stdout.split()
    assert endpoint == server.url  # exported, so a child process (aws, python) sees all three
    credential = resolve(server.services, akid, None)
    assert credential.secret_access_key == secret and credential.principal.description == "eval user"


def test_errors_are_one_line_without_tracebacks(server, tmp_path):
    token = server.token_for(description="error maker")
    env = cli_env(tmp_path / "unused", ENTREPOT_URL=server.url, ENTREPOT_TOKEN=token)
    missing = run_cli("s3-keys", "revoke", "EKAAAAAAAAAAAAAAAAAA", env=env, check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr and "Traceback" not in missing.stderr
    both = run_cli("s3-keys", "create", "--env", "--json", env=env, check=False)
    assert both.returncode == 2 and "not both" in both.stderr
    assert json.loads(run_cli("s3-keys", "list", "--json", env=env).stdout) == []  # nothing was created
    bad = run_cli("s3-keys", "create", "--expires-in", "0", env=env, check=False)
    assert bad.returncode == 2
    no_token = run_cli("s3-keys", "list", env=cli_env(tmp_path / "unused"), check=False)
    assert no_token.returncode == 2 and "ENTREPOT_TOKEN" in no_token.stderr
