"""PostgreSQL/PostGIS text → checked, translated DuckDB statements.

Users send the SQL of the CARTO SQL API: PostgreSQL with PostGIS functions. :func:`parse` turns a
script into a list of :class:`Statement`, each carrying the DuckDB SQL to run in the project's
sandbox and what it reads and writes. It is the first wall of the SQL API: it enforces the
allow- and deny-lists of ``policy.py`` (read that module for *what* is allowed) on the parsed
tree (sqlglot, ``read="postgres"``), never on the text:

1. **Statements**: the root of each statement must be one ``policy`` allows; statement-like
   nodes nested inside another statement are refused; some leading keywords are refused before
   parsing, with a hint.
2. **Tables**: every table reference is resolved into the project namespace and rewritten as
   ``"<bucket>"."<table>"`` (the sandbox connection has ``USE lake``): no schema → the default
   schema; ``public`` / the project name → their alias; a known bucket (exact, then
   case-insensitive match). ``information_schema``'s allowed views are left alone (or inlined
   with the caller's rows). Catalog-qualified names, other schemas and string-literal tables
   are refused. CTE names in scope are not tables. Unquoted identifiers are lower-cased like
   PostgreSQL does; quoted ones keep their case.
3. **Functions**: table functions are allow-listed, every function anywhere is checked against
   the deny-list; the names checked are sqlglot's canonical name *and* the name DuckDB will see
   in the generated SQL, and the generated SQL is parsed again (``read="duckdb"``) and re-checked,
   so a translation can never smuggle a refused function in.
4. **Translations** (PostgreSQL-isms → DuckDB): geometry casts → ``pg_geometry(x[, srid])``,
   column types (geometry/geography → GEOMETRY, serial → INTEGER, bigserial → BIGINT, text →
   VARCHAR, jsonb → JSON), ``version()``, ``current_schema``, ``now()``, the ``ST_*`` functions
   whose PostGIS semantics differ → the sandbox's ``pg_*`` macros, and the set-returning function
   alias rule (``generate_series(1,10) i`` → ``… AS i(i)``).

Refusals raise :class:`entrepot.core.errors.InvalidInput` with a ``sql.*`` code and a message
that names what is refused and what to use instead. Whether a table exists is the service's
business (``relation "x" does not exist``), not the dialect's.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.expressions.datatypes import DType
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.tokenizer_core import Token, TokenType

from entrepot._version import __version__ as _ENTREPOT_VERSION
from entrepot.core import errors as E
from entrepot.core.engine.tables import TableRef
from entrepot.core.sql import policy
from entrepot.core.sql.policy import Limits

__all__ = ["CopyOptions", "InformationView", "Namespace", "Statement", "parse"]

# sqlglot warns when it falls back to a generic Command; such statements are refused here anyway
logging.getLogger("sqlglot").setLevel(logging.ERROR)


# --------------------------------------------------------------------------------------------
# public types


@dataclass(frozen=True)
class Namespace:
    """What table names of one project resolve to."""

    default_schema: str  # "in.c-public"
    aliases: Mapping[str, str]  # lower-cased alias -> schema: {"public": ..., "<project>": ...}
    schemas: frozenset[str]  # existing bucket idents (case as stored)
    project: str
    # information_schema.<view> → what the caller may see of it; None leaves the views to DuckDB
    information_schema: Callable[[str], InformationView] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class InformationView:
    """The rows of one ``information_schema`` view that a caller may see, inlined into its query."""

    columns: list[tuple[str, str]]  # (name, DuckDB type)
    rows: list[tuple[object, ...]]


@dataclass(frozen=True)
class CopyOptions:
    """The options of a COPY FROM STDIN / TO STDOUT."""

    format: str = "text"  # "text" | "csv" ("binary" -> InvalidInput)
    header: bool = False
    delimiter: str | None = None  # default: tab for text, "," for csv
    null: str | None = None  # default: "\\N" for text, "" for csv
    quote: str = '"'
    escape: str | None = None
    encoding: str = "utf-8"


@dataclass
class Statement:
    """One checked statement of a script, ready to run on the sandbox."""

    kind: str  # select | insert | update | delete | create_table | create_table_as | drop_table
    #            | alter_table | truncate | cartodbfy | copy_from | copy_to | explain
    sql: str  # DuckDB SQL to execute (empty for cartodbfy / copy_from)
    reads: frozenset[TableRef] = frozenset()
    writes: frozenset[TableRef] = frozenset()
    target: TableRef | None = None
    columns: list[str] | None = None  # copy_from column list; insert column list
    copy: CopyOptions | None = None  # copy_from / copy_to
    geometry_columns: dict[str, int] = field(default_factory=dict)  # create_table/alter_table: col -> SRID
    serial_columns: list[str] = field(default_factory=list)  # create_table/alter_table: serial columns
    if_exists: bool = False  # DROP TABLE IF EXISTS / CREATE TABLE IF NOT EXISTS / ALTER TABLE IF EXISTS
    # insert/update/delete: the statement also reads its target's columns (a WHERE, SET values
    # or RETURNING naming them), which PostgreSQL lets only a role with SELECT on it do
    reads_target: bool = False
    # ALTER TABLE … RENAME TO: the table's new name (its catalog row, id and definition follow it)
    renamed_to: TableRef | None = None

    @property
    def plan_sql(self) -> str:
        """The SQL whose plan ``binder.check`` inspects: the statement, or the query an EXPLAIN runs."""
        if self.kind == "explain":
            return re.sub(r"^EXPLAIN\s+(ANALYZE\s+)?", "", self.sql)
        return self.sql


# --------------------------------------------------------------------------------------------
# translations (what is allowed is in policy.py)

_DIALECT = Dialect.get_or_raise("postgres")

DEFAULT_SRID = 4326

# PostGIS function -> sandbox macro (core/sql/geometry.py::MACROS)
FUNCTION_RENAMES: Mapping[str, str] = {
    "st_makepoint": "ST_Point",
    "st_setsrid": "pg_setsrid",
    "st_srid": "pg_srid",
    "st_transform": "pg_transform",
    "st_asewkt": "pg_asewkt",
    "st_astext": "pg_astext",
    "st_asgeojson": "pg_asgeojson",
    "st_geomfromtext": "pg_geometry",
    "st_geomfromewkt": "pg_geometry",
}
GEOMETRY_MACRO = "pg_geometry"

# column types: PostgreSQL -> DuckDB
_GEOMETRY_TYPES = (exp.DataType.Type.GEOMETRY, exp.DataType.Type.GEOGRAPHY)
_SERIAL_TYPES = (exp.DataType.Type.SERIAL, exp.DataType.Type.BIGSERIAL, exp.DataType.Type.SMALLSERIAL)
TYPE_RENAMES: Mapping[DType, str] = {
    exp.DataType.Type.GEOMETRY: "GEOMETRY",
    exp.DataType.Type.GEOGRAPHY: "GEOMETRY",
    exp.DataType.Type.SERIAL: "INTEGER",
    exp.DataType.Type.BIGSERIAL: "BIGINT",
    exp.DataType.Type.SMALLSERIAL: "SMALLINT",
    exp.DataType.Type.TEXT: "VARCHAR",
    exp.DataType.Type.JSONB: "JSON",
}


# policy.py names sqlglot node classes; these are the classes
def _classes(*names: str) -> tuple[type[exp.Expr], ...]:
    return tuple(cls for name in names if isinstance(cls := getattr(exp, name, None), type))


_QUERY_TYPES = _classes(*policy.QUERY_ROOTS)
_STATEMENT_NODES = _classes(*policy.NESTED_STATEMENT_NODES)
_ALTER_ACTIONS = _classes(*policy.ALTER_ACTIONS)
_TABLE_ELEMENTS = _classes(*policy.TABLE_ELEMENTS)

_RENDERED_NAME = re.compile(r'\s*"?([A-Za-z_][A-Za-z0-9_$]*)"?\s*\(')


def _refuse(message: str, code: str) -> E.InvalidInput:
    return E.InvalidInput(message, code=f"sql.{code}")


def _versions() -> str:
    try:
        duckdb_version = importlib.metadata.version("duckdb")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - duckdb is a dependency
        duckdb_version = "unknown"
    return f"PostgreSQL 15 compatible; entrepot {_ENTREPOT_VERSION} on DuckDB {duckdb_version}"


# --------------------------------------------------------------------------------------------
# entry point


_BLOCK_TOKENS = frozenset(TokenType[name] for name in policy.BLOCK_TOKENS)


def parse(sql: str, namespace: Namespace, limits: Limits = Limits()) -> list[Statement]:
    """Parse, check and translate a script; every statement is valid or nothing is returned.

    Raises :class:`~entrepot.core.errors.InvalidInput` for syntax errors, refused statements,
    functions or tables, unknown schemas, and statements over ``limits``.
    """
    chunks = _split(sql)
    if not chunks:
        raise _refuse("You must indicate a sql query", "empty")
    statements: list[Statement] = []
    for chunk in chunks:
        _check_size(chunk, limits)
        try:
            statements.extend(_parse_chunk(chunk, sql, namespace))
        except RecursionError:
            raise _refuse("the statement is nested too deeply; simplify it", "tooComplex") from None
    if not statements:
        raise _refuse("You must indicate a sql query", "empty")
    return statements


def _check_size(tokens: list[Token], limits: Limits) -> None:
    if len(tokens) > limits.max_tokens:
        raise _refuse(
            f"the statement is too large: {len(tokens):,} tokens, the most is {limits.max_tokens:,} "
            "(setting sql_max_statement_tokens); load data with COPY … FROM STDIN (copyfrom) instead of "
            "long VALUES lists, or split the statement",
            "tooComplex",
        )
    blocks = sum(1 for token in tokens if token.token_type in _BLOCK_TOKENS)
    if blocks > limits.max_query_blocks:
        raise _refuse(
            f"the statement is too complex to plan: {blocks:,} query blocks (SELECT, UNION, INTERSECT, "
            f"EXCEPT), the most is {limits.max_query_blocks:,} (setting sql_max_query_blocks); "
            "put the values in a table, or use VALUES or unnest instead of many UNION ALL branches",
            "tooComplex",
        )


def _split(sql: str) -> list[list[Token]]:
    """The script's tokens, one list per statement (like sqlglot's own chunking)."""
    try:
        tokens = _DIALECT.tokenize(sql)
    except SqlglotError as err:
        raise _syntax_error(err) from None
    chunks: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            chunks.append([])
        else:
            chunks[-1].append(token)
    return [chunk for chunk in chunks if chunk]


def _syntax_error(err: Exception) -> E.InvalidInput:
    first_line = (str(err).strip().splitlines() or ["invalid SQL"])[0]
    return _refuse(f"syntax error: {first_line}", "syntax")


def _parse_tokens(tokens: list[Token], sql: str) -> exp.Expr | None:
    try:
        trees = _DIALECT.parser().parse(tokens, sql)
    except SqlglotError as err:
        _refuse_denied_call(tokens)  # a clearer message than sqlglot's for e.g. glob('/*')
        raise _syntax_error(err) from None
    trees = [tree for tree in trees if tree is not None and not isinstance(tree, exp.Semicolon)]
    if len(trees) > 1:  # pragma: no cover - one chunk is one statement
        raise _refuse("syntax error: one statement expected", "syntax")
    return trees[0] if trees else None


def _refuse_denied_call(tokens: list[Token]) -> None:
    """On a syntax error: refuse a denied function called in the text (sqlglot cannot parse ``glob('x')``)."""
    for token, nxt in itertools.pairwise(tokens):
        if token.token_type != TokenType.STRING and nxt.token_type == TokenType.L_PAREN:
            name = token.text.lower()
            if _is_denied(name):
                raise _refuse(f"function {name}() is not allowed", "refusedFunction")


def _leading_keyword(tokens: list[Token]) -> str:
    """The statement's first word(s), upper-cased ("" when it starts with a literal or quoted name)."""
    first = tokens[0]
    if first.token_type in (TokenType.STRING, TokenType.IDENTIFIER):
        return ""
    word = first.text.upper()
    second = tokens[1].text.upper() if len(tokens) > 1 else ""
    if word == "FORCE" or (word == "UPDATE" and second == "EXTENSIONS"):
        return f"{word} {second}".strip()
    return word


