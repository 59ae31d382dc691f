"""Read-only access to the warehouse for researchers: one SELECT at a time, nothing written, ever.

Three layers, so that one slip does not open the warehouse to writes:
1. the statement is checked before it reaches the database: a single statement that reads
   (SELECT / WITH / VALUES / TABLE / EXPLAIN / DESCRIBE / SHOW / SUMMARIZE / FROM …) with no
   writing keyword or server-side side-effect function anywhere outside strings and comments;
   for DuckDB, its own parser must also classify it as one SELECT or EXPLAIN;
2. the connection cannot write: DuckDB opened `read_only=True` with file-system access and
   extensions switched off (no COPY TO, ATTACH, read_csv of other files, INSTALL/LOAD) and the
   configuration locked; PostgreSQL in a READ ONLY transaction that is always rolled back;
3. for a shared PostgreSQL warehouse, give researchers a role with SELECT only (docs/research.md).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
import tomllib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

CATALOG = Path(__file__).parent / "catalog.toml"
READING_STARTS = {"SELECT", "WITH", "VALUES", "TABLE", "EXPLAIN", "DESCRIBE", "SHOW", "SUMMARIZE", "FROM"}
# Keywords that write, change the session or reach outside the warehouse (whole words, any position).
WRITING_WORDS = {
    "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "DROP", "CREATE", "ALTER", "TRUNCATE", "ATTACH", "DETACH",
    "COPY", "INSTALL", "LOAD", "PRAGMA", "SET", "RESET", "GRANT", "REVOKE", "VACUUM", "ANALYZE", "CHECKPOINT",
    "CALL", "EXPORT", "IMPORT", "INTO", "BEGIN", "COMMIT", "ROLLBACK", "ABORT", "SAVEPOINT", "LOCK", "DO",
    "EXECUTE", "PREPARE", "DEALLOCATE", "LISTEN", "NOTIFY", "UNLISTEN", "REFRESH", "REINDEX", "CLUSTER",
    "DISCARD", "SECURITY", "COMMENT", "USE",
}
# Functions with effects outside the query (PostgreSQL server files, other sessions, sequences, settings).
WRITING_FUNCTIONS = {
    "lo_import", "lo_export", "lo_unlink", "lo_create", "lo_put", "lo_from_bytea", "pg_terminate_backend",
    "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_promote", "pg_switch_wal",
    "pg_create_restore_point", "pg_file_write", "pg_file_rename", "pg_file_unlink", "pg_read_file",
    "pg_read_binary_file", "pg_ls_dir", "dblink", "dblink_exec", "dblink_connect", "nextval", "setval",
    "set_config", "pg_advisory_lock", "pg_advisory_xact_lock", "pg_notify", "txid_current", "pg_sleep",
    "query_to_xml", "read_csv", "read_csv_auto", "read_parquet", "read_json", "read_json_auto", "read_text",
    "read_blob", "glob", "sniff_csv", "query", "query_table", "query_to_xml_and_xmlschema", "cursor_to_xml",
}
_TOKEN = re.compile(
    r"""(?P<comment>--[^\n]*|/\*.*?\*/)
      | (?P<string>[Ee]'(?:[^'\\]|''|\\.)*'|[BbXxNnUu]?'(?:[^']|'')*'|\$(?P<tag>[A-Za-z_]*)\$.*?\$(?P=tag)\$)
      | (?P<ident>"(?:[^"]|"")*")
      | (?P<word>[A-Za-z_][A-Za-z_0-9$]*)
      | (?P<semicolon>;)
      | (?P<other>.)""",
    re.S | re.X,
)

_CALL = re.compile(r"([A-Za-z_][A-Za-z_0-9$]*)\s*\(")
_PLAIN_NAME = re.compile(r"[a-z_][a-z_0-9$]*")


class QueryRefused(ValueError):
    """The statement would write or is not a single reading statement; nothing was run."""


class WarehouseMissing(FileNotFoundError):
    pass


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def _scan(sql: str) -> tuple[list[str], list[int], str]:
    """Words outside strings, comments and quoted names; where the semicolons fall (as word counts); the
    statement with strings and comments blanked out and quoted names unquoted (lower-cased, as DuckDB resolves
    them), so that `"pg_read_file"(…)` is seen as the call it is."""
    words: list[str] = []
    semicolons: list[int] = []
    bare: list[str] = []
    for match in _TOKEN.finditer(sql):
        if match.group("word"):
            words.append(match.group("word"))
            bare.append(match.group("word"))
        elif match.group("semicolon"):
            semicolons.append(len(words))
            bare.append(";")
        elif match.group("other"):
            bare.append(match.group("other"))
        elif match.group("ident"):
            name = match.group("ident")[1:-1].replace('""', '"').lower()
            bare.append(name if _PLAIN_NAME.fullmatch(name) else " ")
        else:
            bare.append(" ")
    return words, semicolons, "".join(bare)


def check_read_only(sql: str) -> str:
    """The statement without a trailing semicolon, or QueryRefused saying why it cannot run."""
    text = sql.strip()
    if not text:
        raise QueryRefused("empty query")
    words, semicolons, bare = _scan(text)
    if not words:
        raise QueryRefused("no SQL statement in the query")
    if any(position < len(words) for position in semicolons):
        raise QueryRefused("only one statement at a time: remove the ';' between statements")
    first = words[0].upper()
    if first not in READING_STARTS:
        raise QueryRefused(f"gongkai query is read-only: {first} is not allowed (only SELECT-style statements)")
    for word in words:
        if word.upper() in WRITING_WORDS:
            raise QueryRefused(f"gongkai query is read-only: {word.upper()} is not allowed")
    for call in _CALL.finditer(bare):
        if call.group(1).lower() in WRITING_FUNCTIONS:
            raise QueryRefused(f"gongkai query is read-only: function {call.group(1).lower()}() is not allowed")
    return text.rstrip().rstrip(";").rstrip()


def _check_duckdb_statement(sql: str) -> None:
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error:
        return  # a syntax error: running it (read-only) reports it where it is
    if len(statements) != 1:
        raise QueryRefused("only one statement at a time")
    kind = statements[0].type
    if kind not in (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN):
        raise QueryRefused(f"gongkai query is read-only: a {kind.name} statement is not allowed")


class ReadOnlyWarehouse:
    """A connection to the warehouse that cannot change it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.database_path = ""  # the DuckDB file
        if url.startswith(("postgresql://", "postgres://")):
            self.dialect = "postgresql"
            self._conn = _connect_postgres(url)
        else:
            self.dialect = "duckdb"
            self.database_path = _duckdb_path(url)
            self._conn = _connect_duckdb(self.database_path)

    @property
    def connection(self) -> Any:
        """The read-only DB-API connection (for tools that stream rows; use run() for user SQL)."""
        return self._conn

    def __enter__(self) -> ReadOnlyWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def run(self, sql: str) -> QueryResult:
        """Run one reading statement (checked first) and return all its rows."""
        statement = check_read_only(sql)
        if self.dialect == "duckdb":
            _check_duckdb_statement(statement)
            cursor = self._conn.execute(statement)
            columns = [d[0] for d in cursor.description or []]
            return QueryResult(columns, [tuple(row) for row in cursor.fetchall()])
        return self._run_postgres(statement)

    def _run_postgres(self, statement: str) -> QueryResult:
        with self._conn.cursor() as cursor:
            try:
                # Parameters (none; so '%' is escaped) force the extended protocol, where the server itself
                # refuses a second statement.
                cursor.execute(statement.replace("%", "%%"), (), prepare=False)
                columns = [d.name for d in cursor.description or []]
                rows = [tuple(row) for row in cursor.fetchall()] if cursor.description else []
            finally:
                self._conn.rollback()
        return QueryResult(columns, rows)

    def relations(self) -> list[tuple[str, str, str]]:
        """(name, 'table' | 'view', description) of every table and view, tables first."""
        catalog = load_catalog()
        found = self.run(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_schema = current_schema() ORDER BY table_type, table_name"
        ).rows
        out = []
        for name, kind in found:
            entry = catalog["relations"].get(name, {})
            out.append((name, "view" if "VIEW" in str(kind).upper() else "table", entry.get("description", "")))
        return sorted(out, key=lambda r: (r[1] != "table", r[0]))

    def views_digest(self) -> str | None:
        try:
            value = self.run("SELECT digest FROM views_version").rows
        except Exception:
            return None
        return str(value[0][0]) if value else None


