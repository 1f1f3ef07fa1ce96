"""CARTO maps, ``.carto`` exports and the organization users API through the official ``carto``
SDK (1.11.3, unmodified).

An import with ``create_vis`` creates a map; ``VisualizationManager`` lists, reads (by id and by
name), changes and deletes it; a dataset counts the maps using it (``Dataset.delete()`` refuses
client-side, ``force_delete()`` deletes the dataset and its only map). ``Visualization.export()``
yields a URL that downloads with the same key; the ``.carto`` file imported by another user
recreates the datasets (same rows) and the map. ``UserManager`` creates, reads, changes and
deletes users of an organization through ``<org>.localhost/user/<admin>/``; other keys are refused.
"""

from __future__ import annotations

import io
import json
import socket
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from entrepot.core.catalog import Project
from entrepot.core.organizations import create_organization
from support.server import RunningServer

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from carto.auth import APIKeyAuthClient
    from carto.datasets import DatasetManager
    from carto.exceptions import CartoException
    from carto.sql import SQLClient
    from carto.users import UserManager
    from carto.visualizations import VisualizationManager
    from pyrestcli.exceptions import ForbiddenErrorException, NotFoundException, UnauthorizedErrorException

pytestmark = pytest.mark.filterwarnings("ignore")

CSV = "store,latitude,longitude,visits\nLouvre,48.8606,2.3376,12\nBellecour,45.7578,4.8320,7\n"


def _auth(base: str, token: str, organization: str | None = None) -> APIKeyAuthClient:
    return APIKeyAuthClient(api_key=token, base_url=base, organization=organization)


@pytest.fixture(scope="module")
def base(server: RunningServer) -> str:
    return f"{server.url}/user/default/"


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("files") / "stores.csv"
    path.write_text(CSV)
    return str(path)


def _map_of(server: RunningServer, base: str, dataset_name: str) -> Any:
    maps = VisualizationManager(_auth(base, server.token)).all()
    found = [m for m in maps if m.related_tables and m.related_tables[0].name == dataset_name]
    assert len(found) == 1, [m.name for m in maps]
    return found[0]


def test_an_import_with_create_vis_makes_a_map(server: RunningServer, base: str, stores: str) -> None:
    client = _auth(base, server.token)
    dataset = DatasetManager(client).create(stores, create_vis=True)
    assert dataset.name.startswith("stores")
    assert dataset.dependent_visualizations_count == 1
    assert dataset.dependent_visualizations[0].type == "derived"
    maps = VisualizationManager(client)
    vis = _map_of(server, base, dataset.name)
    assert vis.type == "derived" and vis.privacy == "PRIVATE"
    assert maps.get(vis.id).name == vis.name
    assert maps.get(vis.name).id == vis.id  # by name
    # a map and its dataset share the name: type decides
    assert DatasetManager(client).get(dataset.name).id == dataset.id

    vis.description = "Stores on a map"
    vis.privacy = "LINK"
    vis.tags = ["retail"]
    vis.save()
    again = maps.get(vis.id)
    assert (again.description, again.privacy, again.tags) == ("Stores on a map", "LINK", ["retail"])

    # the map is readable without a key (link), its dataset still private
    anonymous = requests.get(base + f"api/v1/viz/{vis.id}", params={"type": "derived"})
    assert anonymous.status_code == 200 and anonymous.json()["type"] == "derived"

    # deleting the map leaves the dataset, without dependents
    again.delete()
    with pytest.raises(NotFoundException):
        maps.get(vis.id)
    assert DatasetManager(client).get(dataset.id).dependent_visualizations_count == 0
    dataset = DatasetManager(client).get(dataset.id)
    dataset.delete()  # no map uses it any more
    with pytest.raises(NotFoundException):
        DatasetManager(client).get(dataset.id)


def test_a_dataset_used_by_a_map_is_deleted_only_by_force(
    server: RunningServer, base: str, stores: str
) -> None:
    client = _auth(base, server.token)
    dataset = DatasetManager(client).create(stores, create_vis=True)
    vis = _map_of(server, base, dataset.name)
    listed = {d.id: d for d in DatasetManager(client).all()}
    assert listed[dataset.id].dependent_visualizations_count == 1
    with pytest.raises(CartoException, match="dependent visualizations"):
        dataset.delete()
    assert DatasetManager(client).get(dataset.id).id == dataset.id  # still there
    dataset.force_delete()
    with pytest.raises(NotFoundException):
        DatasetManager(client).get(dataset.id)
    with pytest.raises(NotFoundException):  # the map showed only that dataset: gone with it
        VisualizationManager(client).get(vis.id)


def test_map_listing_counts_are_exact(server: RunningServer, base: str) -> None:
    listing = requests.get(
        base + "api/v1/viz/", params={"type": "derived", "api_key": server.token, "per_page": 1}
    ).json()
    assert listing["total_entries"] == len(VisualizationManager(_auth(base, server.token)).all())
    refused = requests.get(base + "api/v1/viz/", params={"type": "derived", "api_key": "nope"})
    assert refused.status_code == 401


def _new_project(server: RunningServer, name: str) -> str:
    from entrepot.core.projects import create_project

    return create_project(server.services.catalog, name).master.token