def _parse_chunk(tokens: list[Token], sql: str, ns: Namespace) -> list[Statement]:
    keyword = _leading_keyword(tokens)
    hint = policy.REFUSED_STATEMENTS.get(keyword) or (
        policy.REFUSED_STATEMENTS["FORCE"] if keyword.startswith("FORCE") else None
    )
    if hint:
        raise _refuse(f"{keyword} is not allowed; {hint}", "refusedStatement")
    if keyword == "EXPLAIN":
        return [_explain(tokens, sql, ns)]
    if keyword == "COPY":
        tokens = _copy_tokens(tokens)
    tree = _parse_tokens(tokens, sql)
    if tree is None:
        return []
    tree = normalize_identifiers(tree, dialect="postgres")
    return _statements(tree, ns, tokens, keyword)


def _copy_tokens(tokens: list[Token]) -> list[Token]:
    """``COPY t FROM STDIN (FORMAT csv)``: sqlglot needs the optional WITH before the options."""
    out = list(tokens)
    for i, token in enumerate(out[:-1]):
        if (
            token.token_type != TokenType.STRING
            and token.text.upper() in {"STDIN", "STDOUT"}
            and out[i + 1].token_type == TokenType.L_PAREN
        ):
            nxt = out[i + 1]
            out.insert(i + 1, Token(TokenType.WITH, "WITH", nxt.line, nxt.col, nxt.start, nxt.start))
            break
    return out


