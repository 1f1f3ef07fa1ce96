"""Keboola buckets over HTTP: create, list, detail, delete (sync, async, force), branches."""

from __future__ import annotations

import requests

from support.jobs import wait_kbc_job


def _api(server) -> str:  # type: ignore[no-untyped-def]
    return f"{server.url}/v2/storage"


def _create_table(server, bucket: str, name: str, csv: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    r = requests.post(
        f"{_api(server)}/buckets/{bucket}/tables-async",
        headers={**server.headers(), "Content-Type": "text/csv"},
        params={"name": name, "dataString": csv},
    )
    return wait_kbc_job(server, r, status="success")  # a JSON 202, then the finished job


def test_create_bucket_returns_201_with_prefixed_name(server) -> None:  # type: ignore[no-untyped-def]
    r = requests.post(
        f"{_api(server)}/buckets",
        headers=server.headers(),
        data={"name": "py-test-buckets", "stage": "in", "description": "Test bucket"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == "in.c-py-test-buckets"
    assert body["name"] == "c-py-test-buckets"
    assert body["displayName"] == "py-test-buckets"


def test_bucket_detail_has_empty_tables_and_attributes_arrays(server) -> None:  # type: ignore[no-untyped-def]
    requests.post(
        f"{_api(server)}/buckets", headers=server.headers(), data={"name": "detail", "description": "x"}
    )
    r = requests.get(f"{_api(server)}/buckets/in.c-detail", headers=server.headers())
    assert r.status_code == 200
    body = r.json()
    assert body["tables"] == [] and body["attributes"] == []
    assert body["uri"] and body["created"] and body["description"] == "x"


def test_bucket_list_has_table_list_url(server) -> None:  # type: ignore[no-untyped-def]
    requests.post(f"{_api(server)}/buckets", headers=server.headers(), data={"name": "listed"})
    items = requests.get(f"{_api(server)}/buckets", headers=server.headers()).json()
    item = next(b for b in items if b["id"] == "in.c-listed")
    assert item["tables"].endswith("/v2/storage/buckets/in.c-listed/tables")


def test_existing_bucket_is_rejected_with_400(server) -> None:  # type: ignore[no-untyped-def]
    requests.post(f"{_api(server)}/buckets", headers=server.headers(), data={"name": "twice"})
    r = requests.post(f"{_api(server)}/buckets", headers=server.headers(), data={"name": "twice"})
    assert r.status_code == 400
    assert r.json()["code"] == "storage.buckets.alreadyExists"


def test_invalid_bucket_name_and_stage_are_400(server) -> None:  # type: ignore[no-untyped-def]
    for data in ({"name": "bad name"}, {"name": "a.b"}, {"name": ""}, {"name": "ok", "stage": "sys"}):
        r = requests.post(f"{_api(server)}/buckets", headers=server.headers(), data=data)
        assert r.status_code == 400, (data, r.text)


def test_unknown_or_unparseable_bucket_is_404(server) -> None:  # type: ignore[no-untyped-def]
    for bucket in ("in.c-nope", "some-totally-non-existent-bucket"):
        assert requests.get(f"{_api(server)}/buckets/{bucket}", headers=server.headers()).status_code == 404
        assert (
            requests.get(f"{_api(server)}/buckets/{bucket}/tables", headers=server.headers()).status_code
            == 404
        )
        r = requests.delete(
            f"{_api(server)}/buckets/{bucket}",
            headers=server.headers(),
            params={"force": "True", "async": "True"},
        )
        assert r.status_code == 404  # synchronously, even with async (C14)


def test_sync_delete_is_204_and_non_empty_bucket_needs_force(server) -> None:  # type: ignore[no-untyped-def]
    requests.post(f"{_api(server)}/buckets", headers=server.headers(), data={"name": "del"})
    _create_table(server, "in.c-del", "t", "a,b\n1,2\n")
    r = requests.delete(
        f"{_api(server)}/buckets/in.c-del",
        headers=server.headers(),
        params={"force": "False", "async": "False"},
    )
    assert r.status_code == 400
    assert requests.get(f"{_api(server)}/tables/in.c-del.t", headers=server.headers()).status_code == 200
    r = requests.delete(
        f"{_api(server)}/buckets/in.c-del", headers=server.headers(), params={"force": "True"}
    )
    assert r.status_code == 204
    assert requests.get(f"{_api(server)}/buckets/in.c-del", headers=server.headers()).status_code == 404
    assert requests.get(f"{_api(server)}/tables/in.c-del.t", headers=server.headers()).status_code == 404
    with server.services.engine.lake("default").cursor(write=False) as cur:
        schemas = [
            r[0]
            for r in cur.execute(
                "SELECT schema_name FROM duckdb_schemas() WHERE database_name = 'lake'"
            ).fetchall()
        ]
    assert "in.c-del" not in schemas


def test_async_force_delete_is_a_bucket_delete_job(server) -> None:  # type: ignore[no-untyped-def]
    requests.post(f"{_api(server)}/buckets", headers=server.headers(), data={"name": "adel"})
    _create_table(server, "in.c-adel", "t", "a\n1\n")
    r = requests.delete(
        f"{_api(server)}/buckets/in.c-adel",
        headers=server.headers(),
        params={"force": "True", "async": "True"},
    )
    job = wait_kbc_job(server, r, status="success")  # a JSON 202, then the finished job
    assert job["operationName"] == "bucketDelete"
    assert requests.get(f"{_api(server)}/buckets/in.c-adel", headers=server.headers()).status_code == 404
    # the name is free again, and so is the lake schema
    assert (
        requests.post(f"{_api(server)}/buckets", headers=server.headers(), data={"name": "adel"}).status_code
        == 201
    )
    _create_table(server, "in.c-adel", "t", "a\n1\n")


def test_bucket_tables_lists_table_objects(server) -> None:  # type: ignore[no-untyped-def]
    requests.post(f"{_api(server)}/buckets", headers=server.headers(), data={"name": "bt"})
    _create_table(server, "in.c-bt", "some-table", "col1,col2\nfoo,bar\n")
    items = requests.get(f"{_api(server)}/buckets/in.c-bt/tables", headers=server.headers()).json()
    assert [t["id"] for t in items] == ["in.c-bt.some-table"]
    detail = requests.get(f"{_api(server)}/buckets/in.c-bt", headers=server.headers()).json()
    assert [t["id"] for t in detail["tables"]] == ["in.c-bt.some-table"]


def test_tokens_see_only_buckets_they_may_read_and_need_manage_to_create(server) -> None:  # type: ignore[no-untyped-def]
    requests.post(f"{_api(server)}/buckets", headers=server.headers(), data={"name": "perm-a"})
    requests.post(f"{_api(server)}/buckets", headers=server.headers(), data={"name": "perm-b"})
    token = server.token_for(description="reader", bucket_permissions={"in.c-perm-a": "read"})
    ids = [b["id"] for b in requests.get(f"{_api(server)}/buckets", headers=server.headers(token)).json()]
    assert "in.c-perm-a" in ids and "in.c-perm-b" not in ids
    assert (
        requests.post(
            f"{_api(server)}/buckets", headers=server.headers(token), data={"name": "x"}
        ).status_code
        == 403
    )
    assert (
        requests.get(f"{_api(server)}/buckets/in.c-perm-b", headers=server.headers(token)).status_code == 403
    )


def test_default_branch_metadata_and_detail(server) -> None:  # type: ignore[no-untyped-def]
    r = requests.get(f"{_api(server)}/branch/default/metadata", headers=server.headers())
    assert r.status_code == 200 and r.json() == []
    detail = requests.get(f"{_api(server)}/dev-branches/default", headers=server.headers()).json()
    assert detail["isDefault"] is True and detail["name"] == "Main"
    listed = requests.get(f"{_api(server)}/dev-branches/", headers=server.headers()).json()
    assert len(listed) == 1
    assert requests.get(f"{_api(server)}/dev-branches/42", headers=server.headers()).status_code == 404
