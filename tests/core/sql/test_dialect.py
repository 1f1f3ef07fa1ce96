"""The SQL dialect: PostgreSQL/PostGIS text → checked, translated DuckDB statements.

Positive cases are executed on a real in-memory DuckDB laid out like a project's sandbox (a
``lake`` catalog in use, buckets as schemas) so the tests prove the generated SQL runs; the
sandbox's ``pg_*`` geometry macros are replaced by trivial stand-ins.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from entrepot import __version__
from entrepot.core import errors as E
from entrepot.core.engine.tables import TableRef
from entrepot.core.sql import dialect
from entrepot.core.sql.dialect import CopyOptions, Namespace, Statement, parse

PUBLIC = "in.c-public"
MAIN = "in.c-main"

NS = Namespace(
    default_schema=PUBLIC,
    aliases={"public": PUBLIC, "myproject": PUBLIC},
    schemas=frozenset({PUBLIC, MAIN}),
    project="myproject",
)


def pub(name: str) -> TableRef:
    return TableRef(PUBLIC, name)


def one(sql: str) -> Statement:
    statements = parse(sql, NS)
    assert len(statements) == 1, statements
    return statements[0]


def refused(sql: str) -> E.InvalidInput:
    with pytest.raises(E.InvalidInput) as info:
        parse(sql, NS)
    assert info.value.code.startswith("sql."), info.value.code
    assert info.value.message
    return info.value


STAND_IN_MACROS = [
    "CREATE TEMP MACRO pg_geometry(x, srid := NULL) AS CAST(x AS VARCHAR)",
    "CREATE TEMP MACRO pg_setsrid(g, srid) AS 'SRID=' || srid || ';' || g",
    "CREATE TEMP MACRO pg_srid(g) AS 4326",
    "CREATE TEMP MACRO pg_transform(g, srid) AS g",
    "CREATE TEMP MACRO pg_asewkt(g) AS g",
    "CREATE TEMP MACRO pg_astext(g) AS g",
    "CREATE TEMP MACRO pg_asgeojson(g, dp := 9) AS '{}'",
    "CREATE TEMP MACRO st_point(x, y) AS 'POINT(' || x || ' ' || y || ')'",
]


@pytest.fixture
def db() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB laid out like a sandbox: ``USE lake``, buckets as schemas."""
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS lake")
    con.execute("USE lake")
    for schema in (PUBLIC, MAIN):
        con.execute(f'CREATE SCHEMA "{schema}"')
    con.execute(f'CREATE TABLE "{PUBLIC}".t (a INTEGER, b INTEGER, c VARCHAR)')
    con.execute(f'CREATE TABLE "{PUBLIC}".u (b INTEGER)')
    con.execute(f'CREATE TABLE "{PUBLIC}".v (id INTEGER)')
    con.execute(f'CREATE TABLE "{PUBLIC}".tornados (cartodb_id INTEGER, name VARCHAR, g VARCHAR)')
    con.execute(f'CREATE TABLE "{PUBLIC}"."MyTable" (x INTEGER)')
    con.execute(f'CREATE TABLE "{MAIN}".t (a INTEGER, id INTEGER)')
    con.execute(f"INSERT INTO \"{PUBLIC}\".t VALUES (1, 10, 'x'), (2, 20, 'y')")
    con.execute(f'INSERT INTO "{PUBLIC}".u VALUES (10)')
    for macro in STAND_IN_MACROS:
        con.execute(macro)
    yield con
    con.close()


def run(db: duckdb.DuckDBPyConnection, statement: Statement) -> list[tuple[object, ...]]:
    assert statement.sql
    cursor = db.execute(statement.sql)
    return cursor.fetchall() if cursor.description else []


# --------------------------------------------------------------------------------------------
# hostile input: refused with a clear message