# --------------------------------------------------------------------------------------------
# statement kinds


def _statements(tree: exp.Expr, ns: Namespace, tokens: list[Token], keyword: str) -> list[Statement]:
    literal_starts = {tok.start for tok in tokens if tok.token_type == TokenType.STRING}
    if isinstance(tree, _QUERY_TYPES):
        return [_query(tree, ns, literal_starts)]
    handlers: dict[type[exp.Expr], Callable[[exp.Expr, Namespace, set[int]], list[Statement]]] = {
        exp.Insert: _insert,
        exp.Update: _update_delete,
        exp.Delete: _update_delete,
        exp.Create: _create,
        exp.Drop: _drop,
        exp.Alter: _alter,
        exp.TruncateTable: _truncate,
        exp.Copy: _copy,
    }
    handler = handlers.get(type(tree)) if type(tree).__name__ in policy.STATEMENT_ROOTS else None
    if handler is None:
        raise _refused_statement(tree, keyword)
    return handler(tree, ns, literal_starts)


def _refused_statement(tree: exp.Expr, keyword: str) -> E.InvalidInput:
    name = keyword or type(tree).__name__.upper()
    if isinstance(tree, exp.Command):
        rest = tree.expression.name if isinstance(tree.expression, exp.Expr) else str(tree.expression or "")
        words = " ".join(f"{tree.name} {rest}".split()[:2]).upper()
        if words.startswith(("CREATE", "DROP")):
            return _refuse(
                f"{words} is not allowed; only tables can be created or dropped", "refusedStatement"
            )
        if words.startswith("ALTER"):
            return _refuse(f"{words} … is not supported; {policy.ALTER_HINT}", "refusedStatement")
        name = words or name
    hint = policy.REFUSED_STATEMENTS.get(name.split()[0] if name else name, policy.SUPPORTED)
    return _refuse(f"{name} is not allowed; {hint}", "refusedStatement")


def _query(tree: exp.Expr, ns: Namespace, literal_starts: set[int]) -> Statement:
    cartodbfy = _cartodbfy(tree, ns)
    if cartodbfy is not None:
        return cartodbfy
    _name_function_columns(tree)  # before the translations rename ST_* functions
    reads = _check(tree, ns, literal_starts)
    return Statement(kind="select", sql=_generate(tree), reads=reads)


# functions sqlglot parses into a class of another name: the name PostgreSQL users wrote
_PARSED_NAMES = {"current_timestamp": "now", "st_point": "st_makepoint"}


def _name_function_columns(tree: exp.Expr) -> None:
    """Unaliased function calls in the outermost select list get PostgreSQL's column name.

    PostgreSQL names ``count(*)`` ``count`` and ``avg(x)`` ``avg``; DuckDB would say
    ``count_star()`` and ``avg(x)``, which breaks clients that read ``row["count"]``.
    """
    select = tree if isinstance(tree, exp.Select) else None
    if select is None:
        return
    for item in list(select.expressions):
        if isinstance(item, exp.Func) and not isinstance(
            item, exp.Alias | exp.Cast | exp.CurrentVersion | exp.CurrentSchema
        ):
            name = item.this if isinstance(item, exp.Anonymous) else item.sql_name()
            if isinstance(name, str) and name.isidentifier():
                name = _PARSED_NAMES.get(name.lower(), name.lower())
                item.replace(exp.alias_(item.copy(), name, quoted=True))


def _insert(tree: exp.Expr, ns: Namespace, literal_starts: set[int]) -> list[Statement]:
    assert isinstance(tree, exp.Insert)
    columns: list[str] | None = None
    target_node = tree.this
    if isinstance(target_node, exp.Schema):
        columns = [_ident_name(col) for col in target_node.expressions]
        target_node = target_node.this
    target = _target(target_node, ns, "INSERT", literal_starts)
    reads = _check(tree, ns, literal_starts, skip={id(target_node)})
    return [
        Statement(
            kind="insert",
            sql=_generate(tree),
            reads=reads,
            writes=frozenset({target}),
            target=target,
            columns=columns,
            reads_target=_reads_target(tree),
        )
    ]


def _update_delete(tree: exp.Expr, ns: Namespace, literal_starts: set[int]) -> list[Statement]:
    assert isinstance(tree, exp.Update | exp.Delete)
    kind = "update" if isinstance(tree, exp.Update) else "delete"
    if isinstance(tree, exp.Update) and not tree.expressions:
        raise _refuse("syntax error: UPDATE needs SET column = value", "syntax")
    if isinstance(tree, exp.Delete) and tree.args.get("tables"):
        raise _refuse("DELETE from several tables at once is not supported", "refusedStatement")
    target = _target(tree.this, ns, kind.upper(), literal_starts)
    reads = _check(tree, ns, literal_starts, skip={id(tree.this)})
    return [
        Statement(
            kind=kind,
            sql=_generate(tree),
            reads=reads,
            writes=frozenset({target}),
            target=target,
            reads_target=_reads_target(tree),
        )
    ]


def _reads_target(tree: exp.Insert | exp.Update | exp.Delete) -> bool:
    """Whether a write also reads its target's columns: a RETURNING or ON CONFLICT, or (UPDATE,
    DELETE) a column named in its WHERE or SET values."""
    if tree.args.get("returning") is not None or tree.args.get("conflict") is not None:
        return True
    if isinstance(tree, exp.Insert):
        return False
    where = tree.args.get("where")
    if where is not None and where.find(exp.Column) is not None:
        return True
    values = (
        [e.expression for e in tree.expressions if isinstance(e, exp.EQ)]
        if isinstance(tree, exp.Update)
        else []
    )
    return any(v.find(exp.Column) is not None for v in values)


