"""Nightly and backfill crawls on Prefect: the crawler's walk (crawler.crawl.Walk) driven by the crawl scheduler
(crawler.scheduler: per-host queues, no thread waits on a host's delay) over listing pages and listing items (a
report's detail page and its attachments); every downloaded file through the one ingest path
(flows.pipeline.Pipeline).

A portal that fails (down, robots.txt unreachable, a listing page that keeps failing) is recorded in
the run summary and does not stop the others; nothing of it is remembered, so the next run retries.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gongkai.crawler.crawl import CrawlContext, Limits, Walk, item_steps, page_steps
from gongkai.crawler.politeness import Politeness  # its own module: a crawler process imports it (light)
from gongkai.crawler.processes import (
    ArchivedFiles,
    crawl_in_processes,
    process_count,
    processes_with_prefect_limits,
    reading_back,
)
from gongkai.crawler.registry import Portal, all_hosts, load_registry, select
from gongkai.crawler.run_history import UNFINISHED, admission_order, last_statuses, statuses_folder, store_statuses
from gongkai.crawler.scheduler import CrawlScheduler, host_slots
from gongkai.crawler.state import WarehouseCrawlState
from gongkai.flows.logs import run_logger
from gongkai.flows.pipeline import ExtractionCache, Pipeline, extraction_pool
from gongkai.flows.plain import prefect_flow
from gongkai.logs import now_iso
from gongkai.settings import Settings, load_settings
from gongkai.stopping import GRACE_S, stop_requested
from gongkai.warehouse import IngestOutcome, open_archive, open_warehouse, recorded_run
from gongkai.warehouse.archive import Archive
from gongkai.warehouse.runs import RecordedRun

# portal statuses that fail the run (and the command's exit code): down, or a listing with nothing on it
FAILED_PORTAL = ("failed", "empty")
# threads of the flows' task runner; the crawl's requests in flight are GONGKAI_CRAWL_WORKERS (the scheduler's threads)
MAX_THREADS = 64


# Progress listener for the command line (a callable cannot be a flow parameter): (event, count).
_progress: Callable[[str, int], None] | None = None


def set_progress(listener: Callable[[str, int], None] | None) -> None:
    global _progress
    _progress = listener


def _notify(event: str, n: int = 1) -> None:
    if _progress is not None:
        _progress(event, n)


def crawl_portals(portals: list[Portal], ctx: CrawlContext, *, workers: int = 128, limits: Limits | None = None,
                  ingest_workers: int = 2, processes: int = 1, politeness: Politeness | None = None,
                  archive: Archive | None = None, portals_in_progress: int = 0) -> dict[str, Any]:
    """Drive the crawler's walk with the crawl scheduler (crawler.scheduler): per-host queues, each host given a turn
    when its politeness allows, `workers` requests in flight across hosts, files ingested on `ingest_workers`
    threads beside them with a bounded backlog. `processes` > 1 (with the `politeness` its fetchers are made of and
    the `archive` ctx's ingest stores in): the hosts split over that many crawler processes, each storing its files in
    the archive itself, their ingest staying here (crawler/processes.py). `portals_in_progress`: at most that many portals
    in progress at once in each crawler process (0: derived from the delay, crawler.scheduler.admitted_portals)."""
    if politeness is not None and politeness.prefect_limits:
        processes = processes_with_prefect_limits(processes)
    if processes > 1 and politeness is not None and archive is not None:
        summary = crawl_in_processes(portals, ctx, processes=processes, make_fetcher=politeness.fetcher, archive=archive,
                                     workers=workers, limits=limits, ingest_workers=ingest_workers, listener=_notify,
                                     should_stop=stop_requested, grace=GRACE_S, portals_in_progress=portals_in_progress)
        return summary | ({"interrupted": True} if stop_requested() else {})
    walk = Walk(ctx, portals, limits)
    scheduler = CrawlScheduler(ctx, host_slots(ctx.fetcher), workers=workers, ingest_workers=ingest_workers,
                               pages=page_steps, items=item_steps, listener=_notify,
                               should_stop=stop_requested, grace=GRACE_S, portals_in_progress=portals_in_progress)
    scheduler.run(walk)
    return (walk.summary() | {"scheduler": asdict(scheduler.stats)}
            | ({"interrupted": True} if stop_requested() else {}))


def open_pipeline(warehouse: Any, archive: Any, run: RecordedRun, settings: Settings) -> Pipeline:
    return Pipeline(warehouse, archive, pool=extraction_pool(settings.extract_processes), timeout_s=settings.extract_timeout,
                    cache=ExtractionCache(settings.results_dir), run=run, ocr_limits=settings.ocr_limits())


def _ingest_into(pipeline: Pipeline) -> Callable[..., IngestOutcome]:
    """The crawler's `ingest`: the registry entry gives the agency's division code and level."""

    def ingest(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Portal,
               pictures: Mapping[str, bytes | None] | None = None, archived: str | None = None) -> IngestOutcome:
        return pipeline.ingest(data, name=name, url=url, agency=agency, year=year, division_code=portal.division_code,
                               level=portal.level, pictures=pictures, archived=archived)

    return ingest


def state_file_name(warehouse_url: str) -> str:
    """The crawl-state file an older gongkai kept for a warehouse, named after its URL (imported once)."""
    return f"crawl-state-{hashlib.sha256(warehouse_url.encode()).hexdigest()[:12]}.json"


def run_crawl(
    kind: str,
    *,
    years: list[int] | None = None,
    agencies: list[str] | None = None,
    db_url: str | None = None,
    archive_location: str | None = None,
    registry_file: str | None = None,
    demo_port: int | None = None,
    state_file: str | None = None,
    politeness: dict[str, Any] | None = None,
    settings: Settings | None = None,
    run_params: dict[str, Any] | None = None,
    unfinished: list[str] | None = None,
) -> dict[str, Any]:
    """The body of both flows (and of each shard of a sharded run, flows/shards.py: `run_params` names it in `runs`). Returns (and stores beside the warehouse) the run summary. Arguments left out come
    from `settings` (read from the environment, once, when not given)."""
    settings = settings or load_settings()
    log = run_logger(__name__)
    portals = select(load_registry(Path(registry_file) if registry_file else settings.registry_file, demo_port=demo_port), agencies)
    polite = Politeness.from_settings(settings, **(politeness or {}))
    fetcher = polite.fetcher(all_hosts(portals))
    archive = open_archive(archive_location or settings.archive_location)
    params = {"portals": [p.id for p in portals], "years": years, "agencies": agencies} | (run_params or {})
    limits = Limits(settings.crawl_max_pages, settings.crawl_max_items, settings.crawl_portal_deadline)
    started, started_at = time.perf_counter(), now_iso()
    log.info("%s crawl of %d portals%s", kind, len(portals), f", years {years[0]}–{years[-1]}" if years else "")
    with _opened_or_recorded(db_url or settings.database_url, kind, started_at, settings.data_dir) as warehouse:
        # the state lives in the warehouse (shared by every worker); a JSON file of an older gongkai is imported once
        state = WarehouseCrawlState(warehouse.db, hosts=all_hosts(portals), legacy_file=Path(state_file) if state_file
                                    else settings.data_dir / state_file_name(warehouse.url))
        with recorded_run(warehouse, f"crawl-{kind}", params) as run:
            # each file stored in the archive where it was fetched, read back (bounded, checked) by the ingest path:
            # the same path as a crawler process's file (crawler/processes.py), nothing held or spilled meanwhile
            ingest = reading_back(_ingest_into(open_pipeline(warehouse, archive, run, settings)),
                                  ArchivedFiles(archive, fetcher.max_bytes))
            ctx = CrawlContext(fetcher, state, ingest, frozenset(years) if years else None, archive=archive)
            # the portals the last run did not reach or did not finish first: a deadline does not leave the same tail
            # not crawled night after night (read from the run summaries, whatever keeps the crawl state)
            # (`unfinished`: a shard's, from its parent's summaries; this machine's are those of the shards it ran)
            previous = (dict.fromkeys(unfinished, UNFINISHED[0]) if unfinished is not None
                        else last_statuses(statuses_folder(settings.data_dir), [p.id for p in portals],
                                         warehouse=warehouse.url))
            order = admission_order(portals, previous)
            with state.autosave(settings.crawl_state_save_s), polite.hosts_held(all_hosts(portals), settings.crawl_portal_deadline):
                summary = crawl_portals(order, ctx, workers=settings.crawl_workers, limits=limits,
                                        ingest_workers=max(1, settings.extract_processes) + 1, politeness=polite, archive=archive,
                                        processes=process_count(settings.crawl_processes, len(all_hosts(portals))),
                                        portals_in_progress=settings.crawl_portals_in_progress)
            for pid, info in summary["portals"].items():
                if info["status"] in FAILED_PORTAL:  # counted with the failures of the run
                    run.add(IngestOutcome("", "failed", pid, reason=f"portal {pid}: {info['error']}", portal=pid))
                log.info("portal %s: %s, %d listing pages, %d items%s", pid, info["status"], info["pages"], info["listed"],
                         f" (limit: {info['limit']})" if info.get("limit") else "")
            for doc in summary["documents"]:
                if doc["outcome"] in ("fetch_failed", "crashed"):
                    run.add(IngestOutcome(**doc))
            run.interrupted = bool(summary.get("interrupted"))
            state.save()
        counts: dict[str, int] = {}
        for doc in summary["documents"]:
            counts[doc["outcome"]] = counts.get(doc["outcome"], 0) + 1
        summary |= {
            "run_id": run.run_id, "kind": kind, "counts": counts, "checks_failing": run.checks_failing,
            "requests": fetcher.requests_sent, "duration_s": round(time.perf_counter() - started, 3), "warehouse": warehouse.url,
            "started_at": started_at, "finished_at": now_iso(),  # ISO 8601 with the machine's UTC offset
            "hosts": fetcher.host_stats(),  # per host: requests, 304s, retries, refusals, failures, bytes
        }
    _store_summary(summary, settings.data_dir)
    log.info("run %s: %s in %.1f s", summary["run_id"], counts, summary["duration_s"])
    _summary_artifact(summary)
    return summary


def _summary_artifact(summary: dict[str, Any]) -> None:
    """The run summary as a markdown artifact of the flow run (shown in the Prefect UI); nothing without Prefect."""
    import sys

    if "prefect.context" not in sys.modules:
        return
    from prefect.context import FlowRunContext

    if FlowRunContext.get() is None:
        return
    from prefect.artifacts import create_markdown_artifact

    rows = "\n".join(f"| {pid} | {info['status']} | {info['pages']} | {info['listed']} | {info.get('error') or ''} |"
                     for pid, info in summary["portals"].items())
    failed = [d for d in summary["documents"] if d["outcome"] in ("fetch_failed", "crashed", "failed", "unreadable")]
    documents = "\n".join(f"- {d['outcome']}: {d.get('title') or d.get('name') or d.get('url')} — {d.get('reason') or ''}"
                          for d in failed[:50])
    markdown = (f"# gongkai {summary['kind']} run {summary['run_id']}\n\n"
                f"{summary['started_at']} → {summary['finished_at']}, {summary['duration_s']:.1f} s, "
                f"{summary['requests']} requests; outcomes {summary['counts']}; {summary['checks_failing']} checks failing"
                f"{'; **interrupted**' if summary.get('interrupted') else ''}\n\n"
                "| portal | status | listing pages | items | error |\n|---|---|---|---|---|\n" + rows
                + (f"\n\n## documents that failed\n\n{documents}" if documents else ""))
    create_markdown_artifact(markdown=markdown, key=f"gongkai-{summary['kind']}-summary", description="the run summary")


FAILED_BEFORE_OPENING = "failed-*.json"  # data/runs/: runs that never reached the warehouse (gongkai status lists them)


@contextmanager
def _opened_or_recorded(url: str, kind: str, started_at: str, data_dir: Path) -> Iterator[Any]:
    """The warehouse, open; if it cannot be opened (a second nightly meets the DuckDB file's lock, a server is gone),
    the failure is written to data/runs/failed-<time>-<kind>.json, where `gongkai status` shows it, and raised."""
    try:
        warehouse = open_warehouse(url)
    except Exception as exc:
        folder = data_dir / "runs"
        folder.mkdir(parents=True, exist_ok=True)
        record = {"kind": kind, "status": "failed", "started_at": started_at, "failed_at": now_iso(), "warehouse": url,
                  "error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"}
        stamp = record["failed_at"].replace(":", "")
        (folder / f"failed-{stamp}-{kind}.json").write_text(json.dumps(record, ensure_ascii=False, indent=1), "utf-8")
        raise
    with warehouse:
        yield warehouse


def _thread_runner() -> Any:
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=MAX_THREADS)


def _store_summary(summary: dict[str, Any], data_dir: Path) -> None:
    """The full summary as JSON under the data dir (the runs table keeps the counts), then its portal statuses alone
    (data/runs/statuses: what the next run's order reads)."""
    folder = data_dir / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{summary['run_id']:06d}-{summary['kind']}.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), "utf-8")
    try:
        store_statuses(summary, data_dir)
    except OSError as exc:  # the run's results are recorded: a file that only orders the next run must not fail it
        run_logger(__name__).warning("run %06d-%s: its portal statuses were not written (%s): the next run's order "
                                     "reads an earlier run's", summary["run_id"], summary["kind"], exc)


@prefect_flow(name="gongkai-nightly", task_runner=lambda: _thread_runner(), validate_parameters=False)
def nightly_flow(
    agencies: list[str] | None = None,
    db_url: str | None = None,
    archive_location: str | None = None,
    registry_file: str | None = None,
    demo_port: int | None = None,
    state_file: str | None = None,
    politeness: dict[str, Any] | None = None,
    settings: Settings | None = None,
    fail_run_on_failure: bool = False,
) -> Any:
    """Every registry portal; only new or changed reports are downloaded (conditional GET) and loaded.

    Args:
        agencies: only these portals (registry ids or division codes); all when empty.
        db_url: the warehouse, duckdb:///path or postgresql://… (default $GONGKAI_DB, else the data folder's DuckDB file).
        archive_location: the raw archive, a folder or s3://bucket/prefix (default $GONGKAI_ARCHIVE).
        registry_file: the portal registry TOML (default $GONGKAI_REGISTRY, else the shipped crawler/registry.toml).
        demo_port: include the registry's demo entries, served on this port (gongkai demo --keep-running).
        state_file: a crawl-state JSON file of an older gongkai to import into the warehouse once (default: the one it kept
            for this warehouse in the data folder, if any); the state itself is the warehouse's crawl_state table.
        politeness: fetcher overrides (delay, concurrency, timeouts, retries, backoff); default the GONGKAI_CRAWL_* settings.
        settings: gongkai's settings (read from the environment when left out).
        fail_run_on_failure: end the flow run Failed, naming the failed portals and documents, when any failed (the
            others' work is kept); the deployment sets it, so the Prefect UI shows what the command's exit code says.
    """
    summary = run_crawl("nightly", agencies=agencies, db_url=db_url, archive_location=archive_location,
                        registry_file=registry_file, demo_port=demo_port, state_file=state_file, politeness=politeness,
                        settings=settings)
    return final_state(summary) if fail_run_on_failure else summary


def final_state(summary: dict[str, Any]) -> Any:
    """The flow run's end as Prefect should show it: Cancelled when the run was stopped (Ctrl-C, SIGTERM: recorded
    `interrupted` in `runs`), Failed naming what failed, else the summary itself (Completed)."""
    from prefect.states import Cancelled, Failed

    message = failure_message(summary)
    if summary.get("interrupted"):
        return Cancelled(message="interrupted: the run was stopped; what was loaded stays, the next run goes on"
                         + (f"; {message}" if message else ""), data=summary)
    return summary if message is None else Failed(message=message, data=summary)


def failure_message(summary: dict[str, Any]) -> str | None:
    """What failed in a run, in one line naming the portals and documents (None when nothing did)."""
    portals = [f"{pid} ({info['error']})" for pid, info in summary["portals"].items() if info["status"] in FAILED_PORTAL]
    documents = [d.get("url") or d.get("name") or d.get("sha256") for d in summary["documents"]
                 if d["outcome"] in ("fetch_failed", "crashed", "failed")]
    if not portals and not documents:
        return None
    parts = ([f"{len(portals)} portal(s) failed: " + "; ".join(portals[:5])] if portals else []) + (
        [f"{len(documents)} document(s) failed: " + ", ".join(str(d) for d in documents[:5])] if documents else [])
    return "; ".join(parts) + " (the others' work is loaded; the next run retries)"


@prefect_flow(name="gongkai-backfill", task_runner=lambda: _thread_runner(), validate_parameters=False)
def backfill_flow(
    years: list[int],
    agencies: list[str] | None = None,
    db_url: str | None = None,
    archive_location: str | None = None,
    registry_file: str | None = None,
    demo_port: int | None = None,
    state_file: str | None = None,
    politeness: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Every listing page back to the earliest of `years`; the reports on those years."""
    return run_crawl("backfill", years=years, agencies=agencies, db_url=db_url, archive_location=archive_location,
                     registry_file=registry_file, demo_port=demo_port, state_file=state_file, politeness=politeness,
                     settings=settings)
