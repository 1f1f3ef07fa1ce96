"""Files in the core: the q= parser, tag filters, the files.delete job's params, views."""

from __future__ import annotations

import pytest

from entrepot.config import Settings
from entrepot.core import auth
from entrepot.core.errors import InvalidInput, NotFound
from entrepot.core.files import service
from entrepot.core.files.jobs import DELETE_JOB, _upgrade_params
from entrepot.core.files.query import parse_query
from entrepot.core.files.tags import clean_tags, tag_filter
from entrepot.core.jobs import SUCCEEDED


@pytest.fixture
def settings(tmp_path, catalog_url):
    return Settings(data_dir=tmp_path, catalog_url=catalog_url, job_poll_interval=0.05)


@pytest.mark.parametrize(
    ("q", "tags", "expected"),
    [
        ('tags:"a"', {"a"}, True),
        ('tags:"a" AND tags:"b"', {"a"}, False),
        ('tags:"a" AND (tags:"b" OR tags:c)', {"a", "c"}, True),
        ('tags:"a" OR tags:"b" AND tags:"c"', {"a"}, True),  # AND binds tighter
        ('tags:"x \\"y\\""', {'x "y"'}, True),
    ],
)
def test_q_compiles_to_a_predicate_over_tags(q, tags, expected):
    assert parse_query(q)(tags) is expected


@pytest.mark.parametrize("q", ["name:x", 'tags:"a" AND', '(tags:"a"', 'tags:"a" )', "  "])
def test_q_refuses_what_it_does_not_understand(q):
    with pytest.raises(InvalidInput) as err:
        parse_query(q)
    assert err.value.code == "files.invalidQuery"  # the Keboola face spells it storage.files.invalidQuery


def test_tag_filter_keeps_any_of_the_tags_and_what_q_matches():
    assert tag_filter([], None) is None
    keep = tag_filter(["a", "b"], 'tags:"c"')
    assert keep is not None
    assert keep({"a", "c"}) and keep({"b", "c"})
    assert not keep({"a"}) and not keep({"c"})


def test_clean_tags_strips_and_deduplicates_and_refuses_control_characters():
    assert clean_tags([" a ", "", "b", "a"]) == ["a", "b"]
    with pytest.raises(InvalidInput):
        clean_tags(["bad\ttag"])


def test_delete_params_of_an_older_server_are_upgraded():
    assert _upgrade_params({"fileId": 7}) == {"v": 2, "file_id": 7}
    assert _upgrade_params({"v": 2, "file_id": 7}) == {"v": 2, "file_id": 7}


def test_a_delete_job_queued_by_an_older_server_still_deletes_the_file(services, master):
    prepared = service.prepare(services, master, service.NewFile(name="old.csv"))
    job = services.jobs.submit(
        master.project_id, DELETE_JOB, {"fileId": prepared.file.id}, subject=str(prepared.file.id)
    )
    services.start_workers(1)
    done = services.jobs.wait(job.id, 15)
    assert done.status == SUCCEEDED, done.error
    assert done.results == {"id": prepared.file.id, "deleted": True}
    with pytest.raises(NotFound):
        service.detail(services, master, prepared.file.id)


def test_new_delete_jobs_carry_versioned_snake_case_params(services, master):
    prepared = service.prepare(services, master, service.NewFile(name="new.csv"))
    job = service.delete_async(services, master, prepared.file.id)
    assert job.params == {"v": 2, "file_id": prepared.file.id}


def test_views_carry_the_creator_and_a_signed_url(services, master):
    prepared = service.prepare(
        services, master, service.NewFile(name="../x/data.csv.gz", tags=("t", "t"), size_bytes=3)
    )
    view = prepared.file
    assert view.name == "data.csv.gz" and view.file_type == "csv" and view.tags == ("t",)
    assert view.creator == auth.TokenRef(master.token_id, "Master token of acme")
    assert view.key.endswith(f"/files/{view.id}/data.csv.gz") and view.uploaded_at is None
    assert f"/files/{view.id}/download?" in view.download_url
    assert f"/files/{view.id}/upload?" in prepared.upload_url
    listed = service.list_files(services, master, service.FileQuery(tags=("t",)))
    assert [f.id for f in listed] == [view.id]