def _create(tree: exp.Expr, ns: Namespace, literal_starts: set[int]) -> list[Statement]:
    assert isinstance(tree, exp.Create)
    kind = str(tree.args.get("kind") or "").upper()
    if kind != "TABLE":
        raise _refuse(f"CREATE {kind} is not allowed; only tables can be created", "refusedStatement")
    _check_create_options(tree)
    schema = tree.this if isinstance(tree.this, exp.Schema) else None
    table_node = schema.this if schema is not None else tree.this
    target = _target(table_node, ns, "CREATE TABLE", literal_starts)
    geometry_columns: dict[str, int] = {}
    serial_columns: list[str] = []
    if schema is not None:
        for element in schema.expressions:
            if not isinstance(element, _TABLE_ELEMENTS):
                raise _refuse(
                    f"CREATE TABLE element {element.sql(dialect='postgres')!r} is not supported; "
                    "declare columns and constraints",
                    "refusedStatement",
                )
            if isinstance(element, exp.ColumnDef):
                _record_column(element, geometry_columns, serial_columns)
    query = tree.expression
    if query is not None and not isinstance(query, _QUERY_TYPES):
        raise _refuse("CREATE TABLE … AS needs a SELECT", "refusedStatement")
    reads = _check(tree, ns, literal_starts, skip={id(table_node)})
    return [
        Statement(
            kind="create_table_as" if query is not None else "create_table",
            sql=_generate(tree),
            reads=reads,
            writes=frozenset({target}),
            target=target,
            geometry_columns=geometry_columns,
            serial_columns=serial_columns,
            if_exists=bool(tree.args.get("exists")),
        )
    ]


def _check_create_options(tree: exp.Create) -> None:
    properties = tree.args.get("properties")
    for prop in properties.expressions if properties else []:
        if isinstance(prop, exp.TemporaryProperty):
            raise _refuse("temporary tables are not allowed; create a regular table", "refusedStatement")
        raise _refuse(
            f"CREATE TABLE option {prop.sql(dialect='postgres')!r} is not supported", "refusedStatement"
        )
    if tree.args.get("replace"):
        raise _refuse(
            "CREATE OR REPLACE TABLE is not supported; use DROP TABLE IF EXISTS then CREATE TABLE",
            "refusedStatement",
        )
    for key in ("unique", "clone", "indexes", "begin", "end", "concurrently", "refresh"):
        if tree.args.get(key):
            raise _refuse(f"CREATE TABLE with {key.upper()} is not supported", "refusedStatement")


def _record_column(column: exp.ColumnDef, geometry: dict[str, int], serial: list[str]) -> None:
    dtype = column.args.get("kind")
    if not isinstance(dtype, exp.DataType):
        return
    if dtype.this in _GEOMETRY_TYPES:
        geometry[column.name] = _declared_srid(dtype)
    elif dtype.this in _SERIAL_TYPES:
        serial.append(column.name)


def _declared_srid(dtype: exp.DataType) -> int:
    """``geometry(Point,3857)`` → 3857; ``geometry`` / ``geometry(Point)`` → 4326."""
    for param in dtype.expressions:
        value = param.this if isinstance(param, exp.DataTypeParam) else param
        if isinstance(value, exp.Literal) and not value.is_string:
            return int(value.name)
    return DEFAULT_SRID


def _drop(tree: exp.Expr, ns: Namespace, literal_starts: set[int]) -> list[Statement]:
    assert isinstance(tree, exp.Drop)
    kind = str(tree.args.get("kind") or "").upper()
    if kind != "TABLE":
        raise _refuse(f"DROP {kind} is not allowed; only tables can be dropped", "refusedStatement")
    if tree.args.get("temporary") or tree.args.get("materialized"):
        raise _refuse("DROP TEMPORARY/MATERIALIZED is not supported", "refusedStatement")
    tables = tree.args.get("tables") or [tree.this]
    statements = []
    for table in tables:
        target = _target(table, ns, "DROP TABLE", literal_starts)
        single = exp.Drop(
            tables=[table], kind="TABLE", exists=tree.args.get("exists"), cascade=tree.args.get("cascade")
        )
        statements.append(
            Statement(
                kind="drop_table",
                sql=_generate(single),
                writes=frozenset({target}),
                target=target,
                if_exists=bool(tree.args.get("exists")),
            )
        )
    return statements


def _truncate(tree: exp.Expr, ns: Namespace, literal_starts: set[int]) -> list[Statement]:
    assert isinstance(tree, exp.TruncateTable)
    if tree.args.get("is_database"):
        raise _refuse("TRUNCATE DATABASE is not allowed", "refusedStatement")
    statements = []
    for table in tree.expressions:
        target = _target(table, ns, "TRUNCATE", literal_starts)
        sql = _generate(exp.Delete(this=table))
        statements.append(Statement(kind="truncate", sql=sql, writes=frozenset({target}), target=target))
    return statements


def _alter(tree: exp.Expr, ns: Namespace, literal_starts: set[int]) -> list[Statement]:
    assert isinstance(tree, exp.Alter)
    if str(tree.args.get("kind") or "").upper() != "TABLE":
        raise _refuse(
            f"ALTER {tree.args.get('kind')} is not allowed; only tables can be altered", "refusedStatement"
        )
    actions = tree.args.get("actions") or []
    if not actions:
        raise _refuse("syntax error: ALTER TABLE needs an action", "syntax")
    for action in actions:
        _check_alter_action(action)
    target = _target(tree.this, ns, "ALTER TABLE", literal_starts)
    statements = []
    for action in actions:
        single = tree.copy()
        single.set("actions", [action.copy()])
        statements.append(_alter_one(single, target, ns, literal_starts, len(actions) > 1))
    return statements


def _check_alter_action(action: exp.Expr) -> None:
    if not isinstance(action, _ALTER_ACTIONS):
        raise _refuse(
            f"ALTER TABLE … {action.sql(dialect='postgres')} is not supported; {policy.ALTER_HINT}",
            "refusedStatement",
        )
    if isinstance(action, exp.Drop) and str(action.args.get("kind") or "").upper() != "COLUMN":
        raise _refuse("ALTER TABLE … DROP supports columns only", "refusedStatement")


def _alter_one(
    tree: exp.Alter, target: TableRef, ns: Namespace, literal_starts: set[int], several: bool
) -> Statement:
    action = tree.args["actions"][0]
    writes = {target}
    skip = {id(tree.this)}
    renamed_to: TableRef | None = None
    if isinstance(action, exp.AlterRename):
        if several:
            raise _refuse("ALTER TABLE … RENAME TO must be the only action", "refusedStatement")
        new = action.this
        if not isinstance(new, exp.Table) or new.args.get("db") or new.args.get("catalog"):
            raise _refuse(
                "ALTER TABLE … RENAME TO takes a table name without schema; tables cannot move between schemas",
                "refusedStatement",
            )
        new_name = _ident_name(new.this)
        new.set("this", exp.to_identifier(new_name, quoted=True))
        renamed_to = TableRef(target.schema, new_name)
        writes.add(renamed_to)
        skip.add(id(new))
    geometry: dict[str, int] = {}
    serial: list[str] = []
    if isinstance(action, exp.ColumnDef):
        _record_column(action, geometry, serial)
    reads = _check(tree, ns, literal_starts, skip=skip, allowed_nested={id(action)})
    return Statement(
        kind="alter_table",
        sql=_generate(tree),
        reads=reads,
        writes=frozenset(writes),
        target=target,
        renamed_to=renamed_to,
        geometry_columns=geometry,
        serial_columns=serial,
        if_exists=bool(tree.args.get("exists")),
    )


