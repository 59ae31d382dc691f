"""`gongkai query "SQL" [--format table|csv|json]` and `gongkai query --list`: read the warehouse, never write it."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("query", help="run one read-only SQL query on the warehouse (or --list its tables and views)")
    p.add_argument("sql", nargs="?", help="one SELECT statement; '-' reads it from standard input")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--list", action="store_true", help="list the tables and views with what they hold")
    p.add_argument("--db", help="warehouse URL (default: GONGKAI_DB, else data/gongkai.duckdb)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gongkai.warehouse.query import (
        FORMATTERS,
        QueryRefused,
        QueryResult,
        WarehouseMissing,
        open_read_only,
        to_table,
    )

    if not args.list and not args.sql:
        print("gongkai query: give a SQL statement, or --list", file=sys.stderr)
        return 2
    sql = sys.stdin.read() if args.sql == "-" else args.sql
    try:
        with open_read_only(args.db) as reader:
            if args.list:
                result = QueryResult(["name", "kind", "description"], [tuple(r) for r in reader.relations()])
            else:
                result = reader.run(sql)
    except QueryRefused as exc:
        print(f"gongkai query: refused: {exc}; the warehouse is unchanged", file=sys.stderr)
        return 2
    except WarehouseMissing as exc:
        print(f"gongkai query: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a SQL error from the engine: show it, not a traceback
        print(f"gongkai query: {type(exc).__name__}: {str(exc).strip()}", file=sys.stderr)
        return 1
    text = to_table(result, max_width=200) if args.list and args.format == "table" else FORMATTERS[args.format](result)
    sys.stdout.write(text.rstrip("\n") + "\n")
    return 0
