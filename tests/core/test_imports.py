"""The import core: bounded unzip, names, encodings, and imports run as jobs on both catalogs."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from entrepot.core import auth
from entrepot.core import errors as E
from entrepot.core.datasets import DatasetChange, delete_dataset, get_dataset, list_datasets, update_dataset
from entrepot.core.imports import archive, formats
from entrepot.core.imports.service import ImportOptions, ImportSource, create_import, get_import
from entrepot.core.services import Services
from entrepot.core.sql.service import Caller


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "name", ["../x.csv", "a/../../x.csv", "/etc/x.csv", "C:/x.csv", "C:\\x.csv", "a\\..\\..\\x.csv"]
)
def test_members_outside_the_target_are_refused(tmp_path: Path, name: str) -> None:
    bad = _zip(tmp_path / "bad.zip", {"ok.csv": b"a\n1\n", name: b"a\n1\n"})
    with pytest.raises(E.InvalidInput, match="outside the archive") as caught:
        archive.extract(bad, tmp_path / "out", max_bytes=1 << 20)
    assert caught.value.code == "imports.badArchive"
    assert not list(tmp_path.parent.glob("x.csv")) and not (tmp_path / "x.csv").exists()


def test_the_inflated_total_is_bounded(tmp_path: Path) -> None:
    bomb = _zip(tmp_path / "bomb.zip", {"a.csv": b"0" * 600_000, "b.csv": b"0" * 600_000})
    with pytest.raises(E.PayloadTooLarge) as caught:
        archive.extract(bomb, tmp_path / "out", max_bytes=1_000_000)
    assert caught.value.code == "imports.inflatedTooLarge"


def test_a_member_that_lies_about_its_size_is_caught(tmp_path: Path) -> None:
    path = _zip(tmp_path / "liar.zip", {"a.csv": b"0" * 100_000})
    raw = bytearray(path.read_bytes())
    # shrink the declared size in the central directory (zipfile trusts it when opening)
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24 : central + 28] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises((E.PayloadTooLarge, E.InvalidInput)):
        archive.extract(path, tmp_path / "out", max_bytes=50_000)


def test_resource_forks_and_directories_are_skipped(tmp_path: Path) -> None:
    path = _zip(tmp_path / "mac.zip", {"__MACOSX/._a.csv": b"junk", "d/": b"", "d/a.csv": b"a\n1\n"})
    assert [
        p.relative_to(tmp_path / "out").as_posix()
        for p in archive.extract(path, tmp_path / "out", max_bytes=1000)
    ] == ["d/a.csv"]


def test_names_and_collisions() -> None:
    assert formats.table_name("My Stores (2024).csv") == "my_stores_2024_csv"
    assert formats.table_name("2024 sales") == "table_2024_sales"
    assert formats.table_name("***") == "untitled_table"
    taken = {"stores", "stores_1"}
    assert formats.unique_name("stores", taken) == "stores_2"
    assert formats.unique_name("x" * 63, {"x" * 63}) == "x" * 61 + "_1"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a,b\n1,caf\xc3\xa9\n", "utf-8"),
        (b"a,b\n1,caf\xe9\n", "latin-1"),
        ("a,b\n1,café\n".encode("utf-16"), "utf-16"),
    ],
)
def test_text_encodings(tmp_path: Path, data: bytes, expected: str) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    assert formats.text_encoding(path) == expected


def test_broken_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"a,b\n1,caf\xc3\xa9\n2,caf\xe9\n")
    with pytest.raises(E.InvalidInput) as caught:
        formats.text_encoding(path)
    assert caught.value.code == "imports.brokenEncoding"


# -- imports as jobs, on SQLite and PostgreSQL catalogs -------------------------------------------


def _upload(services: Services, caller: Caller, name: str, data: bytes, **options: object) -> str:
    view = create_import(
        services, caller, ImportSource(upload=io.BytesIO(data), filename=name), ImportOptions(**options)
    )  # type: ignore[arg-type]
    assert view.id.isdigit()
    deadline_view = view
    for _ in range(600):
        deadline_view = get_import(services, caller, view.id)
        if deadline_view.finished:
            break
    return deadline_view.id


def test_an_import_creates_a_private_cartodbfied_dataset(services: Services, master: auth.Principal) -> None:
    services.start_workers(1)
    caller = Caller(master, "acme")
    import_id = _upload(services, caller, "points.csv", b"name,lat,lon\nA,1.5,2.5\nB,3,4\n")
    done = get_import(services, caller, import_id)
    assert done.state == "complete" and [t.name for t in done.tables] == ["points"]
    dataset = get_dataset(services, caller, "points")
    assert dataset.privacy == "private" and dataset.row_count == 2 and dataset.geometry
    assert dataset.columns[:3] == ["cartodb_id", "the_geom", "the_geom_webmercator"]

    again = get_import(
        services, caller, _upload(services, caller, "points.csv", b"name\nC\n", privacy="public")
    )
    assert [t.name for t in again.tables] == ["points_1"]
    assert get_dataset(services, caller, "points_1").privacy == "public"

    changed = update_dataset(
        services, caller, dataset.id, DatasetChange(privacy="LINK", tags=["a"], text={"description": "d"})
    )
    assert (changed.privacy, changed.attributes["tags"], changed.attributes["description"]) == (
        "link",
        ["a"],
        "d",
    )
    anonymous = Caller(auth.Principal(project_id=None, project_name=None), "acme")
    assert {d.name for d in list_datasets(services, anonymous)[0]} == {"points", "points_1"}

    failed = get_import(services, caller, _upload(services, caller, "bad.csv", b""))
    assert failed.state == "failure" and failed.error_code == "imports.emptyFile"

    delete_dataset(services, caller, dataset.id)
    with pytest.raises(E.NotFound):
        get_dataset(services, caller, dataset.id)
    assert [d.name for d in list_datasets(services, caller)[0]] == ["points_1"]
