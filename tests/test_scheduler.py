"""The crawl scheduler (crawler/scheduler.py): politeness, not threads, bounds the crawl, and no host ever gets more
than its limits. Real HTTP over loopback: benchmarks/bench_polite_crawl.py's portal, one process listening on one
port per host (each port its own host), logging when every request arrived and was answered."""

from __future__ import annotations

import math
import os
import threading
import time
import urllib.robotparser
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench_portals import Portal, bench_module

from gongkai.crawler import transport, urls
from gongkai.crawler.crawl import CrawlContext, Fetch, Limits, Walk
from gongkai.crawler.fetcher import Fetcher
from gongkai.crawler.registry import all_hosts, load_registry
from gongkai.crawler.scheduler import CrawlScheduler, HostSlots, Reservation
from gongkai.crawler.state import CrawlState
from gongkai.warehouse import IngestOutcome, open_archive

ROOT = Path(__file__).resolve().parents[1]
HOSTS = 40
DELAY = 0.5
LATENCY = 0.05
REQUESTS_PER_HOST = 11  # robots.txt, 2 listing pages, 5 detail pages, 3 attachments


@pytest.fixture(scope="module")
def portal() -> Iterator[Portal]:
    served = Portal(HOSTS, LATENCY)
    yield served
    served.close()


def crawl(portal: Portal, folder: Path, *, workers: int, delay: float = DELAY, concurrency: int = 2,
          ingest: Any = None, hosts: int | None = None, **options: Any) -> tuple[Walk, CrawlScheduler, HostSlots, float]:
    folder.mkdir(parents=True, exist_ok=True)
    reg = folder / "registry.toml"
    reg.write_text(portal.registry(portal.ports[:hosts]), "utf-8")
    portals = load_registry(reg)
    archive = open_archive(folder / "archive")

    def archived(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Any) -> IngestOutcome:
        return IngestOutcome(archive.put(data), "new", name, agency=agency, year=year, url=url, portal=portal.id)

    slots = HostSlots(concurrency, delay, record=True)
    fetcher = Fetcher(all_hosts(portals), delay=delay, concurrency=concurrency, retries=1, backoff=0.05, gate=slots)
    ctx = CrawlContext(fetcher, CrawlState(folder / "state.json"), ingest or archived)
    scheduler = CrawlScheduler(ctx, slots, workers=workers, **options)
    started = time.monotonic()
    walk = scheduler.run(Walk(ctx, portals, Limits()))
    ctx.state.save()
    return walk, scheduler, slots, time.monotonic() - started


def test_politeness_not_threads_bounds_the_crawl_and_every_host_keeps_its_limits(portal: Portal, tmp_path: Path) -> None:
    portal.log()  # start from an empty log
    walk, scheduler, slots, wall = crawl(portal, tmp_path, workers=16)
    served = portal.log()
    assert len(served) == HOSTS * REQUESTS_PER_HOST
    assert sorted(d.outcome for d in walk.documents) == ["new"] * (HOSTS * 5)
    # the bound is the busiest host's requests × delay: 16 threads for 40 hosts, and still within a margin of it
    # (a worker sleeping out a host's delay would take about 40 × 11 × 0.5 / 16 ≈ 14 s)
    bound = REQUESTS_PER_HOST * DELAY
    assert wall < 2.0 * bound, f"{wall:.1f} s for a bound of {bound} s"
    print(f"{HOSTS} hosts: wall {wall:.2f} s, bound {bound} s, portal's shortest gap {portal.politeness_from_log(served)['min_gap_s']} s")
    # every request the portal saw went through the per-host gate, which kept the limits exactly (from each send)
    assert slots.log is not None and len(slots.log) == len(served)
    kept = portal.politeness_from_log(slots.log)
    assert kept["max_in_flight"] <= 2
    assert kept["min_gap_s"] >= DELAY
    # as the portal saw them: no host had more in flight, none had two requests closer together than the delay
    # (the delay counts from when a request was sent, so a request held up in the crawler cannot arrive close behind
    # the next; what is left is how late the portal's own process reads a request: tens of ms on a loaded machine)
    seen = portal.politeness_from_log(served)
    assert seen["max_in_flight"] <= 2
    assert seen["min_gap_s"] >= DELAY - 0.1
    assert scheduler.stats.robots_steps == HOSTS  # one robots.txt per host, each a turn of its own

    # a second run sends only conditional requests, and keeps the limits the same way
    walk, _, slots, _ = crawl(portal, tmp_path, workers=16)
    served = portal.log()
    assert {d.outcome for d in walk.documents} == {"not_modified"}
    assert portal.politeness_from_log(slots.log)["min_gap_s"] >= DELAY
    assert portal.politeness_from_log(served)["max_in_flight"] <= 2


