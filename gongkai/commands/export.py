"""`gongkai export --format parquet|csv|sqlite --out DIR`: tables and views as files, with a Frictionless
datapackage.json (Parquet, CSV) or gongkai.sqlite with a Datasette metadata.json."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export", help="write the warehouse's tables and views as Parquet or CSV with datapackage.json, or as SQLite for Datasette"
    )
    p.add_argument("--format", choices=["parquet", "csv", "sqlite"], default="parquet")
    p.add_argument("--out", type=Path, required=True, help="folder to write into (created if missing)")
    p.add_argument("--only", help="comma-separated tables/views to export (default: all exportable)")
    p.add_argument("--csv-bom", action="store_true", help="CSV only: start each file with a UTF-8 BOM (for Excel)")
    p.add_argument("--db", help="warehouse URL (default: GONGKAI_DB, else data/gongkai.duckdb)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gongkai.warehouse.export import SQLITE_NAME, export_warehouse
    from gongkai.warehouse.query import WarehouseMissing

    if args.csv_bom and args.format != "csv":
        print("gongkai export: --csv-bom applies to --format csv only", file=sys.stderr)
        return 2
    only = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else None
    try:
        package = export_warehouse(args.db or args.settings.database_url, args.out, args.format, only, csv_bom=args.csv_bom)
    except (WarehouseMissing, ValueError) as exc:
        print(f"gongkai export: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the engine's own error (a DuckDB file locked by a writer, a lost server): no traceback
        print(f"gongkai export: {type(exc).__name__}: {str(exc).strip()}", file=sys.stderr)
        return 1
    for resource in package["resources"]:
        print(f"  {resource['name']}: {len(resource['schema']['fields'])} columns — {resource['description']}")
    if args.format == "sqlite":
        print(f"wrote {len(package['resources'])} tables to {args.out / SQLITE_NAME} and metadata.json; browse with:")
        print(f"  datasette {args.out / SQLITE_NAME} -m {args.out / 'metadata.json'}")
    else:
        print(f"wrote {len(package['resources'])} files and datapackage.json to {args.out}")
    return 0
