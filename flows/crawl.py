"""Nightly and backfill crawls on Prefect: the crawler's walk (crawler.crawl.Walk) driven with a task per
listing page and per listing item (a report's detail page and its attachments); every downloaded file
through the one ingest path (flows.pipeline.Pipeline).

A portal that fails (down, robots.txt unreachable, a listing page that keeps failing) is recorded in
the run summary and does not stop the others; nothing of it is remembered, so the next run retries.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from queue import SimpleQueue
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from gongkai.crawler.adapters import Candidate, PageRequest
from gongkai.crawler.crawl import (
    CrawlContext,
    ItemJob,
    PageJob,
    PageResult,
    Walk,
    listing_item,
    listing_page,
)
from gongkai.crawler.fetcher import Fetcher, FetchError
from gongkai.crawler.host_limits import PrefectHostGate, ensure_host_limits
from gongkai.crawler.registry import Portal, all_hosts, load_registry, select
from gongkai.crawler.state import CrawlState
from gongkai.extractors.report_meta import TitleVerdict
from gongkai.flows.pipeline import ExtractionCache, Pipeline, extraction_pool
from gongkai.warehouse import IngestOutcome, open_archive, open_warehouse, recorded_run
from gongkai.warehouse.runs import RecordedRun

# portal statuses that fail the run (and the command's exit code): down, or a listing with nothing on it
FAILED_PORTAL = ("failed", "empty")
WORKERS = int(os.environ.get("GONGKAI_CRAWL_WORKERS", "8"))


@dataclass
class Politeness:
    """Fetcher settings; the defaults are for real portals (the demo and the benchmark turn the delay off)."""

    delay: float = 1.0
    concurrency: int = 2
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    retries: int = 3
    backoff: float = 1.0
    max_bytes: int = 50 * 1024 * 1024
    prefect_limits: bool = False  # per-host limits as Prefect global concurrency limits (across processes)

    @classmethod
    def from_env(cls, **overrides: Any) -> Politeness:
        env = {f: os.environ.get(f"GONGKAI_CRAWL_{f.upper()}") for f in cls.__dataclass_fields__}
        values = {k: _parse(type(getattr(cls(), k)), v) for k, v in env.items() if v is not None}
        return cls(**(values | {k: v for k, v in overrides.items() if v is not None}))

    def fetcher(self, hosts: frozenset[str]) -> Fetcher:
        gate = None
        if self.prefect_limits:
            ensure_host_limits(sorted(hosts), self.concurrency, self.delay)
            gate = PrefectHostGate(self.delay)
        return Fetcher(hosts, delay=self.delay, concurrency=self.concurrency, timeout=(self.connect_timeout, self.read_timeout),
                       retries=self.retries, backoff=self.backoff, max_bytes=self.max_bytes, gate=gate)


def _parse(kind: type, text: str) -> Any:
    return text.lower() in ("1", "true", "yes") if kind is bool else kind(text)


# Progress listener for the command line (a callable cannot be a flow parameter): (event, count).
_progress: Callable[[str, int], None] | None = None


def set_progress(listener: Callable[[str, int], None] | None) -> None:
    global _progress
    _progress = listener


def _notify(event: str, n: int = 1) -> None:
    if _progress is not None:
        _progress(event, n)


@task(name="listing page", cache_policy=NO_CACHE, retries=0)
def listing_page_task(ctx: CrawlContext, portal: Portal, request: PageRequest) -> PageResult:
    try:
        return listing_page(ctx, portal, request)
    except FetchError as exc:  # expected (a portal down): a result, not a failed task
        return PageResult(portal.id, [], [], error=str(exc))


@task(name="listing item", cache_policy=NO_CACHE, retries=0)
def listing_item_task(ctx: CrawlContext, portal: Portal, candidate: Candidate, verdict: TitleVerdict) -> list[IngestOutcome]:
    return listing_item(ctx, portal, candidate, verdict)


def crawl_portals(portals: list[Portal], ctx: CrawlContext) -> dict[str, Any]:
    """Drive the crawler's walk with Prefect tasks: pages of one portal in order, portals and items side by side."""
    walk = Walk(ctx, portals)
    pages: dict[PrefectFuture[PageResult], PageJob] = {}
    items: dict[PrefectFuture[list[IngestOutcome]], ItemJob] = {}
    finished: SimpleQueue[PrefectFuture[list[IngestOutcome]]] = SimpleQueue()

    def collect(wait: bool) -> None:
        """Take in the items done so far (all of them when `wait`), so that finished futures are let go."""
        while items and (wait or not finished.empty()):
            done = finished.get()
            job = items.pop(done)
            try:
                walk.item_done(job, done.result())
            except Exception as exc:
                walk.item_done(job, None, f"{type(exc).__name__}: {exc}")
            _notify("done")

    def submit_pages(jobs: list[PageJob]) -> None:
        for job in jobs:
            pages[listing_page_task.submit(quote(ctx), job.portal, job.request)] = job  # type: ignore[call-overload]

    submit_pages(walk.start())
    while pages:
        future = next(as_completed(list(pages)))
        job = pages.pop(future)
        try:
            result, error = future.result(), None
        except Exception as exc:  # this portal is down for this run; the others go on
            result, error = None, f"{type(exc).__name__}: {exc}"
        next_pages, new_items = walk.page_done(job, result, error)
        for item in new_items:
            submitted = listing_item_task.submit(quote(ctx), item.portal, item.candidate, item.verdict)  # type: ignore[call-overload]
            items[submitted] = item
            submitted.add_done_callback(finished.put)
            _notify("submitted")
        submit_pages(next_pages)
        collect(wait=False)
    collect(wait=True)
    return walk.summary()