def test_concurrency_holds_when_the_delay_is_off(portal: Portal, tmp_path: Path) -> None:
    portal.log()
    _, scheduler, slots, _ = crawl(portal, tmp_path, workers=32, delay=0.0, concurrency=1)
    served = portal.log()
    assert portal.politeness_from_log(slots.log)["max_in_flight"] == 1
    assert portal.politeness_from_log(served)["max_in_flight"] == 1
    assert scheduler.stats.peak_fetching > 1  # hosts side by side


def test_extraction_behind_holds_back_fetching_memory_stays_bounded(portal: Portal, tmp_path: Path) -> None:
    """Files wait for the ingest threads in a bounded backlog; items are not fetched while it is full."""
    archive = open_archive(tmp_path / "slow-archive")

    def slow(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Any) -> IngestOutcome:
        time.sleep(0.01)
        return IngestOutcome(archive.put(data), "new", name, agency=agency, year=year, url=url, portal=portal.id)

    walk, scheduler, _, _ = crawl(portal, tmp_path, workers=8, delay=0.0, ingest=slow, ingest_workers=1, ingest_backlog=2)
    assert len([d for d in walk.documents if d.outcome == "new"]) == HOSTS * 5  # nothing lost to the throttle
    assert scheduler.stats.throttled > 0
    assert scheduler.stats.peak_ingest_backlog <= 2 + 8  # the backlog, plus the fetches in flight when it filled


def test_fetch_threads_grow_with_the_hosts_up_to_the_cap(portal: Portal, tmp_path: Path) -> None:
    """A fixed pool (8 threads, the old GONGKAI_CRAWL_WORKERS) bounded a crawl of thousands of hosts; the threads are
    now what the run's hosts can use (hosts × per-host concurrency), at most the cap."""
    from gongkai.crawler.scheduler import fetch_threads

    assert fetch_threads(3, 2, 256) == 6
    assert fetch_threads(1000, 2, 256) == 256
    assert fetch_threads(0, 2, 256) >= 1
    _, few, _, _ = crawl(portal, tmp_path / "few", workers=256, delay=0.0, hosts=3)
    _, many, _, _ = crawl(portal, tmp_path / "many", workers=256, delay=0.0)
    _, capped, _, _ = crawl(portal, tmp_path / "capped", workers=16, delay=0.0)
    assert (few.stats.fetch_threads, many.stats.fetch_threads, capped.stats.fetch_threads) == (6, 2 * HOSTS, 16)
    assert few.stats.peak_fetching <= 6 and capped.stats.peak_fetching <= 16