def _duckdb_path(url: str) -> str:
    path = url.removeprefix("duckdb://") if url.startswith("duckdb://") else url
    if path in ("", "/:memory:", ":memory:"):
        raise WarehouseMissing("an in-memory DuckDB warehouse cannot be opened read-only: give a file")
    if not Path(path).exists():
        raise WarehouseMissing(f"no warehouse at {path}: run `gongkai ingest` or `gongkai demo` first, or set GONGKAI_DB")
    return path


def _connect_duckdb(path: str) -> Any:
    import duckdb

    config = {
        "enable_external_access": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "lock_configuration": True,
    }
    return duckdb.connect(path, read_only=True, config=config)  # type: ignore[arg-type]


def _connect_postgres(url: str) -> Any:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET default_transaction_read_only = on")
    conn.autocommit = False
    conn.read_only = True
    return conn


def open_read_only(url: str | None = None) -> ReadOnlyWarehouse:
    """Open the warehouse read-only. Nothing is written, not even views that predate warehouse/views.sql:
    those are used as they are, with a warning on stderr (a writer, `gongkai ingest` or the nightly run,
    re-creates them)."""
    from gongkai.warehouse.views import VIEWS_SQL, recorded_digest

    if url is None:
        from gongkai.settings import database_url

        url = database_url()
    reader = ReadOnlyWarehouse(url)
    if reader.views_digest() != recorded_digest(VIEWS_SQL.read_text(encoding="utf-8")):
        print(
            "gongkai: warning: the warehouse's views come from another version of gongkai; results may differ from "
            "this version's documentation. Run `gongkai ingest` or the nightly run with this version to refresh them.",
            file=sys.stderr,
        )
    return reader


