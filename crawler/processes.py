"""One crawl split over K local crawler processes, by host: a first crawl of a thousand hosts is bound by one Python
process (the GIL: parsing, TLS-free HTTP and the scheduler's bookkeeping take about a core), so each process crawls a
group of hosts with the crawler as it is (CrawlScheduler, Fetcher, HostSlots, Walk) and the parent keeps every side
effect: each file a child downloads is sent to the parent, which runs the one ingest path (`ctx.ingest`: archive,
extraction pool, load) on a thread of its own and sends back the outcome; the crawl state of a child's hosts is
handed to it at the start and its updates come back as it makes them (a batch every UPDATES_EVERY_S, with its progress
events); its walk (documents, portals, noise), the fetcher's request counts and the scheduler's stats come back at its
end and are merged into one summary, as one process would give it.

Portals sharing a host are always in one group (crawler.registry.split_by_host), so politeness per host stays in
one process's HostSlots. A child that dies (killed, crashed) leaves its portals failed with a one-line error, the
crawl-state updates it sent kept (those of its last UPDATES_EVERY_S lost: fetched in full again): the next run retries
them. A stop reaches the children (they get the parent's
grace, then are killed); a child ends itself when its parent is gone (its parent's pid, and the pipe's end).
Children are started with `spawn` (safe beside the parent's threads); each takes about a second to import.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import signal
import socket
import stat
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from gongkai.crawler import noise
from gongkai.crawler.crawl import CrawlContext, Documents, Limits, Walk
from gongkai.crawler.fetcher import Fetcher, HostStats
from gongkai.crawler.registry import Portal, all_hosts, split_by_host
from gongkai.crawler.scheduler import CrawlScheduler, SchedulerStats, Workers, host_slots
from gongkai.crawler.state import CrawlState, Entry
from gongkai.schema import Schema, adopt_schema, loaded_schema
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
MessageSender = Callable[[tuple[Any, ...]], None]


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
    state: dict[str, Entry]  # as the parent keeps it (crawler.state.pack)
    years: frozenset[int] | None
    limits: Limits | None
    workers: int
    ingest_workers: int
    grace: float
    ingest_timeout: float = INGEST_TIMEOUT_S
    schema: Schema | None = None  # the parent's, validated: the child reads its title rules without loading its own


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
    makes `stopped()` true."""

    def __init__(self, conn: Any, portals: list[Portal], timeout: float) -> None:
        self.conn, self.timeout = conn, timeout
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
               pictures: dict[str, bytes | None] | None = None) -> IngestOutcome:
        """The parent's ingest path, called from this child: blocks this ingest thread until the parent answers."""
        rid, event = next(self._ids), threading.Event()
        box: list[Any] = []
        with self._lock:
            self._waiting[rid] = (event, box)
        if self.gone:
            raise RuntimeError("the parent process is gone")
        meta = {"name": name, "url": url, "agency": agency, "year": year, "portal": portal.id, "pictures": pictures or None}
        with self._send_lock:  # the header, then the file's bytes as they are (not pickled: no copy of them on either side)
            self.conn.send(("ingest", rid, len(data), meta))
            self.conn.send_bytes(data)
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


