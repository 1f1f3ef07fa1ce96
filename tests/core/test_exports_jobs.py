"""The export job's params: versioned snake_case, and those of jobs an older server queued."""

from __future__ import annotations

import pytest

from entrepot.config import Settings
from entrepot.core.auth import authenticate
from entrepot.core.exports.jobs import KIND, _upgrade_params, submit
from entrepot.core.projects import create_project
from entrepot.core.services import Services


@pytest.fixture
def services(tmp_path):
    svc = Services.open(Settings(data_dir=tmp_path, secret_key="a-secret"))
    yield svc
    svc.close()


def test_export_params_queued_by_an_older_server_are_upgraded():
    old = {"export_id": 3, "export_uuid": "0b0e8f5c-2f44-4a8e-9a51-3c1f4bd0f1a2"}
    assert _upgrade_params(old) == {"v": 2, **old}


def test_export_params_of_this_version_are_read_as_they_are():
    params = {"v": 2, "export_id": 3, "export_uuid": "0b0e8f5c-2f44-4a8e-9a51-3c1f4bd0f1a2"}
    assert _upgrade_params(params) == params


def test_an_export_job_is_queued_with_versioned_params(services):
    new = create_project(services.catalog, "acme")
    principal = authenticate(services.catalog, new.master.token)
    export_uuid = "0b0e8f5c-2f44-4a8e-9a51-3c1f4bd0f1a2"
    job = submit(services, principal, 41, export_uuid)
    assert job.kind == KIND
    assert job.params == {"v": 2, "export_id": 41, "export_uuid": export_uuid}
    assert job.subject == f"export:{export_uuid}"
