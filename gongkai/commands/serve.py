"""`gongkai serve [--cron EXPR] [--timezone TZ]`: register the nightly deployment and run it on schedule."""

from __future__ import annotations

import argparse
from typing import Any

from gongkai import argtypes
from gongkai.settings import quiet_prefect


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="serve the nightly crawl on a cron schedule (default 02:00 Asia/Shanghai)")
    p.add_argument("--cron", type=argtypes.cron_expression, help='cron expression (default "0 2 * * *"; $GONGKAI_NIGHTLY_CRON)')
    p.add_argument("--timezone", type=argtypes.time_zone, help="time zone of the schedule (default Asia/Shanghai; $GONGKAI_NIGHTLY_TZ)")
    p.add_argument("--dry-run", action="store_true", help="print the deployment and its schedule, do not serve")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    quiet_prefect()
    from gongkai.flows.deploy import nightly_deployment, serve_nightly

    cron, timezone = args.cron or args.settings.nightly_cron, args.timezone or args.settings.nightly_tz
    deployment = nightly_deployment(cron, timezone)
    for schedule in deployment.schedules or []:
        shown = schedule.schedule  # not `cron`: serve_nightly below takes the expression, not Prefect's schedule object
        print(f"deployment {deployment.flow_name}/{deployment.name}: cron {shown.cron!r} in {shown.timezone}", flush=True)  # type: ignore[union-attr]
    if args.dry_run:
        return 0
    serve_nightly(cron, timezone)
    return 0
