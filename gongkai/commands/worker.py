"""`gongkai worker [--pool NAME] [--limit N]`: one Prefect process worker for sharded crawls (`nightly --shards N`).

It checks what a worker needs before joining the pool (a Prefect server, a PostgreSQL warehouse every worker shares),
then becomes `prefect worker start --pool NAME --type process` (the same process: a supervisor's stop reaches Prefect's
worker directly). Each shard runs in a subprocess of it, with this environment: GONGKAI_DB, GONGKAI_ARCHIVE, the
GONGKAI_CRAWL_* limits.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from gongkai import argtypes

DEFAULT_LIMIT = 1  # shards at once per worker: one shard already crawls its hosts side by side


def add_shard_options(p: argparse.ArgumentParser) -> None:
    """The flags of a sharded run (nightly, backfill, reprocess)."""
    from gongkai.flows.shards import DEFAULT_POOL

    p.add_argument("--shards", type=argtypes.positive_int, metavar="N",
                   help="split the portals into N shards by host, each a flow run on a Prefect work pool's workers "
                        "(needs PREFECT_API_URL, a PostgreSQL warehouse and `gongkai worker` running)")
    p.add_argument("--pool", default=DEFAULT_POOL, metavar="NAME", help=f"work pool of the shards (default {DEFAULT_POOL})")
    p.add_argument("--shard-deadline", type=argtypes.positive_float, metavar="S",
                   help="seconds to wait for the shards before cancelling the rest (default 2 × GONGKAI_CRAWL_PORTAL_DEADLINE + 600)")


def sharded_summary(kind: str, args: argparse.Namespace, politeness: dict[str, Any], years: list[int] | None = None) -> dict[str, Any]:
    from gongkai.flows.shards import run_sharded_command

    return run_sharded_command(kind=kind, shards=args.shards, years=years, agencies=args.agency, registry_file=args.registry,
                               demo_port=args.demo_port, politeness=politeness, settings=args.settings, pool=args.pool,
                               deadline_s=args.shard_deadline)


def check_sharded(args: argparse.Namespace) -> str | None:
    """A sharded run's mistakes, said before anything starts."""
    if not getattr(args, "shards", None):
        return None
    from gongkai.prefect_server import prefect_server_configured

    if args.db or getattr(args, "archive", None):
        flag, variable = ("--db", "GONGKAI_DB") if args.db else ("--archive", "GONGKAI_ARCHIVE")
        return f"{flag} cannot be used with --shards: every worker reads its {variable} (set it on the workers and here)"
    if not prefect_server_configured():
        return "--shards needs a Prefect server its workers poll: set PREFECT_API_URL (see `gongkai worker --help`)"
    if not args.settings.database_url.startswith(("postgresql://", "postgres://")):
        return "--shards needs a PostgreSQL warehouse that every worker reaches: set GONGKAI_DB=postgresql://…"
    return None


def register(subparsers: Any) -> None:
    from gongkai.flows.shards import DEFAULT_POOL

    p = subparsers.add_parser("worker", help="run a Prefect process worker for sharded crawls (nightly --shards N)")
    p.add_argument("--pool", default=DEFAULT_POOL, metavar="NAME", help=f"work pool to poll (default {DEFAULT_POOL})")
    p.add_argument("--limit", type=argtypes.positive_int, default=DEFAULT_LIMIT,
                   help=f"shards run at once by this worker (default {DEFAULT_LIMIT})")
    p.add_argument("--name", help="worker name (default: Prefect's, from the host name)")
    p.set_defaults(func=run, check=check_worker)


def check_worker(args: argparse.Namespace) -> str | None:
    from gongkai.prefect_server import prefect_server_configured

    if not prefect_server_configured():
        return "a worker needs the Prefect server of the sharded runs: set PREFECT_API_URL=http://HOST:4200/api"
    if not args.settings.database_url.startswith(("postgresql://", "postgres://")):
        return "a worker needs the shared PostgreSQL warehouse: set GONGKAI_DB=postgresql://…"
    return None


def run(args: argparse.Namespace) -> int:
    from gongkai.settings import quiet_prefect

    quiet_prefect()
    from gongkai.flows.shards import ensure_pool

    ensure_pool(args.pool)
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", args.pool, "--type", "process",
               "--limit", str(args.limit), "--install-policy", "never"] + (["--name", args.name] if args.name else [])
    print(f"gongkai worker: polling work pool {args.pool} (warehouse and archive from this environment)", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os.execv(sys.executable, command)  # never returns
    return 0  # pragma: no cover
