"""`gongkai backfill --years 2008-2023 [--agency CODE ...]`: past years' reports, with a progress bar."""

from __future__ import annotations

import argparse
from typing import Any

from gongkai.commands.crawlcommon import add_crawl_options, check_portals, politeness, print_summary
from gongkai.commands.worker import add_shard_options, check_sharded, sharded_summary
from gongkai.settings import quiet_prefect

# The regulation (政府信息公开条例) took effect on 1 May 2008: the first annual reports are on 2008. Reports before
# 2019 carry the provincial 统计表 (template pre2019, table stats), read like the national tables.
FIRST_REPORT_YEAR = 2008


def parse_years(text: str) -> list[int]:
    """'2008-2023', '2019,2021' or '2020'."""
    years: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a year range: {part}") from None
        if not (first <= last <= 2100):
            raise argparse.ArgumentTypeError(f"not a year range: {part}")
        if first < FIRST_REPORT_YEAR:
            raise argparse.ArgumentTypeError(f"{part}: no annual reports before {FIRST_REPORT_YEAR} (the regulation took effect then)")
        years.update(range(first, last + 1))
    return sorted(years)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("backfill", help="crawl listings back to past years and load those reports")
    p.add_argument("--years", type=parse_years, required=True, help="e.g. 2008-2023 or 2019,2021 (from 2008)")
    add_crawl_options(p)
    add_shard_options(p)
    p.set_defaults(func=run, check=lambda args: check_portals(args) or check_sharded(args))


def run(args: argparse.Namespace) -> int:
    quiet_prefect()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gongkai.flows import crawl
    from gongkai.flows.plain import run_flow

    if args.shards:  # split by host over the work pool's workers (flows/shards.py); progress is in the Prefect UI
        summary = sharded_summary("backfill", args, politeness(args), years=args.years)
        print_summary(summary)
        return 1 if any(p["status"] in crawl.FAILED_PORTAL for p in summary["portals"].values()) else 0
    with Progress(TextColumn("backfill {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=True) as bar:
        task = bar.add_task(f"{args.years[0]}–{args.years[-1]}", total=0)

        def on_progress(event: str, n: int) -> None:
            if event == "submitted":
                bar.update(task, total=(bar.tasks[0].total or 0) + n)
            else:
                bar.advance(task, n)

        crawl.set_progress(on_progress)
        try:
            summary = run_flow(crawl.backfill_flow, crawl.MAX_THREADS, years=args.years, agencies=args.agency, db_url=args.db, registry_file=args.registry,
                                          demo_port=args.demo_port, politeness=politeness(args), settings=args.settings)
        finally:
            crawl.set_progress(None)
    print_summary(summary)
    return 1 if any(p["status"] in crawl.FAILED_PORTAL for p in summary["portals"].values()) else 0
