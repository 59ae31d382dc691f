"""Read-only access to the warehouse for researchers: one SELECT at a time, nothing written, bounded, ever.

Three locks, so that one slip does not open the warehouse or the server:
1. the statement is read by the engine's own parser and must be one plain SELECT calling only
   allow-listed functions (warehouse/sql_policy.py, warehouse/query_policy.toml);
2. the connection cannot write: DuckDB opened `read_only=True` with file-system access and extensions
   switched off and the configuration locked; PostgreSQL as a role that can only read (checked before the
   first query: warehouse/reader_role.py), in a READ ONLY transaction that is always rolled back;
3. limits on both engines: a deadline (PostgreSQL `statement_timeout` plus a watchdog that cancels the
   query; DuckDB's watchdog interrupts it), rows and bytes streamed and capped (server-side cursor on
   PostgreSQL), DuckDB's `memory_limit` and `threads`; `gongkai query` also caps its own process' memory.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import threading
import time
import tomllib
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from gongkai.warehouse.reader_role import WritableRole, check_reader_role
from gongkai.warehouse.sql_policy import QueryRefused, QuerySyntaxError, check_statement

__all__ = [
    "QueryLimits", "QueryRefused", "QueryResult", "QueryStopped", "QuerySyntaxError", "ReadOnlyWarehouse",
    "WarehouseMissing", "WritableRole", "check_read_only", "open_read_only",
]

CATALOG = Path(__file__).parent / "catalog.toml"
BATCH_BYTES = 4 * 2**20  # aim for fetches of about this size: few round trips, little memory
# PostgreSQL 14+: the server checks every second that the client is still there, and ends the query of one that is gone
# (kill -9, or a Ctrl-C whose cancel request psycopg gave up on after 5 s) instead of running it to statement_timeout
CLIENT_CHECK = "SET LOCAL client_connection_check_interval = 1000"


class WarehouseMissing(FileNotFoundError):
    pass


class QueryStopped(RuntimeError):
    """The query ran past its deadline, or was cancelled, and was stopped on the server; nothing was changed."""


@dataclass(frozen=True)
class QueryLimits:
    """How far one query may go. Rows and bytes cut the result short (said in QueryResult.stopped); time stops it."""

    timeout_s: float = 60.0
    max_rows: int = 100_000
    max_bytes: int = 256 * 2**20  # of values as text, roughly what the output will hold
    memory_limit: str = "2GB"  # DuckDB's buffer manager (sorts, joins, aggregates)
    threads: int = 2  # DuckDB worker threads: the machine is shared with the nightly run


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    stopped: str = ""  # why the rows end before the query's last row ('' when they are all there)


@dataclass
class RowStream:
    """The rows of a running query, fetched as they are iterated; `stopped` says why they ended early, if so."""

    columns: list[str]
    rows: Iterator[tuple[Any, ...]]
    stopped: str = ""
    _close: Callable[[], None] = field(default=lambda: None, repr=False)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return self.rows


def check_read_only(sql: str, dialect: str = "postgresql") -> str:
    """The statement without a trailing semicolon, or QueryRefused saying why it cannot run (PostgreSQL's
    parser; DuckDB statements are checked on their connection by ReadOnlyWarehouse.run)."""
    return check_statement(sql, dialect)


def _value_bytes(value: Any) -> int:
    if value is None:
        return 1
    if isinstance(value, str | bytes | bytearray | memoryview):
        return len(value)
    if isinstance(value, list | tuple | dict):  # DuckDB lists and structs: one value, many elements
        return 16 + 16 * len(value)
    return 16


class ReadOnlyWarehouse:
    """A connection to the warehouse that cannot change it."""

    def __init__(self, url: str, limits: QueryLimits | None = None, allow_writable_role: bool = False) -> None:
        self.url = url
        self.limits = limits or QueryLimits()
        self.allow_writable_role = allow_writable_role
        self.database_path = ""  # the DuckDB file
        self._role_checked = False
        self._timekeeper = _Timekeeper()
        if url.startswith(("postgresql://", "postgres://")):
            self.dialect = "postgresql"
            self._conn = _connect_postgres(url)
        else:
            self.dialect = "duckdb"
            self.database_path = _duckdb_path(url)
            self._conn = _connect_duckdb(self.database_path, self.limits)

    @property
    def connection(self) -> Any:
        """The read-only DB-API connection (for gongkai's own statements; use run() for researchers' SQL)."""
        return self._conn

    def __enter__(self) -> ReadOnlyWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._timekeeper.close()
        self._conn.close()

    def run(self, sql: str) -> QueryResult:
        """Run one reading statement (checked first) and return its rows, up to the limits."""
        with self.stream(sql) as stream:
            rows = list(stream)
        return QueryResult(stream.columns, rows, stream.stopped)

    @contextmanager
    def stream(self, sql: str) -> Iterator[RowStream]:
        """Run one reading statement; its rows are fetched as the stream is iterated. Leaving the block early
        (a closed pipe, Ctrl-C, an error) cancels the query on the server."""
        statement = check_statement(sql, self.dialect, self._conn if self.dialect == "duckdb" else None)
        if self.dialect == "postgresql" and not self.allow_writable_role and not self._role_checked:
            check_reader_role(self._conn)
            self._conn.rollback()
            self._role_checked = True
        opened = self._open_duckdb(statement) if self.dialect == "duckdb" else self._open_postgres(statement)
        stream, watchdog = opened
        try:
            yield stream
        finally:
            watchdog.cancel()
            stream._close()

    # --- the two engines ---------------------------------------------------------------------------------

    def _open_duckdb(self, statement: str) -> tuple[RowStream, _Watchdog]:
        import duckdb

        cursor = self._conn.cursor()  # its own handle: interrupt and close touch this query only
        watchdog = self._timekeeper.watch(self.limits.timeout_s, cursor.interrupt)
        try:
            cursor.execute(statement)
        except (duckdb.InterruptException, duckdb.Error) as exc:
            watchdog.cancel()
            cursor.close()
            raise _translate(exc, watchdog, self.limits) from None
        columns = [d[0] for d in cursor.description or []]
        stream = RowStream(columns, iter(()), _close=cursor.close)
        stream.rows = self._capped(stream, lambda n: cursor.fetchmany(n), watchdog, duckdb.Error)
        return stream, watchdog

    def _open_postgres(self, statement: str) -> tuple[RowStream, _Watchdog]:
        import psycopg

        conn = self._conn
        timeout_ms = max(1, int(self.limits.timeout_s * 1000))
        try:
            # statement_timeout bounds each FETCH (the watchdog bounds the whole); cursor_tuple_fraction = 1 plans
            # for the whole result, as a plain SELECT is planned, not for its first rows; strings are read as
            # pglast read them when it checked the statement (a server set to standard_conforming_strings = off
            # would read '\' differently). One round trip.
            settings = ("SET LOCAL standard_conforming_strings = on; "
                        f"SET LOCAL statement_timeout = {timeout_ms}; "
                        f"SET LOCAL idle_in_transaction_session_timeout = {timeout_ms + 60_000}; "
                        "SET LOCAL cursor_tuple_fraction = 1")
            if conn.info.server_version < 140000:
                conn.execute(settings)
            else:
                # last, behind a savepoint: a server that refuses it ("must be set to 0 on this platform": Windows, or
                # 14 off Linux; a managed service that fixes it) keeps the settings above and runs the query without it
                try:
                    conn.execute(f"{settings}; SAVEPOINT gongkai_client_check; {CLIENT_CHECK}; "
                                 "RELEASE SAVEPOINT gongkai_client_check")
                except psycopg.Error as refused:
                    try:  # (no savepoint: a setting above failed, that error is the one to tell)
                        conn.execute("ROLLBACK TO SAVEPOINT gongkai_client_check")
                    except psycopg.Error:
                        raise refused from None
        except psycopg.Error:
            conn.rollback()
            raise
        cancel = getattr(conn, "cancel_safe", conn.cancel)
        # The server's statement_timeout stops a long FETCH first; the watchdog, a moment later, bounds a query
        # of many FETCHes (a cancel that arrived after the FETCH ended could hit the next statement instead).
        watchdog = self._timekeeper.watch(self.limits.timeout_s + 1, cancel)
        # A server-side cursor: rows cross the wire as they are fetched, never all at once. Parameters (none;
        # so '%' is doubled) send it by the extended protocol, where the server itself refuses a second statement.
        cursor = conn.cursor(name="gongkai_query", scrollable=False, withhold=False)
        try:
            cursor.execute(statement.replace("%", "%%"), ())
        except psycopg.Error as exc:
            watchdog.cancel()
            _quietly(cursor.close)
            conn.rollback()
            raise _translate(exc, watchdog, self.limits) from None
        columns = [d.name for d in cursor.description or []]

        def close() -> None:
            # Between FETCHes the server computes nothing: closing the cursor ends the query. (A FETCH that is
            # running is cancelled by the deadline, or by psycopg on Ctrl-C; a cancel sent now could instead
            # reach the next statement.)
            _quietly(cursor.close)
            _quietly(conn.rollback)

        stream = RowStream(columns, iter(()), _close=close)
        stream.rows = self._capped(stream, cursor.fetchmany, watchdog, psycopg.Error)
        return stream, watchdog

    def _capped(
        self, stream: RowStream, fetch: Callable[[int], Sequence[Any]], watchdog: _Watchdog,
        errors: type[Exception] | tuple[type[Exception], ...],
    ) -> Iterator[tuple[Any, ...]]:
        """Rows in batches sized to about BATCH_BYTES, stopping at max_rows / max_bytes (said in stream.stopped)."""
        limits = self.limits
        rows = size = 0
        batch = 1  # then grown from the sizes seen: a first batch of huge rows must not arrive all at once
        while True:
            want = min(batch, limits.max_rows + 1 - rows)
            try:
                fetched = fetch(want)
            except errors as exc:
                raise _translate(exc, watchdog, limits) from None
            if not fetched:
                return
            batch_size = 0
            for row in fetched:
                if rows >= limits.max_rows:
                    stream.stopped = f"stopped after {limits.max_rows:,} rows (the row limit, --max-rows)"
                    return
                row_size = sum(_value_bytes(v) for v in row)
                if size + row_size > limits.max_bytes:
                    stream.stopped = f"stopped after {rows:,} rows: the next would pass {limits.max_bytes:,} bytes (--max-bytes)"
                    return
                rows += 1
                size += row_size
                batch_size += row_size
                yield tuple(row)
            batch = max(1, min(10_000, batch * 8, BATCH_BYTES * len(fetched) // max(1, batch_size)))

    # --- gongkai's own statements --------------------------------------------------------------------------

    def _read(self, sql: str) -> list[tuple[Any, ...]]:
        """gongkai's own catalog statements (fixed text): no role check, still read-only."""
        if self.dialect == "duckdb":
            return [tuple(r) for r in self._conn.execute(sql).fetchall()]
        try:
            return [tuple(r) for r in self._conn.execute(sql).fetchall()]
        finally:
            self._conn.rollback()

    def relations(self) -> list[tuple[str, str, str]]:
        """(name, 'table' | 'view', description) of every table and view, tables first."""
        catalog = load_catalog()
        found = self._read(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_schema = current_schema() ORDER BY table_type, table_name"
        )
        out = []
        for name, kind in found:
            entry = catalog["relations"].get(name, {})
            out.append((name, "view" if "VIEW" in str(kind).upper() else "table", entry.get("description", "")))
        return sorted(out, key=lambda r: (r[1] != "table", r[0]))

    def views_digest(self) -> str | None:
        try:
            value = self._read("SELECT digest FROM views_version")
        except Exception:
            return None
        return str(value[0][0]) if value else None


