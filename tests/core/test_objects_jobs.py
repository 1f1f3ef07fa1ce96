"""The background work of object spaces: purge params of every server version, the purge itself."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from entrepot.config import Settings
from entrepot.core.catalog import Space
from entrepot.core.objects import objects
from entrepot.core.objects.jobs import PURGE, _upgrade_params, purge_job, queue_purge
from entrepot.core.objects.spaces import get_space
from entrepot.core.projects import create_project


@pytest.fixture
def settings(tmp_path, catalog_url):
    return Settings(data_dir=tmp_path, catalog_url=catalog_url, secret_key="a-secret")


def test_purge_params_queued_by_an_older_server_are_upgraded():
    assert _upgrade_params({"spaceId": 7}) == {"v": 2, "space_id": 7}


def test_purge_params_of_this_version_are_read_as_they_are():
    assert _upgrade_params({"v": 2, "space_id": 7}) == {"v": 2, "space_id": 7}


def test_a_purge_is_queued_with_versioned_snake_case_params(services):
    new = create_project(services.catalog, "acme")
    space = get_space(services.catalog, new.project, "private")
    queue_purge(services, new.project.id, space.id, None)
    [job] = services.jobs.list(new.project.id, kinds=[PURGE])
    assert job.params == {"v": 2, "space_id": space.id}
    assert job.subject == f"space:{space.id}"


@pytest.mark.parametrize("params", [{"spaceId": "ID"}, {"v": 2, "space_id": "ID"}])
def test_a_purge_job_of_either_version_removes_a_removed_space_s_blobs(services, params):
    new = create_project(services.catalog, "acme")
    space = get_space(services.catalog, new.project, "private")
    objects.put_object(services, space, "a/b.txt", [b"bytes"])
    assert len(services.blobs.list(f"spaces/{space.id}/").blobs) == 1
    params = {k: (space.id if v == "ID" else v) for k, v in params.items()}
    live = purge_job(SimpleNamespace(params=params, services=services))  # type: ignore[arg-type]
    assert live["blobsRemoved"] == 0 and live["skipped"]  # never the bytes of a live space
    with services.catalog.session() as s:
        s.delete(s.get(Space, space.id))
    done = purge_job(SimpleNamespace(params=params, services=services))  # type: ignore[arg-type]
    assert done == {"spaceId": space.id, "blobsRemoved": 1}
    assert services.blobs.list(f"spaces/{space.id}/").blobs == []
