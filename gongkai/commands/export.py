"""`gongkai export --format parquet|csv --out DIR`: tables and views as files, with a Frictionless datapackage.json."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("export", help="write the warehouse's tables and views as Parquet or CSV with datapackage.json")
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    p.add_argument("--out", type=Path, required=True, help="folder to write into (created if missing)")
    p.add_argument("--only", help="comma-separated tables/views to export (default: all exportable)")
    p.add_argument("--db", help="warehouse URL (default: GONGKAI_DB, else data/gongkai.duckdb)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gongkai.warehouse.export import export_warehouse
    from gongkai.warehouse.query import WarehouseMissing

    only = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else None
    try:
        package = export_warehouse(args.db or args.settings.database_url, args.out, args.format, only)
    except (WarehouseMissing, ValueError) as exc:
        print(f"gongkai export: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the engine's own error (a DuckDB file locked by a writer, a lost server): no traceback
        print(f"gongkai export: {type(exc).__name__}: {str(exc).strip()}", file=sys.stderr)
        return 1
    for resource in package["resources"]:
        print(f"  {resource['path']}: {len(resource['schema']['fields'])} columns — {resource['description']}")
    print(f"wrote {len(package['resources'])} files and datapackage.json to {args.out}")
    return 0