class _Watchdog:
    """One query's deadline: `stop` is called once when it passes, unless cancelled first; `fired` says if it was."""

    def __init__(self, deadline: float, stop: Callable[[], Any]) -> None:
        self.deadline = deadline
        self._stop = stop
        self._lock = threading.Lock()
        self.fired = False
        self.cancelled = False

    def cancel(self) -> None:
        """After this returns the deadline never fires (a firing under way is waited for)."""
        with self._lock:
            self.cancelled = True

    def fire(self) -> None:
        with self._lock:
            if self.cancelled:
                return
            self.fired = True
            _quietly(self._stop)


class _Timekeeper:
    """One thread per reader that fires the deadlines of its queries. Started when the reader opens, before
    `gongkai query` caps the process' memory: a thread started under the cap may fail to get its stack."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._watchdogs: list[_Watchdog] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="gongkai-query-deadline", daemon=True)
        self._thread.start()

    def watch(self, seconds: float, stop: Callable[[], Any]) -> _Watchdog:
        watchdog = _Watchdog(time.monotonic() + seconds, stop)
        with self._condition:
            self._watchdogs.append(watchdog)
            self._condition.notify()
        return watchdog

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._watchdogs = [w for w in self._watchdogs if not w.cancelled]
                if self._closed:
                    return
                now = time.monotonic()
                due = [w for w in self._watchdogs if w.deadline <= now]
                self._watchdogs = [w for w in self._watchdogs if w.deadline > now]
                if not due:
                    next_deadline = min((w.deadline for w in self._watchdogs), default=None)
                    self._condition.wait(None if next_deadline is None else next_deadline - now)
                    continue
            for watchdog in due:  # outside the condition: cancelling on the server may take a moment
                watchdog.fire()


def _translate(exc: Exception, watchdog: _Watchdog, limits: QueryLimits) -> Exception:
    """The engine's error, or QueryStopped when it was our deadline that stopped the query."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if watchdog.fired or "statement timeout" in text:
        return QueryStopped(f"stopped after {limits.timeout_s:g} s (the time limit, --timeout); nothing was changed")
    if "INTERRUPT" in text.upper() or "canceling statement due to user request" in text:
        return QueryStopped("cancelled; nothing was changed")
    return exc