HOSTILE = [
    # files
    "select * from read_csv('/etc/passwd')",
    "select * from read_csv_auto('/etc/passwd')",
    "select * from '/etc/passwd'",
    "select * from 'data.parquet' p join t on true",
    "select * from read_text('/etc/passwd')",
    "select * from read_blob('/etc/passwd')",
    "select * from sniff_csv('/etc/passwd')",
    "select * from parquet_metadata('/x.parquet')",
    "select * from parquet_scan('/x.parquet')",
    "select * from read_json('x')",
    "select * from st_read('x.shp')",
    "select * from glob('/*')",
    "select read_csv('x')",
    "COPY t TO '/tmp/x.csv'",
    "COPY t FROM '/tmp/x.csv'",
    "COPY t FROM 'stdin'",
    "COPY t FROM PROGRAM 'cat /etc/passwd'",
    "COPY (select 1) TO '/tmp/x.csv'",
    "COPY t TO STDIN",
    "COPY t FROM STDOUT",
    "EXPORT DATABASE '/tmp/x'",
    "IMPORT DATABASE '/tmp/x'",
    "insert into 'x.csv' values (1)",
    # other databases, extensions, settings
    "ATTACH 'x.db' AS x",
    "ATTACH ':memory:' AS m",
    "/* */ATTACH 'x.db'",
    "-- comment\nATTACH 'x.db'",
    "DETACH lake",
    "DETACH DATABASE lake",
    "INSTALL httpfs",
    "FORCE INSTALL httpfs",
    "LOAD spatial",
    "LOAD 'x.duckdb_extension'",
    "update extensions",
    "SET threads=64",
    "SET search_path TO memory",
    "RESET memory_limit",
    "PRAGMA database_list",
    "CALL duckdb_settings()",
    "use memory",
    "select * from duckdb_settings()",
    "select * from duckdb_tables()",
    "select * from pragma_table_info('t')",
    "select current_setting('allowed_directories')",
    "select getenv('HOME')",
    "select getvariable('x')",
    "select \"current_setting\"('x')",
    "select pg_catalog.current_setting('x')",
    "select * from query('select 1')",
    "select * from query_table('t')",
    "select json_execute_serialized_sql('x')",
    "select write_log('x')",
    "select list_transform([1], x -> getenv('HOME'))",
    "select * from sqlite_scan('x.db', 't')",
    "select * from postgres_scan('dbname=x', 'public', 't')",
    "select * from ducklake_snapshots('lake')",
    # catalogs and schemas
    'select * from lake."in.c-public".t',
    "select * from memory.main.x",
    "select * from system.main.duckdb_settings()",
    "select * from other_project.t",
    "select * from pg_catalog.pg_class",
    "select * from main.t",
    "select * from temp.main.x",
    "select * from information_schema.views",
    "select * from information_schema.tables_x",
    'select * from "INFORMATION_SCHEMA".tables',
    "select lake.main.t.a from t",
    "insert into information_schema.tables values (1)",
    "select * from t, memory.main.x",
    # statements
    "create macro m() as 1",
    "create function f() returns int as 'select 1' language sql",
    "create view v as select 1",
    "create temp table x(a int)",
    "create temporary table x(a int)",
    "create unlogged table x(a int)",
    "create or replace table x (a int)",
    "create schema s",
    "create secret s (type s3)",
    "create index i on t(a)",
    "create sequence s",
    "create type mood as enum ('a')",
    "drop view v",
    "drop schema s",
    "drop macro m",
    "alter table t set schema x",
    "alter table t add constraint c unique (a)",
    "alter table t rename to other_project.u",
    "begin",
    "start transaction",
    "commit",
    "rollback",
    "checkpoint",
    "force checkpoint",
    "vacuum",
    "vacuum analyze t",
    "analyze t",
    "describe t",
    "show tables",
    "summarize t",
    "prepare p as select 1",
    "execute p",
    "grant select on t to x",
    "comment on table t is 'x'",
    "merge into t using u on t.a = u.a when matched then delete",
    "truncate database x",
    "select 1 into newtab",
    "with x as (insert into t values (1) returning *) select * from x",
    "with x as (delete from t returning *) select * from x",
    "explain delete from t",
    "explain (format json) select 1",
    "explain select * from read_csv('x')",
    # smuggling through scripts, set operations, subqueries, CTEs, laterals
    "SELECT * FROM t; ATTACH 'x.db' AS x",
    "SELECT * FROM t; /* hi */ INSTALL httpfs",
    "SELECT 1 UNION SELECT * FROM read_csv('x')",
    "select * from t where a in (select a from (select * from read_parquet('x')) s)",
    "select * from t where exists (select 1 from read_csv('x'))",
    "with read_csv as (select 1) select * from read_csv('x')",
    "with x as (select * from read_csv('x')) select * from x",
    "select * from t, lateral read_csv('x')",
    "select * from t cross join lateral (select * from read_json('x')) j",
    "select * from t cross join lateral (select * from '/etc/passwd') j",
    "select * from range(3) r join read_csv('x') on true",
    "select * from generate_series(1, (select count(*) from read_csv('x')))",
    "insert into t select * from read_csv('x')",
    "update t set a = (select count(*) from read_csv('x'))",
    "delete from t where a in (select * from read_csv('x'))",
    "create table x as select * from read_csv('x')",
    "COPY (select * from read_csv('x')) TO STDOUT",
    "COPY t FROM STDIN WITH (FORMAT binary)",
    "COPY t FROM STDIN WITH BINARY",
    # CDB_CartodbfyTable in other shapes
    "select CDB_CartodbfyTable('a', 'b'), 1",
    "select * from t where CDB_CartodbfyTable('x') is null",
    "select CDB_CartodbfyTable(other, 'x')",
    "select CDB_CartodbfyTable(current_schema, 'x') from t",
    "select CDB_CartodbfyTable('other_project', 'x')",
    # syntax and nothing at all
    "",
    "   ",
    ";",
    "-- only a comment",
    "select 'unterminated",
    "select * from t where",
]


