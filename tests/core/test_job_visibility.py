"""Who sees which job (core/jobs/visibility), on SQLite and on PostgreSQL.

No workers run: every job stays queued, so only the visibility rule is exercised.
"""

from __future__ import annotations

import uuid

from entrepot.core import auth
from entrepot.core.catalog import ExportJob, File, Project, Space, Token
from entrepot.core.errors import NotFound
from entrepot.core.jobs.visibility import can_see
from entrepot.core.projects import create_project
from entrepot.core.services import Services


class World:
    """A project with tokens of several kinds and one job of each kind of subject."""

    def __init__(self, services: Services):
        self.services = services
        created = create_project(services.catalog, "vis")
        self.project_id = created.project.id
        self.master = self.principal(created.master.row.id)
        self.nobody = self.token()
        self.reader_a = self.token(bucket_permissions={"in.c-a": "read"})
        self.writer_a = self.token(bucket_permissions={"in.c-a": "write"})
        self.manager = self.token(can_manage_buckets=True)
        self.alice = self.token(owner="alice")
        self.alice2 = self.token(owner="alice")
        self.files_reader = self.token(can_read_all_file_uploads=True)
        self.space_reader = self.token(space_permissions={"private": "read"})
        self.spaces_manager = self.token(can_manage_spaces=True)
        other = create_project(services.catalog, "vis-other")
        self.other_master = self.principal(other.master.row.id)

        submit = services.jobs.submit
        pid, master_id = self.project_id, self.master.token_id
        self.table_a = submit(
            pid, "tables.export", {"tableId": "in.c-a.t"}, token_id=master_id, subject="in.c-a.t"
        )
        # "in.c-a_x" must not match "in.c-a" through LIKE wildcards
        self.table_ax = submit(pid, "tables.export", {}, token_id=master_id, subject="in.c-a_x.t")
        self.table_b = submit(pid, "tables.import", {}, token_id=master_id, subject="in.c-b.t")
        self.bucket_a = submit(pid, "buckets.delete", {}, token_id=master_id, subject="in.c-a")
        self.batch = submit(pid, "sql.batch", {"queries": [{"query": "select 'secret'"}]}, token_id=master_id)
        self.own = submit(pid, "system.noop", {}, token_id=self.nobody.token_id)
        self.system = submit(pid, "system.noop", {})  # no token: the maintenance sweep's kind
        export_uuid = str(uuid.uuid4())
        with services.catalog.session() as s:
            s.add(
                ExportJob(
                    uuid=export_uuid,
                    project_id=pid,
                    token_id=self.alice.token_id,
                    owner="alice",
                    datasource_uuid=str(uuid.uuid4()),
                    datasource_name="t",
                    table_ident="in.c-a.t",
                    format="csv",
                )
            )
            file = File(project_id=pid, token_id=self.alice.token_id, name="f.csv", blob_key="x/f.csv")
            s.add(file)
            s.flush()
            file_id = file.id
            private_id = s.query(Space.id).filter_by(project_id=pid, name="private").scalar()
        self.export = submit(
            pid, "exports.run", {}, token_id=self.alice.token_id, subject=f"export:{export_uuid}"
        )
        self.file = submit(pid, "files.delete", {}, token_id=self.alice.token_id, subject=str(file_id))
        self.space = submit(pid, "spaces.purge", {}, token_id=master_id, subject=f"space:{private_id}")
        self.gone_space = submit(pid, "spaces.purge", {}, token_id=master_id, subject="space:999999")
        self.jobs = {name: getattr(self, name).id for name in ALL}

    def principal(self, token_id: int) -> auth.Principal:
        with self.services.catalog.session(readonly=True) as s:
            row = s.get(Token, token_id)
            return auth.principal_of(row, s.get(Project, row.project_id))

    def token(self, **spec) -> auth.Principal:
        issued = auth.create_token(self.services.catalog, self.project_id, auth.TokenSpec(**spec))
        return self.principal(issued.row.id)

    def seen(self, principal: auth.Principal) -> set[str]:
        """The names of the jobs the principal sees, from the listing; detail and can_see agree."""
        listed = {j.id for j in self.services.jobs.list(self.project_id, limit=1000, visible_to=principal)}
        names = {name for name, job_id in self.jobs.items() if job_id in listed}
        for name, job_id in self.jobs.items():
            assert can_see(self.services.catalog, principal, job_id) == (name in names), name
            try:
                self.services.jobs.get(job_id, principal.project_id, visible_to=principal)
                assert name in names, name
            except NotFound:
                assert name not in names, name
        return names


ALL = {
    "table_a",
    "table_ax",
    "table_b",
    "bucket_a",
    "batch",
    "own",
    "system",
    "export",
    "file",
    "space",
    "gone_space",
}


def test_who_sees_which_job(services):
    w = World(services)
    assert w.seen(w.master) == ALL
    assert w.seen(w.nobody) == {"own"}
    assert w.seen(w.reader_a) == {"table_a", "bucket_a"}
    assert w.seen(w.writer_a) == {"table_a", "bucket_a"}
    assert w.seen(w.manager) == {"table_a", "table_ax", "table_b", "bucket_a"}
    assert w.seen(w.alice) == {"export", "file"}  # its own jobs
    assert w.seen(w.alice2) == {"export"}  # the owner's export; the file is the other token's
    assert w.seen(w.files_reader) == {"file"}
    assert w.seen(w.space_reader) == {"space"}
    assert w.seen(w.spaces_manager) == {"space", "gone_space"}
    assert w.seen(auth.ANONYMOUS) == set()
    assert w.seen(w.other_master) == set()


def test_listing_pages_count_only_visible_jobs(services):
    w = World(services)
    page = services.jobs.list(w.project_id, limit=1, visible_to=w.reader_a)
    assert [j.id for j in page] == [w.bucket_a.id]  # newest visible first, not an empty page
    page = services.jobs.list(w.project_id, limit=1, offset=1, visible_to=w.reader_a)
    assert [j.id for j in page] == [w.table_a.id]
