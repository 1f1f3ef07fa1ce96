"""``entrepot s3-keys``: the S3 access keys of a token, over HTTP with the SDK.

They talk to a running server: ``--url``/``ENTREPOT_URL`` and ``--token``/``ENTREPOT_TOKEN``.
``create --env`` prints shell ``export`` lines for ``eval``, so that the AWS CLI, boto3 and
other S3 clients use the new key against this server.
"""

from __future__ import annotations

import shlex
from typing import Annotated

import typer

from entrepot.cli.options import AsJson, Col, Token, Url, Wide, err, fail, print_json, print_table
from entrepot.cli.options import api_client as _client

s3_keys = typer.Typer(
    help="S3 access keys of a token (for the AWS CLI, boto3, DuckDB, rclone): create, list, revoke.",
    no_args_is_help=True,
)


@s3_keys.command("create")
def create(
    description: Annotated[str, typer.Option(help="What the key is for.")] = "",
    expires_in: Annotated[
        int | None, typer.Option("--expires-in", min=1, help="Seconds until the key stops working.")
    ] = None,
    token_id: Annotated[
        int | None,
        typer.Option(
            "--token-id", help="Give the key to another token of the project (needs canManageTokens)."
        ),
    ] = None,
    env: Annotated[
        bool,
        typer.Option(
            "--env",
            help="Print export AWS_ACCESS_KEY_ID=…, AWS_SECRET_ACCESS_KEY=… and AWS_ENDPOINT_URL_S3=… "
            'lines: eval "$(entrepot s3-keys create --env)".',
        ),
    ] = False,
    url: Url = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Create an S3 access key; its secret is shown this once."""
    if env and as_json:
        raise fail("give --env or --json, not both", 2)
    with _client(url, token) as client:
        key = client.s3_keys.create(description, expires_in=expires_in, token_id=token_id)
        endpoint = client.url
    if as_json:
        print_json(key)
    elif env:
        for name, value in (
            ("AWS_ACCESS_KEY_ID", key["accessKeyId"]),
            ("AWS_SECRET_ACCESS_KEY", key["secretAccessKey"]),
            ("AWS_ENDPOINT_URL_S3", endpoint),
        ):
            print(f"export {name}={shlex.quote(str(value))}")
    else:
        print(f"access key id:     {key['accessKeyId']}")
        print(f"secret access key: {key['secretAccessKey']}")
        print(f"endpoint URL:      {endpoint}")
    err.print("the secret access key is shown only this once: store it now")


@s3_keys.command("list")
def list_keys(url: Url = None, token: Token = None, as_json: AsJson = False, wide: Wide = False) -> None:
    """List the token's S3 access keys (every key of the project for a token manager); never secrets.

    The table leaves out when each key was created; --json has it."""
    with _client(url, token) as client:
        rows = client.s3_keys.list()
    if as_json:
        print_json(rows)
        return
    columns = [
        Col("access key id", "accessKeyId"),
        Col("token", "tokenId", "number"),
        Col("description", "description", "long"),
        Col("last used", "lastUsedAt", "time"),
        Col("expires", "expiresAt", "time"),
    ]
    print_table(rows, columns, wide=wide)


@s3_keys.command("revoke")
def revoke(
    access_key_id: Annotated[str, typer.Argument(help="The access key id (EK…).")],
    url: Url = None,
    token: Token = None,
) -> None:
    """Revoke an S3 access key; it stops working at once."""
    with _client(url, token) as client:
        client.s3_keys.revoke(access_key_id)
    err.print(f"revoked {access_key_id}")