def load_catalog() -> dict[str, Any]:
    with CATALOG.open("rb") as fh:
        return tomllib.load(fh)


# --- output formats ------------------------------------------------------------------------------

def plain(value: Any) -> Any:
    """A JSON/CSV-friendly value: whole floats as integers (counts are stored as doubles), times as ISO text."""
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        return value
    if isinstance(value, Decimal):
        return plain(float(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def to_csv(result: QueryResult) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.columns)
    writer.writerows([["" if v is None else plain(v) for v in row] for row in result.rows])
    return buffer.getvalue()


def to_json(result: QueryResult) -> str:
    records = [dict(zip(result.columns, [plain(v) for v in row], strict=True)) for row in result.rows]
    return json.dumps(records, ensure_ascii=False, indent=1)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _cell_text(value: Any) -> str:
    value = plain(value)
    if value is None:
        return "·"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1 else f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def to_table(result: QueryResult, max_width: int = 60) -> str:
    """Aligned columns (CJK counted double width), numbers right-aligned, long text cut."""
    texts = [[_cell_text(v) for v in row] for row in result.rows]
    texts = [[t if _width(t) <= max_width else t[: max_width - 1] + "…" for t in row] for row in texts]
    widths = [max([_width(c)] + [_width(row[i]) for row in texts]) for i, c in enumerate(result.columns)]
    numeric = [all(isinstance(plain(row[i]), int | float) or row[i] is None for row in result.rows) for i in range(len(widths))]

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            pad = " " * (widths[i] - _width(cell))
            parts.append(pad + cell if numeric[i] else cell + pad)
        return "  ".join(parts).rstrip()

    out = [line(result.columns), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in texts)
    out.append(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")
    return "\n".join(out)


FORMATTERS = {"table": to_table, "csv": to_csv, "json": to_json}
