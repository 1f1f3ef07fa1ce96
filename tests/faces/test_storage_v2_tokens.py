"""Keboola token endpoints, over HTTP with requests."""

from __future__ import annotations

import requests


def test_verify_answers_the_tokens_details(server):
    r = requests.get(f"{server.url}/v2/storage/tokens/verify", headers=server.headers())
    assert r.status_code == 200
    body = r.json()
    assert body["id"].isdigit() and int(body["id"]) >= 1
    assert body["isMasterToken"] is True and body["canManageBuckets"] is True
    assert body["owner"]["name"] == "default" and body["owner"]["id"] == server.project_id
    assert body["description"] == "Master token of default"
    assert body["created"].endswith("+0000")
    assert "token" not in body  # secrets are never echoed back


def test_bearer_and_token_authorization_schemes_are_accepted(server):
    for scheme in ("Bearer", "Token"):
        r = requests.get(
            f"{server.url}/v2/storage/tokens/verify", headers={"Authorization": f"{scheme} {server.token}"}
        )
        assert r.status_code == 200, r.text


def test_keboola_face_never_reads_tokens_from_the_query_string(server):
    r = requests.get(f"{server.url}/v2/storage/tokens/verify", params={"api_key": server.token})
    assert r.status_code == 401


def test_project_id_header_must_match_the_token(server):
    ok = requests.get(
        f"{server.url}/v2/storage/tokens/verify",
        headers={"Authorization": f"Bearer {server.token}", "X-KBC-ProjectId": str(server.project_id)},
    )
    assert ok.status_code == 200
    bad = requests.get(
        f"{server.url}/v2/storage/tokens/verify",
        headers={"Authorization": f"Bearer {server.token}", "X-KBC-ProjectId": "999"},
    )
    assert bad.status_code == 401
    assert "X-KBC-ProjectId" in bad.json()["error"]


def test_create_token_with_form_body_returns_a_working_secret(server):
    r = requests.post(
        f"{server.url}/v2/storage/tokens",
        headers=server.headers(),
        data={"description": "loader", "bucketPermissions[in.c-main]": "write", "expiresIn": "3600"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["description"] == "loader"
    assert body["bucketPermissions"] == {"in.c-main": "write"}
    assert body["expires"] is not None and body["isMasterToken"] is False
    assert body["creatorToken"]["description"] == "Master token of default"
    verify = requests.get(f"{server.url}/v2/storage/tokens/verify", headers=server.headers(body["token"]))
    assert verify.json()["id"] == body["id"]


def test_create_token_with_json_body(server):
    r = requests.post(
        f"{server.url}/v2/storage/tokens",
        headers=server.headers(),
        json={"description": "json", "canManageBuckets": True, "spacePermissions": {"private": "read"}},
    )
    assert r.status_code == 201, r.text
    assert r.json()["canManageBuckets"] is True
    assert r.json()["spacePermissions"] == {"private": "read"}


def test_create_token_with_query_parameters_and_empty_csv_body(server):
    headers = {**server.headers(), "Content-Type": "text/csv"}
    r = requests.post(
        f"{server.url}/v2/storage/tokens", headers=headers, params={"description": "from-query"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["description"] == "from-query"


def test_list_detail_refresh_and_delete(server):
    created = requests.post(
        f"{server.url}/v2/storage/tokens", headers=server.headers(), json={"description": "short-lived"}
    ).json()
    listed = requests.get(f"{server.url}/v2/storage/tokens", headers=server.headers()).json()
    assert created["id"] in [t["id"] for t in listed]
    assert all("token" not in t for t in listed)
    detail = requests.get(f"{server.url}/v2/storage/tokens/{created['id']}", headers=server.headers()).json()
    assert detail["description"] == "short-lived"
    refreshed = requests.post(
        f"{server.url}/v2/storage/tokens/{created['id']}/refresh", headers=server.headers()
    ).json()
    assert refreshed["token"] != created["token"]
    old = requests.get(f"{server.url}/v2/storage/tokens/verify", headers=server.headers(created["token"]))
    assert old.status_code == 401
    deleted = requests.delete(f"{server.url}/v2/storage/tokens/{created['id']}", headers=server.headers())
    assert deleted.status_code == 204
    gone = requests.get(f"{server.url}/v2/storage/tokens/verify", headers=server.headers(refreshed["token"]))
    assert gone.status_code == 401


def test_token_can_read_its_own_detail_but_not_others(server):
    plain = server.token_for(description="plain")
    me = requests.get(f"{server.url}/v2/storage/tokens/verify", headers=server.headers(plain)).json()
    own = requests.get(f"{server.url}/v2/storage/tokens/{me['id']}", headers=server.headers(plain))
    assert own.status_code == 200
    other = requests.get(f"{server.url}/v2/storage/tokens/1", headers=server.headers(plain))
    assert other.status_code == 403


def test_token_manager_cannot_escalate_over_http(server):
    manager = server.token_for(can_manage_tokens=True, bucket_permissions={"in.c-main": "read"})
    r = requests.post(
        f"{server.url}/v2/storage/tokens",
        headers=server.headers(manager),
        data={"bucketPermissions[in.c-main]": "write"},
    )
    assert r.status_code == 403
    assert "write permission on bucket in.c-main" in r.json()["error"]