@pytest.mark.parametrize("sql", HOSTILE)
def test_hostile_sql_is_refused(sql: str) -> None:
    refused(sql)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("select * from read_csv('/etc/passwd')", "function read_csv() is not allowed"),
        ("select * from '/etc/passwd'", "file"),
        ("COPY t TO '/tmp/x.csv'", "COPY to or from files is not allowed; use COPY … FROM STDIN"),
        ("COPY t FROM '/tmp/x.csv'", "copyfrom"),
        ("ATTACH 'x.db' AS x", "ATTACH is not allowed"),
        ("/* */ATTACH 'x.db'", "ATTACH is not allowed"),
        ("SELECT * FROM t; ATTACH 'x.db' AS x", "ATTACH is not allowed"),
        ("INSTALL httpfs", "INSTALL is not allowed"),
        ("LOAD spatial", "LOAD is not allowed"),
        ("SET threads=64", "SET is not allowed"),
        ("RESET memory_limit", "RESET is not allowed"),
        ("PRAGMA database_list", "PRAGMA is not allowed"),
        ("EXPORT DATABASE '/tmp/x'", "EXPORT is not allowed"),
        ("CALL duckdb_settings()", "CALL is not allowed"),
        ("checkpoint", "CHECKPOINT is not allowed"),
        ("vacuum", "VACUUM is not allowed"),
        ("begin", "BEGIN is not allowed"),
        ("use memory", "USE is not allowed"),
        ("create macro m() as 1", "CREATE MACRO is not allowed"),
        ("create view v as select 1", "CREATE VIEW is not allowed"),
        ("create secret s (type s3)", "CREATE SECRET is not allowed"),
        ("create temp table x(a int)", "temporary tables are not allowed"),
        ("select * from duckdb_settings()", "duckdb_settings() is not allowed"),
        ("select getenv('HOME')", "getenv() is not allowed"),
        ('select * from lake."in.c-public".t', "cross-database references are not allowed"),
        ("select * from other_project.t", 'schema "other_project" does not exist'),
        ("select * from pg_catalog.pg_class", 'schema "pg_catalog" does not exist'),
        ("select * from range(3) r join read_csv('x') on true", "read_csv"),
        ("select * from glob('/*')", "function glob() is not allowed"),
        ("select 1 into newtab", "CREATE TABLE … AS SELECT"),
        ("with x as (insert into t values (1) returning *) select * from x", "INSERT is not allowed inside"),
        ("COPY t FROM STDIN WITH (FORMAT binary)", "binary"),
        ("", "You must indicate a sql query"),
        ("select * from t where", "syntax error: "),
        ("explain delete from t", "EXPLAIN is allowed for SELECT queries only"),
        ("merge into t using u on t.a = u.a when matched then delete", "MERGE is not allowed"),
        ("select CDB_CartodbfyTable('a', 'b'), 1", "CDB_CartodbfyTable is supported only as"),
    ],
)
def test_refusal_messages_say_what_is_refused(sql: str, message: str) -> None:
    assert message in refused(sql).message


def test_syntax_errors_show_the_first_line_of_the_parser_message() -> None:
    error = refused("select * from t where")
    assert error.code == "sql.syntax"
    assert error.message.startswith("syntax error: ")
    assert "\n" not in error.message


def test_a_refused_statement_anywhere_in_a_script_refuses_the_whole_script() -> None:
    refused("select 1; select * from read_csv('x'); select 2")


def test_table_functions_are_allow_listed_even_when_not_denied_by_name() -> None:
    error = refused("select * from test_all_types()")
    assert "generate_series, range and unnest" in error.message
    refused("select * from repeat_row(1, num_rows := 3)")


def test_schema_qualified_table_functions_are_refused() -> None:
    refused('select * from "in.c-public".generate_series(1, 3)')


def test_generated_sql_is_checked_again() -> None:
    with pytest.raises(E.InvalidInput):
        dialect._recheck("SELECT * FROM read_csv('x')")
    with pytest.raises(E.InvalidInput):
        dialect._recheck("SELECT 1 FROM lake.main.t")
    dialect._recheck('SELECT * FROM "in.c-public"."t"')


# --------------------------------------------------------------------------------------------
# the CARTO SDK suite's statements


