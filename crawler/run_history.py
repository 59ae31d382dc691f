"""What earlier crawl runs did with each portal, from their summaries (data/runs/<run id>-<kind>.json, written by
flows/crawl.py whatever the crawl state is kept in: JSON file, DuckDB or PostgreSQL), and the order a run admits its
portals in.

A run admits a bounded number of portals at a time (crawler/scheduler.py) and every portal's deadline counts from the
walk's start, so a run stopped by its deadline leaves the portals at the tail of its order not crawled. In registry
order that would be the same tail night after night; so the portals the last run did not reach or did not finish go
first (`admission_order`), the others after them, each group in registry order.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

# a portal's statuses in a run summary (crawler/crawl.py) that mean the run did not reach it, or stopped while its
# listing was being read: the next run gives it its turn first
UNFINISHED = ("not_crawled", "interrupted")
# the newest summaries read for a run's order: a portal none of them names (new in the registry, or left out of every
# run since by --agency) is taken as never run, instead of every summary of the years being read (a national run's
# summary lists its documents: megabytes)
MOST_SUMMARIES = 30
# data/runs/statuses/<run id>-<kind>.json: each run's portal statuses alone, beside its summary, read for the order. A
# national summary lists every document (3,000 portals x 30 documents: 46 MB of JSON, ~200 MB of Python objects while
# decoded); reading it before a run would make the parent's peak memory grow with the registry's history
STATUSES = "statuses"


def statuses_folder(data_dir: Path) -> Path:
    """Where `store_statuses` keeps each run's statuses and `last_statuses` reads them (data/runs/statuses)."""
    return data_dir / "runs" / STATUSES


def store_statuses(summary: Mapping[str, Any], data_dir: Path) -> Path:
    """The run summary's portal statuses alone (with its run id, kind and warehouse, which `last_statuses` reads), under
    the same name as the summary; written after it, so its time is the run's end."""
    portals = summary.get("portals")
    compact = {"run_id": summary["run_id"], "kind": summary["kind"], "warehouse": summary.get("warehouse"),
               "portals": {pid: {"status": info.get("status")} for pid, info in (portals or {}).items()
                           if isinstance(info, dict)}}
    folder = statuses_folder(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{summary['run_id']:06d}-{summary['kind']}.json"
    path.write_text(json.dumps(compact, ensure_ascii=False), "utf-8")
    return path


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


P = TypeVar("P", bound=_HasId)


def admission_order(portals: Sequence[P], previous: Mapping[str, str]) -> list[P]:
    """`portals` with those whose previous status (`previous`: portal id -> status) is unfinished first, then the rest;
    each group keeps the order it was given in (registry order). A portal never run before is not unfinished."""
    first = [p for p in portals if previous.get(p.id) in UNFINISHED]
    return first + [p for p in portals if previous.get(p.id) not in UNFINISHED]


def _run_order(path: Path) -> tuple[int, int, str]:
    """A summary's place in run order: when it was written (a run's summary is written as it ends), then its run id
    (the name's leading digits, padded to 6 but not cut: run 1,000,000 after run 999,999, where by name it would not
    be). Written time first: run ids count per warehouse, so a data dir that served another warehouse (the demo's,
    or DuckDB's before PostgreSQL) holds its older summaries under higher run ids. A name without a run id
    (failed-*.json) comes before every run of its time."""
    digits = path.name.split("-", 1)[0]
    try:
        written = path.stat().st_mtime_ns
    except OSError:  # gone since it was listed, or a dangling link: read (and skipped) first of all
        written = -1
    return (written, int(digits) if digits.isdigit() else -1, path.name)


def summaries(runs: Path, *, newest_first: bool = False) -> Iterator[dict[str, Any]]:
    """The run summaries in `runs` (data/runs) in run order, or newest first; unreadable ones skipped."""
    paths = sorted(runs.glob("*.json"), key=_run_order, reverse=newest_first) if runs.is_dir() else []
    for path in paths:
        try:
            summary = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError, RecursionError):  # RecursionError: arrays nested too deep to decode (a corrupt file)
            continue
        if isinstance(summary, dict) and isinstance(summary.get("portals"), dict):  # not failed-*.json (never started)
            yield summary


def last_statuses(runs: Path, portal_ids: Sequence[str], most: int = MOST_SUMMARIES, *,
                  warehouse: str | None = None) -> dict[str, str]:
    """Per portal of `portal_ids`, its status in the latest run summary that names it (absent: never run), from the
    summaries in `runs` (`statuses_folder(data_dir)`: each run's statuses alone, `store_statuses`). Read newest
    first, stopping once every portal was found (usually the last summary alone), or after `most` summaries.
    `warehouse`: only the summaries of runs into that warehouse (its URL, as the summary says it) are read: run ids
    count per warehouse, so another warehouse's summaries in the same data dir are not in this one's run order."""
    wanted = set(portal_ids)
    found: dict[str, str] = {}
    # `most` bounds the summaries read, of any warehouse: a data dir holding years of another's is not read whole
    for summary in itertools.islice(summaries(runs, newest_first=True), most):
        if warehouse is not None and summary.get("warehouse") not in (None, warehouse):
            continue
        for pid, info in summary["portals"].items():
            if pid in wanted and pid not in found and isinstance(info, dict):
                found[pid] = str(info.get("status"))
        if len(found) == len(wanted):
            break
    return found