def _explain(tokens: list[Token], sql: str, ns: Namespace) -> Statement:
    """``EXPLAIN [ANALYZE] <query>`` (sqlglot tokenizes EXPLAIN's rest as one string: re-tokenize it)."""
    if len(tokens) != 2 or tokens[1].token_type != TokenType.STRING:
        raise _refuse("syntax error: EXPLAIN needs a SELECT", "syntax")
    text = tokens[1].text
    rest = _split(text)
    if len(rest) != 1:
        raise _refuse("syntax error: EXPLAIN needs a SELECT", "syntax")
    query_tokens = rest[0]
    analyze = _leading_keyword(query_tokens) == "ANALYZE"
    if analyze:
        query_tokens = query_tokens[1:]
    if not query_tokens:
        raise _refuse("syntax error: EXPLAIN needs a SELECT", "syntax")
    query_start = (TokenType.SELECT, TokenType.WITH, TokenType.VALUES, TokenType.L_PAREN, TokenType.FROM)
    if query_tokens[0].token_type not in query_start or (
        query_tokens[0].token_type == TokenType.L_PAREN
        and len(query_tokens) > 1
        and query_tokens[1].token_type not in query_start
    ):
        raise _refuse(
            "EXPLAIN is allowed for SELECT queries only: EXPLAIN [ANALYZE] SELECT …", "refusedStatement"
        )
    tree = _parse_tokens(query_tokens, text)
    if not isinstance(tree, _QUERY_TYPES):
        raise _refuse(
            "EXPLAIN is allowed for SELECT queries only: EXPLAIN [ANALYZE] SELECT …", "refusedStatement"
        )
    tree = normalize_identifiers(tree, dialect="postgres")
    if _find_cartodbfy(tree):
        raise _cartodbfy_shape_error()
    literal_starts = {tok.start for tok in query_tokens if tok.token_type == TokenType.STRING}
    reads = _check(tree, ns, literal_starts)
    prefix = "EXPLAIN ANALYZE " if analyze else "EXPLAIN "
    return Statement(kind="explain", sql=prefix + _generate(tree), reads=reads)


# --------------------------------------------------------------------------------------------
# CDB_CartodbfyTable


def _find_cartodbfy(tree: exp.Expr) -> bool:
    return any(_function_name(node) == "cdb_cartodbfytable" for node in tree.find_all(exp.Func))


def _cartodbfy_shape_error() -> E.InvalidInput:
    return _refuse(
        "CDB_CartodbfyTable is supported only as SELECT CDB_CartodbfyTable(current_schema, 'table') "
        "or SELECT CDB_CartodbfyTable('table')",
        "cartodbfy",
    )


def _cartodbfy(tree: exp.Expr, ns: Namespace) -> Statement | None:
    """``SELECT CDB_CartodbfyTable([schema, ]'table')`` → a cartodbfy statement (None: not one)."""
    if not _find_cartodbfy(tree):
        return None
    if not isinstance(tree, exp.Select) or len(tree.expressions) != 1:
        raise _cartodbfy_shape_error()
    if any(tree.args.get(key) for key in tree.args if key != "expressions"):
        raise _cartodbfy_shape_error()
    call = tree.expressions[0].unalias()
    if not isinstance(call, exp.Anonymous) or _function_name(call) != "cdb_cartodbfytable":
        raise _cartodbfy_shape_error()
    args = list(call.expressions)
    if len(args) not in (1, 2) or not _is_string(args[-1]):
        raise _cartodbfy_shape_error()
    table = _string_table(args[-1].name)
    if len(args) == 2:
        if table.args.get("db"):
            raise _cartodbfy_shape_error()
        schema = _cartodbfy_schema(args[0])
        table.set("db", exp.to_identifier(schema, quoted=True))
    target = _target(table, ns, "CDB_CartodbfyTable")
    return Statement(kind="cartodbfy", sql="", writes=frozenset({target}), target=target)


def _cartodbfy_schema(arg: exp.Expr) -> str:
    if _is_current_schema(arg):
        return "public"
    if _is_string(arg):
        return arg.name.strip()
    raise _cartodbfy_shape_error()


def _string_table(text: str) -> exp.Table:
    """A regclass-style table name from a string (``'t'``, ``'"T"'``, ``'s.t'``)."""
    try:
        table = exp.to_table(text.strip(), dialect="postgres")
    except SqlglotError:
        raise _refuse(f"invalid table name {text!r}", "cartodbfy") from None
    if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
        raise _refuse(f"invalid table name {text!r}", "cartodbfy")
    return normalize_identifiers(table, dialect="postgres")


def _is_string(node: exp.Expr) -> bool:
    return isinstance(node, exp.Literal) and node.is_string


# --------------------------------------------------------------------------------------------
# COPY


def _copy(tree: exp.Expr, ns: Namespace, literal_starts: set[int]) -> list[Statement]:
    assert isinstance(tree, exp.Copy)
    from_stdin = bool(tree.args.get("kind"))
    files = tree.args.get("files") or []
    expected = "stdin" if from_stdin else "stdout"
    if (
        len(files) != 1
        or not isinstance(files[0], exp.Identifier)
        or files[0].quoted
        or files[0].name.lower() != expected
    ):
        raise _refuse(f"COPY to or from files is not allowed; {policy.COPY_HINT}", "copy")
    if tree.args.get("credentials") and tree.args["credentials"].args:
        raise _refuse(f"COPY credentials are not allowed; {policy.COPY_HINT}", "copy")
    options = _copy_options(tree.args.get("params") or [])
    source = tree.this
    columns: list[str] | None = None
    if isinstance(source, exp.Schema):
        columns = [_ident_name(col) for col in source.expressions]
        source = source.this
    if from_stdin:
        if not isinstance(source, exp.Table):
            raise _refuse("COPY … FROM STDIN needs a table", "copy")
        target = _target(source, ns, "COPY", literal_starts)
        return [
            Statement(
                kind="copy_from",
                sql="",
                writes=frozenset({target}),
                target=target,
                columns=columns,
                copy=options,
            )
        ]
    query = _copy_to_query(source, columns)
    statement = _query(query, ns, literal_starts)
    if statement.kind != "select":
        raise _cartodbfy_shape_error()
    return [Statement(kind="copy_to", sql=statement.sql, reads=statement.reads, copy=options)]


