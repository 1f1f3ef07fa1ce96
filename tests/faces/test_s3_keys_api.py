"""The S3 access keys API (/s3/v1/keys) over HTTP with requests, against a real server."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
import requests

from entrepot.core.errors import Unauthenticated
from entrepot.core.s3_credentials import resolve
from support.server import RunningServer

KEYS = "/s3/v1/keys"


def token_id(token: str) -> int:
    return int(token.split("-")[1])


def create(server: RunningServer, token: str, **body: object) -> requests.Response:
    return requests.post(f"{server.url}{KEYS}", headers=server.headers(token), json=body)


def listed(server: RunningServer, token: str) -> list[str]:
    r = requests.get(f"{server.url}{KEYS}", headers=server.headers(token))
    assert r.status_code == 200, r.text
    return [k["accessKeyId"] for k in r.json()["keys"]]


def resolves(server: RunningServer, access_key_id: str) -> bool:
    try:
        resolve(server.services, access_key_id, None)
    except Unauthenticated:
        return False
    return True


@pytest.fixture
def entrepot_log() -> Iterator[list[str]]:
    """Every record the server's loggers emit during the test, formatted with its arguments."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in ("entrepot", "uvicorn", "uvicorn.access", "uvicorn.error")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield lines
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)


def test_create_shows_the_secret_once_list_hides_it_and_delete_revokes(server):
    token = server.token_for(description="laptop owner")
    r = create(server, token, description="laptop", expiresIn=3600)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {
        "accessKeyId",
        "secretAccessKey",
        "tokenId",
        "description",
        "createdAt",
        "lastUsedAt",
        "expiresAt",
    }
    assert re.fullmatch(r"EK[A-Z2-7]{18}", body["accessKeyId"]) and len(body["secretAccessKey"]) == 40
    assert (body["tokenId"], body["description"], body["lastUsedAt"]) == (token_id(token), "laptop", None)
    assert body["createdAt"].endswith("Z") and body["expiresAt"].endswith("Z")
    credential = resolve(server.services, body["accessKeyId"], None)
    assert credential.secret_access_key == body["secretAccessKey"]
    assert credential.principal.token_id == token_id(token)

    r = requests.get(f"{server.url}{KEYS}", headers=server.headers(token))
    assert r.status_code == 200
    (shown,) = r.json()["keys"]
    assert shown["accessKeyId"] == body["accessKeyId"] and "secretAccessKey" not in shown
    assert body["secretAccessKey"] not in r.text
    assert shown["lastUsedAt"] is not None  # resolve() above used it

    r = requests.delete(f"{server.url}{KEYS}/{body['accessKeyId']}", headers=server.headers(token))
    assert r.status_code == 204 and r.content == b""
    assert not resolves(server, body["accessKeyId"])
    assert listed(server, token) == []
    r = requests.delete(f"{server.url}{KEYS}/{body['accessKeyId']}", headers=server.headers(token))
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "accessKeys.notFound"


def test_a_body_is_optional_and_bearer_tokens_work(server):
    token = server.token_for(description="bearer")
    r = requests.post(f"{server.url}{KEYS}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    assert r.json()["description"] == "" and r.json()["expiresAt"] is None
    assert resolves(server, r.json()["accessKeyId"])


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"expiresIn": 0}, "expiresIn"),
        ({"expiresIn": "soon"}, "expiresIn"),
        ({"expiresIn": 10**15}, "expiresIn"),
        ({"description": "x" * 1025}, "description"),
        ({"secret": "mine"}, "secret"),
        ({"tokenId": "me"}, "tokenId"),
    ],
)
def test_invalid_bodies_are_400_and_create_nothing(server, body, needle):
    token = server.token_for(description="validation")
    r = create(server, token, **body)
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]["message"]
    assert listed(server, token) == []


def test_a_body_that_is_not_json_is_a_400(server):
    token = server.token_for(description="garbage")
    r = requests.post(
        f"{server.url}{KEYS}",
        headers={**server.headers(token), "Content-Type": "application/json"},
        data=b"{not json",
    )
    assert r.status_code == 400
    assert listed(server, token) == []


def test_anonymous_and_unknown_tokens_are_401(server):
    for headers in ({}, {"X-StorageApi-Token": f"{server.project_id}-999999-{'a' * 64}"}):
        assert requests.post(f"{server.url}{KEYS}", headers=headers, json={}).status_code == 401
        assert requests.get(f"{server.url}{KEYS}", headers=headers).status_code == 401
        assert requests.delete(f"{server.url}{KEYS}/EKAAAAAAAAAAAAAAAAAA", headers=headers).status_code == 401


def test_only_token_managers_create_keys_for_other_tokens_and_see_every_key(server):
    plain = server.token_for(description="plain")
    other = server.token_for(description="other")
    r = create(server, plain, tokenId=token_id(other))
    assert r.status_code == 403, r.text
    r = create(server, server.token, tokenId=token_id(other), description="given by the master")
    assert r.status_code == 201, r.text
    given = r.json()
    assert given["tokenId"] == token_id(other)
    assert resolve(server.services, given["accessKeyId"], None).principal.token_id == token_id(other)
    assert create(server, server.token, tokenId=10**9).status_code == 404

    own = create(server, plain).json()["accessKeyId"]
    assert listed(server, plain) == [own]
    assert listed(server, other) == [given["accessKeyId"]]
    assert {own, given["accessKeyId"]} <= set(listed(server, server.token))
    r = requests.delete(f"{server.url}{KEYS}/{given['accessKeyId']}", headers=server.headers(plain))
    assert r.status_code == 404  # not its key: not even there
    assert resolves(server, given["accessKeyId"])


def test_revoking_the_token_over_the_keboola_api_kills_its_keys(server):
    token = server.token_for(description="short-lived")
    key = create(server, token).json()["accessKeyId"]
    assert resolves(server, key)
    r = requests.delete(f"{server.url}/v2/storage/tokens/{token_id(token)}", headers=server.headers())
    assert r.status_code == 204, r.text
    assert not resolves(server, key)
    assert key not in listed(server, server.token)


def test_a_token_holds_at_most_s3_max_keys_per_token(server):
    token = server.token_for(description="many keys")
    limit = server.settings.s3_max_keys_per_token
    for _ in range(limit):
        assert create(server, token).status_code == 201
    r = create(server, token)
    assert r.status_code == 409
    assert (
        r.json()["error"]["code"] == "accessKeys.limitReached"
        and "revoke one" in r.json()["error"]["message"]
    )
    assert len(listed(server, token)) == limit


def test_no_secret_reaches_the_logs(server, entrepot_log):
    token = server.token_for(description="logged")
    body = create(server, token, description="ci").json()
    resolve(server.services, body["accessKeyId"], None)
    listed(server, token)
    requests.delete(f"{server.url}{KEYS}/{body['accessKeyId']}", headers=server.headers(token))
    text = "\n".join(entrepot_log)
    assert body["accessKeyId"] in text  # the logs name the key...
    assert body["secretAccessKey"] not in text  # ...never its secret
    assert token.split("-")[2] not in text


def test_the_api_is_in_the_openapi_document(server):
    paths = requests.get(f"{server.url}/openapi.json").json()["paths"]
    assert {"post", "get"} <= set(paths[KEYS]) and "delete" in paths[KEYS + "/{access_key_id}"]
