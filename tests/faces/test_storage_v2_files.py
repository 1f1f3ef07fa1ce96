"""Keboola files endpoints over HTTP: prepare, upload via the signed URL, list, detail, download, delete."""

from __future__ import annotations

import gzip
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import requests

from entrepot.core import files as core_files


def _prepare(server, token=None, **params) -> dict:
    data = {"name": "data.csv", "isEncrypted": "1", "federationToken": "1", **params}
    r = requests.post(f"{server.url}/v2/storage/files/prepare", headers=server.headers(token), data=data)
    assert r.status_code == 201, r.text
    return r.json()


def _upload(server, token=None, content: bytes = b"a,b\n1,2\n", method="PUT", **params) -> dict:
    prepared = _prepare(server, token, **params)
    r = requests.request(method, prepared["uploadParams"]["url"], data=content)
    assert r.status_code == 200, r.text
    return r.json()


def _detail(server, file_id, token=None, **params) -> requests.Response:
    return requests.get(
        f"{server.url}/v2/storage/files/{file_id}", headers=server.headers(token), params=params
    )


def test_prepare_returns_the_file_object_and_upload_params(server):
    body = _prepare(server, sizeBytes="6", **{"tags[]": ["t1", "t2"]})
    assert isinstance(body["id"], int)
    assert body["name"] == "data.csv" and body["provider"] == "aws" and body["region"] == "us-east-1"
    assert body["sizeBytes"] == 6 and body["isEncrypted"] is True and body["isSliced"] is False
    assert body["tags"] == ["t1", "t2"] and body["maxAgeDays"] == 15 and body["isExpired"] is False
    assert body["creatorToken"]["description"] == "Master token of default"
    assert body["created"].endswith("+0000") and body["isUploaded"] is False
    params = body["uploadParams"]
    assert params["bucket"] == "entrepot-files" and params["acl"] == "private"
    assert params["x-amz-server-side-encryption"] == "AES256"
    assert params["key"].endswith(f"/files/{body['id']}/data.csv")
    assert params["url"].startswith(f"{server.url}/v2/storage/files/{body['id']}/upload?")
    assert "absUploadParams" not in body
    # federationToken=1: S3 credentials for the S3 face (tests/faces/test_keboola_files_s3.py)
    assert set(params["credentials"]) == {"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}


def test_upload_with_put_then_detail_list_download_and_delete(server):
    content = b"col1,col2\nx,y\n"
    prepared = _prepare(server, sizeBytes=str(len(content)), **{"tags[]": ["roundtrip"]})
    r = requests.put(prepared["uploadParams"]["url"], data=content)  # no token
    assert r.status_code == 200, r.text
    assert r.json()["sizeBytes"] == len(content) and r.json()["isUploaded"] is True

    detail = _detail(server, prepared["id"])
    assert detail.status_code == 200
    body = detail.json()
    assert body["id"] == prepared["id"] and body["sizeBytes"] == len(content) and body["uploaded"]
    assert "credentials" not in body and "s3Path" not in body

    listed = requests.get(
        f"{server.url}/v2/storage/files", headers=server.headers(), params={"tags[]": "roundtrip", "limit": 1}
    )
    assert listed.status_code == 200 and [f["id"] for f in listed.json()] == [prepared["id"]]

    download = requests.get(body["url"])  # no token
    assert download.status_code == 200 and download.content == content
    assert "data.csv" in download.headers["content-disposition"]

    deleted = requests.delete(f"{server.url}/v2/storage/files/{prepared['id']}", headers=server.headers())
    assert deleted.status_code == 204
    assert _detail(server, prepared["id"]).status_code == 404
    assert requests.get(body["url"]).status_code == 404


def test_upload_with_post_raw_and_multipart(server):
    raw = _upload(server, content=b"raw-post", method="POST")
    assert raw["sizeBytes"] == 8
    prepared = _prepare(server)
    r = requests.post(
        prepared["uploadParams"]["url"],
        data={"key": "ignored"},
        files={"file": ("x.csv", b"multipart-bytes", "text/csv")},
    )
    assert r.status_code == 200, r.text
    assert r.json()["sizeBytes"] == len(b"multipart-bytes")
    assert requests.get(_detail(server, prepared["id"]).json()["url"]).content == b"multipart-bytes"


def test_multipart_without_a_file_field_is_refused(server):
    prepared = _prepare(server)
    r = requests.post(prepared["uploadParams"]["url"], files={"other": ("x", b"1")})
    assert r.status_code == 400 and "'file'" in r.json()["error"]


def test_token_authenticated_upload_without_signature(server):
    prepared = _prepare(server)
    url = f"{server.url}/v2/storage/files/{prepared['id']}/upload"
    assert requests.put(url, data=b"x").status_code == 401
    r = requests.put(url, data=b"with-token", headers=server.headers())
    assert r.status_code == 200 and r.json()["sizeBytes"] == 10


def test_only_the_preparing_token_or_master_may_upload(server):
    reader = server.token_for(description="reader", can_read_all_file_uploads=True)
    prepared = _prepare(server)
    url = f"{server.url}/v2/storage/files/{prepared['id']}/upload"
    assert requests.put(url, data=b"x", headers=server.headers(reader)).status_code == 403


def test_large_upload_streams_through(server):
    content = bytes(range(256)) * (5 * 4096 + 3)  # ~5 MiB
    prepared = _prepare(server, sizeBytes=str(len(content)))

    def gen():
        for i in range(0, len(content), 100_000):
            yield content[i : i + 100_000]

    r = requests.put(prepared["uploadParams"]["url"], data=gen())  # chunked transfer encoding
    assert r.status_code == 200, r.text
    assert r.json()["sizeBytes"] == len(content)
    got = requests.get(r.json()["url"])
    assert got.content == content
    ranged = requests.get(r.json()["url"], headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == content[10:20]


def test_declared_size_mismatch_fails_and_keeps_nothing(server):
    prepared = _prepare(server, sizeBytes="6")
    for content in (b"12345", b"1234567"):
        r = requests.put(prepared["uploadParams"]["url"], data=content)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "storage.files.sizeMismatch" and "sizeBytes=6" in r.json()["error"]
    body = _detail(server, prepared["id"]).json()
    assert body["isUploaded"] is False and body["sizeBytes"] == 6
    assert server.services.blobs.head(prepared["uploadParams"]["key"]) is None
    assert requests.put(prepared["uploadParams"]["url"], data=b"123456").status_code == 200


def _with_query(url: str, **changes) -> str:
    parsed = urlparse(url)
    query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    query.update(changes)
    return parsed._replace(query=urlencode(query)).geturl()


def test_tampered_or_expired_signatures_are_refused_in_keboola_envelope(server):
    uploaded = _upload(server)
    url = uploaded["url"]
    sig = parse_qs(urlparse(url).query)["signature"][0]
    tampered = _with_query(url, signature=("A" if sig[0] != "A" else "B") + sig[1:])
    other_file = url.replace(f"/files/{uploaded['id']}/", f"/files/{uploaded['id'] + 1000}/")
    expires = int(parse_qs(urlparse(url).query)["expires"][0])
    moved_expiry = _with_query(url, expires=str(expires + 10))
    for bad in (tampered, other_file, moved_expiry, url.split("?")[0]):
        r = requests.get(bad)
        assert r.status_code in (401, 403), (bad, r.status_code)
        body = r.json()
        assert body["status"] == "error" and body["code"].startswith("signature.") and body["exceptionId"]
    # an expired but correctly signed URL
    from entrepot.core import signing

    past = 1_000_000
    old_sig = signing.sign(server.services.secret_key, core_files.DOWNLOAD, str(uploaded["id"]), past)
    r = requests.get(_with_query(url, expires=str(past), signature=old_sig))
    assert r.status_code in (401, 403) and r.json()["code"] == "signature.expired"
    # a download signature does not authorise an upload
    upload = url.replace("/download?", "/upload?")
    assert requests.put(upload, data=b"evil").status_code in (401, 403)


def test_path_traversal_in_the_name_is_sanitised(server):
    body = _prepare(server, name="../../etc/pass:wd")
    assert body["name"] == "pass_wd"
    assert body["uploadParams"]["key"] == f"projects/{server.project_id}/files/{body['id']}/pass_wd"
    r = requests.post(
        f"{server.url}/v2/storage/files/prepare", headers=server.headers(), data={"name": "../.."}
    )
    assert r.status_code == 400


def test_files_of_another_token_are_invisible_without_can_read_all_file_uploads(server):
    mine = _upload(server)
    plain = server.token_for(description="plain")
    reader = server.token_for(description="reader", can_read_all_file_uploads=True)
    assert _detail(server, mine["id"], plain).status_code == 404
    assert _detail(server, mine["id"], reader).status_code == 200
    own = _upload(server, plain, **{"tags[]": ["plain-own"]})
    listed = requests.get(f"{server.url}/v2/storage/files", headers=server.headers(plain)).json()
    assert [f["id"] for f in listed] == [own["id"]]
    assert own["creatorToken"]["description"] == "plain"
    r = requests.delete(f"{server.url}/v2/storage/files/{mine['id']}", headers=server.headers(plain))
    assert r.status_code == 404


def test_list_is_newest_first_with_limit_offset_and_ids(server):
    ids = [_upload(server, **{"tags[]": ["order-test"]})["id"] for _ in range(3)]
    url = f"{server.url}/v2/storage/files"
    got = requests.get(url, headers=server.headers(), params={"tags[]": "order-test"}).json()
    assert [f["id"] for f in got] == ids[::-1]
    got = requests.get(
        url, headers=server.headers(), params={"tags[]": "order-test", "limit": 1, "offset": 1}
    )
    assert [f["id"] for f in got.json()] == [ids[1]]
    got = requests.get(
        url, headers=server.headers(), params={"tags[]": "order-test", "sinceId": ids[0]}
    ).json()
    assert [f["id"] for f in got] == [ids[2], ids[1]]
    got = requests.get(url, headers=server.headers(), params={"tags[]": "order-test", "maxId": ids[1]}).json()
    assert [f["id"] for f in got] == [ids[1], ids[0]]
    assert len(requests.get(url, headers=server.headers(), params={"limit": 1}).json()) == 1


def test_q_query_with_and_or(server):
    a = _upload(server, **{"tags[]": ["q-a"]})["id"]
    ab = _upload(server, **{"tags[]": ["q-a", "q-b"]})["id"]
    c = _upload(server, **{"tags[]": ["q-c"]})["id"]
    url = f"{server.url}/v2/storage/files"

    def ids(q):
        r = requests.get(url, headers=server.headers(), params={"q": q})
        assert r.status_code == 200, r.text
        return [f["id"] for f in r.json()]

    assert ids('tags:"q-a" AND tags:"q-b"') == [ab]
    assert ids('tags:"q-a" OR tags:"q-c"') == [c, ab, a]
    assert ids('(tags:"q-b" OR tags:"q-c") AND tags:"q-a"') == [ab]
    bad = requests.get(url, headers=server.headers(), params={"q": "name:foo"})
    assert bad.status_code == 400 and bad.json()["code"] == "storage.files.invalidQuery"


def test_tags_can_be_added_and_removed(server):
    f = _upload(server)
    base = f"{server.url}/v2/storage/files/{f['id']}/tags"
    assert requests.post(base, headers=server.headers(), data={"tag": "added"}).status_code == 204
    assert "added" in _detail(server, f["id"]).json()["tags"]
    assert requests.delete(f"{base}/added", headers=server.headers()).status_code == 204
    assert "added" not in _detail(server, f["id"]).json()["tags"]


def test_detail_with_federation_token_has_s3_path_and_read_credentials(server):
    f = _upload(server)
    body = _detail(server, f["id"], federationToken="true").json()
    assert body["s3Path"] == {
        "bucket": "entrepot-files",
        "key": f"projects/{server.project_id}/files/{f['id']}/data.csv",
    }
    assert body["credentials"]["AccessKeyId"].startswith("ES")
    assert "credentials" not in _detail(server, f["id"], federationToken="false").json()


def test_unknown_or_malformed_file_ids_are_404(server):
    assert _detail(server, 999999).status_code == 404
    assert _detail(server, "abc").status_code == 404
    r = requests.delete(f"{server.url}/v2/storage/files/999999", headers=server.headers())
    assert r.status_code == 404 and r.json()["status"] == "error"


def test_async_delete_returns_a_job(server):
    f = _upload(server)
    r = requests.delete(
        f"{server.url}/v2/storage/files/{f['id']}", headers=server.headers(), params={"async": "true"}
    )
    assert r.status_code == 202 and r.headers["content-type"].startswith("application/json")
    job = r.json()
    assert job["operationName"] == "fileDelete"
    final = server.services.jobs.wait(job["id"], 10)
    assert final.status == "succeeded"
    assert _detail(server, f["id"]).status_code == 404


def test_download_of_a_file_not_uploaded_yet_is_an_error(server):
    prepared = _prepare(server)
    r = requests.get(prepared["url"])
    assert r.status_code == 400 and "not been uploaded" in r.json()["error"]


@pytest.mark.parametrize("compressed", [True, False])
def test_export_file_with_columns_downloads_as_headed_csv(server, tmp_path, compressed):
    rows = b'"1","a"\n"2","b ""q"""\n'
    path = tmp_path / "export.csv.gz"
    if compressed:
        path.write_bytes(gzip.compress(rows[:10]) + gzip.compress(rows[10:]))  # two members
    else:
        path.write_bytes(rows)
    file = core_files.create_from_path(
        server.services,
        server.project_id,
        None,
        path,
        name="in.c-main.t.csv.gz",
        tags=["table-export"],
        columns=["id", 'na"me'],
    )
    assert not path.exists()  # moved into the store
    assert file.uploaded_at is not None and file.size_bytes > 0
    r = requests.get(core_files.download_url(server.services, file))
    assert r.status_code == 200, r.text
    assert r.content == b'"id","na""me"\n' + rows
    assert r.headers["content-type"].startswith("text/csv")
    # the stored bytes stay headerless (kbcstorage prepends the header itself)
    with core_files.open_local(server.services, server.project_id, file.id) as local:
        assert core_files.is_gzip(local) is compressed


def test_open_local_refuses_a_file_without_bytes(server):
    prepared = _prepare(server)
    from entrepot.core.errors import InvalidInput

    with (
        pytest.raises(InvalidInput, match="has not been uploaded yet"),
        core_files.open_local(server.services, server.project_id, prepared["id"]),
    ):
        pass