def test_export_a_map_and_import_it_back(
    server: RunningServer, base: str, stores: str, tmp_path: Path
) -> None:
    client = _auth(base, server.token)
    dataset = DatasetManager(client).create(stores, create_vis=True, table_name="shops")
    vis = _map_of(server, base, dataset.name)
    url = vis.export()
    assert url.endswith("/download")
    assert requests.get(url).status_code == 401  # the same credentials are needed
    answer = requests.get(url, params={"api_key": server.token})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(answer.content)) as zf:
        names = zf.namelist()
        definition = json.loads(zf.read(next(n for n in names if n.endswith(".carto.json"))))
    assert f"{dataset.name}.parquet" in names
    assert definition["visualization"]["name"] == vis.name

    # the export's JSON, polled
    export_id = url.rsplit("/", 2)[-2]
    polled = requests.get(
        base + f"api/v3/visualization_exports/{export_id}", params={"api_key": server.token}
    )
    assert polled.json()["state"] == "complete" and polled.json()["visualization_id"] == vis.id
    missing = requests.post(
        base + "api/v3/visualization_exports/", params={"api_key": server.token, "visualization_id": "nope"}
    )
    assert missing.status_code == 404 and "Visualization not found" in missing.json()["errors"]

    # import the .carto file as another user: same rows, and the map again
    other_token = _new_project(server, "carto-importer")
    other_base = f"{server.url}/user/carto-importer/"
    path = tmp_path / "shops.carto"
    path.write_bytes(answer.content)
    other = _auth(other_base, other_token)
    imported = DatasetManager(other).create(str(path))
    assert imported.name == dataset.name
    assert imported.dependent_visualizations_count == 1
    again = VisualizationManager(other).get(vis.name)
    assert [t.name for t in again.related_tables] == [dataset.name]
    q = f"SELECT store, visits, ST_AsText(the_geom) AS g FROM {dataset.name} ORDER BY store"
    assert SQLClient(other).send(q)["rows"] == SQLClient(client).send(q)["rows"]


def test_a_dataset_exports_too(server: RunningServer, base: str, stores: str) -> None:
    client = _auth(base, server.token)
    dataset = DatasetManager(client).create(stores)
    created = requests.post(
        base + "api/v3/visualization_exports", json={"visualization_id": dataset.id, "api_key": server.token}
    )
    assert created.status_code == 201, created.text
    assert created.json()["state"] in ("pending", "exporting", "complete")


# -- users -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def org_base(server: RunningServer) -> Iterator[str]:
    """``http://acme.localhost:<port>/user/default/``, ``default`` being the admin of ``acme``
    (``*.localhost`` resolves to the loopback, RFC 6761)."""
    create_organization(server.services.catalog, "acme", "default", email="admin@example.org")
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    socket.getaddrinfo = resolve  # type: ignore[assignment]
    try:
        yield f"http://acme.localhost:{server.url.rsplit(':', 1)[1]}/user/default/"
    finally:
        socket.getaddrinfo = real  # type: ignore[assignment]


def test_users_of_an_organization(server: RunningServer, org_base: str) -> None:
    admin = _auth(org_base, server.token, organization="acme")
    users = UserManager(admin)
    me = users.get("default")
    assert me.username == "default" and me.org_admin is True
    assert me.table_count == len(DatasetManager(admin).all())
    assert me.all_visualization_count == len(VisualizationManager(admin).all())

    created = users.create(
        username="test-carto-python-sdk-1r2t31", email="t@example.org", password="s3cret-pass"
    )
    assert created.username == "test-carto-python-sdk-1r2t31"
    assert created.password is None or created.password == "s3cret-pass"  # the SDK keeps what it sent
    got = users.get("test-carto-python-sdk-1r2t31")
    assert (got.email, got.table_count, got.all_visualization_count, got.org_admin) == (
        "t@example.org",
        0,
        0,
        False,
    )
    raw = requests.get(
        org_base + "api/v1/organization/acme/users/test-carto-python-sdk-1r2t31",
        params={"api_key": server.token},
    ).json()
    assert "password" not in raw and "api_key" not in raw

    got.email = "changed@example.org"
    got.save()
    assert users.get("test-carto-python-sdk-1r2t31").email == "changed@example.org"

    got.delete()
    with pytest.raises(NotFoundException):
        users.get("test-carto-python-sdk-1r2t31")
    with server.services.catalog.session(readonly=True) as s:
        assert s.scalar(select(Project).where(Project.name == "test-carto-python-sdk-1r2t31")) is None


def test_only_the_admin_manages_users(server: RunningServer, org_base: str, stores: str) -> None:
    created = requests.post(
        org_base + "api/v1/organization/acme/users/",
        json={
            "username": "member-one",
            "email": "m@example.org",
            "password": "pw-123456",
            "api_key": server.token,
        },
    )
    assert created.status_code == 200, created.text
    member_key = created.json()["api_key"]
    member_base = org_base.replace("/user/default/", "/user/member-one/")
    member = _auth(member_base, member_key, organization="acme")
    DatasetManager(member).create(stores, create_vis=True)

    me = UserManager(member).get("member-one")  # a member reads itself
    assert me.table_count == len(DatasetManager(member).all()) == 1
    assert me.all_visualization_count == len(VisualizationManager(member).all()) == 1
    with pytest.raises(ForbiddenErrorException):
        UserManager(member).get("default")
    with pytest.raises(ForbiddenErrorException):
        UserManager(member).create(username="member-two", email="x@example.org", password="pw-123456")
    with pytest.raises(UnauthorizedErrorException):
        UserManager(_auth(org_base, "wrong-key", organization="acme")).get("default")
    with pytest.raises(ForbiddenErrorException):
        me.delete()

    # the admin deletes it with its data: tables, lake, spaces
    lake = server.settings.data_dir / "lakes" / "member-one"
    assert lake.exists()
    UserManager(_auth(org_base, server.token, organization="acme")).get("member-one").delete()
    assert not lake.exists()
    refused = requests.get(member_base + "api/v2/sql", params={"q": "select 1", "api_key": member_key})
    assert refused.status_code in (401, 404)
