"""Which statements `gongkai query` runs: exactly one SELECT, calling only allow-listed functions and casts.

The statement is read by the engine's own parser, never by a hand scanner, so that what is checked is what
will run: PostgreSQL's (libpg_query, through pglast: quoted names, U&"…" escapes, E'' strings and dollar
quotes are resolved as the server resolves them) and DuckDB's (json_serialize_sql on the reading connection).
Anything that is not one plain SELECT (DDL, DML, SELECT INTO, FOR UPDATE, COPY, SET, a CTE that writes) is
refused, and so is any function or type missing from warehouse/query_policy.toml. A statement neither parser
can read is a syntax error, reported as the engine words it.

This is the first of three locks; the others are the connection (read-only role, read-only transaction,
DuckDB without file access) and the limits (time, rows, bytes, memory) in warehouse/query.py.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

POLICY = Path(__file__).parent / "query_policy.toml"
# Qualifiers a function may carry: the engine's built-ins live there, and nothing a user could create.
# DuckDB's query nodes that only read (a DELETE_QUERY_NODE in a CTE would write).
DUCKDB_READING_NODES = {"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"}
# How a reading statement may begin (anything else that PostgreSQL cannot parse is refused, not a syntax error).
READING_STARTS = {"SELECT", "WITH", "VALUES", "TABLE", "FROM", "("}
BUILTIN_SCHEMAS = {"postgresql": {"", "pg_catalog"}, "duckdb": {"", "main", "pg_catalog", "system"}}


class QueryRefused(ValueError):
    """The statement would write or is not a single reading statement; nothing was run."""


class QuerySyntaxError(ValueError):
    """Neither parser could read the statement (an error in it, not a refusal); nothing was run."""


@cache
def allowed(dialect: str) -> tuple[frozenset[str], frozenset[str]]:
    """(functions, types) the dialect's statements may use."""
    with POLICY.open("rb") as fh:
        policy = tomllib.load(fh)
    groups = policy["functions"]
    common = [name for key, names in groups.items() if key not in ("postgresql", "duckdb") for name in names]
    functions = frozenset(name.lower() for name in [*common, *groups[dialect]])
    types = frozenset(t.upper() if dialect == "duckdb" else t for t in policy["types"][dialect])
    return functions, types


def check_statement(sql: str, dialect: str, duckdb_connection: Any = None) -> str:
    """The statement to run (stripped, without a trailing ';'), or QueryRefused / QuerySyntaxError."""
    text = sql.strip()
    if not text or not text.rstrip(";").strip():
        raise QueryRefused("empty query")
    if dialect == "duckdb":
        _check_duckdb(text, duckdb_connection)
    else:
        _check_postgres(text)
    return _without_trailing_semicolon(text)


def _without_trailing_semicolon(text: str) -> str:
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


# --- PostgreSQL: libpg_query's parse tree -----------------------------------------------------------------

def _postgres_tree(text: str) -> list[dict[str, Any]]:
    from pglast.parser import ParseError, parse_sql_json

    try:
        return list(json.loads(parse_sql_json(text)).get("stmts", []))
    except ParseError as exc:
        first = _first_word(text)
        if first not in READING_STARTS:  # ATTACH, INSTALL, PRAGMA …: not PostgreSQL, and not reading either
            raise QueryRefused(f"gongkai query is read-only: a {first or 'non-SQL'} statement is not allowed (only SELECT)") from None
        raise QuerySyntaxError(f"syntax error: {exc}") from None


def _first_word(text: str) -> str:
    """The statement's first token, as PostgreSQL's scanner reads it (comments skipped)."""
    from pglast.parser import scan

    try:
        tokens = [t for t in scan(text) if not t.name.endswith("COMMENT")]
    except Exception:  # noqa: BLE001 - an unterminated string or comment: no first word to speak of
        return ""
    return text[tokens[0].start:tokens[0].end + 1].upper() if tokens else ""


def _check_postgres(text: str) -> None:
    statements = _postgres_tree(text)
    if not statements:
        raise QueryRefused("no SQL statement in the query (only comments)")
    if len(statements) != 1:
        raise QueryRefused(f"only one statement at a time ({len(statements)} given): remove the ';' between them")
    _check_postgres_node(statements[0]["stmt"])


