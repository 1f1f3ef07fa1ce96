"""DuckDB's httpfs (the bundled extension, never installed from the network) against a real server over
HTTP, configured as a user would: CREATE SECRET (TYPE s3, ..., URL_STYLE 'path', USE_SSL false)."""

from __future__ import annotations

import uuid

import duckdb
import pytest

from entrepot.core import auth
from entrepot.core.engine.extensions import extension_path
from entrepot.core.objects import service


def connect(s3, *, secret: str | None = None, url: str | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(
        config={"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}
    )
    con.execute(f"LOAD '{extension_path('httpfs')}'")
    endpoint = (url or s3.url).split("://", 1)[1]
    con.execute(
        f"""CREATE SECRET entrepot (TYPE s3, KEY_ID '{s3.key.access_key_id}',
            SECRET '{secret or s3.key.secret_access_key}', REGION 'us-east-1', ENDPOINT '{endpoint}',
            URL_STYLE 'path', USE_SSL false)"""
    )
    con.execute("SET http_retries = 0")
    return con


@pytest.fixture(scope="module")
def bucket(s3):
    return s3.bucket("duck")


def test_parquet_and_csv_round_trips_with_ranged_reads(s3, bucket):
    con = connect(s3)
    con.execute(
        f"COPY (SELECT range AS id, 'name-' || range AS name FROM range(200000)) "
        f"TO 's3://{bucket}/t/data.parquet' (FORMAT parquet, ROW_GROUP_SIZE 20000)"
    )
    con.execute(f"COPY (SELECT range AS id FROM range(1000)) TO 's3://{bucket}/t/data.csv' (HEADER)")
    assert con.execute(
        f"SELECT count(*), sum(id) FROM read_parquet('s3://{bucket}/t/data.parquet')"
    ).fetchone() == (
        200000,
        sum(range(200000)),
    )
    assert con.execute(
        f"SELECT name FROM read_parquet('s3://{bucket}/t/data.parquet') WHERE id = 123456"
    ).fetchone() == ("name-123456",)
    assert con.execute(f"SELECT count(*) FROM read_csv('s3://{bucket}/t/data.csv')").fetchone() == (1000,)
    head = s3.client().head_object(Bucket=bucket, Key="t/data.parquet")
    assert head["ContentLength"] > 100_000


def test_globs_and_partitioned_writes_with_overwrite(s3, bucket):
    con = connect(s3)
    target = f"s3://{bucket}/parts"
    con.execute(
        f"COPY (SELECT range AS id, range % 3 AS k FROM range(30)) TO '{target}' (FORMAT csv, PARTITION_BY (k), HEADER)"
    )
    files = [r[0] for r in con.execute(f"SELECT file FROM glob('{target}/**') ORDER BY file").fetchall()]
    assert len(files) == 3 and all("/k=" in f for f in files)
    assert con.execute(f"SELECT count(*) FROM read_csv('{target}/*/*.csv')").fetchone() == (30,)
    assert con.execute(
        f"SELECT sum(id) FROM read_csv('{target}/k=1/*.csv', hive_partitioning=true)"
    ).fetchone() == (sum(i for i in range(30) if i % 3 == 1),)
    # OVERWRITE removes what is there with one DeleteObjects (Content-MD5, quiet) before writing
    con.execute(
        f"COPY (SELECT range AS id, 7 AS k FROM range(5)) TO '{target}' "
        "(FORMAT csv, PARTITION_BY (k), HEADER, OVERWRITE)"
    )
    files = [r[0] for r in con.execute(f"SELECT file FROM glob('{target}/**')").fetchall()]
    assert len(files) == 1 and "/k=7/" in files[0]
    assert con.execute(f"SELECT count(*) FROM glob('s3://{bucket}/nothing/*.csv')").fetchone() == (0,)


def test_multipart_uploads_of_duckdb(s3, bucket):
    con = connect(s3)
    con.execute("SET s3_uploader_max_filesize = '50GB'")  # parts of ~5.4 MB, just above S3's minimum
    con.execute(
        f"COPY (SELECT range AS id, md5(range::VARCHAR) AS h FROM range(350000)) TO 's3://{bucket}/big.csv' (HEADER)"
    )
    head = s3.client().head_object(Bucket=bucket, Key="big.csv")
    assert "-" in head["ETag"] and head["ContentLength"] > 11_000_000
    assert con.execute(f"SELECT count(*), max(id) FROM read_csv('s3://{bucket}/big.csv')").fetchone() == (
        350000,
        349999,
    )


def test_keys_with_special_characters(s3, bucket):
    con = connect(s3)
    for name in ("with space", "plus+sign", "eq=ual", "ünï", "pct%41"):
        con.execute(f"COPY (SELECT 42 AS answer) TO 's3://{bucket}/odd/{name}.csv' (HEADER)")
        assert con.execute(f"SELECT answer FROM read_csv('s3://{bucket}/odd/{name}.csv')").fetchone() == (42,)
    keys = sorted(o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket, Prefix="odd/")["Contents"])
    assert keys == sorted(
        ["odd/with space.csv", "odd/plus+sign.csv", "odd/eq=ual.csv", "odd/ünï.csv", "odd/pct%41.csv"]
    )
    globbed = [r[0] for r in con.execute(f"SELECT file FROM glob('s3://{bucket}/odd/*')").fetchall()]
    assert f"s3://{bucket}/odd/plus+sign.csv" in globbed  # a literal '+' stays a plus (encoding-type=url)


def test_a_glob_over_more_than_1000_keys(s3):
    bucket = s3.bucket("duckmany")
    principal = auth.authenticate(s3.server.services.catalog, s3.server.token)
    for i in range(1205):
        key = f"d/{i % 3}/f{i:05d}.csv"
        service.put_object(
            s3.server.services, principal, "default", bucket, key, [b"x\n1\n"], service.ObjectUpload()
        )
    con = connect(s3)
    assert con.execute(f"SELECT count(*) FROM glob('s3://{bucket}/d/*/*.csv')").fetchone() == (1205,)
    assert con.execute(f"SELECT count(*) FROM glob('s3://{bucket}/d/**')").fetchone() == (1205,)


def test_errors(s3, bucket):
    con = connect(s3)
    with pytest.raises(duckdb.Error, match="404"):
        con.execute(f"SELECT * FROM read_csv('s3://{bucket}/missing-{uuid.uuid4().hex}.csv')").fetchall()
    wrong = connect(s3, secret="x" * 40)
    with pytest.raises(duckdb.Error, match="403"):
        wrong.execute(f"SELECT * FROM read_csv('s3://{bucket}/t/data.csv')").fetchall()


def test_duckdb_on_the_s3_listener(s3, bucket):
    con = connect(s3, url=s3.s3_url)
    con.execute(f"COPY (SELECT 1 AS one) TO 's3://{bucket}/listener.parquet'")
    assert con.execute(f"SELECT one FROM 's3://{bucket}/listener.parquet'").fetchone() == (1,)
