"""What the crawl commands share: politeness flags and the run summary printout."""

from __future__ import annotations

import argparse
from typing import Any

from gongkai import argtypes


def add_crawl_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agency", action="append", metavar="CODE", help="only this portal (registry id or division code); repeatable")
    p.add_argument("--registry", metavar="FILE", help="registry TOML (default: crawler/registry.toml or $GONGKAI_REGISTRY)")
    p.add_argument("--db", metavar="URL", help="warehouse URL (default: $GONGKAI_DB or a DuckDB file under the data dir)")
    p.add_argument("--delay", type=argtypes.non_negative_float, help="seconds between requests to one host (default 1.0; $GONGKAI_CRAWL_DELAY)")
    p.add_argument("--concurrency", type=argtypes.positive_int, help="requests in flight per host (default 2)")
    p.add_argument("--prefect-limits", action="store_true", default=None,
                   help="enforce the per-host limits as Prefect global concurrency limits (several crawls at once)")
    p.add_argument("--demo-port", type=argtypes.port, help="include the registry's demo entries, on this port (see `gongkai demo --keep-running`)")


def check_portals(args: argparse.Namespace) -> str | None:
    """The registry read and every --agency matched before anything starts (Prefect, the warehouse): the one-line
    mistake, or None. Each code must match a portal: `--agency pingtan --agency nosuch` is refused too."""
    from pathlib import Path

    from gongkai.crawler.registry import RegistryError, load_registry

    try:
        portals = load_registry(Path(args.registry) if args.registry else args.settings.registry_file, demo_port=args.demo_port)
    except RegistryError as exc:
        return str(exc).splitlines()[0]
    unknown = [code for code in args.agency or [] if not any(p.matches(code) for p in portals)]
    if unknown:
        known = ", ".join(p.id for p in portals[:8]) + (" …" if len(portals) > 8 else "")
        hint = "" if args.demo_port else "; demo portals need --demo-port"
        return f"--agency {', '.join(unknown)}: no such portal (registry id or division code; known: {known or 'none'}{hint})"
    return None


def politeness(args: argparse.Namespace) -> dict[str, Any]:
    return {"delay": args.delay, "concurrency": args.concurrency, "prefect_limits": args.prefect_limits}


def print_summary(summary: dict[str, Any], *, show_loaded: bool = False) -> None:
    counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(summary["counts"].items())) or "nothing to fetch"
    print(f"{summary['finished_at'] + ' ' if summary.get('finished_at') else ''}run {summary['run_id']} ({summary['kind']}): {counts}; {summary['checks_failing']} checks failing; "
          f"{summary['requests']} requests in {summary['duration_s']:.1f} s")
    if not summary["portals"]:
        print("  no portals: add real ones to the registry (see crawler/registry.toml); demo entries need --demo-port")
    for pid, info in summary["portals"].items():
        state = "ok" if info["status"] == "ok" else f"{info['status'].upper()}: {info['error']}"
        cached = " (listing unchanged)" if info["listing_from_cache"] else ""
        print(f"  portal {pid}: {info['pages']} listing pages, {info['listed']} items{cached}; {state}")
    for doc in summary["documents"]:
        if show_loaded or doc["outcome"] not in ("not_modified", "unchanged"):
            extra = f" — {doc['reason']}" if doc["reason"] else ""
            checks = f", {doc['failing_checks']} checks failing" if doc["failing_checks"] else ""
            print(f"  {doc['outcome']:<12} {doc['year'] or '':<5} {doc['title']}{checks}{extra}")
    if summary["rejected"]:
        # the look-alikes first: letters and notices that mention reports
        rejected = sorted(summary["rejected"], key=lambda r: not any(w in r["title"] for w in ("报告", "年报", "函")))
        print(f"  {len(rejected)} listing items are not reports, e.g.:")
        for item in rejected[:5]:
            print(f"    {item['title']} ({item['reason']})")
    for pid, kinds in (summary.get("noise") or {}).items():  # listing noise met, by kind (crawler/noise.py)
        print(f"  portal {pid} listing noise: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in kinds.items()))
