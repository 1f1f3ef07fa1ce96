"""The objects core on both catalogs: byte-order listings, default spaces after migration, key rotation."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select, text

from entrepot.config import Settings
from entrepot.core.auth import TokenSpec, create_token
from entrepot.core.catalog import Catalog, Space
from entrepot.core.catalog.db import MIGRATIONS_DIR
from entrepot.core.errors import PermissionDenied
from entrepot.core.objects import objects, presign
from entrepot.core.objects.spaces import authorize, get_space, resolve_project
from entrepot.core.projects import create_project
from entrepot.core.services import Services


@pytest.fixture
def settings(tmp_path, catalog_url):
    return Settings(data_dir=tmp_path, catalog_url=catalog_url, secret_key="first-secret")


def test_listing_is_in_byte_order_on_every_catalog(services):
    new = create_project(services.catalog, "acme")
    space = get_space(services.catalog, new.project, "private")
    keys = ["b", "B", "a", "a/b", "a-b", "Z", "é", "z", "~", "a/B", "ä/x", "中文"]
    for key in keys:
        objects.put_object(services, space, key, [key.encode()])
    page = objects.list_objects(services, space)
    assert [o.key for o in page.objects] == sorted(keys, key=lambda k: k.encode("utf-8"))
    # cursor pages over the same order, two at a time
    seen, cursor = [], None
    while True:
        page = objects.list_objects(services, space, limit=2, cursor=cursor)
        seen += [o.key for o in page.objects]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(keys, key=lambda k: k.encode("utf-8"))
    folders = objects.list_objects(services, space, delimiter="/")
    assert folders.prefixes == ["a/", "ä/"]


def test_new_projects_get_public_and_private(services):
    new = create_project(services.catalog, "fresh")
    with services.catalog.session(readonly=True) as s:
        rows = {
            sp.name: sp.is_public for sp in s.scalars(select(Space).where(Space.project_id == new.project.id))
        }
    assert rows == {"public": True, "private": False}


def test_migration_gives_existing_projects_their_default_spaces(tmp_path, catalog_url):
    catalog = Catalog(Settings(data_dir=tmp_path, catalog_url=catalog_url).effective_catalog_url)
    try:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with catalog.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0002")
            conn.execute(
                text(
                    "INSERT INTO projects (name, description, created_at, disabled) "
                    "VALUES ('old', '', CURRENT_TIMESTAMP, false)"
                )
            )
        catalog.migrate()
        project = resolve_project(catalog, "old")
        assert get_space(catalog, project, "public").is_public
        assert not get_space(catalog, project, "private").is_public
    finally:
        catalog.dispose()


def test_presigned_urls_survive_a_key_rotation_only_while_the_old_key_is_kept(tmp_path, services):
    new = create_project(services.catalog, "rot")
    space = get_space(services.catalog, new.project, "private")
    objects.put_object(services, space, "k", [b"v"])
    master = new.master
    from entrepot.core.auth import authenticate

    principal = authenticate(services.catalog, master.token)
    url = presign.presign(services, space, principal, "GET", key="k", expires_in=60)
    params = dict(p.split("=", 1) for p in url.url.split("?", 1)[1].split("&"))
    assert presign.verify(services, space, "GET", "k", params).token_id == master.row.id

    def rotated(previous: list[str]) -> Services:
        settings = Settings(
            data_dir=services.settings.data_dir,
            catalog_url=services.settings.catalog_url,
            secret_key="second-secret",
            previous_secret_keys=previous,
        )
        return Services(settings, services.catalog)

    assert presign.verify(rotated(["first-secret"]), space, "GET", "k", params).token_id == master.row.id
    with pytest.raises(PermissionDenied, match="signature"):
        presign.verify(rotated([]), space, "GET", "k", params)


def test_a_token_with_only_read_on_private_reads_but_cannot_write(services):
    new = create_project(services.catalog, "perm")
    space = get_space(services.catalog, new.project, "private")
    from entrepot.core.auth import authenticate

    token = create_token(services.catalog, new.project.id, TokenSpec(space_permissions={"private": "read"}))
    reader = authenticate(services.catalog, token.token)
    authorize(space, reader, "read")
    with pytest.raises(PermissionDenied, match="no write permission"):
        authorize(space, reader, "write")


def test_concurrent_puts_of_one_key_leave_one_version_and_one_blob(services):
    import os
    from concurrent.futures import ThreadPoolExecutor

    new = create_project(services.catalog, "race")
    space = get_space(services.catalog, new.project, "private")
    bodies = [os.urandom(50_000) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda b: objects.put_object(services, space, "same/key", [b]), bodies))
    info, stream = objects.open_object(services, space, "same/key")
    with stream:
        assert stream.read() in bodies
    root = services.blobs.root  # type: ignore[attr-defined]
    left = [f for _, _, files in os.walk(root / "spaces" / str(space.id) / "objects") for f in files]
    assert len(left) == 1, left
    assert objects.list_objects(services, space).objects == [objects.head_object(services, space, "same/key")]
    assert info.size == 50_000
