"""One crawl split over K local crawler processes, by host: a first crawl of a thousand hosts is bound by one Python
process (the GIL: parsing, TLS-free HTTP and the scheduler's bookkeeping take about a core), so each process crawls a
group of hosts with the crawler as it is (CrawlScheduler, Fetcher, HostSlots, Walk) and the parent keeps every side
effect but one: each file a child downloads it stores in the shared archive itself (the parent's archive, opened by
its location: a folder or s3://…; put is atomic and idempotent across processes) as soon as it is fetched, and sends
the parent its digest, size and what the ingest records (URL, name, agency, year, portal); the parent reads the file
back from the archive (checked against its digest, bounded by the announced size), runs the one ingest path
(`ctx.ingest`: extraction pool, load; not stored again) on a thread of its own and sends back the outcome. No file
bytes cross the pipe and no parent thread waits on the archive's sync. A child does not fsync each file it stores
(some 0.2 CPU-ms of kernel work per file on ext4): a file's message goes to the parent only after a sync of the archive
begun after the file was named (ParentLink.ingest; the ingest threads waiting at once share one syncfs), so no file
reaches the warehouse, and no URL's validators the crawl state (they follow the parent's answer), before its bytes
are on disk; a crash of the machine before that sync costs only files nothing records yet, fetched in full next run
and stored again (or repaired: LocalArchive.put). The crawl state of a child's hosts is
handed to it at the start and its updates come back as it makes them (a batch every UPDATES_EVERY_S, with its progress
events); its walk (documents, portals, noise), the fetcher's request counts and the scheduler's stats come back at its
end and are merged into one summary, as one process would give it.

Portals sharing a host are always in one group (crawler.registry.split_by_host), so politeness per host stays in
one process's HostSlots. A child that dies (killed, crashed) leaves its portals failed with a one-line error, the
crawl-state updates it sent kept (those of its last UPDATES_EVERY_S lost: fetched in full again): the next run retries
them. Killed while storing a file, it leaves nothing of it in the archive (a file is named only once complete), and
a file it stored that the parent never loaded is not committed in the crawl state: fetched again, stored once. A stop
reaches the children (they get the parent's grace, then are killed); a child ends itself when its parent is gone (its
parent's pid, and the pipe's end).
Children are started with `spawn` (safe beside the parent's threads); each takes about a second to import.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from gongkai.crawler import noise
from gongkai.crawler.crawl import CrawlContext, Documents, Limits, Stored, Walk
from gongkai.crawler.fetcher import Fetcher, HostStats
from gongkai.crawler.pictures import MAX_PAGE_PICTURE_BYTES, MAX_PAGE_PICTURES
from gongkai.crawler.registry import Portal, all_hosts, split_by_host
from gongkai.crawler.scheduler import CrawlScheduler, SchedulerStats, Workers, host_slots, tune_malloc
from gongkai.crawler.state import CrawlState, Entry
from gongkai.schema import Schema, adopt_schema, loaded_schema
from gongkai.warehouse.archive import Archive, open_archive
from gongkai.warehouse.store import IngestOutcome

log = logging.getLogger(__name__)

# a process crawls at least this many hosts when the count is left to the machine. Measured (bench_polite_crawl.py,
# 1 s delay): one process sends ~350 requests per CPU-second, so up to a few hundred hosts it keeps up with their
# politeness alone, and a second process only adds its start-up (~1 s, ~1.5 CPU-s: spawn and imports) and the
# files' trip through a pipe: at 100 hosts 2 processes took 12.2 s where one took 10.9 s (bound 11 s)
MIN_HOSTS_PER_PROCESS = 200
POLL_S = 0.2  # how often the parent looks at its children, and a child at its parent
START_TIMEOUT_S = 60.0  # a child that has not said it is ready by then (a machine thrashing) is given up
INGEST_TIMEOUT_S = 1800.0  # a child waits this long for the parent's answer to one file (queued behind others' files)
KILL_AFTER_S = 5.0  # after a stop's grace, what a child may still take to send its results before it is killed
# a child's crawl-state updates and progress events go to the parent together, every UPDATES_EVERY_S or once
# UPDATES_MOST wait: one message each was ~18,000 of a 1,000-host crawl's 23,000, each some 40 µs of the parent's CPU
# (its poll, recv and unpickling, a GIL hand-off) for a few dozen bytes
UPDATES_EVERY_S = 0.05
UPDATES_MOST = 500
# a child's crawl state goes to it in messages of this many entries after its plan, not inside it: the plan pickled whole
# (a few MB at 1,000 hosts, each child's at once, beside the state just read) was the parent's peak at a crawl's start
STATE_PIECE = 1000
MessageSender = Callable[[tuple[Any, ...]], None]
_SHA256 = re.compile(r"[0-9a-f]{64}")


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def process_count(setting: int, hosts: int) -> int:
    """How many crawler processes a crawl of `hosts` hosts gets: `setting` when given (GONGKAI_CRAWL_PROCESSES > 0),
    at most one per host; 0 (the default) lets the machine decide: its cores, each process given at least
    MIN_HOSTS_PER_PROCESS hosts, so a small crawl stays in one process."""
    if setting > 0:
        return max(1, min(setting, hosts))
    return max(1, min(cores(), hosts // MIN_HOSTS_PER_PROCESS))


def prefect_api_url() -> str | None:
    """The Prefect server this process talks to, when it is a real one (PREFECT_API_URL, from the environment or a
    profile); None with Prefect's ephemeral server, which lives inside one process, or Prefect not in use (the
    per-host limits import it before a crawl starts)."""
    if "prefect" not in sys.modules:
        return None
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    return str(url) if url else None


def processes_with_prefect_limits(processes: int) -> int:
    """Per-host limits on the Prefect server (--prefect-limits, a shard): the children take their slots on the parent's
    server (a spawned child reads Prefect's settings as the parent did: the environment, the profile). Without a
    server of its own (the ephemeral one) a child would start another, so the crawl stays in one process. (Hosts are
    disjoint between children: their own HostSlots keep politeness whichever way.)"""
    if processes > 1 and prefect_api_url() is None:
        log.info("per-host limits on Prefect's ephemeral server: the crawl stays in one process (set PREFECT_API_URL)")
        return 1
    return processes


# --- the child ----------------------------------------------------------------------------------------------------

@dataclass
class ChildPlan:
    """What a child is given: its portals, the fetcher's factory (picklable: crawler.politeness.Politeness.fetcher), the
    crawl state of its hosts, the run's settings."""

    index: int
    portals: list[Portal]
    make_fetcher: Callable[[frozenset[str]], Fetcher]
    state: dict[str, Entry]  # as the parent keeps it (crawler.state.pack); sent after the plan (`state_pieces`)
    years: frozenset[int] | None
    limits: Limits | None
    workers: int
    ingest_workers: int
    grace: float
    ingest_timeout: float = INGEST_TIMEOUT_S
    schema: Schema | None = None  # the parent's, validated: the child reads its title rules without loading its own
    # the archive the parent's ingest reads from, by its location (a folder, or s3://… with the AWS settings of the
    # environment the child inherits): the child stores each file it fetches there
    archive: str | None = None
    state_pieces: int = 0  # the ("state", entries) messages following the plan: its `state` sent apart, STATE_PIECE at a time
    portals_in_progress: int = 0  # the child's scheduler admits at most this many portals at once (0: derived)


@dataclass
class ChildResult:
    """What a child sends back at its end: its walk and its fetcher's counts (its crawl state went as it changed)."""

    portals: dict[str, dict[str, Any]]
    rejected: list[dict[str, Any]]
    noted: list[tuple[str, str]]
    documents: Documents  # compact tuples: also what is pickled to the parent
    requests: int
    hosts: dict[str, dict[str, int]]
    scheduler: dict[str, int]
    stopped: bool = False


class RecordingState(CrawlState):
    """The crawl state in a child: the entries of its hosts, in memory; each commit and forget sent to the parent
    (`sink`: within UPDATES_EVERY_S), for the parent's state to save during the crawl (its autosave), so a child or a command
    killed mid-crawl keeps the validators of what was loaded. A commit follows its document's load (the parent's
    answer to the ingest), so no validator reaches the parent before its document is loaded."""

    def __init__(self, entries: dict[str, Entry], sink: Callable[[str, Entry | None], None]) -> None:
        super().__init__(None)
        self._entries = dict(entries)
        self._sink = sink

    def commit_entry(self, url: str, entry: Entry) -> None:
        # sent to the parent and not kept: nothing in this run reads a URL's state after committing it (the parent
        # keeps and saves it), so the child's memory does not grow with the URLs it crawls
        with self._lock:
            self._entries.pop(url, None)
        self._sink(url, entry)

    def forget(self, url: str) -> None:
        super().forget(url)
        self._sink(url, None)


class ParentLink:
    """The child's end of the pipe: ingests sent with a request id, answers matched by a receiving thread (several
    ingests in flight, one per ingest thread of the child's scheduler); a stop from the parent, or the parent gone,
    makes `stopped()` true. `archive`: the shared archive, for a file not stored in it when fetched."""

    def __init__(self, conn: Any, portals: list[Portal], timeout: float, archive: Archive | None = None) -> None:
        self.conn, self.timeout, self.archive = conn, timeout, archive
        self.portals = {p.id: p for p in portals}
        self._send_lock = threading.Lock()
        self._ids = itertools.count()
        self._waiting: dict[int, tuple[threading.Event, list[Any]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.gone = False
        # crawl-state updates (url, entry or None) and progress events [name, n] waiting to go (`flush`), in order
        self._states: list[tuple[str, Entry | None]] = []
        self._events: list[list[Any]] = []
        self._updates_lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one flush at a time: batches reach the parent in the order they were taken
        threading.Thread(target=self._receive, daemon=True, name="gongkai-parent-link").start()
        threading.Thread(target=self._flush_every, daemon=True, name="gongkai-parent-updates").start()

    def send(self, message: tuple[Any, ...]) -> None:
        if message[0] in ("done", "crashed"):
            self.flush()  # the parent reads nothing after these: the updates still waiting go first
        with self._send_lock:
            self.conn.send(message)

    def flush(self) -> None:
        """Send the crawl-state updates and progress events waiting, as one ("updates", states, events) message."""
        with self._flush_lock:
            with self._updates_lock:
                if not self._states and not self._events:
                    return
                states, events = self._states, self._events
                self._states, self._events = [], []
            try:
                with self._send_lock:
                    self.conn.send(("updates", states, events))
            except (OSError, ValueError):  # the parent is gone (the receiving thread stops the crawl): nothing to save them
                pass

    def _flush_every(self) -> None:
        while not self.gone:  # after a stop too: the crawl ends its work in flight, whose updates still go
            time.sleep(UPDATES_EVERY_S)
            self.flush()

    def _receive(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):  # the parent is gone: stop, and fail every ingest waiting
                self.gone = True
                self._stop.set()
                with self._lock:
                    for event, box in self._waiting.values():
                        box.append((None, "the parent process is gone"))
                        event.set()
                return
            if message[0] == "stop":
                self._stop.set()
            elif message[0] == "reply":
                _, rid, outcome, error = message
                with self._lock:
                    waiting = self._waiting.pop(rid, None)
                if waiting is not None:
                    waiting[1].append((outcome, error))
                    waiting[0].set()

    def stopped(self) -> bool:
        return self._stop.is_set()

    def event(self, name: str, n: int = 1) -> None:
        """A progress event, sent with the next batch of updates (a run of one name summed: "done" 5, not 5 × 1)."""
        with self._updates_lock:
            if self._events and self._events[-1][0] == name:
                self._events[-1][1] += n
            else:
                self._events.append([name, n])

    def state(self, url: str, entry: Entry | None) -> None:
        """A crawl-state update (None: forgotten), for the parent to save during the crawl: sent within
        UPDATES_EVERY_S, with the others waiting (a child killed loses at most that slice: re-fetched in full next run)."""
        with self._updates_lock:
            self._states.append((url, entry))
            full = len(self._states) >= UPDATES_MOST
        if full:
            self.flush()

    def ingest(self, data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Portal,
               pictures: dict[str, bytes | None] | None = None, stored: Stored | None = None) -> IngestOutcome:
        """The parent's ingest path, called from this child: the file in the shared archive (`stored` when it was
        fetched: CrawlContext.archive; else stored here), its digest and metadata to the parent, no bytes; blocks this
        ingest thread until the parent answers."""
        if stored is None:
            if self.archive is None:
                raise RuntimeError("no archive to store the file in: a crawler process is given its parent's")
            stored = Stored.put(self.archive, data, pictures)
        if self.archive is not None:
            # the parent loads the file into the warehouse as soon as it hears of it: its bytes (and its pictures') on
            # disk first, this child's archive not fsyncing each put (child_main). A sync that fails raises, here and
            # for every file of this child not covered by an earlier sync: each fails with its line, nothing recorded,
            # fetched in full next run
            self.archive.sync()
        rid, event = next(self._ids), threading.Event()
        box: list[Any] = []
        with self._lock:
            self._waiting[rid] = (event, box)
        if self.gone:  # after the entry is in: the receiving thread, ending, fails every entry it finds
            raise RuntimeError("the parent process is gone")
        meta = {"sha256": stored.sha256, "size": stored.size, "name": name, "url": url, "agency": agency, "year": year,
                "portal": portal.id, "pictures": stored.pictures or None}
        with self._send_lock:
            self.conn.send(("ingest", rid, meta))
        if not event.wait(self.timeout):
            with self._lock:
                self._waiting.pop(rid, None)
            raise TimeoutError(f"no answer from the parent's ingest in {self.timeout:g} s")
        outcome, error = box[0]
        if error is not None:
            raise RuntimeError(error)
        assert isinstance(outcome, IngestOutcome)
        return outcome


def _watch_parent(parent: int) -> None:
    """A child never outlives its parent: re-parented (the parent killed), it ends itself."""
    while os.getppid() == parent:
        time.sleep(POLL_S)
    os._exit(1)


def receive_plan(conn: Any) -> ChildPlan | None:
    """A child's plan with the crawl state of its hosts, which follows it in pieces (_send_plan); None when the parent
    sent none in START_TIMEOUT_S or is gone."""
    if not conn.poll(START_TIMEOUT_S):
        return None
    try:
        kind, plan = conn.recv()
        assert kind == "plan" and isinstance(plan, ChildPlan)
        for _ in range(plan.state_pieces):
            kind, piece = conn.recv()
            assert kind == "state"
            plan.state.update(piece)
    except (EOFError, OSError):
        return None
    return plan


def child_main(conn: Any, parent_pid: int) -> None:
    """A crawler process: the crawler as it is over its portals, the ingest path the parent's."""
    # a terminal's Ctrl-C reaches the whole process group: the parent decides how to stop and tells the children
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="gongkai-parent-watch").start()
    plan = receive_plan(conn)
    if plan is None:
        return
    if plan.schema is not None:
        adopt_schema(plan.schema)
    link = ParentLink(conn, plan.portals, plan.ingest_timeout)
    try:
        # the parent's archive (one it cannot open: a crashed line, this child's portals failed before any request)
        # its puts not synced one by one: ParentLink.ingest syncs (shared) before a file's message goes to the parent
        archive = link.archive = open_archive(plan.archive, sync_each=False) if plan.archive is not None else None
        fetcher = plan.make_fetcher(all_hosts(plan.portals))
        state = RecordingState(plan.state, sink=link.state)
        ctx = CrawlContext(fetcher, state, link.ingest, plan.years, archive=archive)
        walk = Walk(ctx, plan.portals, plan.limits)
        scheduler = CrawlScheduler(ctx, host_slots(fetcher), workers=plan.workers, ingest_workers=plan.ingest_workers,
                                   listener=link.event, should_stop=link.stopped, grace=plan.grace,
                                   portals_in_progress=plan.portals_in_progress)
        link.send(("ready",))
        scheduler.run(walk)
        result = ChildResult(
            portals=walk.portal_summaries(), rejected=walk.rejected, noted=walk.noted,
            documents=walk.documents, requests=fetcher.requests_sent, hosts=fetcher.host_stats(),
            scheduler=asdict(scheduler.stats), stopped=link.stopped())
        link.send(("done", result))
    except Exception as exc:  # a bug or a broken set-up: one line to the parent, which fails this child's portals
        try:
            link.send(("crashed", f"{type(exc).__name__}: {exc}".splitlines()[0]))
        except (OSError, ValueError):
            pass
    finally:
        conn.close()


# --- the parent ---------------------------------------------------------------------------------------------------

@dataclass
class Child:
    index: int
    portals: list[Portal]
    process: Any
    conn: Any
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    result: ChildResult | None = None
    error: str | None = None  # why it ended without a result
    ready: bool = False
    ready_s: float | None = None  # from start to ready: the spawn and the imports
    started: float = field(default_factory=time.monotonic)
    ingested: Documents = field(default_factory=Documents)  # the parent's outcomes for its files (kept if it dies)
    finished: threading.Event = field(default_factory=threading.Event)
    # its files at the parent not yet answered, at most its plan's ingest_workers (`_serve` sets it): a child sending
    # more ahead of the answers (a bug; an ingest it stopped waiting for) waits, it does not fill the parent's memory
    files: threading.Semaphore | None = None
    killed_after_stop: bool = False  # still running after a stop's grace: the parent killed it
    # a stop asked for before the child had its whole plan waits for it (`stop`, `_send_plan`)
    stop_lock: threading.Lock = field(default_factory=threading.Lock)
    plan_sent: bool = False
    stop_asked: bool = False

    def stop(self) -> None:
        """Tell the child to stop: at once when it has its plan, else right after the plan's last piece. Nothing may
        come between the plan and its pieces (receive_plan reads only those: a stop among them failed the child), and
        the parent does not wait on a plan the child is not reading (the send holds send_lock while the pipe is full:
        the stop blocked there, and with it the kill after the stop's grace that would free it)."""
        with self.stop_lock:
            self.stop_asked = True
            if not self.plan_sent:
                return
        self.send(("stop",))

    def send(self, message: tuple[Any, ...]) -> bool:
        try:
            with self.send_lock:
                self.conn.send(message)
            return True
        except (OSError, ValueError):  # the child is gone: its reader records why
            return False


@contextmanager
def _no_interrupts_while_starting() -> Iterator[None]:
    """SIGINT blocked while a child starts: the spawned process inherits the mask, so a Ctrl-C arriving while it
    imports stays pending until the child ignores it (as the extraction pool's workers do)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _state_entries(state: CrawlState, hosts: frozenset[str]) -> dict[str, Entry]:
    """The parent's crawl state of these hosts (a portal fetches only from its own hosts, so this is all a child
    can ask for): what was read at the start, with this run's commits not yet saved."""
    return state.entries(hosts)


def _absorb_fetcher(fetcher: Fetcher, requests: int, hosts: dict[str, dict[str, int]]) -> None:
    """The children's request counts into the parent's fetcher: the run summary reads them there, as in one process."""
    with fetcher._lock:
        fetcher.requests_sent += requests
        for host, counts in hosts.items():
            stats = fetcher._stats.setdefault(host, HostStats())
            for name, value in counts.items():
                setattr(stats, name, getattr(stats, name) + value)


def crawl_in_processes(
    portals: list[Portal], ctx: CrawlContext, *, processes: int, make_fetcher: Callable[[frozenset[str]], Fetcher],
    archive: Archive, workers: int = 128, limits: Limits | None = None, ingest_workers: int = 2,
    listener: Callable[[str, int], None] | None = None, should_stop: Callable[[], bool] | None = None,
    grace: float = 3.0, ingest_timeout: float = INGEST_TIMEOUT_S, portals_in_progress: int = 0,
) -> dict[str, Any]:
    """One crawl over `processes` child processes (portals split by host); the summary of crawl_portals, with
    "processes". `ctx` is the parent's: its ingest, crawl state and fetcher (whose counts take in the children's).
    `archive`: the one ctx's ingest stores in; the children store their files there (opened by its location), the
    parent reads each back from it and hands it to ctx.ingest with `archived=` its digest (not stored again).
    `workers` (requests in flight across hosts) is shared out between the children; `ingest_workers` is the files each
    child may have in flight to the parent, each given a thread of the parent's (so none waits on another's turn: a
    long extraction of one child's file never holds another's file in a queue). `portals_in_progress`: each child's
    admission (crawler.scheduler.admitted_portals; 0: derived from its delay)."""
    # each child's portals in the order given (split_by_host sorts them by id): the ones the last run did not reach first
    position = {p.id: i for i, p in enumerate(portals)}
    groups = [sorted(group, key=lambda p: position[p.id]) for group in split_by_host(portals, processes)]
    by_id = {p.id: p for p in portals}
    # the parent reads every file back (a few hundred kB) on as many threads as the children's files in flight: glibc's
    # defaults (an arena per thread, the mmap threshold raised past the first large block freed) kept the freed files in
    # the heap, and the parent's peak grew with the crawl. Tuned as a crawler process is, its peak at 1,000 hosts fell
    # by some 15 MiB of 101 (bench_polite_crawl.py, two processes); a malloc_trim after the merge too changed nothing
    tune_malloc()
    spawn = multiprocessing.get_context("spawn")
    # the parent's ingest threads, all started at once (the threads serving the children `put` to them): as many as the
    # files the children may have in flight, so no file waits for another child's turn
    ingest_pool = Workers(max(1, ingest_workers) * len(groups), "gongkai-child-ingest")
    ingest_pool.start(ingest_pool.most)
    children: list[Child] = []
    started = time.perf_counter()
    try:
        for index, group in enumerate(groups):
            parent_end, child_end = spawn.Pipe()
            plan = ChildPlan(index, group, make_fetcher, _state_entries(ctx.state, all_hosts(group)), ctx.years, limits,
                             -(-workers // len(groups)), ingest_workers, grace, ingest_timeout, archive=archive.location,
                             portals_in_progress=portals_in_progress)
            process = spawn.Process(target=child_main, args=(child_end, os.getpid()), daemon=True,
                                    name=f"gongkai-crawler-{index + 1}-of-{len(groups)}")
            child = Child(index, group, process, parent_end)
            with _no_interrupts_while_starting():
                process.start()
            child_end.close()  # the parent keeps only its end: the child's end closing is its death
            children.append(child)
            # the plan (the crawl state of its hosts: megabytes) is sent by the child's thread: the children start at once
            threading.Thread(target=_serve, args=(child, plan, ctx, by_id, ingest_pool, listener, archive), daemon=True,
                             name=f"gongkai-child-{index + 1}").start()
        # the walk bounds each portal (its deadline), fetches and ingests their own time: the crawl ends by then
        bound = None if limits is None or limits.deadline_s is None else limits.deadline_s + ingest_timeout + grace + 60.0
        _wait(children, should_stop, grace, bound)
    finally:
        for child in children:
            _end(child)
        ingest_pool.shutdown(wait=True, cancel=True)  # the children are gone: files not started are dropped
    log.info("crawl in %d processes: %.1f s", len(children), time.perf_counter() - started)
    return _merge(portals, children, ctx, len(groups))


def _serve(child: Child, plan: ChildPlan, ctx: CrawlContext, by_id: dict[str, Portal], pool: Workers,
           listener: Callable[[str, int], None] | None, archive: Archive) -> None:
    """Send a child its plan, then read its messages until it ends: ingests go to the parent's pool, crawl-state
    updates to its state, events to the listener."""
    # a file is at most what the crawl's fetcher reads of a body (a stand-in context without one: no bound)
    reader = ArchivedFiles(archive, getattr(getattr(ctx, "fetcher", None), "max_bytes", None))
    files = child.files = threading.Semaphore(max(1, plan.ingest_workers))
    try:
        # the parent's schema when it has one (the flows: their extraction loaded it): ~0.6 ms to unpickle in each
        # child where loading costs ~100 ms. Not loaded here for them: that would hold back every child's plan; a
        # child without it loads its own at its first title, after its first requests
        _send_plan(child, replace(plan, schema=loaded_schema()))
        while True:
            if not child.conn.poll(POLL_S):
                if not child.process.is_alive() and not child.conn.poll(0):
                    break
                if not child.ready and time.monotonic() - child.started > START_TIMEOUT_S:
                    child.error = f"did not start in {START_TIMEOUT_S:g} s"
                    break
                continue
            message = child.conn.recv()
            kind = message[0]
            if kind == "ingest":
                _, rid, meta = message  # another shape: the stream cannot be answered, this child's portals fail
                while not files.acquire(timeout=POLL_S):  # its next message is not read until a place is free
                    if not child.process.is_alive():
                        raise EOFError
                pool.put(_ingest_for, child, ctx, by_id, reader, rid, meta)
            elif kind == "updates":
                _apply_states(ctx.state, message[1])
                if listener is not None:
                    for name, n in message[2]:
                        listener(name, n)
            elif kind == "ready":
                child.ready, child.ready_s = True, time.monotonic() - child.started
            elif kind == "done":
                child.result = message[1]
                break
            elif kind == "crashed":
                child.error = f"crashed: {message[1]}"
                break
    except (EOFError, OSError):
        pass
    except Exception as exc:  # a message that does not unpickle: this child's portals fail, the others go on
        child.error = f"sent what the parent cannot read ({type(exc).__name__}: {exc})".splitlines()[0]
    finally:
        if child.result is None and child.error is None:
            child.process.join(KILL_AFTER_S)
            child.error = ("did not end within the stop's grace" if child.killed_after_stop
                           else _death(child.process.exitcode))
        child.finished.set()


def _send_plan(child: Child, plan: ChildPlan) -> None:
    """The plan, then its crawl state in pieces of STATE_PIECE entries: never the whole state pickled at once."""
    entries = iter(plan.state.items())
    pieces = -(-len(plan.state) // STATE_PIECE)
    sent = child.send(("plan", replace(plan, state={}, state_pieces=pieces)))
    for _ in range(pieces):
        if not sent:
            break  # the child is gone: its reader records why
        sent = child.send(("state", dict(itertools.islice(entries, STATE_PIECE))))
    with child.stop_lock:  # a stop asked for meanwhile (Child.stop) goes now, after the plan's last piece
        child.plan_sent = True
        stop = child.stop_asked
    if stop and sent:
        child.send(("stop",))


def _apply_states(state: CrawlState, updates: list[tuple[str, Entry | None]]) -> None:
    for url, entry in updates:  # in the order the child made them
        if entry is None:
            state.forget(url)
        else:
            state.commit_entry(url, entry)


def _death(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            return f"was killed ({signal.Signals(-code).name})"
        except ValueError:
            return f"was killed (signal {-code})"
    return f"ended with exit code {code}"


class ArchivedFiles:
    """The parent's reading of a file a child says it stored: its digest well-formed (only a digest becomes a path), its
    announced size within the crawl's bound (`most`: the fetcher's max_bytes), the archive holding it, read back with
    no more than the announced size and checked against its digest (the archive's get); its pictures likewise, at most
    MAX_PAGE_PICTURES of them, bounded together as picture_steps bounds them. Anything else is one line (ValueError,
    LookupError, the archive's OSError) before more is read."""

    def __init__(self, archive: Archive, most: int | None) -> None:
        self.archive, self.most = archive, most

    def read(self, sha256: Any, size: Any, pictures: Any) -> tuple[bytes, dict[str, bytes | None]]:
        """The file and its pictures (by src), as a child's message or a stored step names them."""
        return self.file(sha256, size), self.pictures(pictures)

    def file(self, sha256: Any, size: Any) -> bytes:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or (self.most is not None and size > self.most):
            raise ValueError(f"a file of {size!r} bytes announced (a file has 0 to {self.most} bytes)"[:200])
        data = self._read("file", sha256, size)
        if len(data) != size:
            raise ValueError(f"file {sha256} has {len(data)} bytes in the archive where {size} were announced")
        return data

    def pictures(self, digests: Any) -> dict[str, bytes | None]:
        """A page's linked pictures by src (None: an icon skipped); their sizes are not announced. The bound is the
        one crawler.pictures.picture_steps fetched them by: a picture is taken while the page's pictures before it
        hold less than MAX_PAGE_PICTURE_BYTES, each within the fetcher's cap (so the last may cross the page's bound,
        as it did in the child: refusing it failed a page one process loads)."""
        if not digests:
            return {}
        if not isinstance(digests, dict) or len(digests) > MAX_PAGE_PICTURES:
            raise ValueError(f"pictures: a mapping of at most {MAX_PAGE_PICTURES} src to digest expected")
        held = 0
        read: dict[str, bytes | None] = {}
        for src, sha256 in digests.items():
            if not isinstance(src, str):
                raise ValueError(f"a picture's src is not text: {src!r}"[:200])
            if sha256 is not None and held >= MAX_PAGE_PICTURE_BYTES:
                raise ValueError(f"picture {src!r} past the {MAX_PAGE_PICTURE_BYTES} bytes a page's pictures hold"[:200])
            data = None if sha256 is None else self._read("picture", sha256, self.most or MAX_PAGE_PICTURE_BYTES)
            held += len(data or b"")
            read[src] = data
        return read

    def _read(self, what: str, sha256: Any, most: int) -> bytes:
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a sha256 digest: {sha256!r}"[:200])
        try:
            return self.archive.get(sha256, most=most if self.most is None else min(most, self.most))
        except FileNotFoundError:
            raise LookupError(f"{what} {sha256} is not in the archive {self.archive.location}") from None


def reading_back(ingest: Callable[..., IngestOutcome], files: ArchivedFiles) -> Callable[..., IngestOutcome]:
    """The one-process crawl's ingest (CrawlContext.archive set): a file stored in the archive where it was fetched
    comes with `stored=` (its digest, size, pictures' digests), is read back through `files` as the parent reads a
    child's (bounded, checked against its digest) and goes to `ingest` with `archived=` its digest: not stored again.
    Anything else (`archived=` from a child's file, a step without `stored`) goes to `ingest` as it is."""

    def ingest_stored(data: bytes, *, stored: Stored | None = None, **meta: Any) -> IngestOutcome:
        if stored is None:
            return ingest(data, **meta)
        # a ValueError / LookupError / OSError: the item's one line
        data, pictures = files.read(stored.sha256, stored.size, stored.pictures)
        meta.pop("pictures", None)  # a stored step has its pictures' digests only (IngestFile.stored_in)
        return ingest(data, **meta, archived=stored.sha256, **({"pictures": pictures} if pictures else {}))

    return ingest_stored


def _ingest_for(child: Child, ctx: CrawlContext, by_id: dict[str, Portal], files: ArchivedFiles, rid: Any,
                meta: Any) -> None:
    """One file of a child through the parent's ingest path, read back from the archive; the outcome (or the error's
    line) goes back."""
    outcome, error = None, None
    # a header the parent cannot use (a portal it does not know, a file not in the archive) is answered too: the child
    # does not wait it out
    try:
        portal = by_id[meta["portal"]]
        sha256 = meta["sha256"]
        data, pictures = files.read(sha256, meta["size"], meta["pictures"])
        url, agency, year = meta["url"], meta["agency"], meta["year"]
        outcome = ctx.ingest(data, name=meta["name"], url=url, agency=agency, year=year, portal=portal, archived=sha256,
                             **({"pictures": pictures} if pictures else {}))
        del data, pictures
        # listed in the summary if the child dies before it sends its own view of the file
        child.ingested.append(replace(outcome, url=url, portal=portal.id, agency=agency, year=year))
    except Exception as exc:  # the child's item step gets it raised, as the ingest thread of one process would
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    if child.files is not None:
        child.files.release()  # before the answer: the child's next file may follow it at once
    child.send(("reply", rid, outcome, error))


def _wait(children: list[Child], should_stop: Callable[[], bool] | None, grace: float, bound_s: float | None) -> None:
    """Until every child ended; a stop (or the crawl's bound passed) is passed on, and after its grace (and a bound
    for sending back) the children still running are killed."""
    kill_at: float | None = None
    give_up_at = None if bound_s is None else time.monotonic() + bound_s
    while not all(c.finished.is_set() for c in children):
        past_bound = give_up_at is not None and time.monotonic() > give_up_at
        if kill_at is None and (past_bound or (should_stop is not None and should_stop())):
            if past_bound:
                log.warning("crawler processes still running after %.0f s: stopping them", bound_s)
            for child in children:
                child.stop()
            kill_at = time.monotonic() + grace + KILL_AFTER_S
        if kill_at is not None and time.monotonic() > kill_at:
            for child in children:
                if not child.finished.is_set():
                    child.killed_after_stop = True
                    child.process.kill()
            for child in children:
                child.finished.wait(KILL_AFTER_S + 2 * POLL_S)
            return
        for child in children:  # past the start timeout with a margin: its thread gives it up first when it can
            late = time.monotonic() - child.started > START_TIMEOUT_S + KILL_AFTER_S
            if late and not child.ready and not child.finished.is_set():
                _give_up_starting(child)
        for child in children:
            if not child.finished.is_set():
                child.finished.wait(POLL_S)
                break


def _give_up_starting(child: Child) -> None:
    """A child not ready in START_TIMEOUT_S that its thread has not given up: that thread is blocked sending it a plan
    it does not read (hung in its imports, say), and never looks at the time. Killed, which fails the send and ends the
    thread; without this the parent waited on it for the whole crawl's bound, or forever without one."""
    if child.error is None:
        child.error = f"did not start in {START_TIMEOUT_S:g} s"
    if child.process.is_alive():
        child.process.kill()


def _end(child: Child) -> None:
    if child.process.is_alive():
        child.process.join(KILL_AFTER_S if child.result is not None else 0)
    if child.process.is_alive():
        child.process.kill()
        child.process.join(KILL_AFTER_S)
    child.conn.close()


def _merge(portals: list[Portal], children: list[Child], ctx: CrawlContext, processes: int) -> dict[str, Any]:
    """The children's results as one crawl's summary (crawl_portals's shape); a child without a result: its portals
    failed, the documents the parent loaded for it listed."""
    by_portal: dict[str, dict[str, Any]] = {}
    rejected: list[dict[str, Any]] = []
    noted: list[tuple[str, str]] = []
    documents = Documents()
    stats = {f.name: 0 for f in fields(SchedulerStats)}
    for child in sorted(children, key=lambda c: c.index):
        result = child.result
        if result is None:
            error = (f"crawler process {child.index + 1} of {processes} {child.error} before its portals were done; "
                     "the next run retries them")
            log.warning("%s (portals %s)", error, ", ".join(p.id for p in child.portals))
            for portal in child.portals:
                by_portal[portal.id] = {"status": "failed", "error": error, "pages": 0, "listed": 0,
                                        "listing_from_cache": False}
            documents.extend(child.ingested)
            continue
        by_portal.update(result.portals)
        rejected.extend(result.rejected)
        noted.extend(result.noted)
        documents.extend(result.documents)
        _absorb_fetcher(ctx.fetcher, result.requests, result.hosts)
        for name, value in result.scheduler.items():
            stats[name] = stats.get(name, 0) + value  # peaks too: summed over processes running at once
    docs = documents.as_dicts()
    return {"portals": {p.id: by_portal[p.id] for p in portals if p.id in by_portal}, "rejected": rejected,
            "documents": docs, "noise": noise.summarise(noted, docs), "scheduler": stats, "processes": processes,
            "process_start_s": max((c.ready_s or 0.0 for c in children), default=0.0)}
