"""Maps (``core/visualizations.py``) and organizations (``core/organizations.py``) on both catalogs:
a map's layers, dependent counts, the dataset-delete rule, renames; users created, read, changed
and deleted by the admin only, passwords stored hashed."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from entrepot.core import auth, datasets, organizations, visualizations
from entrepot.core import errors as E
from entrepot.core.catalog import Bucket, Project, StoredTable
from entrepot.core.catalog.models import CartoUser, CartoVisualization
from entrepot.core.datasets import DatasetChange
from entrepot.core.organizations import UserInput
from entrepot.core.services import Services
from entrepot.core.sql.namespace import ensure_default_bucket
from entrepot.core.sql.service import Caller


def _table(services: Services, project_name: str, name: str) -> str:
    with services.catalog.session(readonly=True) as s:
        project = s.scalar(select(Project).where(Project.name == project_name))
    assert project is not None
    ensure_default_bucket(services, project)
    table_uuid = str(uuid.uuid4())
    with services.catalog.session() as s:
        bucket = s.scalars(
            select(Bucket).where(Bucket.project_id == project.id, Bucket.ident == "in.c-public")
        ).one()
        s.add(
            StoredTable(uuid=table_uuid, project_id=project.id, bucket_id=bucket.id, name=name, columns=["a"])
        )
    return table_uuid


def test_maps_layers_counts_and_the_dataset_delete_rule(services: Services, master: auth.Principal) -> None:
    caller = Caller(master, "acme")
    one, two = _table(services, "acme", "one"), _table(services, "acme", "two")
    both = visualizations.create_map(services, master.project_id or 0, [one, two])
    only_one = visualizations.create_map(services, master.project_id or 0, [one], name="one")
    maps, total = visualizations.list_maps(services, caller)
    assert total == 2 and {m.id for m in maps} == {both, only_one}
    assert (
        visualizations.get_visualization(services, caller, both).name == "one"
    )  # named after its first layer
    assert visualizations.get_visualization(services, caller, "one 1", "derived").id == only_one  # suffixed
    assert isinstance(
        visualizations.get_visualization(services, caller, "one", "table"), datasets.DatasetView
    )
    assert len(datasets.get_dataset(services, caller, one).maps) == 2

    renamed = visualizations.update_visualization(
        services, caller, both, DatasetChange(name="Two layers", privacy="LINK", text={"description": "d"})
    )
    assert (renamed.name, renamed.privacy, renamed.attributes["description"]) == ("Two layers", "link", "d")
    with pytest.raises(E.PermissionDenied):
        visualizations.update_visualization(services, caller, both, DatasetChange(privacy="nope"))
    anonymous = Caller(auth.Principal(project_id=None, project_name=None), "acme")
    with pytest.raises(E.NotFound):  # private maps are not shown to the anonymous caller
        visualizations.get_visualization(services, anonymous, only_one, "derived")

    # deleting a dataset: refused without force while maps use it
    dataset = datasets.get_dataset(services, caller, one)
    assert datasets.dependent_maps(services, _project(services), _stored(services, one)) != []
    with pytest.raises(E.Conflict):
        datasets.delete_dataset(services, caller, dataset.id, force=False)
    visualizations.delete_visualization(services, caller, one)  # forced: the dataset, its only map
    with services.catalog.session(readonly=True) as s:
        rows = {m.uuid: m.tables for m in s.scalars(select(CartoVisualization))}
    assert rows == {both: [two]}  # the other map loses the layer
    visualizations.delete_visualization(services, caller, both)
    assert visualizations.list_maps(services, caller)[1] == 0
    assert datasets.get_dataset(services, caller, two).maps == ()


def _project(services: Services) -> Project:
    with services.catalog.session(readonly=True) as s:
        project = s.scalar(select(Project).where(Project.name == "acme"))
    assert project is not None
    return project


def _stored(services: Services, table_uuid: str) -> StoredTable:
    with services.catalog.session(readonly=True) as s:
        row = s.scalar(select(StoredTable).where(StoredTable.uuid == table_uuid))
    assert row is not None
    return row


def test_users_of_an_organization(services: Services, master: auth.Principal) -> None:
    organizations.create_organization(services.catalog, "org", "acme", email="admin@example.org")
    with pytest.raises(E.AlreadyExists):
        organizations.create_organization(services.catalog, "org", "acme")
    admin = Caller(master, "acme")
    created = organizations.create_user(
        services, admin, "org", UserInput(username="bob", email="bob@example.org", password="pw-secret")
    )
    assert created.api_key and not created.org_admin and created.table_count == 0
    with services.catalog.session(readonly=True) as s:
        stored = s.scalars(select(CartoUser).where(CartoUser.email == "bob@example.org")).one()
    assert stored.password_hash and "pw-secret" not in stored.password_hash
    assert organizations.check_password("pw-secret", stored.password_hash)
    assert not organizations.check_password("wrong", stored.password_hash)

    bob_key = auth.authenticate(services.catalog, created.api_key)
    bob = Caller(bob_key, "bob")
    _table(services, "bob", "bobs")
    assert organizations.get_user(services, bob, "org", "bob").table_count == 1  # itself
    assert organizations.get_user(services, bob, None, "bob").organization == "org"  # api/v1/users
    with pytest.raises(E.PermissionDenied):
        organizations.get_user(services, bob, "org", "acme")
    with pytest.raises(E.PermissionDenied):
        organizations.create_user(services, bob, "org", UserInput(username="eve"))
    with pytest.raises(E.PermissionDenied):
        organizations.delete_user(services, bob, "org", "bob")
    with pytest.raises(E.Unauthenticated):
        organizations.get_user(
            services, Caller(auth.Principal(project_id=None, project_name=None), "acme"), "org", "acme"
        )
    changed = organizations.update_user(
        services, bob, "org", "bob", UserInput(email="b@example.org", attributes={"name": "Bob", "x": 1})
    )
    assert (changed.email, changed.attributes) == ("b@example.org", {"name": "Bob"})
    with pytest.raises(E.InvalidInput):
        organizations.update_user(services, admin, "org", "bob", UserInput(email="not an address"))
    with pytest.raises(E.Conflict):
        organizations.delete_user(services, admin, "org", "acme")  # the admin itself

    organizations.delete_user(services, admin, "org", "bob")
    with pytest.raises(E.NotFound):
        organizations.get_user(services, admin, "org", "bob")
    with services.catalog.session(readonly=True) as s:
        assert s.scalar(select(Project).where(Project.name == "bob")) is None
        assert s.scalar(select(StoredTable).where(StoredTable.name == "bobs")) is None