def _copy_to_query(source: exp.Expr, columns: list[str] | None) -> exp.Expr:
    if isinstance(source, exp.Subquery):
        query = source.this
        if not isinstance(query, _QUERY_TYPES):
            raise _refuse("COPY (…) TO STDOUT needs a SELECT", "copy")
        return query
    if isinstance(source, exp.Table):
        projection: list[exp.Expr] = (
            [exp.column(exp.to_identifier(col, quoted=True)) for col in columns] if columns else [exp.Star()]
        )
        return exp.Select(expressions=projection).from_(source)
    raise _refuse("COPY … TO STDOUT needs a table or a (SELECT …)", "copy")


_COPY_TRUE = {"true", "on", "1", "yes", "match"}
_COPY_FALSE = {"false", "off", "0", "no"}


def _copy_options(params: Iterable[exp.Expr]) -> CopyOptions:
    values: dict[str, object] = {}
    for param in params:
        if not isinstance(param, exp.CopyParameter):
            raise _refuse(f"unsupported COPY option {param.sql(dialect='postgres')!r}", "copy")
        name = param.name.upper()
        value = param.args.get("expression")
        if name in {"CSV", "BINARY", "TEXT"}:  # old syntax: WITH CSV [HEADER]
            values["format"] = name.lower()
            if value is not None:
                if _copy_text(value).upper() != "HEADER":
                    raise _refuse(f"unsupported COPY option {param.sql(dialect='postgres')!r}", "copy")
                values["header"] = True
        elif name == "FORMAT":
            values["format"] = _copy_text(value).lower()
        elif name == "HEADER":
            values["header"] = _copy_bool(value)
        elif name in {"DELIMITER", "NULL", "QUOTE", "ESCAPE", "ENCODING"}:
            if value is None:
                raise _refuse(f"COPY option {name} needs a value", "copy")
            values[name.lower()] = _copy_text(value)
        else:
            raise _refuse(
                f"unsupported COPY option {name}; use FORMAT, HEADER, DELIMITER, NULL, QUOTE, ESCAPE or ENCODING",
                "copy",
            )
    fmt = values.get("format", "text")
    if fmt == "binary":
        raise _refuse("COPY FORMAT binary is not supported; use FORMAT csv or text", "copy")
    if fmt not in {"text", "csv"}:
        raise _refuse(f"unsupported COPY format {fmt!r}; use csv or text", "copy")
    encoding = str(values.get("encoding", "utf-8")).lower()
    if encoding in {"utf8", "unicode"}:
        encoding = "utf-8"
    return CopyOptions(
        format=str(fmt),
        header=bool(values.get("header", False)),
        delimiter=_single_char(values, "delimiter"),
        null=values.get("null"),  # type: ignore[arg-type]
        quote=_single_char(values, "quote") or '"',
        escape=_single_char(values, "escape"),
        encoding=encoding,
    )


def _single_char(values: Mapping[str, object], key: str) -> str | None:
    value = values.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 1:
        raise _refuse(f"COPY {key} must be a single one-byte character", "copy")
    return value


def _copy_text(value: exp.Expr | None) -> str:
    if value is None:
        return ""
    if isinstance(value, exp.Boolean):
        return "true" if value.this else "false"
    return str(value.name)


def _copy_bool(value: exp.Expr | None) -> bool:
    if value is None:
        return True
    text = _copy_text(value).lower()
    if text in _COPY_TRUE:
        return True
    if text in _COPY_FALSE:
        return False
    raise _refuse(f"COPY HEADER must be true or false, not {text!r}", "copy")


# --------------------------------------------------------------------------------------------
# the tree walk: refusals, table resolution, translations


def _check(
    tree: exp.Expr,
    ns: Namespace,
    literal_starts: set[int],
    *,
    skip: set[int] | frozenset[int] = frozenset(),
    allowed_nested: set[int] | frozenset[int] = frozenset(),
) -> frozenset[TableRef]:
    """Check every node of a statement, resolve its tables and translate it; return the tables read.

    ``skip``: table nodes already resolved by the caller (write targets); ``allowed_nested``:
    statement-like nodes the caller has validated (an ALTER TABLE action).
    """
    nodes = list(tree.walk())
    reads: set[TableRef] = set()
    views: list[exp.Table] = []
    for node in nodes:
        if node is not tree and isinstance(node, _STATEMENT_NODES) and id(node) not in allowed_nested:
            raise _nested_statement(node)
        if isinstance(node, exp.Func):
            _check_function(node)
        elif isinstance(node, exp.Table) and id(node) not in skip:
            ref = _resolve_read(node, ns, literal_starts)
            if ref is not None:
                reads.add(ref)
            elif _is_information_schema(node):
                views.append(node)
        elif isinstance(node, exp.Column):
            _resolve_column(node, ns)
    _translate(nodes)
    if ns.information_schema is not None:
        for view in views:
            view.replace(_inline_view(view, ns.information_schema(view.name)))
    return frozenset(reads)


def _is_information_schema(table: exp.Table) -> bool:
    db = table.args.get("db")
    return (
        db is not None
        and _ident_name(db) == policy.INFORMATION_SCHEMA
        and table.name in policy.INFORMATION_SCHEMA_VIEWS
    )


def _inline_view(table: exp.Table, view: InformationView) -> exp.Expr:
    """``information_schema.<view> [AS a]`` → ``(SELECT … FROM (VALUES …)) AS a``: only the rows given.

    The caller's rows replace DuckDB's view, so a query sees exactly the tables its key may
    read, and the plan reads no system table function.
    """
    alias = table.alias or table.name
    names = [f"c{i}" for i in range(len(view.columns))]
    select = exp.Select(
        expressions=[
            exp.alias_(exp.cast(exp.column(c), exp.DataType.build(t, dialect="duckdb")), n, quoted=True)
            for c, (n, t) in zip(names, view.columns, strict=True)
        ]
    )
    if view.rows:
        values = exp.Values(
            expressions=[exp.tuple_(*(exp.convert(v) for v in row)) for row in view.rows],
            alias=exp.TableAlias(this=exp.to_identifier("v"), columns=[exp.to_identifier(n) for n in names]),
        )
        select = select.from_(values)
    else:
        select = exp.Select(
            expressions=[
                exp.alias_(exp.cast(exp.null(), exp.DataType.build(t, dialect="duckdb")), n, quoted=True)
                for n, t in view.columns
            ]
        ).where(exp.false())
    return exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(alias)))