def _quietly(action: Callable[[], Any]) -> None:
    try:
        action()
    except Exception:  # noqa: BLE001 - cleanup of a query that already failed or was stopped
        pass


def _duckdb_path(url: str) -> str:
    path = url.removeprefix("duckdb://") if url.startswith("duckdb://") else url
    if path in ("", "/:memory:", ":memory:"):
        raise WarehouseMissing("an in-memory DuckDB warehouse cannot be opened read-only: give a file")
    if not Path(path).exists():
        raise WarehouseMissing(f"no warehouse at {path}: run `gongkai ingest` or `gongkai demo` first, or set GONGKAI_DB")
    return path


def _connect_duckdb(path: str, limits: QueryLimits) -> Any:
    import duckdb

    config = {
        "enable_external_access": False,  # no files or URLs: read_csv('/etc/passwd'), COPY TO, ATTACH
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "python_enable_replacements": False,  # no scans of the calling program's variables
        "memory_limit": limits.memory_limit,
        "threads": str(limits.threads),
        "lock_configuration": True,  # last: nothing above can be SET back
    }
    return duckdb.connect(path, read_only=True, config=config)  # type: ignore[arg-type]


def _connect_postgres(url: str) -> Any:
    import psycopg

    conn = psycopg.connect(url, autocommit=True, application_name="gongkai query")
    conn.execute("SET default_transaction_read_only = on")
    conn.autocommit = False
    conn.read_only = True
    return conn


def open_read_only(url: str, limits: QueryLimits | None = None, allow_writable_role: bool = False) -> ReadOnlyWarehouse:
    """Open the warehouse read-only. Nothing is written, not even views that predate warehouse/views.sql:
    those are used as they are, with a warning on stderr (a writer, `gongkai ingest` or the nightly run,
    re-creates them).

    On PostgreSQL, run() refuses a role that could write unless `allow_writable_role` (gongkai's own fixed
    statements, as `gongkai status` runs, may use the writer's URL)."""
    from gongkai.warehouse.views import VIEWS_SQL, recorded_digest

    reader = ReadOnlyWarehouse(url, limits, allow_writable_role)
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
