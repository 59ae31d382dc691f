"""Admission in the crawl scheduler (crawler/scheduler.py): at most N portals in progress in one run, the others
waiting their turn in registry order, so a crawler process given thousands of hosts holds the memory of N. Real HTTP
over loopback: benchmarks/bench_polite_crawl.py's portal (one port per host, a request log of its own)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bench_portals import Portal, bench_module

from gongkai.crawler.crawl import CrawlContext, Limits, Walk
from gongkai.crawler.fetcher import Fetcher
from gongkai.crawler.registry import all_hosts, load_registry
from gongkai.crawler.scheduler import CrawlScheduler, HostSlots, admitted_portals
from gongkai.crawler.state import CrawlState
from gongkai.warehouse import IngestOutcome, open_archive

HOSTS = 10
DELAY = 0.1
LATENCY = 0.02
DOCUMENTS_PER_HOST = 5


@pytest.fixture(scope="module")
def portal() -> Iterator[Portal]:
    served = Portal(HOSTS, LATENCY)
    yield served
    served.close()


def crawl(portal: Portal, folder: Path, *, admitted: int, should_stop: Callable[[], bool] | None = None,
          on_ingest: Callable[[], None] | None = None, limits: Limits | None = None) -> tuple[Walk, CrawlScheduler]:
    reg = folder / "registry.toml"
    reg.write_text(portal.registry(portal.ports), "utf-8")
    portals = load_registry(reg)
    archive = open_archive(folder / "archive")

    def archived(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Any) -> IngestOutcome:
        if on_ingest is not None:
            on_ingest()
        return IngestOutcome(archive.put(data), "new", name, agency=agency, year=year, url=url, portal=portal.id)

    slots = HostSlots(2, DELAY)
    fetcher = Fetcher(all_hosts(portals), delay=DELAY, concurrency=2, retries=1, backoff=0.05, gate=slots)
    ctx = CrawlContext(fetcher, CrawlState(None), archived)
    scheduler = CrawlScheduler(ctx, slots, workers=16, portals_in_progress=admitted, should_stop=should_stop, grace=1.0)
    return scheduler.run(Walk(ctx, portals, limits or Limits())), scheduler


def spans(log: list[tuple[int, float, float]]) -> dict[int, tuple[float, float]]:
    """Per port (host): its first request's arrival and its last one's answer, from the portal's log."""
    out: dict[int, tuple[float, float]] = {}
    for port, start, end in log:
        first, last = out.get(port, (start, end))
        out[port] = (min(first, start), max(last, end))
    return out


def test_at_most_n_portals_are_in_progress_and_every_one_is_crawled_whole(portal: Portal, tmp_path: Path) -> None:
    portal.log()  # an empty log to start from
    walk, scheduler = crawl(portal, tmp_path, admitted=3)
    served = spans(portal.log())
    # every portal crawled in the end, every document of it
    assert len(served) == HOSTS
    assert sorted(d.outcome for d in walk.documents) == ["new"] * (HOSTS * DOCUMENTS_PER_HOST)
    assert {info["status"] for info in walk.summary()["portals"].values()} == {"ok"}
    # never more than 3 at once: as the scheduler counted them, and as the portal saw its hosts' requests (a host is
    # busy from its first request to its last answer, inside its portal's time in progress)
    assert scheduler.stats.peak_portals_in_progress == 3
    edges = sorted([(first, 1) for first, _ in served.values()] + [(last, -1) for _, last in served.values()],
                   key=lambda edge: (edge[0], edge[1]))
    busy = most = 0
    for _, step in edges:
        busy += step
        most = max(most, busy)
    assert most <= 3
    # in registry order: the first three began before any other was asked anything
    firsts = [served[port][0] for port in portal.ports]
    assert max(firsts[:3]) < min(firsts[3:])
    assert scheduler.stats.hosts_finished == HOSTS


def test_a_stop_admits_nothing_more_and_the_portals_left_are_reported_not_crawled(portal: Portal, tmp_path: Path) -> None:
    portal.log()
    stop = threading.Event()
    walk, scheduler = crawl(portal, tmp_path, admitted=2, should_stop=stop.is_set, on_ingest=stop.set)
    asked = spans(portal.log())
    summary = walk.summary()["portals"]
    assert list(summary) == [p.id for p in walk.portals]  # every portal of the run, in registry order
    # the stop came with the first file: no portal had ended, so none was admitted after the first two
    assert scheduler.stats.peak_portals_in_progress == 2 and len(asked) == 2
    never = {pid: info for pid, info in summary.items() if info["status"] == "not_crawled"}
    assert len(never) == HOSTS - 2
    assert all(info["pages"] == 0 and info["listed"] == 0 and info["error"] for info in never.values())
    assert len(walk.documents) < 2 * DOCUMENTS_PER_HOST


