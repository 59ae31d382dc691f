"""`gongkai nightly`: crawl every registry portal once; load new or changed reports."""

from __future__ import annotations

import argparse
import json
from typing import Any

from gongkai.commands.crawlcommon import add_crawl_options, check_portals, politeness, print_summary
from gongkai.commands.worker import add_shard_options, check_sharded, sharded_summary
from gongkai.settings import quiet_prefect


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("nightly", help="crawl every registry portal; load new or changed reports")
    add_crawl_options(p)
    add_shard_options(p)
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.set_defaults(func=run, check=lambda args: check_portals(args) or check_sharded(args))


def run(args: argparse.Namespace) -> int:
    quiet_prefect()
    from gongkai.flows import crawl
    from gongkai.flows.plain import run_flow

    if args.shards:  # split by host over the work pool's workers (flows/shards.py)
        summary = sharded_summary("nightly", args, politeness(args))
    else:
        summary = run_flow(crawl.nightly_flow, crawl.MAX_THREADS, agencies=args.agency, db_url=args.db, registry_file=args.registry,
                           demo_port=args.demo_port, politeness=politeness(args), settings=args.settings)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=1))
    else:
        print_summary(summary)
    return 1 if any(p["status"] in crawl.FAILED_PORTAL for p in summary["portals"].values()) else 0
