"""Nightly and backfill crawls on Prefect: a task per listing page and per listing item (a report's
detail page and its attachments), every downloaded file through flows.ingest.ingest_bytes.

A portal that fails (down, robots.txt unreachable, a listing page that keeps failing) is recorded in
the run summary and does not stop the others; nothing of it is remembered, so the next run retries.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from queue import SimpleQueue
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from gongkai.crawler.adapters import Candidate, PageRequest, first_requests
from gongkai.crawler.crawl import (
    CrawlContext,
    DocResult,
    PageResult,
    commit_listing,
    listing_item,
    listing_page,
    older_than_wanted,
    wanted,
)
from gongkai.crawler.fetcher import Fetcher, FetchError
from gongkai.crawler.host_limits import PrefectHostGate, ensure_host_limits
from gongkai.crawler.registry import Portal, all_hosts, load_registry, select
from gongkai.crawler.state import CrawlState
from gongkai.extractors.report_meta import classify_title
from gongkai.flows.ingest import extractor_version, ingest_bytes
from gongkai.warehouse import IngestOutcome, open_archive, open_warehouse, recorded_run
from gongkai.warehouse.archive import sha256_of
from gongkai.warehouse.runs import RecordedRun

# portal statuses that fail the run (and the command's exit code): down, or a listing with nothing on it
FAILED_PORTAL = ("failed", "empty")
WORKERS = int(os.environ.get("GONGKAI_CRAWL_WORKERS", "8"))
EXTRACT_TIMEOUT_S = float(os.environ.get("GONGKAI_EXTRACT_TIMEOUT", "600"))


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
def listing_item_task(ctx: CrawlContext, portal: Portal, candidate: Candidate) -> list[DocResult]:
    return listing_item(ctx, portal, candidate)


@dataclass
class _PortalProgress:
    portal: Portal
    candidates: dict[str, Candidate] = field(default_factory=dict)
    # per listing URL of the portal: its first page and every candidate of its pages, for conditional state
    firsts: dict[str, PageResult] = field(default_factory=dict)
    listed: dict[str, list[Candidate]] = field(default_factory=dict)
    requested: set[tuple[str, str, tuple[tuple[str, str], ...]]] = field(default_factory=set)
    pages: int = 0
    pending: int = 0
    error: str | None = None
    truncated: bool = False  # a backfill stopped paging early: the listing read is not the whole listing

    def first_request(self, request: PageRequest) -> bool:
        """True the first time this run asks for a page: a 下一页 back to an earlier page does not loop."""
        key = (request.method, request.url, tuple(sorted((request.data or {}).items())))
        if key in self.requested:
            return False
        self.requested.add(key)
        return True

    def summary(self) -> dict[str, Any]:
        # a listing with nothing on it is most likely a misconfigured entry (wrong URL, wrong family)
        status = "failed" if self.error else "empty" if self.pages and not self.candidates else "ok"
        return {"status": status, "error": self.error or ("no listing items" if status == "empty" else None), "pages": self.pages,
                "listed": len(self.candidates),
                "listing_from_cache": bool(self.firsts) and all(f.from_cache for f in self.firsts.values())}


def _extract_in_process(data: bytes, name: str) -> dict[str, Any]:
    from gongkai.flows.ingest import extract_document

    return extract_document(data, name).as_json()


class _ExtractPool:
    """Extraction is pure CPU: on a multi-core machine it runs in worker processes, outside the writer lock.

    GONGKAI_EXTRACT_PROCESSES sets the worker count (default: the CPU count; 0 or 1 = in the crawling thread).
    Spawned, not forked: the crawling process runs threads (Prefect, HTTP) that must not be forked mid-flight.
    """

    def __init__(self) -> None:
        wanted = int(os.environ.get("GONGKAI_EXTRACT_PROCESSES", str(os.cpu_count() or 1)))
        self.pool: ProcessPoolExecutor | None = None
        if wanted > 1:
            self.pool = ProcessPoolExecutor(wanted, mp_context=multiprocessing.get_context("spawn"))

    def extract(self, data: bytes, name: str) -> Callable[[bytes, str], dict[str, Any]] | None:
        """An `extract` for ingest_bytes that returns the result computed here; None: extract in this thread."""
        if self.pool is None:
            return None
        try:
            result = self.pool.submit(_extract_in_process, data, name).result(timeout=EXTRACT_TIMEOUT_S)
        except TimeoutError:  # a pathological file: recorded as failed, tried again next run
            message = f"extraction took more than {EXTRACT_TIMEOUT_S} s"

            def timed_out(_data: bytes, _name: str) -> dict[str, Any]:
                raise TimeoutError(message)

            return timed_out
        except Exception:  # a broken worker (killed, out of memory): extract in this thread instead
            return None
        return lambda _data, _name: result

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def _ingest_into(
    run: RecordedRun, warehouse: Any, archive: Any, pool: _ExtractPool
) -> Callable[..., tuple[str, str | None, int | None, int]]:
    lock = threading.Lock()  # one warehouse connection: one writer at a time
    version = extractor_version()

    def ingest(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Portal) -> tuple[str, str | None, int | None, int]:
        with lock:
            done = warehouse.extracted_with(sha256_of(data), version)
        extract = None if done is not None else pool.extract(data, name)
        with lock:
            outcome = ingest_bytes(data, name=name, url=url, agency=agency, year=year, division_code=portal.division_code,
                                   level=portal.level, warehouse=warehouse, archive=archive, run_id=run.run_id, extract=extract)
            run.add(outcome)
        return outcome.outcome, outcome.reason, outcome.report_id, outcome.failing_checks

    return ingest


def crawl_portals(portals: list[Portal], ctx: CrawlContext) -> dict[str, Any]:
    """Walk every portal's listing (pages of one portal in order, portals side by side) and each wanted item."""
    progress = {p.id: _PortalProgress(p) for p in portals}
    pages: dict[PrefectFuture[PageResult], tuple[Portal, PageRequest, str]] = {}  # and the listing URL it pages
    items: dict[PrefectFuture[list[DocResult]], tuple[Portal, Candidate]] = {}
    finished: SimpleQueue[PrefectFuture[list[DocResult]]] = SimpleQueue()
    rejected: list[dict[str, Any]] = []
    documents: list[DocResult] = []

    def collect(wait: bool) -> None:
        """Take in the items done so far (all of them when `wait`), so that finished futures are let go."""
        while items and (wait or not finished.empty()):
            done = finished.get()
            portal, candidate = items.pop(done)
            try:
                documents.extend(done.result())
            except Exception as exc:
                # not an ingest outcome (those are counted by ingest): run_crawl counts it with the fetch failures
                documents.append(DocResult(portal.id, candidate.url, candidate.title, "crashed", reason=f"{type(exc).__name__}: {exc}"))
            _notify("done")

    def submit_page(portal: Portal, request: PageRequest, root: str) -> None:
        if not progress[portal.id].first_request(request):
            return
        progress[portal.id].pending += 1
        pages[listing_page_task.submit(quote(ctx), portal, request)] = (portal, request, root)  # type: ignore[call-overload]

    for portal in portals:
        for request in first_requests(portal):
            submit_page(portal, request, request.url)
    while pages:
        future = next(as_completed(list(pages)))
        portal, request, root = pages.pop(future)
        state = progress[portal.id]
        state.pending -= 1
        try:
            result = future.result()
        except Exception as exc:  # this portal is down for this run; the others go on
            state.error = state.error or f"{type(exc).__name__}: {exc}"
            continue
        if result.error:
            state.error = state.error or result.error
            continue
        state.pages += 1
        if request.is_first:
            state.firsts[root] = result
        state.listed.setdefault(root, []).extend(result.candidates)
        for candidate in result.candidates:
            if candidate.url in state.candidates:
                continue  # Hanweb repeats a record at each group boundary
            state.candidates[candidate.url] = candidate
            verdict = classify_title(candidate.title)
            if not verdict.is_report:
                rejected.append({"portal": portal.id, "title": candidate.title, "url": candidate.url, "reason": verdict.reason})
            elif wanted(ctx, verdict):
                item = listing_item_task.submit(quote(ctx), portal, candidate)  # type: ignore[call-overload]
                items[item] = (portal, candidate)
                item.add_done_callback(finished.put)
                _notify("submitted")
        if older_than_wanted(ctx, result.candidates):
            state.truncated = state.truncated or bool(result.next)
        elif not state.error:
            for nxt in result.next:
                submit_page(portal, nxt, root)
        if state.pending == 0 and state.error is None and not state.truncated:
            for url, first in state.firsts.items():
                commit_listing(ctx, url, first, dict.fromkeys(state.listed[url]))
        collect(wait=False)
    collect(wait=True)
    return {"portals": {pid: p.summary() for pid, p in progress.items()}, "rejected": rejected,
            "documents": [d.to_dict() for d in documents]}


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
    pool = _ExtractPool()
    with open_warehouse(db_url) as warehouse:
        # one state per warehouse: validators remembered for another warehouse would make every page a 304 here
        state = CrawlState(Path(state_file) if state_file else data_dir() / state_file_name(warehouse.url))
        with recorded_run(warehouse, f"crawl-{kind}", params) as run:
            ctx = CrawlContext(fetcher, state, _ingest_into(run, warehouse, archive, pool), frozenset(years) if years else None)
            try:
                summary = crawl_portals(portals, ctx)
            finally:
                pool.close()
            for pid, info in summary["portals"].items():
                if info["status"] in FAILED_PORTAL:  # counted with the failures of the run
                    run.add(IngestOutcome("", "failed", pid, reason=f"portal {pid}: {info['error']}"))
            for doc in summary["documents"]:
                if doc["outcome"] in ("fetch_failed", "crashed"):
                    run.add(IngestOutcome("", "failed", doc["url"], reason=doc["reason"]))
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
