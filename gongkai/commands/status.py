"""`gongkai status`: last runs, coverage by year, and the reports that failed to extract and why."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gongkai import argtypes


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("status", help="last runs, coverage by year, reports that failed to extract")
    p.add_argument("--runs", type=argtypes.positive_int, default=5, help="how many of the last runs to show (default 5)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--db", help="warehouse URL (default: GONGKAI_DB, else data/gongkai.duckdb)")
    p.set_defaults(func=run)


def failed_before_opening(data_dir: Path, last: int) -> list[dict[str, Any]]:
    """The newest runs that could not open the warehouse (flows/crawl.py writes them beside the run summaries)."""
    records = []
    for path in sorted((data_dir / "runs").glob("failed-*.json"), reverse=True)[:last]:
        try:
            records.append(json.loads(path.read_text("utf-8")))
        except (OSError, ValueError):
            continue
    return records


def run(args: argparse.Namespace) -> int:
    from gongkai.readers import open_when_free
    from gongkai.warehouse.query import WarehouseMissing, open_read_only, plain, to_table
    from gongkai.warehouse.status import warehouse_status

    try:
        # gongkai's own fixed statements: the writer's URL will do (researchers' SQL needs a read-only role)
        with open_when_free("status", open_read_only, args.db or args.settings.database_url, allow_writable_role=True) as reader:
            status = warehouse_status(reader, args.runs)
    except WarehouseMissing as exc:
        from gongkai.commands.demo import demo_hint

        print(f"gongkai status: {exc}{demo_hint(args)}", file=sys.stderr)
        return 1
    except Exception as exc:  # the engine's own error (a DuckDB file locked by a writer, a lost server): no traceback
        print(f"gongkai status: {type(exc).__name__}: {str(exc).strip()}", file=sys.stderr)
        return 1
    sections = {"last runs": status.runs, "coverage by year": status.coverage_by_year,
                "not extracted (found, but no cells) and not reports": status.not_extracted,
                "failed to load, by reason (not loaded since)": status.failures}
    early = failed_before_opening(args.settings.data_dir, args.runs)
    if args.format == "json":
        payload = {
            "failed before opening the warehouse": early,
            "reports": status.reports, "cells": status.cells, "failing_checks": status.failing_checks,
            **{title: [dict(zip(r.columns, map(plain, row), strict=True)) for row in r.rows] for title, r in sections.items()},
        }
        print(json.dumps(payload, ensure_ascii=False, indent=1))
        return 0
    print(f"warehouse: {status.reports} agency-year reports, {status.cells} cells, {status.failing_checks} checks failing")
    if early:
        print("\nruns that failed before opening the warehouse (data/runs/failed-*.json):")
        for record in early:
            print(f"  {record.get('failed_at')} {record.get('kind')}: {record.get('error')}")
    for title, result in sections.items():
        print(f"\n{title}:")
        print(to_table(result) if result.rows else "(none)")
    return 0