def _check_postgres_node(stmt: dict[str, Any]) -> None:
    functions, types = allowed("postgresql")
    [(kind, _body)] = stmt.items()
    if kind != "SelectStmt":
        raise QueryRefused(f"gongkai query is read-only: {_statement_words(kind)} is not allowed (only SELECT)")
    for key, value in _walk(stmt):
        if key.endswith("Stmt") and key != "SelectStmt":  # a writing CTE: WITH x AS (DELETE … RETURNING *)
            raise QueryRefused(f"gongkai query is read-only: {_statement_words(key)} is not allowed (only SELECT)")
        if key == "intoClause":
            raise QueryRefused("gongkai query is read-only: SELECT INTO is not allowed (it creates a table)")
        if key == "lockingClause":
            raise QueryRefused("gongkai query is read-only: FOR UPDATE / FOR SHARE is not allowed (it locks rows)")
        if key in ("XmlExpr", "XmlSerialize"):
            raise QueryRefused("XML functions are not allowed in gongkai query")
        if key == "FuncCall":
            schema, name = _qualified(value["funcname"])
            if schema not in BUILTIN_SCHEMAS["postgresql"] or name not in functions:
                raise QueryRefused(f"function {_shown(schema, name)}() is not allowed in gongkai query")
        if key in ("TypeName", "typeName"):
            schema, name = _qualified(value.get("names", []))
            if schema not in BUILTIN_SCHEMAS["postgresql"] or name not in types:
                raise QueryRefused(f"type {_shown(schema, name)} is not allowed in gongkai query")


def _qualified(names: list[dict[str, Any]]) -> tuple[str, str]:
    parts = [str(part.get("String", {}).get("sval", "")) for part in names]
    return (".".join(parts[:-1]), parts[-1]) if parts else ("", "")


def _shown(schema: str, name: str) -> str:
    return f"{schema}.{name}" if schema else name


def _statement_words(kind: str) -> str:
    """'DeleteStmt' -> 'a DELETE statement'."""
    words = kind.removesuffix("Stmt")
    return f"a {words.upper()} statement" if words else "this statement"


def _walk(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """(key, value) of every mapping entry and list item (under its list's key) in a JSON tree; no cycles in JSON."""
    stack: list[tuple[str, Any]] = [(key, node)]
    while stack:
        key, node = stack.pop()
        if isinstance(node, dict):
            for child_key, child in node.items():
                yield child_key, child
                stack.append((child_key, child))
        elif isinstance(node, list):
            for child in node:
                yield key, child
                stack.append((key, child))


# --- DuckDB: its own parser, on the reading connection ----------------------------------------------------

def _check_duckdb(text: str, conn: Any) -> None:
    import duckdb

    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        _explain_unparsable(text, exc)
    if not statements:
        raise QueryRefused("no SQL statement in the query (only comments)")
    if len(statements) != 1:
        raise QueryRefused(f"only one statement at a time ({len(statements)} given): remove the ';' between them")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise QueryRefused(f"gongkai query is read-only: a {kind.name} statement is not allowed (only SELECT)")
    serialized = json.loads(conn.execute("SELECT json_serialize_sql(?)", [text]).fetchone()[0])
    if serialized.get("error"):
        raise QueryRefused(f"gongkai query reads only plain SELECT statements: {serialized.get('error_message', '')}")
    functions, types = allowed("duckdb")
    for _key, node in _walk(serialized["statements"]):
        if not isinstance(node, dict):
            continue
        kind = str(node.get("type", ""))
        if kind.endswith("_NODE") and kind not in DUCKDB_READING_NODES:
            raise QueryRefused(f"gongkai query is read-only: a {kind.removesuffix('_NODE').replace('_QUERY', '')} is not allowed (only SELECT)")
        if node.get("class") in ("FUNCTION", "WINDOW") or node.get("type") == "TABLE_FUNCTION":
            function = node.get("function", node)
            name = str(function.get("function_name", "")).lower()
            schema = str(function.get("schema", "") or function.get("catalog", "")).lower()
            if function.get("is_operator") and not name.replace("_", "a").isalnum():
                continue  # + - * / || ~~ (LIKE) …: the built-in operators
            if schema not in BUILTIN_SCHEMAS["duckdb"] or name not in functions:
                raise QueryRefused(f"function {_shown(schema, name)}() is not allowed in gongkai query")
        elif node.get("class") == "TYPE":
            name = str(node.get("type_name", "")).upper()
            if name not in types:
                raise QueryRefused(f"type {name} is not allowed in gongkai query")
        elif node.get("type") == "BASE_TABLE":
            table = str(node.get("table_name", ""))
            if any(mark in table for mark in ("/", "\\", ":", ".")):
                raise QueryRefused(f"{table!r} is a file or URL, not a warehouse table: gongkai query reads only the warehouse")


def _explain_unparsable(text: str, error: Exception) -> None:
    """DuckDB cannot read it: refuse what PostgreSQL's grammar recognises as a write (SELECT INTO, FOR UPDATE, a
    writing CTE), else report DuckDB's syntax error."""
    try:
        _check_postgres(text)
    except QueryRefused:
        raise
    except QuerySyntaxError:
        pass
    raise QuerySyntaxError(str(error).strip()) from None