def _nested_statement(node: exp.Expr) -> E.InvalidInput:
    if isinstance(node, exp.Into):
        return _refuse("SELECT … INTO is not supported; use CREATE TABLE … AS SELECT …", "refusedStatement")
    name = type(node).__name__.upper()
    return _refuse(
        f"{name} is not allowed inside another statement; send it as a statement of its own",
        "refusedStatement",
    )


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def _rendered_name(node: exp.Func) -> str | None:
    """The function name as it appears in the generated DuckDB SQL (None: not a call)."""
    try:
        rendered = node.sql(dialect="duckdb")
    except SqlglotError:
        return None
    match = _RENDERED_NAME.match(rendered)
    return match.group(1).lower() if match else None


def _is_denied(name: str) -> bool:
    return policy.is_denied_function(name)


def _in_table_position(node: exp.Expr) -> bool:
    parent = node.parent
    if isinstance(parent, exp.Table | exp.Lateral):
        return node.arg_key == "this"
    return isinstance(parent, exp.From | exp.Join)


def _check_function(node: exp.Func) -> None:
    """Refuse a denied function anywhere, and a table function that is not allow-listed.

    sqlglot's canonical name is checked here; the name DuckDB sees is checked by :func:`_recheck`
    on the generated SQL (rendering every call here would be quadratic on big statements).
    """
    name = _function_name(node)
    if _is_denied(name):
        raise _refuse(f"function {name}() is not allowed", "refusedFunction")
    if _in_table_position(node):
        rendered = _rendered_name(node)
        if rendered is not None and _is_denied(rendered):
            raise _refuse(f"function {rendered}() is not allowed", "refusedFunction")
        if rendered not in policy.TABLE_FUNCTIONS or _table_qualified(node):
            raise _refuse(
                f"table function {rendered or name}() is not allowed; "
                "the available ones are generate_series, range and unnest",
                "refusedFunction",
            )


def _table_qualified(node: exp.Expr) -> bool:
    parent = node.parent
    return isinstance(parent, exp.Table) and bool(parent.args.get("db") or parent.args.get("catalog"))


def _ident_name(node: exp.Expr | None) -> str:
    if isinstance(node, exp.Identifier):
        return str(node.this)
    if isinstance(node, exp.Column | exp.Table) and isinstance(node.this, exp.Identifier):
        return str(node.this.this)
    raise _refuse(f"invalid name {node.sql(dialect='postgres') if node else ''!r}", "syntax")


def _dotted(table: exp.Table) -> str:
    return ".".join(part.sql(dialect="postgres") for part in table.parts)


def _resolve_schema(ident: exp.Expr | None, ns: Namespace) -> str | None:
    """The lake schema an explicit schema part names (None: no schema part)."""
    if ident is None:
        return None
    name = _ident_name(ident)
    if name.lower() in ns.aliases:
        return ns.aliases[name.lower()]
    if name in ns.schemas:
        return name
    matches = [schema for schema in ns.schemas if schema.lower() == name.lower()]
    if len(matches) == 1:
        return matches[0]
    if name == ns.default_schema:
        return name
    raise _refuse(f'schema "{name}" does not exist', "unknownSchema")


def _check_table_node(table: exp.Table, literal_starts: set[int] | frozenset[int]) -> None:
    if table.args.get("catalog"):
        raise _refuse(
            f'cross-database references are not allowed: {_dotted(table)}; name tables as table or "bucket".table',
            "crossDatabase",
        )
    ident = table.this
    if isinstance(ident, exp.Func):
        return  # a table function: checked with the functions
    if not isinstance(ident, exp.Identifier):
        raise _refuse(f"unsupported table reference {table.sql(dialect='postgres')!r}", "refusedTable")
    if ident.meta.get("start") in literal_starts:
        raise _refuse(
            f"reading files is not allowed ('{ident.name}'); query tables, or load files with COPY … FROM STDIN",
            "refusedTable",
        )


def _target(
    table: exp.Expr, ns: Namespace, statement: str, literal_starts: set[int] | frozenset[int] = frozenset()
) -> TableRef:
    """Resolve a written table (never a CTE, never information_schema) and rewrite its node."""
    if not isinstance(table, exp.Table):
        raise _refuse(f"{statement} needs a table", "refusedTable")
    _check_table_node(table, literal_starts)
    if not isinstance(table.this, exp.Identifier):
        raise _refuse(f"{statement} needs a table, not a function", "refusedTable")
    db = table.args.get("db")
    if db is not None and _ident_name(db) == policy.INFORMATION_SCHEMA:
        raise _refuse("information_schema is read-only", "readOnly")
    schema = _resolve_schema(db, ns) or ns.default_schema
    return _rewrite(table, schema)


def _resolve_read(table: exp.Table, ns: Namespace, literal_starts: set[int]) -> TableRef | None:
    """Resolve a table that is read; None for CTEs, table functions and information_schema."""
    _check_table_node(table, literal_starts)
    if isinstance(table.this, exp.Func):
        if table.args.get("db"):
            raise _refuse("schema-qualified table functions are not allowed", "refusedFunction")
        return None
    db = table.args.get("db")
    if db is None and _is_cte(table):
        return None
    if db is not None and _ident_name(db) == policy.INFORMATION_SCHEMA:
        if table.name not in policy.INFORMATION_SCHEMA_VIEWS:
            raise _refuse(
                f'relation "information_schema.{table.name}" is not available; '
                "use information_schema.tables, columns or schemata",
                "refusedTable",
            )
        return None
    schema = _resolve_schema(db, ns) or ns.default_schema
    return _rewrite(table, schema)


def _rewrite(table: exp.Table, schema: str) -> TableRef:
    name = _ident_name(table.this)
    table.set("this", exp.to_identifier(name, quoted=True))
    table.set("db", exp.to_identifier(schema, quoted=True))
    table.set("catalog", None)
    return TableRef(schema, name)


def _resolve_column(column: exp.Column, ns: Namespace) -> None:
    """``schema.table.column``: resolve the schema like a table's; catalogs are refused."""
    if column.args.get("catalog"):
        raise _refuse(
            f"cross-database references are not allowed: {column.sql(dialect='postgres')}", "crossDatabase"
        )
    db = column.args.get("db")
    if db is None or not column.args.get("table"):
        return
    if _ident_name(db) == policy.INFORMATION_SCHEMA:
        return
    schema = _resolve_schema(db, ns)
    column.set("db", exp.to_identifier(schema, quoted=True))
    column.set("table", exp.to_identifier(_ident_name(column.args["table"]), quoted=True))