def test_carto_sdk_copy_suite(db: duckdb.DuckDBPyConnection) -> None:
    drop = one("DROP TABLE IF EXISTS carto_python_sdk_copy_test")
    assert (drop.kind, drop.target, drop.if_exists) == ("drop_table", pub("carto_python_sdk_copy_test"), True)
    assert drop.writes == {pub("carto_python_sdk_copy_test")}
    run(db, drop)

    create = one(
        "CREATE TABLE carto_python_sdk_copy_test (the_geom geometry(Geometry,4326), name text, age integer)"
    )
    assert create.kind == "create_table"
    assert create.target == pub("carto_python_sdk_copy_test")
    assert create.writes == {pub("carto_python_sdk_copy_test")}
    assert create.geometry_columns == {"the_geom": 4326}
    assert create.serial_columns == []
    run(db, create)
    columns = db.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'carto_python_sdk_copy_test' ORDER BY ordinal_position"
    ).fetchall()
    assert columns == [("the_geom", "GEOMETRY"), ("name", "VARCHAR"), ("age", "INTEGER")]

    cartodbfy = one("SELECT CDB_CartodbfyTable(current_schema, 'carto_python_sdk_copy_test')")
    assert (cartodbfy.kind, cartodbfy.sql) == ("cartodbfy", "")
    assert cartodbfy.target == pub("carto_python_sdk_copy_test")

    copy_from = one(
        "COPY carto_python_sdk_copy_test (the_geom, name, age) FROM stdin WITH (FORMAT csv, HEADER true)"
    )
    assert (copy_from.kind, copy_from.sql) == ("copy_from", "")
    assert copy_from.target == pub("carto_python_sdk_copy_test")
    assert copy_from.writes == {pub("carto_python_sdk_copy_test")}
    assert copy_from.columns == ["the_geom", "name", "age"]
    assert copy_from.copy == CopyOptions(format="csv", header=True)

    copy_to = one(
        "COPY (SELECT i as cartodb_id, ST_AsEWKT(ST_SetSRID(ST_MakePoint(i, i), 4326)) as the_geom "
        "FROM generate_series(1,10) i) TO STDOUT"
    )
    assert copy_to.kind == "copy_to"
    assert copy_to.copy == CopyOptions()
    assert copy_to.reads == frozenset()
    assert "pg_asewkt(pg_setsrid(st_point(i, i), 4326))" in copy_to.sql.lower()
    assert "generate_series(1, 10) as i(i)" in copy_to.sql.lower()
    rows = run(db, copy_to)
    assert len(rows) == 10
    assert rows[0] == (1, "SRID=4326;POINT(1 1)")


