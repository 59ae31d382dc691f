"""`gongkai query "SQL" [--format table|csv|json]` and `gongkai query --list`: read the warehouse, never write it.

Rows are streamed (csv, json) as the server sends them, up to --max-rows / --max-bytes, within --timeout
seconds; the process' own memory is capped (--max-memory) while the query runs. On PostgreSQL the
connection's role must be read-only (`--reader-role-sql` prints how to create one) unless
--allow-writable-role. Exit status: 0 rows printed, 1 error, 2 refused, 3 rows cut short at a limit, 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CUT_SHORT = 3


def register(subparsers: Any) -> None:
    from gongkai import argtypes
    from gongkai.warehouse.query import QueryLimits

    defaults = QueryLimits()
    p = subparsers.add_parser("query", help="run one read-only SQL query on the warehouse (or --list its tables and views)")
    p.add_argument("sql", nargs="?", help="one SELECT statement; '-' reads it from standard input")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--list", action="store_true", help="list the tables and views with what they hold")
    p.add_argument("--db", help="warehouse URL (default: GONGKAI_DB, else data/gongkai.duckdb)")
    p.add_argument("--timeout", type=argtypes.positive_float, default=defaults.timeout_s, help="seconds the query may take (default %(default)s)")
    p.add_argument("--max-rows", type=argtypes.positive_int, default=defaults.max_rows, help="rows printed at most (default %(default)s)")
    p.add_argument("--max-bytes", type=argtypes.positive_int, default=defaults.max_bytes, help="bytes of values printed at most (default %(default)s)")
    p.add_argument("--max-memory", type=argtypes.non_negative_int, default=3072, metavar="MB",
                   help="memory this process may add while the query runs (default %(default)s MB; 0: no cap)")
    p.add_argument("--allow-writable-role", action="store_true",
                   help="PostgreSQL: run even if the role could write or is a superuser (still in a READ ONLY transaction)")
    p.add_argument("--reader-role-sql", nargs="?", const="gongkai_reader", metavar="ROLE",
                   help="print the SQL that creates a read-only PostgreSQL role for this warehouse (connect with --db as its owner)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gongkai.readers import WarehouseBusy, open_when_free
    from gongkai.warehouse.query import (
        QueryLimits,
        QueryRefused,
        QueryResult,
        QueryStopped,
        QuerySyntaxError,
        WarehouseMissing,
        WritableRole,
        open_read_only,
        to_table,
    )

    if args.reader_role_sql:
        return _print_reader_role_sql(args)
    if not args.list and not args.sql:
        print("gongkai query: give a SQL statement, or --list", file=sys.stderr)
        return 2
    sql = sys.stdin.read() if args.sql == "-" else args.sql
    limits = QueryLimits(timeout_s=args.timeout, max_rows=args.max_rows, max_bytes=args.max_bytes)
    stopped = ""
    try:
        # the reader first (its threads, DuckDB's workers), then the cap on what the query may add
        with open_when_free("query", open_read_only, args.db or args.settings.database_url, limits, args.allow_writable_role) as reader, \
                memory_cap(args.max_memory):
            if args.list:
                result = QueryResult(["name", "kind", "description"], [tuple(r) for r in reader.relations()])
                text = to_table(result, max_width=200) if args.format == "table" else _format(result, args.format)
                sys.stdout.write(text.rstrip("\n") + "\n")
                return 0
            with reader.stream(sql) as stream:
                if args.format == "table":
                    rows = list(stream)
                    sys.stdout.write(to_table(QueryResult(stream.columns, rows, stream.stopped)) + "\n")
                else:
                    _write_streaming(stream.columns, iter(stream), args.format)
                stopped = stream.stopped
            sys.stdout.flush()
    except QueryRefused as exc:
        print(f"gongkai query: refused: {exc}; the warehouse is unchanged", file=sys.stderr)
        return 2
    except WritableRole as exc:
        print(f"gongkai query: refused: {exc}", file=sys.stderr)
        return 2
    except (QuerySyntaxError, QueryStopped) as exc:
        print(f"gongkai query: {exc}", file=sys.stderr)
        return 1
    except WarehouseBusy as exc:
        print(f"gongkai query: {exc}", file=sys.stderr)
        return 1
    except WarehouseMissing as exc:
        from gongkai.commands.demo import demo_hint

        print(f"gongkai query: {exc}{demo_hint(args)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: the query was cancelled on the server on the way out
        print("gongkai query: interrupted; the query was cancelled and nothing was changed", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (`| head`): the query was cancelled, not an error
        _silence_stdout()
        return 0
    except MemoryError:
        print(f"gongkai query: out of memory (the cap is {args.max_memory} MB, --max-memory); nothing was changed", file=sys.stderr)
        return 1
    except Exception as exc:  # a SQL error from the engine: show it, not a traceback
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"gongkai query: {type(exc).__name__}: {text}", file=sys.stderr)
        return 1
    if stopped:
        print(f"gongkai query: {stopped}; the output is incomplete", file=sys.stderr)
        return CUT_SHORT
    return 0


def _format(result: Any, fmt: str) -> str:
    from gongkai.warehouse.query import FORMATTERS

    return str(FORMATTERS[fmt](result)).rstrip("\n") + "\n"


def _write_streaming(columns: list[str], rows: Iterator[tuple[Any, ...]], fmt: str) -> None:
    """CSV and JSON as the rows arrive: the output never holds more than one row in memory."""
    import csv

    from gongkai.warehouse.query import plain

    out = sys.stdout
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if v is None else plain(v) for v in row])
        return
    out.write("[")
    for position, row in enumerate(rows):
        record = dict(zip(columns, [plain(v) for v in row], strict=True))
        out.write(("," if position else "") + "\n " + json.dumps(record, ensure_ascii=False))
    out.write("\n]\n")


@contextmanager
def memory_cap(megabytes: int) -> Iterator[None]:
    """While the query runs, this process may grow by at most `megabytes` (RLIMIT_AS): a value the engine builds
    outside its own memory accounting (DuckDB's repeat('x', 3e9)) fails as out of memory instead of taking the
    machine. The previous limit is restored afterwards (gongkai query may run inside a longer process)."""
    try:
        import resource

        with open("/proc/self/statm", encoding="ascii") as fh:
            current = int(fh.read().split()[0]) * resource.getpagesize()
    except (ImportError, OSError, ValueError):  # not Linux: DuckDB's memory_limit and the caps still hold
        current = 0
    if megabytes <= 0 or not current:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = current + megabytes * 2**20
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY:
        wanted = min(wanted, soft)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _silence_stdout() -> None:
    """After a broken pipe, flushing stdout at exit would raise again: point it at /dev/null."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _print_reader_role_sql(args: argparse.Namespace) -> int:
    from gongkai.warehouse.reader_role import reader_role_sql

    url = args.db or args.settings.database_url
    if not url.startswith(("postgresql://", "postgres://")):
        print("gongkai query: --reader-role-sql is for a PostgreSQL warehouse (DuckDB is opened read-only anyway)", file=sys.stderr)
        return 2
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True) as conn:
            print(reader_role_sql(conn, args.reader_role_sql))
    except psycopg.Error as exc:
        print(f"gongkai query: {type(exc).__name__}: {str(exc).strip()}", file=sys.stderr)
        return 1
    return 0