def open_pipeline(warehouse: Any, archive: Any, run: RecordedRun) -> Pipeline:
    from gongkai.settings import extract_processes, extract_timeout_s, prefect_results_dir

    return Pipeline(warehouse, archive, pool=extraction_pool(extract_processes()), timeout_s=extract_timeout_s(),
                    cache=ExtractionCache(prefect_results_dir()), run=run)


def _ingest_into(pipeline: Pipeline) -> Callable[..., IngestOutcome]:
    """The crawler's `ingest`: the registry entry gives the agency's division code and level."""

    def ingest(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Portal) -> IngestOutcome:
        return pipeline.ingest(data, name=name, url=url, agency=agency, year=year, division_code=portal.division_code,
                               level=portal.level)

    return ingest


def state_file_name(warehouse_url: str) -> str:
    """The default crawl-state file of a warehouse, named after its URL."""
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
) -> dict[str, Any]:
    """The body of both flows. Returns (and stores beside the warehouse) the run summary."""
    from gongkai.settings import data_dir

    portals = select(load_registry(Path(registry_file) if registry_file else None, demo_port=demo_port), agencies)
    fetcher = Politeness.from_env(**(politeness or {})).fetcher(all_hosts(portals))
    archive = open_archive(archive_location)
    params = {"portals": [p.id for p in portals], "years": years, "agencies": agencies}
    started = time.perf_counter()
    with open_warehouse(db_url) as warehouse:
        # one state per warehouse: validators remembered for another warehouse would make every page a 304 here
        state = CrawlState(Path(state_file) if state_file else data_dir() / state_file_name(warehouse.url))
        with recorded_run(warehouse, f"crawl-{kind}", params) as run:
            ctx = CrawlContext(fetcher, state, _ingest_into(open_pipeline(warehouse, archive, run)), frozenset(years) if years else None)
            summary = crawl_portals(portals, ctx)
            for pid, info in summary["portals"].items():
                if info["status"] in FAILED_PORTAL:  # counted with the failures of the run
                    run.add(IngestOutcome("", "failed", pid, reason=f"portal {pid}: {info['error']}", portal=pid))
            for doc in summary["documents"]:
                if doc["outcome"] in ("fetch_failed", "crashed"):
                    run.add(IngestOutcome(**doc))
            state.save()
        counts: dict[str, int] = {}
        for doc in summary["documents"]:
            counts[doc["outcome"]] = counts.get(doc["outcome"], 0) + 1
        summary |= {
            "run_id": run.run_id, "kind": kind, "counts": counts, "checks_failing": run.checks_failing,
            "requests": fetcher.requests_sent, "duration_s": round(time.perf_counter() - started, 3), "warehouse": warehouse.url,
        }
    _store_summary(summary)
    return summary


def _store_summary(summary: dict[str, Any]) -> None:
    """The full summary as JSON under the data dir (the runs table keeps the counts)."""
    from gongkai.settings import data_dir

    folder = data_dir() / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{summary['run_id']:06d}-{summary['kind']}.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), "utf-8")


@flow(name="gongkai-nightly", task_runner=ThreadPoolTaskRunner(max_workers=WORKERS), validate_parameters=False)  # type: ignore[arg-type]
def nightly_flow(
    agencies: list[str] | None = None,
    db_url: str | None = None,
    archive_location: str | None = None,
    registry_file: str | None = None,
    demo_port: int | None = None,
    state_file: str | None = None,
    politeness: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every registry portal; only new or changed reports are downloaded (conditional GET) and loaded."""
    return run_crawl("nightly", agencies=agencies, db_url=db_url, archive_location=archive_location, registry_file=registry_file,
                     demo_port=demo_port, state_file=state_file, politeness=politeness)


@flow(name="gongkai-backfill", task_runner=ThreadPoolTaskRunner(max_workers=WORKERS), validate_parameters=False)  # type: ignore[arg-type]
def backfill_flow(
    years: list[int],
    agencies: list[str] | None = None,
    db_url: str | None = None,
    archive_location: str | None = None,
    registry_file: str | None = None,
    demo_port: int | None = None,
    state_file: str | None = None,
    politeness: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every listing page back to the earliest of `years`; the reports on those years."""
    return run_crawl("backfill", years=years, agencies=agencies, db_url=db_url, archive_location=archive_location,
                     registry_file=registry_file, demo_port=demo_port, state_file=state_file, politeness=politeness)