def child_main(conn: Any, parent_pid: int) -> None:
    """A crawler process: the crawler as it is over its portals, the ingest path the parent's."""
    # a terminal's Ctrl-C reaches the whole process group: the parent decides how to stop and tells the children
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="gongkai-parent-watch").start()
    if not conn.poll(START_TIMEOUT_S):
        return
    try:
        kind, plan = conn.recv()
    except (EOFError, OSError):
        return
    assert kind == "plan" and isinstance(plan, ChildPlan)
    if plan.schema is not None:
        adopt_schema(plan.schema)
    link = ParentLink(conn, plan.portals, plan.ingest_timeout)
    try:
        fetcher = plan.make_fetcher(all_hosts(plan.portals))
        state = RecordingState(plan.state, sink=link.state)
        ctx = CrawlContext(fetcher, state, link.ingest, plan.years)
        walk = Walk(ctx, plan.portals, plan.limits)
        scheduler = CrawlScheduler(ctx, host_slots(fetcher), workers=plan.workers, ingest_workers=plan.ingest_workers,
                                   listener=link.event, should_stop=link.stopped, grace=plan.grace)
        link.send(("ready",))
        scheduler.run(walk)
        result = ChildResult(
            portals={pid: p.summary() for pid, p in walk.progress.items()}, rejected=walk.rejected, noted=walk.noted,
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


class BodyReader:
    """Reads a file's bytes sent by a child (`ParentLink.ingest`: conn.send_bytes) as one bytes object of its size: on a
    socket (multiprocessing's duplex Pipe on Linux) one recv of the whole body (MSG_WAITALL), not Connection.recv_bytes,
    which reads chunks of the remainder into a BytesIO and copies them: for a 100 kB file that allocation churn (glibc
    giving the pages back, faulting them in again) cost ~80 µs of the parent's CPU, about what pickling the bytes did.
    Elsewhere (a pipe) recv_bytes. Only the thread serving the child reads its connection. `most`: the largest file
    a child may send (its fetcher's max_bytes); a header announcing more, or a frame whose length is not the one
    announced, is refused before anything is allocated or read (a child's bug, or a corrupted stream)."""

    def __init__(self, conn: Any, most: int | None = None) -> None:
        self.conn = conn
        self.most = most
        self._sock: socket.socket | None = None
        try:
            if stat.S_ISSOCK(os.fstat(conn.fileno()).st_mode):
                self._sock = socket.fromfd(conn.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)  # a duplicate of the fd
        except (OSError, AttributeError):  # closed already, or a connection without a file descriptor: recv_bytes
            self._sock = None

    def read(self, size: int) -> bytes:
        if not isinstance(size, int) or size < 0 or (self.most is not None and size > self.most):
            raise ValueError(f"a file of {size!r} bytes announced, more than the {self.most} a file may have")
        data: bytes
        if self._sock is None:
            try:
                data = self.conn.recv_bytes(size + 1)  # a longer one is refused before it is read
            except OSError as exc:
                raise ValueError(f"a file of more than the {size} bytes announced ({exc})") from exc
        else:
            length, = struct.unpack("!i", self._exactly(4))  # multiprocessing's framing: a 4-byte length, -1 then 8
            if length == -1:
                length = struct.unpack("!Q", self._exactly(8))[0]
            if length != size:
                raise ValueError(f"a file of {length} bytes where {size} were announced")
            data = self._exactly(length)
        if len(data) != size:
            raise ValueError(f"a file of {len(data)} bytes where {size} were announced")
        return data

    def _exactly(self, n: int) -> bytes:
        assert self._sock is not None
        data = self._sock.recv(n, socket.MSG_WAITALL) if n else b""
        while 0 < len(data) < n:  # cut short by a signal: the rest (rare, so a copy is fine)
            more = self._sock.recv(n - len(data), socket.MSG_WAITALL)
            if not more:
                break
            data += more
        if len(data) < n:
            raise EOFError("the crawler process closed its end mid-file")
        return data

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()


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
    workers: int = 128, limits: Limits | None = None, ingest_workers: int = 2,
    listener: Callable[[str, int], None] | None = None, should_stop: Callable[[], bool] | None = None,
    grace: float = 3.0, ingest_timeout: float = INGEST_TIMEOUT_S,
) -> dict[str, Any]:
    """One crawl over `processes` child processes (portals split by host); the summary of crawl_portals, with
    "processes". `ctx` is the parent's: its ingest, crawl state and fetcher (whose counts take in the children's).
    `workers` (requests in flight across hosts) is shared out between the children; `ingest_workers` is the files each
    child may have in flight to the parent, each given a thread of the parent's (so none waits on another's turn: with
    as many threads as one child's files, a 1,000-host crawl's archive writes waited some 5 ms each and its children
    spilled ~750 files to disk)."""
    groups = split_by_host(portals, processes)
    by_id = {p.id: p for p in portals}
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
                             -(-workers // len(groups)), ingest_workers, grace, ingest_timeout)
            process = spawn.Process(target=child_main, args=(child_end, os.getpid()), daemon=True,
                                    name=f"gongkai-crawler-{index + 1}-of-{len(groups)}")
            child = Child(index, group, process, parent_end)
            with _no_interrupts_while_starting():
                process.start()
            child_end.close()  # the parent keeps only its end: the child's end closing is its death
            children.append(child)
            # the plan (the crawl state of its hosts: megabytes) is sent by the child's thread: the children start at once
            threading.Thread(target=_serve, args=(child, plan, ctx, by_id, ingest_pool, listener), daemon=True,
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
           listener: Callable[[str, int], None] | None) -> None:
    """Send a child its plan, then read its messages until it ends: ingests go to the parent's pool, crawl-state
    updates to its state, events to the listener."""
    # a file is at most what the crawl's fetcher reads of a body (a stand-in context without one: no bound)
    body = BodyReader(child.conn, getattr(getattr(ctx, "fetcher", None), "max_bytes", None))
    files = child.files = threading.Semaphore(max(1, plan.ingest_workers))
    try:
        # the parent's schema when it has one (the flows: their extraction loaded it): ~0.6 ms to unpickle in each
        # child where loading costs ~100 ms. Not loaded here for them: that would hold back every child's plan; a
        # child without it loads its own at its first title, after its first requests
        child.send(("plan", replace(plan, schema=loaded_schema())))
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
                while not files.acquire(timeout=POLL_S):  # its bytes stay in the child until a place is free
                    if not child.process.is_alive():
                        raise EOFError
                pool.put(_ingest_for, child, ctx, by_id, message, body.read(message[2]))
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
        body.close()
        if child.result is None and child.error is None:
            child.process.join(KILL_AFTER_S)
            child.error = ("did not end within the stop's grace" if child.killed_after_stop
                           else _death(child.process.exitcode))
        child.finished.set()


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


def _ingest_for(child: Child, ctx: CrawlContext, by_id: dict[str, Portal], message: tuple[Any, ...], data: bytes) -> None:
    """One file of a child through the parent's ingest path; the outcome (or the error's line) goes back."""
    _, rid, _size, meta = message
    outcome, error = None, None
    try:  # a header the parent cannot use (a portal it does not know) is answered too: the child does not wait it out
        pictures = meta.pop("pictures")
        portal = by_id[meta.pop("portal")]
        outcome = ctx.ingest(data, portal=portal, **meta, **({"pictures": pictures} if pictures else {}))
        # listed in the summary if the child dies before it sends its own view of the file
        child.ingested.append(replace(outcome, url=meta["url"], portal=portal.id, agency=meta["agency"], year=meta["year"]))
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
                child.send(("stop",))
            kill_at = time.monotonic() + grace + KILL_AFTER_S
        if kill_at is not None and time.monotonic() > kill_at:
            for child in children:
                if not child.finished.is_set():
                    child.killed_after_stop = True
                    child.process.kill()
            for child in children:
                child.finished.wait(KILL_AFTER_S + 2 * POLL_S)
            return
        for child in children:
            if not child.finished.is_set():
                child.finished.wait(POLL_S)
                break


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