def _is_cte(table: exp.Table) -> bool:
    """Whether an unqualified table name is a CTE visible where it is used (PostgreSQL scoping)."""
    name = table.name
    child: exp.Expr = table
    node = table.parent
    while node is not None:
        if isinstance(node, exp.With):
            ctes = list(node.expressions)
            position = next((i for i, cte in enumerate(ctes) if cte is child), len(ctes))
            # DuckDB, like PostgreSQL, lets a recursive CTE see itself and the ones before it; a
            # later CTE's name there is a table (or a system view): never treat it as a CTE
            visible = ctes[: position + 1] if node.args.get("recursive") else ctes[:position]
            if any(cte.alias_or_name == name for cte in visible):
                return True
        else:
            with_ = node.args.get("with_")
            if (
                isinstance(with_, exp.With)
                and with_ is not child
                and any(cte.alias_or_name == name for cte in with_.expressions)
            ):
                return True
        child, node = node, node.parent
    return False


# translations


def _translate(nodes: list[exp.Expr]) -> None:
    for node in nodes:
        if isinstance(node, exp.Cast) and _is_geometry_type(node.to):
            node.replace(_geometry_call(node.this, node.to))
    for node in nodes:
        if isinstance(node, exp.DataType):
            _translate_type(node)
        elif isinstance(node, exp.CurrentVersion):
            _replace_keeping_name(node, exp.Literal.string(_versions()), "version")
        elif _is_current_schema(node):
            _replace_keeping_name(node, exp.Literal.string("public"), "current_schema")
        elif isinstance(node, exp.Func):
            _translate_function(node)
        elif isinstance(node, exp.TableAlias):
            _set_returning_alias(node)


def _replace_keeping_name(node: exp.Expr, value: exp.Expr, name: str) -> None:
    """Replace a function by a constant; as a bare select item it keeps PostgreSQL's column name."""
    if isinstance(node.parent, exp.Select) and node.arg_key == "expressions":
        node.replace(exp.alias_(value, name, quoted=True))
    else:
        node.replace(value)


def _is_current_schema(node: exp.Expr) -> bool:
    """``current_schema()`` or PostgreSQL's parenthesis-less ``current_schema``."""
    if isinstance(node, exp.CurrentSchema):
        return True
    return isinstance(node, exp.Column) and not node.table and node.name == "current_schema"


def _is_geometry_type(dtype: exp.Expr | None) -> bool:
    return isinstance(dtype, exp.DataType) and dtype.this in _GEOMETRY_TYPES


def _geometry_call(value: exp.Expr, dtype: exp.DataType) -> exp.Expr:
    args = [value]
    if any(isinstance(p.this, exp.Literal) for p in dtype.expressions if isinstance(p, exp.DataTypeParam)):
        args.append(exp.Literal.number(_declared_srid(dtype)))
    return exp.Anonymous(this=GEOMETRY_MACRO, expressions=args)


def _translate_type(node: exp.DataType) -> None:
    replacement = TYPE_RENAMES.get(node.this)
    if replacement is not None and node.parent is not None:
        node.replace(exp.DataType.build(replacement))


def _function_args(node: exp.Func) -> list[exp.Expr]:
    if isinstance(node, exp.Anonymous):
        return list(node.expressions)
    args: list[exp.Expr] = []
    for key in node.arg_types:
        value = node.args.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, exp.Expr):
                args.append(item)
    return args


def _translate_function(node: exp.Func) -> None:
    if isinstance(node, exp.Repeat | exp.Pad):
        _bound_value_size(node)
        return
    name = _function_name(node)
    if name == "st_point" or isinstance(node, exp.StPoint):
        return  # ST_MakePoint: sqlglot already emits ST_Point
    target = FUNCTION_RENAMES.get(name)
    if target is not None:
        node.replace(exp.Anonymous(this=target, expressions=_function_args(node)))


def _bound_value_size(node: exp.Repeat | exp.Pad) -> None:
    """``repeat``/``lpad``/``rpad`` → the sandbox's size-checked macros (``sandbox.VALUE_MACROS``).

    These make a large value out of a small one (``repeat('x', 2000000000)``), and DuckDB
    allocates string vectors outside its memory limit; the macros refuse a result over the
    sandbox's value limit before it is built.
    """
    if isinstance(node, exp.Repeat):
        node.replace(exp.Anonymous(this="pg_repeat", expressions=[node.this, node.args["times"]]))
        return
    fill = node.args.get("fill_pattern") or exp.Literal.string(" ")
    name = "pg_lpad" if node.args.get("is_left") else "pg_rpad"
    node.replace(exp.Anonymous(this=name, expressions=[node.this, node.expression, fill]))


def _set_returning_alias(alias: exp.TableAlias) -> None:
    """``generate_series(1,10) i`` → ``generate_series(1,10) AS i(i)`` (PostgreSQL's column name)."""
    if alias.columns or not alias.name:
        return
    source = alias.parent
    if isinstance(source, exp.Table) and isinstance(source.this, exp.Func):
        function = source.this
    elif isinstance(source, exp.Unnest) and len(source.expressions) == 1:
        function = source
    else:
        return
    if _rendered_name(function) in policy.TABLE_FUNCTIONS:
        alias.set("columns", [exp.to_identifier(alias.name, quoted=alias.this.quoted)])


# --------------------------------------------------------------------------------------------
# generation and the second check


def _generate(tree: exp.Expr) -> str:
    try:
        sql = tree.sql(
            dialect="duckdb", unsupported_level=sqlglot.ErrorLevel.RAISE, comments=False, copy=False
        )
    except SqlglotError as err:
        raise _refuse(f"unsupported SQL: {str(err).splitlines()[0]}", "unsupported") from None
    _recheck(sql)
    return sql


def _recheck(sql: str) -> None:
    """Parse the generated DuckDB SQL again and re-check its functions: defence in depth."""
    try:
        trees = sqlglot.parse(sql, read="duckdb")
    except SqlglotError as err:
        raise _refuse(f"unsupported SQL: {str(err).splitlines()[0]}", "unsupported") from None
    if len(trees) != 1 or trees[0] is None or isinstance(trees[0], exp.Command):
        raise _refuse("unsupported SQL: the statement could not be translated", "unsupported")
    for node in trees[0].walk():
        if isinstance(node, exp.Func):
            _check_function(node)
        elif isinstance(node, exp.Table) and node.args.get("catalog"):
            raise _refuse("unsupported SQL: the statement could not be translated", "unsupported")
