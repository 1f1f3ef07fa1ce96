"""The object-space commands (spaces, ls, cp, rm, presign) against a real server, as a script would use them."""

from __future__ import annotations

import json
import os

import httpx

from entrepot import DataClient
from support.server import cli_env, run_cli

MIB = 1024 * 1024


def _tree(root):  # type: ignore[no-untyped-def]
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_copy_list_and_remove_files_both_ways(server, tmp_path):
    env = cli_env(tmp_path / "unused", ENTREPOT_URL=server.url, ENTREPOT_TOKEN=server.token)
    src = tmp_path / "src"
    (src / "sub" / "deep").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.csv").write_text("x,y\n1,2\n")
    (src / "sub" / "deep" / "big.bin").write_bytes(os.urandom(20 * MIB + 5))  # multipart (> 16 MiB)
    expected = _tree(src)

    # one file; a key ending in '/' gets the file's name
    run_cli("cp", str(src / "a.txt"), "private:single/", env=env)
    run_cli("cp", str(src / "a.txt"), "private:single/renamed.txt", env=env)
    # a folder, recursively
    copied = run_cli("cp", "-r", str(src), "private:tree", env=env)
    assert "3 of 3 file(s) copied" in copied.stderr
    folder_needs_r = run_cli("cp", str(src), "private:x", env=env, check=False)
    assert folder_needs_r.returncode == 2 and "-r" in folder_needs_r.stderr

    listed = json.loads(run_cli("ls", "private:tree", "--json", env=env).stdout)
    assert [(r["key"], r["folder"]) for r in listed] == [("tree/sub/", True), ("tree/a.txt", False)]
    assert listed[1]["size"] == 6
    deep = json.loads(run_cli("ls", "private:tree/", "-r", "--json", env=env).stdout)
    assert [r["key"] for r in deep] == ["tree/a.txt", "tree/sub/b.csv", "tree/sub/deep/big.bin"]
    big = next(r for r in deep if r["key"].endswith("big.bin"))
    assert big["etag"].endswith("-3")  # went up in 8 MiB parts
    assert big["sha256"] is None  # stored as its parts; the copy back below checks the bytes
    single = json.loads(run_cli("ls", "private:single/renamed.txt", "--json", env=env).stdout)
    assert [r["key"] for r in single] == ["single/renamed.txt"]
    table = run_cli("ls", "private:tree", env=env).stdout
    assert "tree/sub/" in table and "tree/a.txt" in table
    spaces = run_cli("ls", "--json", env=env).stdout
    assert {s["name"] for s in json.loads(spaces)} == {"public", "private"}

    # back, recursively, into a new folder; then one object into a folder and to stdout
    back = tmp_path / "back"
    run_cli("cp", "-r", "private:tree", str(back), env=env)
    assert _tree(back) == expected
    run_cli("cp", "private:tree/sub/b.csv", str(back), env=env)
    assert (back / "b.csv").read_text() == "x,y\n1,2\n"
    assert run_cli("cp", "private:single/a.txt", "-", env=env).stdout == "alpha\n"

    # copies between spaces stay on the server
    run_cli("cp", "-r", "private:tree/sub", "public:shared/", env=env)
    public = json.loads(run_cli("ls", "public:shared", "-r", "--json", env=env).stdout)
    assert [r["key"] for r in public] == ["shared/b.csv", "shared/deep/big.bin"]

    # rm: one object, then a folder
    run_cli("rm", "private:single/a.txt", env=env)
    missing = run_cli("rm", "private:single/a.txt", env=env, check=False)
    assert (
        missing.returncode == 1 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    )
    removed = run_cli("rm", "-r", "private:tree", env=env)
    assert "deleted 3 object(s)" in removed.stderr
    gone = run_cli("ls", "private:tree", env=env, check=False)
    assert gone.returncode == 1 and "no object or folder private:tree" in gone.stderr
    assert [r["key"] for r in json.loads(run_cli("ls", "private:", "-r", "--json", env=env).stdout)] == [
        "single/renamed.txt"
    ]


def test_anonymous_reads_and_presigned_urls(server, tmp_path):
    env = cli_env(tmp_path / "unused", ENTREPOT_URL=server.url, ENTREPOT_TOKEN=server.token)
    (tmp_path / "note.txt").write_text("signed\n")
    run_cli("cp", str(tmp_path / "note.txt"), "private:docs/note.txt", env=env)
    run_cli("cp", str(tmp_path / "note.txt"), "public:docs/note.txt", env=env)

    url = run_cli("presign", "private:docs/note.txt", "--expires", "1h", env=env).stdout.strip()
    assert httpx.get(url).content == b"signed\n"
    put_url = run_cli("presign", "private:docs/up.txt", "--method", "put", "--expires", "90s", env=env).stdout
    assert httpx.put(put_url.strip(), content=b"uploaded by url").status_code == 201
    bad = run_cli("presign", "private:docs/note.txt", "--expires", "soon", env=env, check=False)
    assert bad.returncode == 2

    anonymous = cli_env(tmp_path / "unused", ENTREPOT_URL=server.url)
    assert run_cli("cp", "public:docs/note.txt", "-", env=anonymous).stdout == "signed\n"
    denied = run_cli("cp", "private:docs/note.txt", str(tmp_path / "x.txt"), env=anonymous, check=False)
    assert denied.returncode == 1 and "needs a token" in denied.stderr and not (tmp_path / "x.txt").exists()
    refused = run_cli("cp", str(tmp_path / "note.txt"), "public:docs/evil.txt", env=anonymous, check=False)
    assert refused.returncode == 1 and "needs a token with write permission" in refused.stderr


def test_spaces_create_list_and_delete(server, tmp_path):
    manager = server.token_for(can_manage_spaces=True)
    env = cli_env(tmp_path / "unused", ENTREPOT_URL=server.url, ENTREPOT_TOKEN=manager)
    created = run_cli(
        "spaces", "create", "contest", "--public", "--description", "results", "--expires", "30d", env=env
    )
    assert created.stdout.strip() == "contest"
    rows = {s["name"]: s for s in json.loads(run_cli("spaces", "list", "--json", env=env).stdout)}
    assert (
        rows["contest"]["public"] is True
        and rows["contest"]["expiresAt"]
        and rows["contest"]["description"] == "results"
    )

    with DataClient(manager, url=server.url) as client:
        client.storage("contest").upload(b"score", "team/score.txt").join()
    not_empty = run_cli("spaces", "delete", "contest", env=env, check=False)
    assert not_empty.returncode == 1 and "--force" not in not_empty.stdout and "object" in not_empty.stderr
    run_cli("spaces", "delete", "contest", "--force", env=env)
    assert "contest" not in {
        s["name"] for s in json.loads(run_cli("spaces", "list", "--json", env=env).stdout)
    }

    plain = cli_env(tmp_path / "unused", ENTREPOT_URL=server.url, ENTREPOT_TOKEN=server.token_for())
    refused = run_cli("spaces", "create", "nope", env=plain, check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    bad_token = cli_env(tmp_path / "unused", ENTREPOT_URL=server.url, ENTREPOT_TOKEN="not-a-token")
    invalid = run_cli("spaces", "list", env=bad_token, check=False)
    assert invalid.returncode == 1 and "not an entrepot token" in invalid.stderr
