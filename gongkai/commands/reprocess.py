"""`gongkai reprocess [--all | --extractor-older-than VERSION]`: re-extract archived documents, no network."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gongkai import argtypes, settings
from gongkai.commands.ingest import add_warehouse_options, print_summary, progress_bar
from gongkai.commands.worker import add_shard_options, check_sharded


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("reprocess", help="re-extract archived documents with the current extractors")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every archived document, even those the current extractor has seen")
    which.add_argument(
        "--extractor-older-than", metavar="VERSION", type=argtypes.extractor_version,
        help="documents last extracted by an extractor older than VERSION (default: the current version)",
    )
    add_warehouse_options(p)
    add_shard_options(p)
    p.set_defaults(func=run, check=check_sharded)


def run(args: argparse.Namespace) -> int:
    settings.quiet_prefect()
    from gongkai.flows.reprocess import reprocess_archive

    if args.shards:  # the archive split by digest over the work pool's workers (flows/shards.py)
        from gongkai.flows.shards import run_sharded_command

        summary = run_sharded_command(kind="reprocess", shards=args.shards, all_documents=args.all,
                                      older_than=args.extractor_older_than, settings=args.settings, pool=args.pool,
                                      deadline_s=args.shard_deadline)
    else:
        with progress_bar(None, "reprocess"):
            summary = reprocess_archive(
                all_documents=args.all, older_than=args.extractor_older_than, db_url=args.db, archive_location=args.archive,
                settings=args.settings,
            )
    print_summary(summary, args.json)
    if not args.json:
        # A new revision can differ only in warnings, provenance or checks: those are not "cells changed".
        changed = [d for d in summary["documents"] if d["outcome"] == "changed"]
        same_cells = [d["name"] or d["sha256"] for d in changed if not d["cells_changed"]]
        if same_cells:
            print("re-extracted, cells unchanged: " + ", ".join(same_cells), file=sys.stdout)
        names = [d["name"] or d["sha256"] for d in changed if d["cells_changed"]]
        print("cells changed in: " + (", ".join(names) if names else "no report"), file=sys.stdout)
    return 1 if summary["counts"].get("failed") else 0
