"""`gongkai demo`: start the local demo portal, crawl it nightly into a fresh DuckDB file, show the result."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from gongkai.settings import quiet_prefect

# The demo's faults need a client timeout shorter than the portal's slow response.
DEMO_POLITENESS = {"delay": 0.0, "concurrency": 4, "read_timeout": 2.0, "retries": 2, "backoff": 0.2}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("demo", help="crawl the local demo portal into a fresh DuckDB file and show what was loaded")
    p.add_argument("--keep-running", action="store_true", help="leave the demo portal running afterwards (Ctrl-C to stop)")
    p.add_argument("--portal-up", action="store_true", help="switch the demo's flaky portal on (it is down by default)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    quiet_prefect()
    from gongkai.crawler.demo_portal import DemoPortal
    from gongkai.flows.crawl import MAX_THREADS, nightly_flow
    from gongkai.flows.plain import run_flow
    from gongkai.warehouse import open_warehouse

    folder = args.settings.data_dir / "demo"
    shutil.rmtree(folder, ignore_errors=True)  # a fresh warehouse, archive and crawl state every time
    folder.mkdir(parents=True)
    db_url = demo_warehouse(args.settings)
    with DemoPortal(down=not args.portal_up) as demo:
        print(f"demo portal on {demo.base_url} (registry entries demo-*); warehouse {db_url}")
        summary = run_flow(nightly_flow, MAX_THREADS, db_url=db_url, archive_location=str(folder / "archive"), demo_port=demo.port,
                               state_file=str(folder / "crawl-state.json"), politeness=DEMO_POLITENESS, settings=args.settings)
        _print(summary, db_url)
        never = [r for r in demo.requests if r.path.startswith("/pingtan/private/") or r.host.startswith("localhost")]
        print(f"requests to the robots.txt-disallowed path or the foreign host: {len(never)}")
        if args.keep_running:
            from gongkai import stopping

            print("demo portal still running; Ctrl-C to stop", flush=True)
            try:
                stopping.requested.wait()  # Ctrl-C or SIGTERM (gongkai/stopping.py) ends the wait, not the process
            except KeyboardInterrupt:  # called by a program that installed no handler
                pass
            stopping.requested.clear()  # here a signal is the way to finish, not an interruption of the run
            print("demo portal stopped", flush=True)
    with open_warehouse(db_url) as warehouse:
        _print_failing_checks(warehouse)
    print(f"to look at it: export GONGKAI_DB={db_url}   (then gongkai status, gongkai query --list)")
    return 0


def demo_warehouse(settings: Any) -> str:
    return f"duckdb:///{settings.data_dir / 'demo' / 'gongkai-demo.duckdb'}"


def demo_hint(args: argparse.Namespace) -> str:
    """For a reader that found no warehouse where it looked by default: where `gongkai demo` left its one."""
    url = demo_warehouse(args.settings)
    if args.db or args.settings.db or not Path(url.removeprefix("duckdb:///")).exists():
        return ""
    return f"; the demo's warehouse is {url}: add --db {url} (or export GONGKAI_DB={url})"


def _print(summary: dict[str, Any], db_url: str) -> None:
    from gongkai.commands.crawlcommon import print_summary

    print_summary(summary, show_loaded=True)


def _print_failing_checks(warehouse: Any) -> None:
    rows = warehouse.db.query(
        "SELECT a.name, r.year, c.rule, c.target, c.expected, c.actual FROM checks c JOIN reports r USING (report_id) "
        "LEFT JOIN agencies a ON a.agency_id = r.agency_id WHERE c.status = 'fail' ORDER BY a.name, r.year, c.rule, c.target"
    )
    loaded = warehouse.db.query(
        "SELECT a.name, r.year, r.template, r.status, r.n_cells FROM reports r LEFT JOIN agencies a ON a.agency_id = r.agency_id "
        "ORDER BY r.report_id"
    )
    print("loaded into the warehouse:")
    for name, year, template, status, n_cells in loaded:
        print(f"  {name or '?'} {year or ''}: {status}, template {template or '-'}, {n_cells} cells")
    print(f"checks failing: {len(rows)}")
    for name, year, rule, target, expected, actual in rows:
        print(f"  {name} {year}: {rule} on {target}: expected {expected:g}, printed {actual:g}")