def test_a_portal_stopped_with_listing_pages_pending_is_not_reported_ok(tmp_path: Path) -> None:
    """A walk's summary after a stop: a portal whose listing was being read says so; one never started, too."""
    reg = tmp_path / "registry.toml"
    reg.write_text(bench_module().registry([41001, 41002]), "utf-8")
    portals = load_registry(reg)
    ctx = CrawlContext(Fetcher(all_hosts(portals)), CrawlState(None), lambda *a, **k: None)
    walk = Walk(ctx, portals, Limits())
    assert walk.waiting == 2 and not walk.progress  # nothing made for a portal before it starts
    first = walk.start_next()
    assert first and walk.waiting == 1 and list(walk.progress) == [portals[0].id]
    summary = walk.summary()["portals"]
    assert summary[portals[0].id]["status"] == "interrupted"
    assert summary[portals[1].id]["status"] == "not_crawled"
    walk.page_done(first[0], None, "refused")
    assert walk.summary()["portals"][portals[0].id]["status"] == "failed"  # a page's failure is still a failure


def test_the_default_admits_more_portals_than_a_process_can_serve() -> None:
    """Derived from the delay: one process sends some 1,000 requests a second at most, a host one per delay; the
    default never holds back the benchmark's 1,000 hosts in one process, and grows with the delay."""
    assert admitted_portals(0, 1.0) >= 2000
    assert admitted_portals(0, 0.0) >= 2000
    assert admitted_portals(0, 5.0) >= 5 * admitted_portals(0, 1.0) // 2
    assert admitted_portals(300, 1.0) == 300


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from gongkai.settings import Settings

    monkeypatch.setenv("GONGKAI_CRAWL_PORTALS_IN_PROGRESS", "250")
    assert Settings().crawl_portals_in_progress == 250


def test_each_crawler_process_admits_its_own_portals_from_the_setting(tmp_path: Path) -> None:
    """GONGKAI_CRAWL_PORTALS_IN_PROGRESS reaches the scheduler of each crawler process (crawler/processes.py): with 1,
    two processes have at most two portals in progress between them, and every portal is crawled whole."""
    from shard_portal import REPORT_YEARS, ShardPortal

    from gongkai.flows.crawl import run_crawl
    from gongkai.settings import Settings

    hosts = {0: [1, 2], 1: [3], 2: [4], 3: [5, 6]}  # host 0 and host 3 serve two portals each
    portals = [("a1", 0, 1), ("a2", 0, 2), ("a3", 1, 3), ("a4", 2, 4), ("a5", 3, 5), ("a6", 3, 6)]
    with ShardPortal(hosts) as served:
        registry = tmp_path / "registry.toml"
        registry.write_text(served.registry(portals), "utf-8")
        settings = Settings(data=tmp_path / "data", crawl_processes=2, crawl_portals_in_progress=1, extract_processes=0)
        summary = run_crawl("nightly", db_url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
                            archive_location=str(tmp_path / "archive"), registry_file=str(registry),
                            politeness={"delay": 0.05, "concurrency": 2, "read_timeout": 5.0, "retries": 1},
                            settings=settings)
        hits = served.clear()
    assert summary["processes"] == 2
    assert {info["status"] for info in summary["portals"].values()} == {"ok"}
    assert summary["counts"].get("new") == len(portals) * len(REPORT_YEARS)
    assert summary["scheduler"]["peak_portals_in_progress"] == 2  # one per process (summed over the two)
    by_agency: dict[str, tuple[float, float]] = {}
    for hit in hits:
        agency = hit.path.split("/")[1]  # /a<agency>/...; robots.txt is its host's, not a portal's
        if agency.startswith("a"):
            first, last = by_agency.get(agency, (hit.started, hit.ended))
            by_agency[agency] = (min(first, hit.started), max(last, hit.ended))
    assert len(by_agency) == len(portals)
    edges = sorted([(a, 1) for a, _ in by_agency.values()] + [(b, -1) for _, b in by_agency.values()])
    busy = most = 0
    for _, step in edges:
        busy += step
        most = max(most, busy)
    assert most <= 2


def test_a_portal_whose_turn_comes_after_the_deadline_is_not_reported_ok(portal: Portal, tmp_path: Path) -> None:
    """Deadlines count from the walk's start: a portal admitted after it (the others took the time) asks for nothing.
    It was reported "ok" with nothing read, as a portal crawled whole; it is not crawled (the next run crawls it)."""
    portal.log()
    walk, _ = crawl(portal, tmp_path, admitted=1, limits=Limits(deadline_s=0.3))
    asked = spans(portal.log())
    summary = walk.summary()["portals"]
    assert len(asked) < HOSTS  # the first portals took the time: the later ones were never asked anything
    never = [info for info in summary.values() if info["pages"] == 0]
    assert len(never) >= HOSTS - len(asked)
    assert all(info["status"] == "not_crawled" and "deadline" in info["error"] and info["limit"] for info in never)
