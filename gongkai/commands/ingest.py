"""`gongkai ingest PATH... [--agency NAME --year N] [--db URL]`: archive, extract and load files and folders."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from gongkai import argtypes, settings


def add_warehouse_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", help="warehouse: duckdb:///file.duckdb or postgresql://… (default: $GONGKAI_DB, else data/gongkai.duckdb)")
    p.add_argument("--archive", metavar="DIR", help="raw archive, a folder or s3://bucket/prefix (default: $GONGKAI_ARCHIVE, else data/archive)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON, with every document's outcome")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("ingest", help="archive, extract and load report files or folders into the warehouse")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, or folders searched recursively")
    p.add_argument("--agency", help="the agency of every file (default: read from each document)")
    p.add_argument("--year", type=argtypes.report_year, help="the year reported on (default: read from each document)")
    add_warehouse_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings.quiet_prefect()
    from pathlib import Path

    from gongkai.flows.ingest import ingest_paths, iter_files, own_paths

    own = own_paths(args.settings, args.db, args.archive)
    try:
        total = sum(1 for _ in iter_files(args.paths, args.settings.max_file_bytes, own))
    except FileNotFoundError as exc:
        print(f"gongkai: {exc}", file=sys.stderr)
        return 2
    folders = [Path(p).resolve() for p in args.paths if Path(p).is_dir()]
    for path in sorted(p for p in own if p.exists() and any(p.is_relative_to(f) for f in folders)):
        print(f"gongkai ingest: skipping {path} (gongkai's own data: warehouse, archive, caches)", file=sys.stderr)
    with progress_bar(total, "ingest"):
        summary = ingest_paths(
            [str(p) for p in args.paths], agency=args.agency, year=args.year, db_url=args.db, archive_location=args.archive,
            settings=args.settings,
        )
    print_summary(summary, args.json)
    return 1 if summary["counts"].get("failed") else 0


@contextmanager
def progress_bar(total: int | None, label: str) -> Iterator[None]:
    """A progress bar on stderr (when it is a terminal), advanced by each document's outcome."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from gongkai.flows.ingest import set_progress

    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), TextColumn("{task.description}"),
        transient=True, disable=not sys.stderr.isatty(),
    ) as progress:
        bar = progress.add_task("", total=total)
        advance: Callable[[Any], None] = lambda outcome: progress.update(bar, advance=1, description=outcome.name or "")  # noqa: E731
        set_progress(advance)
        try:
            yield
        finally:
            set_progress(None)


def print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        json.dump(summary, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
        return
    for doc in summary["documents"]:
        if doc["outcome"] in ("changed", "not_a_report", "unreadable", "failed"):
            detail = doc["reason"] or (f"{doc['agency']} {doc['year']} version {doc['version']}.{doc['revision']}" if doc["outcome"] == "changed" else "")
            print(f"{doc['outcome']:>12}  {doc['name']}  {detail}".rstrip())
        if doc["failing_checks"] and doc["outcome"] in ("new", "changed"):
            print(f"{'checks':>12}  {doc['name']}: {doc['failing_checks']} failing")
    c = summary["counts"]
    print(
        f"{sum(c.values())} documents in {summary['duration_s']:.1f}s: {c['new']} new, {c['unchanged']} unchanged, "
        f"{c['changed']} changed, {c['not_a_report']} not a report, {c['unreadable']} unreadable"
        + (f", {c['failed']} failed" if c.get("failed") else "")
        + f"; {summary['checks_failing']} checks failing (run {summary['run_id']})"
    )