def test_each_url_is_parsed_once_between_the_scheduler_and_the_fetcher(portal: Portal, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduler's host_of, its robots.txt check and the fetcher each read a URL (about 0.1 ms of CPU each time):
    the parse is remembered, so a URL is parsed once per run, however often it is asked about."""
    parsed: Counter[str] = Counter()
    real = urls.parse_uncached

    def counting(url: str) -> urls.SafeURL:
        parsed[url] += 1
        return real(url)

    monkeypatch.setattr(urls, "parse_uncached", counting)
    urls._parse_cached.cache_clear()
    walk, _, _, _ = crawl(portal, tmp_path, workers=8, delay=0.0, hosts=4)
    urls._parse_cached.cache_clear()
    assert sorted(d.outcome for d in walk.documents) == ["new"] * 20
    assert parsed and max(parsed.values()) == 1, parsed.most_common(3)
    with pytest.raises(urls.BadURL):  # a refusal is not remembered as an acceptance
        urls.parse("http://a\\@b/")


def test_at_most_parsers_pages_are_parsed_at_once_whatever_the_threads(portal: Portal, tmp_path: Path) -> None:
    """A fetched page is parsed in the step after its fetch (a parse tree costs ~100× the page): with threads sized by
    the hosts, hundreds could parse at once, each holding a tree, for no gain under the GIL. Memory is bounded by
    `parsers`, not by the threads."""
    lock, now, most = threading.Lock(), [0], [0]

    def items(ctx: CrawlContext, portal_: Any, candidate: Any, verdict: Any) -> Any:
        yield Fetch(candidate.url, None)
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        time.sleep(0.005)  # parsing
        with lock:
            now[0] -= 1
        return []

    _, scheduler, _, _ = crawl(portal, tmp_path, workers=64, delay=0.0, items=items, parsers=2)
    assert scheduler.stats.fetch_steps > 100 and scheduler.stats.fetch_threads == 64
    assert 1 <= most[0] <= 2
    assert scheduler.stats.peak_parsing == most[0]


def test_threads_share_the_connections_to_a_host() -> None:
    """Any worker thread may get a host's next turn: with a pool per thread, nearly every request at 1,000 hosts
    opened (and closed) a connection of its own. One pool for the fetcher: the threads reuse a host's connection."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    connections: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            connections.append(self.client_address[1])

        def do_GET(self) -> None:
            body = b"User-agent: *\nAllow: /\n" if self.path == "/robots.txt" else b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{server.server_address[1]}"
    try:
        fetcher = Fetcher([host], delay=0.0, concurrency=1, retries=0)
        for i in range(4):  # one after another, each from a thread of its own
            thread = threading.Thread(target=fetcher.fetch, args=(f"http://{host}/page{i}",), kwargs={"allowed_hosts": [host]})
            thread.start()
            thread.join()
        assert fetcher.requests_sent == 5  # robots.txt and the four pages
        assert len(connections) == 1
    finally:
        server.shutdown()
        server.server_close()


# --- HostSlots, the per-host gate the scheduler and the fetcher share ---------------------------------------

def test_a_turn_is_exact_and_a_turn_given_back_changes_nothing() -> None:
    slots = HostSlots(2, 10.0)
    now = time.monotonic()
    first = slots.try_reserve("a", now)
    assert isinstance(first, Reservation)
    assert slots.try_reserve("a", now + 1) == pytest.approx(now + 10)  # the delay: ask again then
    assert isinstance(slots.try_reserve("b", now), Reservation)  # another host is not held up
    slots.give_back(first)  # not used (the URL was refused before any request)
    assert isinstance(slots.try_reserve("a", now + 1), Reservation)


def test_requests_outside_a_turn_wait_for_the_host_in_their_thread() -> None:
    """Redirect hops and retries are not scheduled turns: they wait, and the limits still hold."""
    slots = HostSlots(2, 0.05, record=True)

    def request() -> None:
        with slots("h"):
            time.sleep(0.02)

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert slots.log is not None and len(slots.log) == 8
    kept = bench_module().politeness_from_log(slots.log)
    assert kept["min_gap_s"] >= 0.05
    assert kept["max_in_flight"] <= 2


def test_a_host_s_waiters_are_not_woken_by_other_hosts_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """One condition for all hosts woke every waiting request on every other host's send and end (128 threads at
    1,000 hosts: a thundering herd, futex time in the kernel). Counted: how often the waiter for host a wakes while
    host b sends 20 requests."""
    woken = Counter[str]()

    class Counting(threading.Condition):
        def wait(self, timeout: float | None = None) -> bool:
            try:
                return super().wait(timeout)
            finally:
                woken[threading.current_thread().name] += 1

    monkeypatch.setattr(threading, "Condition", Counting)
    slots = HostSlots(1, 0.0)
    holding, release = threading.Event(), threading.Event()

    def hold_a() -> None:
        with slots("a") as sent:
            sent()
            holding.set()
            release.wait(10)

    def wait_for_a() -> None:
        with slots("a") as sent:
            sent()

    holder = threading.Thread(target=hold_a)
    holder.start()
    assert holding.wait(10)
    waiter = threading.Thread(target=wait_for_a, name="waiter-for-a")
    waiter.start()
    time.sleep(0.1)  # the waiter is blocked on host a's slot
    for _ in range(20):
        with slots("b") as sent:
            sent()
        time.sleep(0.005)  # lets a woken waiter wait again (else it sleeps through most notifies, GIL held here)
    release.set()
    holder.join(10)
    waiter.join(10)
    assert not waiter.is_alive()
    assert woken["waiter-for-a"] <= 2  # its own host's end (once or twice), not b's 40 events


def test_the_driver_is_told_of_a_host_s_release_only_when_it_asked() -> None:
    """Every request's send and end woke the driver ("released": two events a request, for hosts with nothing
    waiting too). Now only a host refused a turn for its requests in flight is announced, once, when one is sent
    or ends; a turn given back is always announced."""
    released: list[str] = []
    slots = HostSlots(1, 0.0, on_release=released.append)
    for _ in range(5):
        with slots("h") as sent:
            sent()
    assert released == []  # nobody asked
    with slots("h") as sent:
        assert slots.try_reserve("h") == math.inf  # in flight: the driver waits to be told
        sent()
    assert released == ["h"]  # told once, at the send
    assert isinstance(turn := slots.try_reserve("h"), Reservation)
    slots.give_back(turn)
    assert released == ["h", "h"]


def test_a_robots_crawl_delay_lengthens_the_scheduler_delay() -> None:
    slots = HostSlots(2, 0.5)
    fetcher = Fetcher(["www.example.gov.cn"], delay=0.5, gate=slots)
    parser = urllib.robotparser.RobotFileParser()
    parser.parse(["User-agent: *", "Crawl-delay: 3"])
    fetcher._respect_crawl_delay("www.example.gov.cn", parser)
    assert slots.delay_of("www.example.gov.cn") == 3.0
    assert slots.delay_of("other.gov.cn") == 0.5


def test_a_crawl_delay_learnt_after_a_send_holds_for_the_next_request_of_no_turn() -> None:
    """A request without a scheduled turn (a redirect hop that read the host's robots.txt, a retry) waits for the
    host's next start, which the last send set by the delay of then: a Crawl-delay learnt after it must lengthen it."""
    slots = HostSlots(1, 0.0)
    with slots("h") as sent:  # robots.txt
        sent()
    slots.respect_crawl_delay("h", 0.3)
    started = time.monotonic()
    with slots("h") as sent:
        sent()
    assert time.monotonic() - started >= 0.25


def test_finished_calls_do_not_pile_up_in_the_deadline_watch() -> None:
    """Every request's deadline watch used to stay queued for its whole deadline (300 s) after the request ended:
    at a thousand requests a second, hundreds of thousands of them. Then up to 4,096 finished ones (about 1 MB) stayed
    at any load; now at most twice those in flight, or 256."""
    for _ in range(5000):
        with transport.call(("127.0.0.1",), 300.0):
            pass
    assert len(transport._watchdog._heap) <= transport._Watchdog.PRUNE_FLOOR
    in_flight = [transport.call(("127.0.0.1",), 300.0) for _ in range(600)]  # the heap keeps every call in flight
    for current in in_flight:
        current.__enter__()
    assert len(transport._watchdog._heap) >= 600
    for _ in range(3000):
        with transport.call(("127.0.0.1",), 300.0):
            pass
    assert len(transport._watchdog._heap) <= 2 * 600 + 1
    for current in reversed(in_flight):  # last entered, first left (as `with` blocks): else the thread's current call
        current.__exit__(None, None, None)  # stayed a finished one, and a later test's connection used its addresses
    assert getattr(transport._current, "call", None) is None


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_the_crawl_tunes_glibc_malloc_so_freed_bodies_go_back() -> None:
    """Per-thread arenas and a rising mmap threshold kept freed response bodies in the process: the RSS grew with the
    hosts crawled at once. The scheduler sets two arenas and a fixed threshold before its threads start."""
    from gongkai.crawler.scheduler import tune_malloc

    assert tune_malloc() is True


def test_page_text_index_reads_every_element_as_get_text_does() -> None:
    """parse_detail finds where a page's scripts and styles sit once (PageText) instead of walking up and down the tree
    for every cell's text: the same text as get_text for every element of every HTML page of the corpus and the
    portal pages, and of a page with containers within containers, comments and tails."""
    from lxml import etree

    from gongkai.crawler.detail import STRING_CONTAINERS, PageText, _container, _parse, _plain_text, _strings

    def get_text(el: etree._Element, separator: str = "") -> str:
        """The walk per call that PageText replaced (BeautifulSoup's get_text, strip=True): the reference."""
        if el.tag in STRING_CONTAINERS:
            return separator.join(_strings(el, str(el.tag)))
        if next(el.iter(*STRING_CONTAINERS), None) is None and _container(el.getparent()) is None:
            return _plain_text(el, separator)
        return separator.join(_strings(el))

    pages = [p.read_text("utf-8", "replace") for p in sorted((ROOT / "tests" / "corpus" / "documents").glob("*.htm*"))]
    pages += [p.read_text("utf-8", "replace") for p in sorted((ROOT / "tests" / "portals").iterdir()) if p.is_file()]
    pages.append("<html><head><style>a{}<!-- c --></style></head><body><div>x<script>var a;<b>in</b></script>tail"
                 "<template><p>t<style>s</style>u</p></template>v<!-- note -->w<ruby>字<rt>zi</rt></ruby></div></body></html>")
    compared = 0
    for text in pages:
        root = _parse(text)
        assert root is not None
        page = PageText(root)
        for el in root.iter(etree.Element):
            for separator in ("", " "):
                assert page.get(el, separator) == get_text(el, separator)
                compared += 1
    assert compared > 1000


def test_the_collector_is_tuned_during_a_crawl_and_put_back_after(portal: Portal, tmp_path: Path) -> None:
    """At 1,000 hosts the cyclic collector's default thresholds cost some 6 % of a crawl's CPU, mostly full passes over
    the modules loaded before it: during a crawl those are frozen out and the thresholds raised; after it, both are
    as they were."""
    import gc

    from gongkai.crawler.scheduler import CRAWL_GC_THRESHOLD, collector_tuned_for_crawl

    before = gc.get_threshold()
    seen: list[tuple[tuple[int, int, int], int]] = []
    archive = open_archive(tmp_path / "gc-archive")

    def watching(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Any) -> IngestOutcome:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        return IngestOutcome(archive.put(data), "new", name, agency=agency, year=year, url=url, portal=portal.id)

    crawl(portal, tmp_path, workers=8, delay=0.0, ingest=watching, hosts=2)
    assert seen and all(threshold == CRAWL_GC_THRESHOLD and frozen > 0 for threshold, frozen in seen), seen[:3]
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    # two crawls at once in one process (tests, tools): the first to end leaves the tuning to the other
    with collector_tuned_for_crawl():
        with collector_tuned_for_crawl():
            pass
        assert gc.get_threshold() == CRAWL_GC_THRESHOLD
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies")
def test_the_crawl_s_threads_run_without_wake_up_preemption_and_the_caller_s_policy_is_put_back(
        portal: Portal, tmp_path: Path) -> None:
    """A crawl's threads (here an ingest thread, started by the driver) run under SCHED_BATCH: their hand-offs (GIL,
    tasks, responses) no longer preempt the thread that made them. The calling thread's policy is as it was after the
    run, and a thread whose policy was chosen otherwise (SCHED_IDLE) keeps it."""
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    seen: list[int] = []
    archive = open_archive(tmp_path / "policy-archive")

    def watching(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Any) -> IngestOutcome:
        seen.append(os.sched_getscheduler(0))
        return IngestOutcome(archive.put(data), "new", name, agency=agency, year=year, url=url, portal=portal.id)

    crawl(portal, tmp_path, workers=8, delay=0.0, ingest=watching, hosts=2)
    assert seen and set(seen) == {os.SCHED_BATCH}, seen[:3]
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    from gongkai.crawler.scheduler import batch_scheduling

    def idle_thread() -> None:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        with batch_scheduling():
            seen.append(os.sched_getscheduler(0))
        seen.append(os.sched_getscheduler(0))

    seen.clear()
    thread = threading.Thread(target=idle_thread)
    thread.start()
    thread.join()
    assert seen == [os.SCHED_IDLE, os.SCHED_IDLE]


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies")
def test_a_crawl_s_own_os_error_goes_through_its_scheduling_policy_unchanged() -> None:
    """A crawl run by a thread whose policy was chosen otherwise (a unit's CPUSchedulingPolicy=idle, chrt -i), or where
    the switch is refused, ends with its own error: an OSError of the run (a full disk) was taken for the policy's
    and became "RuntimeError: generator didn't stop after throw()"."""
    from gongkai.crawler.scheduler import batch_scheduling

    raised: list[BaseException] = []

    def idle_thread() -> None:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        try:
            with batch_scheduling():
                raise OSError(28, "No space left on device")
        except BaseException as exc:  # (what reaches the caller, whatever it is)
            raised.append(exc)

    thread = threading.Thread(target=idle_thread)
    thread.start()
    thread.join()
    assert [(type(e), e.args) for e in raised] == [(OSError, (28, "No space left on device"))]
    with pytest.raises(OSError, match="No space"), batch_scheduling():  # the usual case: from SCHED_OTHER
        raise OSError(28, "No space left on device")
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies")
def test_extraction_workers_started_by_a_crawl_s_ingest_do_not_keep_its_policy(portal: Portal, tmp_path: Path) -> None:
    """The process's extraction pool (flows.pipeline.extraction_pool) starts its workers at its first use, which in a
    one-process crawl is an ingest thread of the crawl, under SCHED_BATCH. The workers outlive the run (every later
    ingest and reprocess of the process uses them): they are started under the policy the process had, not the crawl's."""
    from gongkai.flows.pipeline import ExtractionPool

    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    pool = ExtractionPool(2)
    archive = open_archive(tmp_path / "pool-archive")

    def extracting(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Any) -> IngestOutcome:
        pool.extract(data, name, sha256=archive.put(data), fmt=None, timeout_s=120)
        return IngestOutcome(archive.put(data), "new", name, agency=agency, year=year, url=url, portal=portal.id)

    try:
        crawl(portal, tmp_path, workers=8, delay=0.0, ingest=extracting, hosts=1)
        executor = pool._executor
        assert executor is not None
        workers = list(executor._processes.values())
        assert workers
        assert [os.sched_getscheduler(w.pid) for w in workers] == [os.SCHED_OTHER] * len(workers)
    finally:
        pool.close()


def test_due_hosts_are_served_the_one_that_will_finish_last_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hosts whose turn has come, more than there are free threads: served by due time alone (as before), a host
    that fell behind stayed behind, and at 1,000 hosts the last finished 3-6 s after the median. Now the host with the
    longest chain of requests left goes first (a listing page brings all its items: the most), and a host with
    little left once it has waited LOOKAHEAD delays past its due time."""
    from gongkai.crawler import scheduler as scheduler_module
    from gongkai.crawler.crawl import ItemJob, PageJob
    from gongkai.crawler.scheduler import _Unit

    slots = HostSlots(2, 1.0)
    sched = CrawlScheduler(None, slots, workers=1)  # type: ignore[arg-type]  # nothing here fetches
    sched._threads = 1
    now = time.monotonic()
    work: dict[str, tuple[float, int, int]] = {  # host: (due, listing pages, items) queued
        "few-items": (now - 0.1, 0, 1),
        "many-items": (now - 0.1, 0, 5),
        "listing": (now - 0.1, 1, 0),
        "listing-after-robots": (now - 0.1, 0, 0),  # its first page, under way since its robots.txt: a unit
        "long-waiting": (now - 1.0 - scheduler_module.LOOKAHEAD, 0, 1),
    }
    for host, (due, pages, items) in work.items():  # scheduled in this order: the old order was (due, then FIFO)
        q = sched._queue(host)
        q.pages.extend([PageJob.__new__(PageJob)] * pages)
        q.items.extend([ItemJob.__new__(ItemJob)] * items)
        if host == "listing-after-robots":
            q.units.append(_Unit(PageJob.__new__(PageJob), iter(())))  # type: ignore[arg-type]
        sched._schedule(host, due)
    served: list[str] = []

    def take(host: str, q: Any, turn: Reservation | None, backed_up: bool, pool: Any) -> None:
        served.append(host)
        q.pages.clear()
        q.items.clear()
        q.units.clear()
        if turn is not None:
            slots.give_back(turn)

    monkeypatch.setattr(sched, "_take", take)
    sched._pump(None, None)  # type: ignore[arg-type]
    assert served == ["long-waiting", "listing", "listing-after-robots", "many-items", "few-items"]


def test_a_stop_waits_for_the_work_in_flight_without_spinning() -> None:
    """During a stop's grace nothing new starts, yet hosts whose time had passed made the driver's wait 0 s: it looped
    on its event queue (competing for the GIL with the fetches it waited for) until the last one ended."""
    import queue as queue_module

    sched = CrawlScheduler(None, HostSlots(2, 1.0), workers=1)  # type: ignore[arg-type]  # nothing here fetches
    sched._threads = 2
    sched._queue("h").items.append(object())  # type: ignore[arg-type]
    sched._schedule("h", time.monotonic() - 5.0)  # due long ago, never started: the stop came first
    sched._open, sched._fetching = 1, 1  # one fetch in flight, reported 0.3 s into the grace
    sched._stop_by = time.monotonic() + 5.0
    waits: list[float | None] = []

    class Counting(queue_module.SimpleQueue):  # type: ignore[type-arg]
        def get(self, block: bool = True, timeout: float | None = None) -> Any:
            waits.append(timeout)
            return super().get(block, timeout)

    sched._events = Counting()
    threading.Timer(0.3, sched._events.put, (("robots",),)).start()
    started = time.monotonic()
    sched._drive(type("NoWalk", (), {"waiting": 0, "start_next": lambda self: None})(), 2)  # type: ignore[arg-type]
    assert time.monotonic() - started < 2.0  # ended when the work in flight did, not at the grace's end
    assert len(waits) <= 3, f"the driver looped {len(waits)} times while one fetch was in flight"


def test_a_file_s_step_does_not_wait_for_a_parser_s_turn() -> None:
    """Every fetch's next step waited for one of the `parsers` turns, a downloaded file's too (its step hands the bytes
    on, no parse): at 1,000 hosts some 100 ms each, holding a fetch thread the driver counted as busy, so fewer
    requests went out on time. A page still waits (the bound on parse trees held at once, tested above)."""
    from gongkai.crawler.crawl import IngestFile
    from gongkai.crawler.scheduler import _Unit as Unit

    class Ctx:
        def fetch(self, portal: Any, url: str, **kwargs: Any) -> Any:
            return type("Reply", (), {"not_modified": False, "content": b"%PDF"})()

    def steps(parses: bool) -> Any:
        reply = yield Fetch("http://127.0.0.1:9/a.pdf", parses=parses)
        yield IngestFile(reply.content, "a.pdf", "http://127.0.0.1:9/a.pdf", None, None, None)  # type: ignore[arg-type]

    from gongkai.crawler.scheduler import Workers

    sched = CrawlScheduler(Ctx(), HostSlots(2, 0.0), workers=4, parsers=1)  # type: ignore[arg-type]
    # the one parser busy with a long parse elsewhere: its thread not started yet, the pages wait in its queue
    sched._parse_pool = parsers = Workers(1, "gongkai-parse")
    outcomes: dict[bool, Any] = {}
    for parses in (False, True):
        unit = Unit(type("Job", (), {"portal": None})(), steps(parses))  # type: ignore[arg-type]
        unit.step = next(unit.steps)
        threading.Thread(target=sched._fetch, args=(unit, None), daemon=True).start()
        try:
            outcomes[parses] = sched._events.get(timeout=0.5 if parses else 5.0)
        except Exception:
            outcomes[parses] = None
    assert outcomes[False] is not None and isinstance(outcomes[False][2][1], IngestFile)  # not held up
    assert outcomes[True] is None  # a page's step waits for the turn
    parsers.start(1)  # the parser free again
    assert sched._events.get(timeout=2.0)[0] == "fetched"
    parsers.shutdown(wait=True, cancel=False)


def test_a_listing_page_under_way_is_fetched_while_extraction_is_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """Listing pages are fetched while the ingest backlog is full (they bring no file, and they bring the work). A first
    page whose host's robots.txt was just fetched waits as a unit, and units were held back: at 1,000 hosts on a loaded
    machine a tenth of the hosts waited 26 s between their robots.txt and their first listing page."""
    from gongkai.crawler.crawl import ItemJob, PageJob
    from gongkai.crawler.scheduler import _Unit

    sched = CrawlScheduler(None, HostSlots(2, 1.0), workers=1, ingest_backlog=1)  # type: ignore[arg-type]
    sched._threads = 4
    sched._ingest_waiting.append(_Unit(ItemJob.__new__(ItemJob), iter(())))  # type: ignore[arg-type]  # backlog full
    sched._ingesting = sched.ingest_workers  # (the ingest threads all busy: nothing leaves the backlog now)
    sched._queue("listing").units.append(_Unit(PageJob.__new__(PageJob), iter(())))  # type: ignore[arg-type]
    sched._queue("item").units.append(_Unit(ItemJob.__new__(ItemJob), iter(())))  # type: ignore[arg-type]
    for host in ("item", "listing"):
        sched._schedule(host, time.monotonic() - 0.1)
    served: list[str] = []

    def take(host: str, q: Any, turn: Reservation | None, backed_up: bool, pool: Any) -> None:
        assert backed_up
        served.append(host)
        q.units.clear()
        if turn is not None:
            sched.slots.give_back(turn)

    monkeypatch.setattr(sched, "_take", take)
    sched._pump(None, None)  # type: ignore[arg-type]
    assert served == ["listing"]  # the item's file waits for the backlog, the listing page does not
    assert sched._throttled == {"item"}
    # and its turn goes to it (not to nothing: _take held every unit back while the backlog was full)
    unit = _Unit(PageJob.__new__(PageJob), iter(()), step=Fetch("http://127.0.0.1:9/list/index.html"))  # type: ignore[arg-type]
    sched._robots_asked.add("http://127.0.0.1:9")
    q = sched._queue("127.0.0.1:9")
    q.units.append(unit)
    submitted: list[Any] = []
    pool = type("Pool", (), {"submit": lambda self, busy, fn, *args: submitted.append(args[0])})()
    CrawlScheduler._take(sched, "127.0.0.1:9", q, None, True, pool)
    assert submitted == [unit] and not q