def test_select_with_where(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("select * from tornados where cartodb_id = 1")
    assert statement.kind == "select"
    assert statement.reads == {pub("tornados")}
    assert statement.writes == frozenset()
    assert statement.target is None
    assert statement.sql == 'SELECT * FROM "in.c-public"."tornados" WHERE cartodb_id = 1'
    assert run(db, statement) == []


# --------------------------------------------------------------------------------------------
# queries


@pytest.mark.parametrize(
    ("sql", "reads"),
    [
        ("select a, b from t", {pub("t")}),
        ("select a.a, b.id from t a join \"in.c-main\".t b on a.a = b.a left join public.v on true",
         {pub("t"), TableRef(MAIN, "t"), pub("v")}),
        ("with x as (select * from t), y as (select * from x) select * from y, x", {pub("t")}),
        ("select a, row_number() over (partition by b order by c) as rn, sum(a) over () from t", {pub("t")}),
        ("select * from (select a from t) s where s.a > 1", {pub("t")}),
        ("select a from t union all select b from u except select id from v", {pub("t"), pub("u"), pub("v")}),
        ("select * from t where exists (select 1 from u where u.b = t.b)", {pub("t"), pub("u")}),
        ('select * from "in.c-main".t', {TableRef(MAIN, "t")}),
        ('select * from "IN.C-MAIN".t', {TableRef(MAIN, "t")}),
        ("select * from MyProject.t", {pub("t")}),
        ('select * from "public".T', {pub("t")}),
        ('select * from "MyTable"', {pub("MyTable")}),
        ("select public.t.a from public.t", {pub("t")}),
        ("select * from information_schema.columns where table_name = 't'", set()),
        ("select table_name from information_schema.tables", set()),
        ("select * from information_schema.schemata", set()),
        ("select * from generate_series(1, 3) g, range(2) r, unnest([1, 2]) u", set()),
        ("with recursive x(n) as (select 1 union all select n + 1 from x where n < 3) select * from x", set()),
        ("values (1), (2)", set()),
        ("(select 1)", set()),
        ("select 1", set()),
        ("select count(*) filter (where a > 1), string_agg(c, ',' order by c) from t", {pub("t")}),
        ("select * from t where c ~ 'x' and c ilike 'x%' and c not like '%z'", {pub("t")}),
        ("select a::text, '1'::integer, cast(b as bigint), '{}'::jsonb from t", {pub("t")}),
        ("select * from t order by a desc nulls last limit 1 offset 1", {pub("t")}),
        ("select distinct on (a) a, b from t order by a, b", {pub("t")}),
        ("select case when a > 1 then 'big' else 'small' end from t", {pub("t")}),
        ("select coalesce(c, 'none'), greatest(a, b), now() from t", {pub("t")}),
    ],
)  # fmt: skip
def test_queries_resolve_their_tables_and_run(
    db: duckdb.DuckDBPyConnection, sql: str, reads: set[TableRef]
) -> None:
    statement = one(sql)
    assert statement.kind == "select"
    assert statement.reads == reads
    assert statement.writes == frozenset()
    run(db, statement)


def test_tables_are_rewritten_as_quoted_bucket_and_table() -> None:
    assert one("select * from t").sql == 'SELECT * FROM "in.c-public"."t"'
    assert one("select * from public.t").sql == 'SELECT * FROM "in.c-public"."t"'
    assert one('select * from "in.c-main".t').sql == 'SELECT * FROM "in.c-main"."t"'


def test_unquoted_identifiers_are_lower_cased_quoted_ones_keep_their_case() -> None:
    statement = one('SELECT A AS Foo FROM MyOther, "MyTable"')
    assert statement.reads == {pub("myother"), pub("MyTable")}
    assert statement.sql == 'SELECT a AS foo FROM "in.c-public"."myother", "in.c-public"."MyTable"'


def test_cte_names_shadow_tables_only_in_their_scope() -> None:
    statement = one("select * from (with t as (select 1 as a) select * from t) s, t")
    assert statement.reads == {pub("t")}
    assert statement.sql.count('"in.c-public"."t"') == 1
    # a non-recursive CTE does not see itself: the inner t is the table
    assert one("with t as (select * from t) select * from t").reads == {pub("t")}
    # a later CTE sees an earlier one
    assert one("with x as (select 1), y as (select * from x) select * from y").reads == frozenset()


def test_information_schema_is_left_alone(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("select table_name from information_schema.tables where table_schema = 'in.c-public'")
    assert statement.reads == frozenset()
    assert "information_schema" in statement.sql
    assert ("t",) in run(db, statement)


def test_a_script_gives_one_statement_per_query() -> None:
    statements = parse("select 1; select * from t;\n-- done\n", NS)
    assert [s.kind for s in statements] == ["select", "select"]
    assert statements[1].reads == {pub("t")}


# --------------------------------------------------------------------------------------------
# writes


def test_insert(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("insert into t (a) values (1)")
    assert (statement.kind, statement.target, statement.columns) == ("insert", pub("t"), ["a"])
    assert statement.writes == {pub("t")}
    assert statement.reads == frozenset()
    run(db, statement)
    assert db.execute('SELECT count(*) FROM "in.c-public".t').fetchone() == (3,)


def test_insert_select_reads_its_source(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("insert into public.t (b) select b from u returning b")
    assert statement.writes == {pub("t")}
    assert statement.reads == {pub("u")}
    assert run(db, statement) == [(10,)]


def test_update_with_subquery(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("update t set a = 2 where b in (select b from u)")
    assert (statement.kind, statement.target) == ("update", pub("t"))
    assert statement.writes == {pub("t")}
    assert statement.reads == {pub("u")}
    run(db, statement)
    assert db.execute('SELECT a FROM "in.c-public".t WHERE b = 10').fetchone() == (2,)


def test_update_from(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("update t set a = u.b from u where t.b = u.b")
    assert statement.reads == {pub("u")}
    run(db, statement)


def test_delete(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("delete from public.t")
    assert (statement.kind, statement.target, statement.writes) == ("delete", pub("t"), {pub("t")})
    assert statement.sql == 'DELETE FROM "in.c-public"."t"'
    run(db, statement)
    assert db.execute('SELECT count(*) FROM "in.c-public".t').fetchone() == (0,)


def test_delete_using(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("delete from t using u where t.b = u.b")
    assert statement.reads == {pub("u")}
    run(db, statement)


def test_truncate_becomes_delete(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("truncate t")
    assert (statement.kind, statement.target, statement.writes) == ("truncate", pub("t"), {pub("t")})
    assert statement.sql == 'DELETE FROM "in.c-public"."t"'
    run(db, statement)
    assert [s.target for s in parse("truncate table t, u", NS)] == [pub("t"), pub("u")]


def test_create_table_as(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("create table t2 as select * from t")
    assert (statement.kind, statement.target) == ("create_table_as", pub("t2"))
    assert statement.writes == {pub("t2")}
    assert statement.reads == {pub("t")}
    run(db, statement)
    assert db.execute('SELECT count(*) FROM "in.c-public".t2').fetchone() == (2,)


def test_create_table_types_and_columns(db: duckdb.DuckDBPyConnection) -> None:
    statement = one(
        "create table if not exists g (id serial, big bigserial, j jsonb, p geometry(Point,3857), "
        "g geometry, gg geography(Point, 4326), pt geometry(Point), s text, n numeric(10, 2))"
    )
    assert statement.kind == "create_table"
    assert statement.if_exists is True
    assert statement.geometry_columns == {"p": 3857, "g": 4326, "gg": 4326, "pt": 4326}
    assert statement.serial_columns == ["id", "big"]
    run(db, statement)
    types = dict(
        db.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'g'"
        ).fetchall()
    )
    assert types == {
        "id": "INTEGER",
        "big": "BIGINT",
        "j": "JSON",
        "p": "GEOMETRY",
        "g": "GEOMETRY",
        "gg": "GEOMETRY",
        "pt": "GEOMETRY",
        "s": "VARCHAR",
        "n": "DECIMAL(10,2)",
    }


def test_create_table_with_constraints(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("create table k (id integer primary key, name text not null default 'x', unique (name))")
    run(db, statement)


def test_drop_table_splits_one_statement_per_table(db: duckdb.DuckDBPyConnection) -> None:
    statements = parse("drop table if exists t, u, nothere", NS)
    assert [s.target for s in statements] == [pub("t"), pub("u"), pub("nothere")]
    assert all(s.kind == "drop_table" and s.if_exists and s.writes == {s.target} for s in statements)
    for statement in statements:
        run(db, statement)


def test_alter_table_add_column(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("alter table t add column d text")
    assert (statement.kind, statement.target, statement.writes) == ("alter_table", pub("t"), {pub("t")})
    run(db, statement)


def test_alter_table_actions_become_one_statement_each(db: duckdb.DuckDBPyConnection) -> None:
    statements = parse(
        "alter table t add column d integer, add column geom geometry(Point, 3857), drop column c, "
        "rename column b to bb, alter column a type bigint",
        NS,
    )
    assert len(statements) == 5
    assert all(s.target == pub("t") and s.writes == {pub("t")} for s in statements)
    assert statements[1].geometry_columns == {"geom": 3857}
    for statement in statements:
        run(db, statement)
    query = (
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 't' AND table_schema = 'in.c-public' ORDER BY ordinal_position"
    )
    columns = [row[0] for row in db.execute(query).fetchall()]
    assert columns == ["a", "bb", "d", "geom"]


def test_alter_table_rename_writes_both_names(db: duckdb.DuckDBPyConnection) -> None:
    statement = one('alter table "in.c-main".t rename to t_old')
    assert statement.target == TableRef(MAIN, "t")
    assert statement.writes == {TableRef(MAIN, "t"), TableRef(MAIN, "t_old")}
    run(db, statement)
    assert db.execute('SELECT count(*) FROM "in.c-main".t_old').fetchone() == (0,)


def test_explain(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("explain select 1")
    assert (statement.kind, statement.sql) == ("explain", "EXPLAIN SELECT 1")
    run(db, statement)
    analyzed = one("EXPLAIN ANALYZE select * from t")
    assert analyzed.reads == {pub("t")}
    assert analyzed.sql.startswith("EXPLAIN ANALYZE SELECT")
    run(db, analyzed)


# --------------------------------------------------------------------------------------------
# translations


def test_version_is_a_literal(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("select version()")
    [(text,)] = run(db, statement)
    assert text.startswith("PostgreSQL 15 compatible; entrepot ")
    assert __version__ in text
    assert f"on DuckDB {duckdb.__version__}" in text


def test_current_schema_and_now(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("select current_schema, current_schema(), now()")
    assert statement.sql == (
        'SELECT \'public\' AS "current_schema", \'public\' AS "current_schema", CURRENT_TIMESTAMP AS "now"'
    )
    run(db, statement)
    # as a bare select item a replaced function keeps PostgreSQL's column name; elsewhere it is a value
    assert one("select version()").sql.endswith('AS "version"')
    assert one("select upper(version()) as v").sql.startswith("SELECT UPPER('PostgreSQL")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 'SRID=4326;POINT(1 2)'::geometry", "SELECT PG_GEOMETRY('SRID=4326;POINT(1 2)')"),
        ("SELECT CAST('POINT(1 2)' AS geometry)", "SELECT PG_GEOMETRY('POINT(1 2)')"),
        ("SELECT 'POINT(1 2)'::geography", "SELECT PG_GEOMETRY('POINT(1 2)')"),
        ("SELECT 'POINT(1 2)'::geometry(Point, 3857)", "SELECT PG_GEOMETRY('POINT(1 2)', 3857)"),
        ("SELECT ST_MakePoint(1, 2)", 'SELECT ST_POINT(1, 2) AS "st_makepoint"'),
        (
            "SELECT ST_SetSRID(g, 4326) FROM t",
            'SELECT PG_SETSRID(g, 4326) AS "st_setsrid" FROM "in.c-public"."t"',
        ),
        ("SELECT st_srid(g) FROM t", 'SELECT PG_SRID(g) AS "st_srid" FROM "in.c-public"."t"'),
        (
            "SELECT ST_Transform(g, 3857) FROM t",
            'SELECT PG_TRANSFORM(g, 3857) AS "st_transform" FROM "in.c-public"."t"',
        ),
        ("SELECT ST_AsEWKT(g) FROM t", 'SELECT PG_ASEWKT(g) AS "st_asewkt" FROM "in.c-public"."t"'),
        ("SELECT ST_AsText(g) FROM t", 'SELECT PG_ASTEXT(g) AS "st_astext" FROM "in.c-public"."t"'),
        ("SELECT ST_AsGeoJSON(g) FROM t", 'SELECT PG_ASGEOJSON(g) AS "st_asgeojson" FROM "in.c-public"."t"'),
        (
            "SELECT ST_AsGeoJSON(g, 5) FROM t",
            'SELECT PG_ASGEOJSON(g, 5) AS "st_asgeojson" FROM "in.c-public"."t"',
        ),
        ("SELECT ST_GeomFromText('POINT(1 2)')", "SELECT PG_GEOMETRY('POINT(1 2)') AS \"st_geomfromtext\""),
        (
            "SELECT ST_GeomFromText('POINT(1 2)', 4326)",
            "SELECT PG_GEOMETRY('POINT(1 2)', 4326) AS \"st_geomfromtext\"",
        ),
        (
            "SELECT ST_GeomFromEWKT('SRID=4326;POINT(1 2)')",
            "SELECT PG_GEOMETRY('SRID=4326;POINT(1 2)') AS \"st_geomfromewkt\"",
        ),
        ("SELECT * FROM generate_series(1,10) i", "SELECT * FROM GENERATE_SERIES(1, 10) AS i(i)"),
        ("SELECT * FROM generate_series(1,10) AS i(n)", "SELECT * FROM GENERATE_SERIES(1, 10) AS i(n)"),
        ("SELECT * FROM generate_series(1,10)", "SELECT * FROM GENERATE_SERIES(1, 10)"),
        ("SELECT * FROM range(3) r", "SELECT * FROM RANGE(3) AS r(r)"),
        ("SELECT * FROM unnest(array[1, 2]) u", "SELECT * FROM UNNEST([1, 2]) AS u(u)"),
    ],
)
def test_translations(db: duckdb.DuckDBPyConnection, sql: str, expected: str) -> None:
    statement = one(sql)
    assert statement.sql == expected
    if 'FROM "in.c-public"' not in expected:  # t has no geometry column: the others run
        run(db, statement)


def test_set_returning_function_alias_names_the_column(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("select i from generate_series(1, 3) i")
    assert run(db, statement) == [(1,), (2,), (3,)]
    assert run(db, one("select sum(u) from unnest(array[1, 2]) u")) == [(3,)]


def test_geometry_translations_run_with_the_sandbox_macros(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("select ST_AsEWKT(ST_SetSRID(ST_GeomFromText('POINT(1 2)'), 4326)) as g")
    assert run(db, statement) == [("SRID=4326;POINT(1 2)",)]


# --------------------------------------------------------------------------------------------
# CDB_CartodbfyTable


@pytest.mark.parametrize(
    ("sql", "target"),
    [
        ("SELECT CDB_CartodbfyTable(current_schema, 'tornados')", pub("tornados")),
        ("SELECT CDB_CartodbfyTable(current_schema(), 'tornados')", pub("tornados")),
        ("SELECT CDB_CartodbfyTable(' public', 'tornados')", pub("tornados")),
        ("SELECT CDB_CartodbfyTable('public', 'tornados')", pub("tornados")),
        ("select cdb_cartodbfytable('myproject', 'tornados')", pub("tornados")),
        ("SELECT CDB_CartodbfyTable('tornados')", pub("tornados")),
        ("SELECT CDB_CartodbfyTable('Tornados')", pub("tornados")),
        ("SELECT CDB_CartodbfyTable('\"Tornados\"')", pub("Tornados")),
        ("SELECT CDB_CartodbfyTable('in.c-main', 'x')", TableRef(MAIN, "x")),
        ("SELECT CDB_CartodbfyTable('public.x')", pub("x")),
    ],
)
def test_cartodbfy(sql: str, target: TableRef) -> None:
    statement = one(sql)
    assert (statement.kind, statement.sql, statement.target) == ("cartodbfy", "", target)
    assert statement.writes == {target}


# --------------------------------------------------------------------------------------------
# COPY


@pytest.mark.parametrize(
    ("sql", "options"),
    [
        ("COPY t FROM STDIN", CopyOptions()),
        ("COPY t FROM STDIN WITH CSV HEADER DELIMITER ','", CopyOptions(format="csv", header=True, delimiter=",")),
        ("COPY t FROM STDIN WITH CSV", CopyOptions(format="csv")),
        ("COPY t FROM STDIN WITH DELIMITER ';' NULL 'NA' CSV HEADER QUOTE '\"'",
         CopyOptions(format="csv", header=True, delimiter=";", null="NA")),
        ("COPY t FROM STDIN WITH (FORMAT csv, HEADER true, DELIMITER ',', NULL '', QUOTE '\"', ESCAPE '\\', "
         "ENCODING 'utf-8')",
         CopyOptions(format="csv", header=True, delimiter=",", null="", quote='"', escape="\\", encoding="utf-8")),
        ("COPY t FROM STDIN (FORMAT csv, HEADER true, DELIMITER ',', NULL '', QUOTE '\"', ESCAPE '\\', "
         "ENCODING 'utf-8')",
         CopyOptions(format="csv", header=True, delimiter=",", null="", quote='"', escape="\\", encoding="utf-8")),
        ("COPY t FROM STDIN (FORMAT text, HEADER false)", CopyOptions()),
        ("COPY t FROM STDIN WITH (FORMAT csv, HEADER)", CopyOptions(format="csv", header=True)),
        ("COPY t FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8')", CopyOptions(format="csv")),
    ],
)  # fmt: skip
def test_copy_from_options(sql: str, options: CopyOptions) -> None:
    statement = one(sql)
    assert (statement.kind, statement.target, statement.sql) == ("copy_from", pub("t"), "")
    assert statement.writes == {pub("t")}
    assert statement.reads == frozenset()
    assert statement.columns is None
    assert statement.copy == options


@pytest.mark.parametrize(
    "sql",
    [
        "COPY t FROM STDIN WITH (FORMAT csv, FORCE_NOT_NULL (a))",
        "COPY t FROM STDIN WITH (FORMAT parquet)",
        "COPY t FROM STDIN WITH (FORMAT csv, DELIMITER ';;')",
        "COPY t FROM STDIN WITH (FORMAT csv, HEADER maybe)",
        "COPY (select 1) FROM STDIN",
    ],
)
def test_copy_options_that_are_refused(sql: str) -> None:
    refused(sql)


def test_copy_from_resolves_its_table_and_columns() -> None:
    statement = one('COPY "in.c-main".Data (A, "B") FROM STDIN WITH (FORMAT csv)')
    assert statement.target == TableRef(MAIN, "data")
    assert statement.columns == ["a", "B"]


def test_copy_to_of_a_table(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("COPY t (a, c) TO STDOUT WITH (FORMAT csv, HEADER)")
    assert statement.kind == "copy_to"
    assert statement.reads == {pub("t")}
    assert statement.target is None
    assert statement.copy == CopyOptions(format="csv", header=True)
    assert run(db, statement) == [(1, "x"), (2, "y")]
    everything = one("COPY public.t TO STDOUT")
    assert everything.sql == 'SELECT * FROM "in.c-public"."t"'
    assert len(run(db, everything)) == 2


def test_copy_to_of_a_query(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("COPY (select a from t join u on t.b = u.b) TO STDOUT (FORMAT csv)")
    assert statement.reads == {pub("t"), pub("u")}
    assert run(db, statement) == [(1,)]


# --------------------------------------------------------------------------------------------
# deny-list


@pytest.mark.parametrize(
    "name",
    ["read_csv", "read_xlsx", "duckdb_settings", "pragma_version", "sqlite_attach", "postgres_query",
     "ducklake_snapshots", "parquet_metadata", "iceberg_scan", "delta_scan", "glob", "getenv",
     "current_setting", "getvariable", "set_config", "query", "query_table", "load_extension",
     "install_extension", "http_get", "s3_list", "enable_profiling", "disable_optimizer", "checkpoint",
     "icu_sort_key", "st_read", "sniff_csv"],
)  # fmt: skip
def test_denied_function_names(name: str) -> None:
    assert dialect._is_denied(name)
    refused(f"select {name}('x')")


@pytest.mark.parametrize("name", ["st_point", "st_distance", "pg_geometry", "lower", "sum", "regexp_matches"])
def test_ordinary_functions_are_not_denied(name: str) -> None:
    assert not dialect._is_denied(name)


# --------------------------------------------------------------------------------------------
# robustness


def test_comments_are_not_carried_into_the_generated_sql() -> None:
    statement = one("select 1 -- a */ ; ATTACH 'x.db' AS x; /*\n")
    assert statement.sql == "SELECT 1"
    assert one("select /* hi */ 1 as x").sql == "SELECT 1 AS x"


def test_strings_keep_postgresql_semantics(db: duckdb.DuckDBPyConnection) -> None:
    statement = one(r"select 'C:\dir' as a, E'x\'; attach' as b, $$it's$$ as c")
    assert run(db, statement) == [("C:\\dir", "x'; attach", "it's")]


def test_unknown_statements_name_the_supported_ones() -> None:
    error = refused("frobnicate the_table")
    assert "supported statements are" in error.message


def test_too_deeply_nested_statements_are_refused_cleanly() -> None:
    error = refused("select " + "abs(" * 400 + "1" + ")" * 400)
    assert error.code in {"sql.tooComplex", "sql.syntax"}


def test_big_inserts_parse(db: duckdb.DuckDBPyConnection) -> None:
    rows = ",".join(f"({i}, {i}, 'n{i}')" for i in range(500))
    statement = one(f"insert into t (a, b, c) values {rows}")
    run(db, statement)
    assert db.execute('SELECT count(*) FROM "in.c-public".t').fetchone() == (502,)


def test_unaliased_functions_get_postgresql_column_names(db: duckdb.DuckDBPyConnection) -> None:
    statement = one("select count(*), avg(a), max(a) as top, ST_AsEWKT(g), now() from t")
    assert statement.sql.startswith('SELECT COUNT(*) AS "count", AVG(a) AS "avg", MAX(a) AS top, ')
    assert 'PG_ASEWKT(g) AS "st_asewkt"' in statement.sql and 'AS "now"' in statement.sql
    # only the outermost select list: subqueries and expressions keep DuckDB's names
    assert one("select n from (select count(*) as n from t) s").sql.count(" AS ") == 2
