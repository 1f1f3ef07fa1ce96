"""Every 4xx path of the Keboola face answers Keboola's error envelope, and changes nothing."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import func, select

from entrepot.core.catalog import Token


def assert_envelope(r: requests.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error", "code", "status", "exceptionId"}, body
    assert body["status"] == "error"
    assert isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in body["error"]
    assert body["exceptionId"]
    if code is not None:
        assert body["code"] == code
    return body


def token_count(server) -> int:
    with server.services.catalog.session(readonly=True) as s:
        return s.scalar(select(func.count()).select_from(Token))


def test_missing_token_is_401(server):
    body = assert_envelope(
        requests.get(f"{server.url}/v2/storage/tokens/verify"), 401, "storage.tokenMissing"
    )
    assert "X-StorageApi-Token" in body["error"]


@pytest.mark.parametrize("token", ["some-token", "1-1-" + "0" * 64, "999-999-" + "a" * 64])
def test_invalid_token_is_401(server, token):
    assert_envelope(requests.get(f"{server.url}/v2/storage/jobs", headers={"X-StorageApi-Token": token}), 401)


def test_unsupported_authorization_scheme_is_401(server):
    r = requests.get(
        f"{server.url}/v2/storage/tokens/verify", headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )
    assert "Bearer" in assert_envelope(r, 401)["error"]


def test_expired_token_is_401_saying_expired(server):
    from datetime import timedelta

    from entrepot.core.clock import utcnow

    token = server.token_for(expires_in=60)
    token_id = int(token.split("-")[1])
    with server.services.catalog.session() as s:
        s.get(Token, token_id).expires_at = utcnow() - timedelta(seconds=1)
    r = requests.get(f"{server.url}/v2/storage/tokens/verify", headers=server.headers(token))
    assert "expired" in assert_envelope(r, 401, "storage.tokenExpired")["error"]


def test_permission_denied_is_403_and_creates_nothing(server):
    plain = server.token_for(description="no rights")
    before = token_count(server)
    r = requests.post(
        f"{server.url}/v2/storage/tokens", headers=server.headers(plain), data={"description": "x"}
    )
    assert "manage tokens" in assert_envelope(r, 403)["error"]
    assert token_count(server) == before


def test_unknown_route_is_404(server):
    assert_envelope(requests.get(f"{server.url}/v2/storage/not-a-url", headers=server.headers()), 404)


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "//not-a-url"), ("POST", "//not-a-url"), ("DELETE", "/delete/not-a-url")]
)
def test_kbcstorage_404_probes_get_4xx(server, method, path):
    r = requests.request(
        method, f"{server.url}/v2/storage{path}", headers={"X-StorageApi-Token": "some-token"}
    )
    assert 400 <= r.status_code < 500


def test_unknown_job_is_404(server):
    assert_envelope(
        requests.get(f"{server.url}/v2/storage/jobs/987654", headers=server.headers()),
        404,
        "storage.jobs.notFound",
    )


def test_non_numeric_ids_are_400(server):
    assert_envelope(requests.get(f"{server.url}/v2/storage/jobs/abc", headers=server.headers()), 400)
    assert_envelope(requests.get(f"{server.url}/v2/storage/tokens/abc", headers=server.headers()), 400)


def test_wrong_method_is_405(server):
    body = assert_envelope(
        requests.put(f"{server.url}/v2/storage/tokens/verify", headers=server.headers()), 405
    )
    assert "PUT" in body["error"]


def test_malformed_json_body_is_400_and_creates_nothing(server):
    before = token_count(server)
    r = requests.post(
        f"{server.url}/v2/storage/tokens",
        headers={**server.headers(), "Content-Type": "application/json"},
        data=b'{"description": ',
    )
    assert "not valid JSON" in assert_envelope(r, 400)["error"]
    assert token_count(server) == before


def test_json_body_that_is_not_an_object_is_400(server):
    r = requests.post(f"{server.url}/v2/storage/tokens", headers=server.headers(), json=["a"])
    assert "must be an object" in assert_envelope(r, 400)["error"]


def test_malformed_parameter_values_are_400(server):
    r = requests.post(
        f"{server.url}/v2/storage/tokens", headers=server.headers(), data={"canManageBuckets": "maybe"}
    )
    assert "canManageBuckets" in assert_envelope(r, 400)["error"]
    r = requests.post(f"{server.url}/v2/storage/tokens", headers=server.headers(), data={"expiresIn": "soon"})
    assert "expiresIn" in assert_envelope(r, 400)["error"]
    r = requests.get(f"{server.url}/v2/storage/jobs", headers=server.headers(), params={"limit": "-1"})
    assert "limit" in assert_envelope(r, 400)["error"]


def test_oversized_body_is_413_naming_the_limit(server):
    limit = server.settings.max_request_body
    before = token_count(server)
    r = requests.post(
        f"{server.url}/v2/storage/tokens",
        headers={**server.headers(), "Content-Type": "application/x-www-form-urlencoded"},
        data=b"description=" + b"x" * (limit + 1),
    )
    body = assert_envelope(r, 413)
    assert str(limit) in body["error"] and "max_request_body" in body["error"]
    assert token_count(server) == before


def test_oversized_chunked_body_is_413(server):
    limit = server.settings.max_request_body

    def chunks():
        yield b"description="
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    r = requests.post(
        f"{server.url}/v2/storage/tokens",
        headers={**server.headers(), "Content-Type": "application/x-www-form-urlencoded"},
        data=chunks(),
    )
    assert_envelope(r, 413)


def test_out_of_scope_keboola_features_are_501(server):
    for path in ("/components", "/branch/default/components/keboola.ex-db/configs", "/workspaces"):
        body = assert_envelope(requests.get(f"{server.url}/v2/storage{path}", headers=server.headers()), 501)
        assert "not implemented" in body["error"]


def test_unexpected_error_is_a_generic_500_without_internals(server):
    app = server._server.server.config.loaded_app
    fastapi_app = app
    while not hasattr(fastapi_app, "add_api_route"):
        fastapi_app = fastapi_app.app

    def boom() -> None:
        raise RuntimeError("password=hunter2 in internal state")

    fastapi_app.add_api_route("/v2/storage/test-boom", boom, methods=["GET"])
    r = requests.get(f"{server.url}/v2/storage/test-boom", headers=server.headers())
    body = assert_envelope(r, 500, "internal")
    assert "hunter2" not in r.text
    assert body["exceptionId"] in body["error"]


# -- hostile input (found by fuzzing): 4xx, never a 500 -------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/jobs", {"offset": "99999999999999999999"}),
        ("GET", "/files", {"offset": "99999999999999999999"}),
        ("GET", "/files", {"maxId": "99999999999999999999"}),
        ("POST", "/files/prepare", {"name": "x", "sizeBytes": "99999999999999999999999"}),
    ],
)
def test_integers_beyond_64_bits_are_400(server, method, path, params):
    kw = {"params": params} if method == "GET" else {"data": params}
    r = requests.request(method, f"{server.url}/v2/storage{path}", headers=server.headers(), **kw)
    assert "too large" in assert_envelope(r, 400)["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/jobs/99999999999999999999",
        "/files/99999999999999999999",
        "/files/%D9%A1",
        "/tokens/99999999999999999999",
    ],
)
def test_ids_beyond_64_bits_or_not_ascii_name_nothing(server, path):
    assert_envelope(requests.get(f"{server.url}/v2/storage{path}", headers=server.headers()), 404)


def test_deeply_nested_bodies_are_400(server):
    deep_json = b"[" * 100_000 + b"]" * 100_000
    r = requests.post(
        f"{server.url}/v2/storage/files/prepare",
        headers={**server.headers(), "Content-Type": "application/json"},
        data=deep_json,
    )
    assert "nests too deeply" in assert_envelope(r, 400)["error"]
    r = requests.post(
        f"{server.url}/v2/storage/files/prepare",
        headers={**server.headers(), "Content-Type": "application/x-www-form-urlencoded"},
        data=("name" + "[x]" * 5000 + "=1").encode(),
    )
    assert "bracket levels" in assert_envelope(r, 400)["error"]


def test_nul_characters_and_nested_list_items_are_400(server):
    url = f"{server.url}/v2/storage/files/prepare"
    r = requests.post(url, headers=server.headers(), data={"name": "x", "contentType": "text/\x00"})
    assert "NUL" in assert_envelope(r, 400)["error"]
    r = requests.post(url, headers=server.headers(), data={"name": "x", "tags[0][a]": "b"})
    assert "tags" in assert_envelope(r, 400)["error"]
    r = requests.post(url, headers=server.headers(), data={"name": "x", "contentType": "t" * 300})
    assert "at most 255" in assert_envelope(r, 400)["error"]
    r = requests.post(url, headers={**server.headers(), "X-KBC-RunId": "r" * 300}, data={"name": "x"})
    assert "run id" in assert_envelope(r, 400)["error"]
