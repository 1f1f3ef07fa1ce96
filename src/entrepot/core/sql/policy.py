"""What user SQL may do: the allow- and deny-lists of the SQL API, in one place to review.

User SQL (the CARTO SQL API: PostgreSQL with PostGIS functions) meets three walls. This
module holds the tables the first two enforce; the modules named below enforce them.

1. **The dialect** (``dialect.py``) parses the text with sqlglot and checks the *tree*, never
   the text:

   * **Statements.** A statement's root must be a query (:data:`QUERY_ROOTS`: SELECT, WITH, set
     operations, VALUES) or one of :data:`STATEMENT_ROOTS`: INSERT, UPDATE, DELETE, CREATE TABLE
     [IF NOT EXISTS] [AS], DROP TABLE [IF EXISTS], ALTER TABLE (the actions of
     :data:`ALTER_ACTIONS` only: add, drop, rename or alter a column, rename the table), TRUNCATE
     (run as ``DELETE FROM``) and COPY (``FROM STDIN`` / ``TO STDOUT`` only). CREATE, DROP and
     ALTER accept tables only, and CREATE TABLE only the elements of :data:`TABLE_ELEMENTS`.
     Two forms are recognised by their text: ``EXPLAIN [ANALYZE]`` of a query, and ``SELECT
     CDB_CartodbfyTable([schema, ]'table')``. Anything else is refused, and so is any
     statement-like node *inside* a statement (:data:`NESTED_STATEMENT_NODES`: data-modifying
     CTEs, ``SELECT … INTO``). :data:`REFUSED_STATEMENTS` refuses some leading keywords before
     parsing (sqlglot cannot parse ATTACH, INSTALL, … at all), only to say what to do instead.
   * **Tables.** Every table name resolves into the project's namespace (its buckets, the
     default schema ``in.c-public``, the aliases ``public`` and the project's name) and is
     rewritten as ``"<bucket>"."<table>"``. Catalog-qualified names, other schemas
     (``pg_catalog``, ``main``, …) and string-literal tables (``FROM 'x.csv'``) are refused.
     Of ``information_schema``, only :data:`INFORMATION_SCHEMA_VIEWS` may be read, and the
     service inlines the rows the caller may see in their place.
   * **Functions.** In a table position (FROM, JOIN, LATERAL) only :data:`TABLE_FUNCTIONS`.
     Anywhere, a function is refused when its name is in :data:`DENIED_FUNCTIONS` or starts
     with one of :data:`DENIED_PREFIXES` (:func:`is_denied_function`): files, settings, other
     databases, secrets, the engine's internals. Both sqlglot's canonical name and the name
     DuckDB will see are checked, and the generated DuckDB SQL is parsed and checked again.
     ``repeat``, ``lpad`` and ``rpad`` are sent to size-checked macros (``sandbox.py``).
   * **Size.** A statement is measured on its tokens before anything plans it
     (:class:`Limits`): DuckDB's planning cost grows faster than linearly with the number of
     query blocks, outside its memory limit.

2. **The binder** (``binder.py``) has DuckDB plan the statement right before it runs (same
   cursor, same transaction) and accepts only the plan operators of :data:`ALLOWED_OPERATORS`:
   scans of the lake and of the allowed table functions (:data:`SCANS`), DuckLake's writers and
   DDL (:data:`WRITES`; Parquet writing only under a DuckLake writer,
   :data:`WRITER_CHILDREN`), and operators that only compute on their inputs
   (:data:`RELATIONAL`). A system view, a file reader or another catalog's scan is refused
   whatever SQL produced it.

3. **The sandbox** (``sandbox.py``) runs the statement on a DuckDB instance that attaches only
   the project's lake, with external access off (but for the lake's data directory and its
   spill directory) and its configuration locked; read-only scripts run on a read-only attach.

Who may read or write which table is not here: ``authorize.py`` checks every table a
statement reads or writes against the caller's token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# -- 1. statements ------------------------------------------------------------------------------

# sqlglot node classes a query's root may be (matched with isinstance: UNION is a SetOperation)
QUERY_ROOTS = ("Select", "SetOperation", "Values", "Subquery")
# sqlglot node classes (matched exactly) of the other statements; CREATE/DROP/ALTER: tables only
STATEMENT_ROOTS = ("Insert", "Update", "Delete", "Create", "Drop", "Alter", "TruncateTable", "Copy")
# ALTER TABLE actions allowed (each becomes one DuckDB statement)
ALTER_ACTIONS = ("ColumnDef", "Drop", "RenameColumn", "AlterRename", "AlterColumn")
# what CREATE TABLE's column list may hold besides column definitions
TABLE_ELEMENTS = (
    "ColumnDef", "PrimaryKey", "UniqueColumnConstraint", "CheckColumnConstraint", "ForeignKey", "Constraint"
)  # fmt: skip
# statement-like nodes: refused wherever they are not the (allowed) root of a statement
NESTED_STATEMENT_NODES = (
    "Alter", "AlterSession", "Analyze", "Attach", "Block", "Cache", "Command", "Comment", "Commit",
    "Copy", "Create", "Declare", "Delete", "Describe", "Detach", "Drop", "Execute", "ExecuteSql",
    "Export", "Get", "Grant", "IfBlock", "Insert", "Install", "Into", "Kill", "LoadData",
    "LockingStatement", "LoopBlock", "Merge", "Pragma", "Put", "Refresh", "Revoke", "Rollback", "Set",
    "Show", "StoredProcedure", "Summarize", "SwapTable", "Transaction", "TruncateTable", "Uncache",
    "Undrop", "Update", "Use", "WhileBlock",
)  # fmt: skip

SUPPORTED = (
    "supported statements are SELECT, INSERT, UPDATE, DELETE, CREATE TABLE, DROP TABLE, ALTER TABLE, "
    "TRUNCATE, EXPLAIN, COPY … FROM STDIN, COPY … TO STDOUT and SELECT CDB_CartodbfyTable(…)"
)
ONE_TRANSACTION = (
    "a request (or a batch query) runs as one transaction: its statements commit together or not at all"
)
COPY_HINT = "use COPY … FROM STDIN via the copyfrom endpoint or COPY … TO STDOUT via copyto"
ISOLATION = "a project's SQL sees only its own tables; name a bucket's table as \"in.c-main\".mytable"
ALTER_HINT = "use ALTER TABLE with ADD COLUMN, DROP COLUMN, RENAME COLUMN, ALTER COLUMN or RENAME TO"
INTROSPECTION = "query information_schema.tables or information_schema.columns instead"

# statements refused by their leading keyword, with what to do instead
REFUSED_STATEMENTS: Mapping[str, str] = {
    "ATTACH": ISOLATION,
    "DETACH": ISOLATION,
    "USE": ISOLATION,
    "INSTALL": "extensions are managed by the server",
    "LOAD": "extensions are managed by the server",
    "FORCE": "extensions and checkpoints are managed by the server",
    "UPDATE EXTENSIONS": "extensions are managed by the server",
    "SET": "settings are managed by the server",
    "RESET": "settings are managed by the server",
    "PRAGMA": "settings are managed by the server",
    "EXPORT": COPY_HINT,
    "IMPORT": COPY_HINT,
    "CALL": "call table functions in FROM; the available ones are generate_series, range and unnest",
    "CHECKPOINT": "storage maintenance is managed by the server",
    "VACUUM": "storage maintenance is managed by the server",
    "ANALYZE": "storage maintenance is managed by the server",
    "BEGIN": ONE_TRANSACTION,
    "START": ONE_TRANSACTION,
    "COMMIT": ONE_TRANSACTION,
    "END": ONE_TRANSACTION,
    "ROLLBACK": ONE_TRANSACTION,
    "ABORT": ONE_TRANSACTION,
    "SAVEPOINT": ONE_TRANSACTION,
    "RELEASE": ONE_TRANSACTION,
    "DESCRIBE": INTROSPECTION,
    "DESC": INTROSPECTION,
    "SHOW": INTROSPECTION,
    "SUMMARIZE": INTROSPECTION,
    "PREPARE": "send the statement itself",
    "EXECUTE": "send the statement itself",
    "DEALLOCATE": "send the statement itself",
    "GRANT": "access is granted with tokens",
    "REVOKE": "access is granted with tokens",
    "MERGE": "use INSERT … ON CONFLICT, UPDATE or DELETE",
    "PIVOT": "use PIVOT inside a SELECT … FROM",
    "UNPIVOT": "use UNPIVOT inside a SELECT … FROM",
    "COMMENT": SUPPORTED,
    "LISTEN": SUPPORTED,
    "NOTIFY": SUPPORTED,
    "UNLISTEN": SUPPORTED,
    "LOCK": SUPPORTED,
    "DISCARD": SUPPORTED,
    "REINDEX": SUPPORTED,
    "CLUSTER": SUPPORTED,
    "REFRESH": SUPPORTED,
    "DO": SUPPORTED,
    "DECLARE": SUPPORTED,
    "FETCH": SUPPORTED,
    "CLOSE": SUPPORTED,
    "MOVE": SUPPORTED,
}

# -- tables ------------------------------------------------------------------------------------

INFORMATION_SCHEMA = "information_schema"
# the only system views user SQL may read (with the rows of the tables the caller may read)
INFORMATION_SCHEMA_VIEWS = frozenset({"tables", "columns", "schemata"})

# -- functions -----------------------------------------------------------------------------------

# the only functions allowed where a table goes (FROM, JOIN, LATERAL)
TABLE_FUNCTIONS = frozenset({"generate_series", "range", "unnest"})

# functions refused anywhere (lower-cased DuckDB / sqlglot names)
DENIED_FUNCTIONS = frozenset(
    {
        "current_setting",
        "getenv",
        "getvariable",
        "setvariable",
        "glob",
        "query",
        "query_table",
        "sniff_csv",
        "which_secret",
        "write_log",
        "checkpoint",
        "force_checkpoint",
        "json_serialize_sql",
        "json_deserialize_sql",
        "json_serialize_plan",
        "json_execute_serialized_sql",
        "nextval",
        "currval",
        "current_query",
        "load_extension",
    }
)
# functions whose lower-cased name starts with one of these are refused anywhere
DENIED_PREFIXES = (
    "read_",
    "duckdb_",
    "pragma_",
    "sqlite_",
    "postgres_",
    "mysql_",
    "ducklake_",
    "parquet_",
    "iceberg_",
    "delta_",
    "arrow_",
    "pandas_",
    "python_",
    "icu_",
    "st_read",
    "st_write",
    "st_drivers",
    "glob",
    "getenv",
    "current_setting",
    "getvariable",
    "set",
    "query",
    "load",
    "install",
    "http",
    "s3",
    "enable_",
    "disable_",
    "checkpoint",
    "sniff_",
    "json_execute",
    "substrait",
    "from_substrait",
    "get_substrait",
    "pg_read",
    "pg_ls",
    "attach",
    "detach",
    "export_",
    "import_",
    "copy_",
    "secret",
)


def is_denied_function(name: str) -> bool:
    """Whether the function ``name`` (lower-cased) is refused wherever it appears."""
    return name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES)


# -- 2. plan operators (binder.py) -------------------------------------------------------------

# scans of the project's data and of the allowed table functions
SCANS = frozenset({"DUCKLAKE_SCAN", "GENERATE_SERIES", "RANGE", "UNNEST"})
# DuckLake writers and the DDL the dialect lets through (its targets are resolved by the dialect)
WRITES = frozenset(
    {
        "DUCKLAKE_INSERT",
        "DUCKLAKE_UPDATE",
        "DUCKLAKE_DELETE",
        "DUCKLAKE_CREATE_TABLE_AS",
        "DUCKLAKE_MERGE_INTO",
        "DUCKLAKE_INLINE_DATA",
        "CREATE_TABLE",
        "DROP",
        "ALTER",
    }
)
# operators that compute only on their children's rows (or on constants)
RELATIONAL = frozenset(
    {
        "PROJECTION",
        "FILTER",
        "ORDER_BY",
        "TOP_N",
        "LIMIT",
        "STREAMING_LIMIT",
        "LIMIT_PERCENT",
        "WINDOW",
        "STREAMING_WINDOW",
        "HASH_GROUP_BY",
        "PERFECT_HASH_GROUP_BY",
        "PARTITIONED_AGGREGATE",
        "UNGROUPED_AGGREGATE",
        "HASH_JOIN",
        "CROSS_PRODUCT",
        "NESTED_LOOP_JOIN",
        "BLOCKWISE_NL_JOIN",
        "PIECEWISE_MERGE_JOIN",
        "IE_JOIN",
        "ASOF_JOIN",
        "POSITIONAL_JOIN",
        "DELIM_JOIN",
        "LEFT_DELIM_JOIN",
        "RIGHT_DELIM_JOIN",
        "DELIM_SCAN",
        "UNION",
        "CTE",
        "CTE_SCAN",
        "REC_CTE",
        "REC_KEY_CTE",
        "REC_CTE_SCAN",
        "REC_REC_CTE_SCAN",
        "DUMMY_SCAN",
        "EMPTY_RESULT",
        "COLUMN_DATA_SCAN",
        "CHUNK_SCAN",
        "EXPRESSION_SCAN",
        "RESERVOIR_SAMPLE",
        "STREAMING_SAMPLE",
        "INOUT_FUNCTION",
    }
)
ALLOWED_OPERATORS = SCANS | WRITES | RELATIONAL
# Parquet writing is allowed only as the data path of a DuckLake writer (never a user COPY TO)
WRITER_CHILDREN = frozenset({"COPY_TO_FILE", "BATCH_COPY_TO_FILE"})

# -- size --------------------------------------------------------------------------------------

# sqlglot token types that open a query block (counted against Limits.max_query_blocks)
BLOCK_TOKENS = ("SELECT", "UNION", "INTERSECT", "EXCEPT")


@dataclass(frozen=True)
class Limits:
    """How large one statement may be before DuckDB's planner sees it.

    DuckDB's binder and optimizer cost grows faster than linearly with the number of query
    blocks (a 20,000-branch UNION ALL plans for 40 s in 6 GB, outside any memory limit), so a
    statement is measured on its tokens first: its length, and its query blocks (SELECT,
    UNION, INTERSECT, EXCEPT). The service takes both from the settings
    ``sql_max_statement_tokens`` and ``sql_max_query_blocks``; these are the defaults.
    """

    max_tokens: int = 200_000
    max_query_blocks: int = 500
