"""`gongkai portals`: the registry (list), a column URL or saved page tried as a dry run (check), an entry written
from what was detected (add). Nothing is loaded; `check URL` contacts only the host the URL names."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from gongkai.crawler.registry import DEFAULT_REGISTRY

STARTER_REGISTRY = DEFAULT_REGISTRY.with_name("registry-starter.toml")
LEVELS = ("province", "city", "county", "department", "ministry")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("portals", help="list the registry, check a column URL or saved page (dry run), add an entry")
    sub = p.add_subparsers(dest="portals_command", required=True, metavar="ACTION")
    ls = sub.add_parser("list", help="registry entries with their family, verification, evidence and last run status")
    ls.add_argument("--registry", action="append", metavar="FILE",
                    help="registry file(s) (default: the configured registry and the shipped starter registry)")
    ls.add_argument("--format", choices=["table", "json"], default="table")
    check = sub.add_parser("check", help="detect a column page's family and list the items the crawl would fetch, without loading")
    check.add_argument("target", help="the column URL, or a saved page FILE with --url")
    check.add_argument("--url", help="the URL the saved page came from (offline check of FILE)")
    check.add_argument("--pages", type=int, default=2, help="listing pages to read online (default 2, at most 10)")
    check.add_argument("--agency", default="", help="the column's agency, to tell other agencies' reports from its own")
    check.add_argument("--registry", metavar="FILE", help="mark this file's unverified entry for the URL verified when reports are found")
    check.add_argument("--delay", type=float, default=1.0, help="seconds between requests (default 1.0)")
    add = sub.add_parser("add", help="detect a column URL's family and write its entry into a registry file")
    add.add_argument("url")
    add.add_argument("--agency", required=True)
    add.add_argument("--division-code", required=True)
    add.add_argument("--level", choices=LEVELS, default="county")
    add.add_argument("--id", help="entry id (default: the division code)")
    add.add_argument("--file", help="detect from this saved page instead of fetching the URL")
    add.add_argument("--registry", metavar="FILE", help="registry file to append to (default: $GONGKAI_REGISTRY, else ./registry.toml)")
    add.add_argument("--delay", type=float, default=1.0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return {"list": _list, "check": _check, "add": _add}[args.portals_command](args)


def _fetcher(url: str, delay: float) -> Any:
    from gongkai.crawler.fetcher import Fetcher
    from gongkai.crawler.registry import host_of

    return Fetcher({host_of(url)}, delay=delay, retries=1)


def _last_runs(data_dir: Path) -> dict[str, dict[str, Any]]:
    """Per portal, its status in the latest run summary that crawled it (data/runs/*.json: the summaries a crawl's
    admission order reads too, crawler/run_history.py)."""
    from gongkai.crawler.run_history import summaries

    found: dict[str, dict[str, Any]] = {}
    for summary in summaries(data_dir / "runs"):
        for pid, info in summary["portals"].items():
            if info.get("status") == "not_crawled":  # a stopped run never reached it: its last run is an earlier one
                continue
            docs = [d for d in summary.get("documents", []) if d.get("portal") == pid]
            found[pid] = {"run": summary.get("run_id"), "status": info.get("status"), "listed": info.get("listed"), "documents": len(docs)}
    return found


def _list(args: argparse.Namespace) -> int:
    from gongkai.crawler.registry import RegistryError, load_registry

    files = [Path(f) for f in args.registry] if args.registry else list(dict.fromkeys([args.settings.registry_file, STARTER_REGISTRY]))
    runs = _last_runs(args.settings.data_dir)
    rows: list[dict[str, Any]] = []
    for path in files:
        try:
            portals = load_registry(path)
        except RegistryError as exc:
            print(f"gongkai portals list: {exc}", file=sys.stderr)
            return 2
        for p in portals:
            last = runs.get(p.id)
            crawled_ok = bool(last and last["status"] == "ok" and last["documents"])
            rows.append({"id": p.id, "agency": p.agency, "family": p.cms, "listing": p.listing[0], "file": str(path),
                         "verified": p.verified or crawled_ok, "evidence": p.evidence, "missing": p.missing,
                         "last_run": last})
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    for r in rows:
        state = "verified" if r["verified"] else "UNVERIFIED"
        seen = r["last_run"]
        run = f"last run {seen['run']}: {seen['status']}, {seen['listed']} listed" if seen else "never run"
        print(f"{r['id']:<28} {r['family']:<8} {state:<11} {run:<32} {r['agency']}  {r['listing']}")
        if not r["verified"]:
            print(f"    evidence: {r['evidence'] or '-'}")
            if r["missing"]:
                print(f"    missing: {r['missing']}")
    print(f"{len(rows)} portals, {sum(not r['verified'] for r in rows)} unverified (run those only when asked: --registry FILE --agency ID)")
    return 0


def _check(args: argparse.Namespace) -> int:
    from gongkai.crawler.check import check_text, check_url, mark_verified

    try:
        if args.url:
            text = Path(args.target).read_text("utf-8", errors="replace")
            result = check_text(args.url, text, agency=args.agency)
        else:
            result = check_url(args.target, _fetcher(args.target, args.delay), pages=args.pages, agency=args.agency)
    except (OSError, ValueError) as exc:  # a missing file, a malformed URL, an entry that does not validate
        print(f"gongkai portals check: {exc}", file=sys.stderr)
        return 2
    print("\n".join(result.lines()))
    if result.error and not result.pages:
        return 1
    if args.registry and not args.url and result.reports:
        marked = mark_verified(Path(args.registry), args.target, f"portals check {dt.date.today()}: {len(result.reports)} reports listed")
        print(f"{args.registry}: entry {marked} marked verified" if marked else f"{args.registry}: no unverified entry lists {args.target}")
    return 0


def _add(args: argparse.Namespace) -> int:
    from gongkai.crawler.check import check_text, check_url, entry_toml, printable
    from gongkai.crawler.registry import load_registry

    target = Path(args.registry) if args.registry else (args.settings.registry if args.settings.registry else Path("registry.toml"))
    try:
        if args.file:
            result = check_text(args.url, Path(args.file).read_text("utf-8", errors="replace"), agency=args.agency)
        else:
            result = check_url(args.url, _fetcher(args.url, args.delay), pages=1, agency=args.agency)
        if result.error and not result.pages:
            print(printable(f"gongkai portals add: {args.url}: {result.error}"), file=sys.stderr)  # the error may quote the server
            return 1
        how = "saved page" if args.file else "live page"
        evidence = f"portals add {dt.date.today()} from the {how}: {'; '.join(result.detection.evidence)}; {len(result.reports)} reports listed"
        entry = entry_toml(args.id or args.division_code, args.agency, args.division_code, args.level, args.url, result.detection,
                           verified=bool(result.reports) and not args.file, evidence=evidence)
        existing = target.read_text("utf-8") if target.exists() else ""
        text = existing + ("\n" if existing and not existing.endswith("\n\n") else "") + entry
        load_registry(target, text=text)  # the whole file still validates (ids unique, hosts, params), or nothing is written
    except (OSError, ValueError) as exc:  # a missing file, a malformed URL, an entry that does not validate
        print(f"gongkai portals add: {exc}", file=sys.stderr)
        return 2
    target.write_text(text, "utf-8")
    print("\n".join(result.lines()))
    print(f"added to {target}:\n{entry}")
    return 0
