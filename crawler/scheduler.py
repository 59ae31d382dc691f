"""The crawl scheduler: politeness, not threads, bounds the crawl.

A run's work (listing pages, listing items: crawler.crawl's step generators) waits in per-host queues. A host is
released when its turn has come (fewer than `concurrency` requests in flight and `delay` seconds since its last
request started); only then does a worker thread take its next fetch. No worker ever sleeps out a host's delay:
while one host waits, the workers serve the others, so a run over thousands of hosts keeps them all busy at
once and each at exactly its limit.

- HostSlots is the per-host gate, shared by the scheduler (which reserves a host's turn without waiting) and the
  fetcher (every request it sends goes through it). A request the scheduler reserved starts at once; any other
  (a redirect hop, a retry after its backoff) waits in its thread for the host's turn, as before. robots.txt is
  fetched as a step of its own, so a host's first page does not wait a delay behind it.
- The fetcher is unchanged: robots.txt, the host allow-list, pinned connections, retries, conditional GETs.
- Files go to the ingest path (extraction in the one bounded process pool) on a few threads of their own, fed
  from a bounded backlog: when extraction falls behind, no new item is fetched (listing pages still are) until
  it catches up, so memory stays flat however many hosts are crawled.

One driver thread (the caller's) owns the Walk and every queue; workers only run steps and report back.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import heapq
import itertools
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from gongkai import schema
from gongkai.crawler import urls
from gongkai.crawler.adapters import parser_for
from gongkai.crawler.crawl import (
    CrawlContext,
    Fetch,
    IngestFile,
    ItemJob,
    PageJob,
    Steps,
    Walk,
    ingest_kwargs,
    item_steps,
    page_steps,
)
from gongkai.crawler.fetcher import FetchError
from gongkai.crawler.policy import batch_scheduling
from gongkai.crawler.registry import Portal

log = logging.getLogger(__name__)

Gate = Callable[[str], AbstractContextManager[Any]]


@dataclass(slots=True)
class _Host:
    delay: float
    # the host's own condition (on HostSlots' one lock): a request waiting for this host is woken by this host's
    # events only, not by every other host's (with 128 threads a shared one woke each waiter for all of them). Made
    # when a request first waits for the host (HostSlots._wait): a Condition is ~1 kB, and most hosts' requests are
    # given their turns by the scheduler and never wait
    changed: threading.Condition | None = None
    in_flight: int = 0  # requests started or reserved, not yet finished
    sending: int = 0  # requests started and not yet sent
    last_start: float = -math.inf  # when the last request was sent
    next_start: float = -math.inf  # the earliest the next turn may be given (reservations included)
    # a turn was refused for requests in flight: on_release is due at the next send or end (only then: two events
    # a request woke the driver for every host, wanted or not)
    wanted: bool = False


@dataclass(slots=True)
class Reservation:
    """A host's turn, given to one step by the scheduler; used by the step's first request or given back."""

    host: str
    previous: float  # the host's next_start before this turn
    promised: float  # the next_start this turn set
    used: bool = False


class HostSlots:
    """Per host: at most `concurrency` requests in flight, and `delay` seconds between request starts (a robots.txt
    Crawl-delay lengthens it). Every start is checked against the last actual start, so the delay holds exactly even
    when a worker picks its turn up late. `on_release(host)` is called when a host that was refused a turn for its
    requests in flight (try_reserve gave math.inf) may have one again, and when a turn is given back."""

    def __init__(self, concurrency: int, delay: float, *, inner: Gate | None = None,
                 on_release: Callable[[str], None] | None = None, record: bool = False) -> None:
        self.concurrency, self.delay = concurrency, delay
        # every request as (host, start, end) when asked for (tests, the benchmark): the limits as kept here
        self.log: list[tuple[str, float, float]] | None = [] if record else None
        self.inner = inner  # e.g. Prefect's global limits, across processes; taken inside this gate
        self.on_release = on_release
        self._lock = threading.Lock()
        self._hosts: dict[str, _Host] = {}
        self._local = threading.local()
        self._resting: dict[str, float] = {}  # forgotten hosts: the earliest their next request may start
        self._resting_sweep = 64

    def _host(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _Host(self.delay)
            if self._resting:
                self._recall(host, state)
        return state

    # -- hosts done with (flat memory): see CrawlScheduler._host_finished ----------------------------------
    def forget(self, host: str, now: float | None = None) -> bool:
        """Drop an idle host's entry, keeping only when its next request may start (a float, dropped once that time
        has passed), so a host seen again (a redirect to it, a later portal) still waits its delay. A host with a
        request in flight or reserved is kept (False)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            state = self._hosts.get(host)
            if state is None or state.in_flight or state.sending or _has_waiters(state.changed):
                return state is None  # a request waiting for its delay (not yet in flight) holds this very entry
            del self._hosts[host]
            not_before = max(state.next_start, state.last_start + state.delay)
            if not_before > now:
                self._resting[host] = not_before
            if len(self._resting) >= self._resting_sweep:  # amortised: what has passed is dropped
                self._sweep_resting_locked(now)
            return True

    def sweep_resting(self, now: float | None = None) -> int:
        """Drop the kept start times that have passed (a new entry would allow the same); returns how many are left."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return self._sweep_resting_locked(now)

    def _sweep_resting_locked(self, now: float) -> int:
        # the lock is a plain Lock (not reentrant): forget() sweeps while holding it
        self._resting = {h: t for h, t in self._resting.items() if t > now}
        self._resting_sweep = max(64, 2 * len(self._resting))
        return len(self._resting)

    def _recall(self, host: str, state: _Host) -> None:
        not_before = self._resting.pop(host, None)
        if not_before is not None:  # forgotten earlier in the run: its delay still holds from its last request
            state.next_start = not_before
            state.last_start = not_before - state.delay

    def respect_crawl_delay(self, host: str, seconds: float) -> None:
        with self._lock:
            state = self._host(host)
            state.delay = max(state.delay, seconds)
            # the next start counted from the last with the longer delay: a request not on a scheduled turn (a redirect
            # hop that read the host's robots.txt, a retry) waits for next_start, set at the last send by the old delay
            state.next_start = max(state.next_start, state.last_start + state.delay)

    def delay_of(self, host: str) -> float:
        with self._lock:
            return self._host(host).delay

    def try_reserve(self, host: str, now: float | None = None) -> Reservation | float:
        """The host's turn now, or when to ask again (math.inf: when one of its requests is sent or ends)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            state = self._host(host)
            if state.in_flight >= self.concurrency or state.sending:
                state.wanted = True
                return math.inf
            if now < state.next_start:
                return state.next_start
            turn = Reservation(host, state.next_start, now + state.delay)
            state.in_flight += 1
            state.next_start = turn.promised
            return turn

    def holding(self, turn: Reservation | None) -> _Holding:
        """Run a step with its turn: the step's first request to the turn's host uses it; unused, it is given back."""
        return _Holding(self, turn)

    def give_back(self, turn: Reservation) -> None:
        with self._lock:
            state = self._host(turn.host)
            state.in_flight -= 1
            if state.next_start == turn.promised:  # nobody took a turn after it: as if it had not been given
                state.next_start = max(turn.previous, state.last_start + state.delay)
            _notify(state)
        if self.on_release:
            self.on_release(turn.host)

    def _start(self, host: str) -> _Request:
        """Wait (if need be) until this request may be sent. A request counts from when its bytes were sent (its
        `sent()`, called by the transport): the next one to the host waits for that, so a request held up in this
        process between its turn and the wire (a busy CPU, a slow connect) can never arrive close behind another."""
        turn: Reservation | None = getattr(self._local, "turn", None)
        with self._lock:
            state = self._host(host)
            if turn is not None and turn.host == host and not turn.used:
                turn.used = True
                self._local.turn = None
                # counted in flight since it was reserved; the delay is kept from the last request actually sent
                while state.sending or (wait := state.last_start + state.delay - time.monotonic()) > 0:
                    self._wait(state, None if state.sending else wait)
            else:  # not a scheduled turn (a redirect hop, a retry): wait for the host in this thread
                while True:
                    now = time.monotonic()
                    if state.in_flight < self.concurrency and not state.sending and now >= state.next_start:
                        break
                    busy = state.in_flight >= self.concurrency or state.sending
                    self._wait(state, None if busy else state.next_start - now)
                state.in_flight += 1
            state.sending += 1
            state.next_start = max(state.next_start, time.monotonic() + state.delay)
            return _Request(self, host)

    def _wait(self, state: _Host, timeout: float | None) -> None:
        """Wait (under the lock) for the host's next event; its condition made on the first wait, then kept (a waiter
        holds it: a new one in its place would never wake it)."""
        if state.changed is None:
            state.changed = threading.Condition(self._lock)
        state.changed.wait(timeout)

    def _sent(self, request: _Request) -> None:
        with self._lock:
            if request.sent_at is not None:
                return
            state = self._host(request.host)
            now = request.sent_at = time.monotonic()
            state.sending -= 1
            state.last_start = now
            state.next_start = max(state.next_start, now + state.delay)
            _notify(state)
            wanted, state.wanted = state.wanted, False
        if wanted and self.on_release:
            self.on_release(request.host)

    def _end(self, request: _Request) -> None:
        self._sent(request)  # never sent (no connection): counted as sent now, the delay kept from here
        with self._lock:
            state = self._host(request.host)
            state.in_flight -= 1
            if self.log is not None:
                assert request.sent_at is not None
                self.log.append((request.host, request.sent_at, time.monotonic()))
            _notify(state)
            wanted, state.wanted = state.wanted, False
        if wanted and self.on_release:
            self.on_release(request.host)

    def __call__(self, host: str) -> AbstractContextManager[Callable[[], None]]:
        """The fetcher's gate: `with slots(host) as sent:` around each request; `sent()` once its bytes are out."""
        if self.inner is not None:
            return self._inner_gate(host)
        return _Gate(self, host)  # a class, not a generator: its frames and wrappers cost more than the rest per request

    @contextmanager
    def _inner_gate(self, host: str) -> Iterator[Callable[[], None]]:
        request = self._start(host)
        try:
            assert self.inner is not None
            with self.inner(host):
                yield request.sent
        finally:
            self._end(request)


class _Holding:
    """HostSlots.holding's block (a class: one per step)."""

    __slots__ = ("slots", "turn")

    def __init__(self, slots: HostSlots, turn: Reservation | None) -> None:
        self.slots, self.turn = slots, turn

    def __enter__(self) -> None:
        self.slots._local.turn = self.turn

    def __exit__(self, *exc: object) -> None:
        self.slots._local.turn = None
        turn = self.turn
        if turn is not None and not turn.used:
            self.slots.give_back(turn)


class _Gate:
    """HostSlots' gate around one request with no inner gate: its turn taken on entering, ended on leaving."""

    __slots__ = ("slots", "host", "request")

    def __init__(self, slots: HostSlots, host: str) -> None:
        self.slots, self.host = slots, host

    def __enter__(self) -> Callable[[], None]:
        self.request = self.slots._start(self.host)
        return self.request.sent

    def __exit__(self, *exc: object) -> None:
        self.slots._end(self.request)


def _has_waiters(condition: threading.Condition | None) -> bool:
    if condition is None:  # no request ever waited for the host
        return False
    return bool(getattr(condition, "_waiters", True))  # CPython's; unknown (another runtime): assume waiters, keep


def _notify(state: _Host) -> None:
    if state.changed is not None:
        state.changed.notify_all()


class _Request:
    def __init__(self, slots: HostSlots, host: str) -> None:
        self.slots, self.host = slots, host
        self.sent_at: float | None = None

    def sent(self) -> None:
        self.slots._sent(self)


@dataclass(slots=True)
class _Unit:
    """One page or item job under way: its steps and the step it waits on."""

    job: PageJob | ItemJob
    steps: Steps
    step: Fetch | IngestFile | None = None

    @property
    def portal(self) -> Portal:
        return self.job.portal


# a host's empty list of work: one shared empty tuple (read only: len, bool, [0], iteration), not an empty list each
_NO_WORK: Any = ()


class _Queue:
    """A host's waiting work: units under way first (they hold memory), then listing pages, then items. Lists, made
    when work is put in them and dropped when emptied: with every host in progress at once, the three deques per host
    (624 bytes each however empty: a deque's first block) were 1.9 MB at 1,000 hosts. Taking from a list's front moves
    what follows (a deque would not), but each take is one request to the host, a politeness delay after its last: a
    host with 100,000 items waiting costs some 15 us a second. The scheduler reads `_units`, `_pages`, `_items` (a
    list or an empty tuple) and puts and takes through the methods; `units`, `pages`, `items` give the list itself,
    made if need be."""

    __slots__ = ("_units", "_pages", "_items")

    def __init__(self) -> None:
        self._units: list[_Unit] = _NO_WORK
        self._pages: list[PageJob] = _NO_WORK
        self._items: list[ItemJob] = _NO_WORK

    @property
    def units(self) -> list[_Unit]:
        if self._units is _NO_WORK:
            self._units = []
        return self._units

    @property
    def pages(self) -> list[PageJob]:
        if self._pages is _NO_WORK:
            self._pages = []
        return self._pages

    @property
    def items(self) -> list[ItemJob]:
        if self._items is _NO_WORK:
            self._items = []
        return self._items

    def __bool__(self) -> bool:
        return bool(self._units or self._pages or self._items)

    def listing_first(self) -> bool:
        """Whether the next unit is a listing page under way (after its host's robots.txt, a first page waits here as
        a unit): fetched while extraction is behind, as listing pages are (it brings no file)."""
        return bool(self._units) and isinstance(self._units[0].job, PageJob)

    def put_unit(self, unit: _Unit, *, first: bool = False) -> None:
        if first:
            self.units.insert(0, unit)
        else:
            self.units.append(unit)

    def take_unit(self) -> _Unit:
        unit = self._units.pop(0)
        if not self._units:
            self._units = _NO_WORK
        return unit

    def take_page(self) -> PageJob:
        page = self._pages.pop(0)
        if not self._pages:
            self._pages = _NO_WORK
        return page

    def take_item(self) -> ItemJob:
        item = self._items.pop(0)
        if not self._items:
            self._items = _NO_WORK
        return item


def host_of(url: str) -> str | None:
    """The politeness key (host[:port]) a URL is sent to; None when the URL is refused before any request.
    urls.parse remembers the URLs it accepted: the scheduler and the fetcher parse each one once between them."""
    try:
        return urls.parse(url).key
    except urls.BadURL:
        return None


def origin_of(url: str) -> str | None:
    try:
        return urls.parse(url).origin
    except urls.BadURL:
        return None


_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # glibc's mallopt parameters (malloc.h)


@functools.cache
def tune_malloc() -> bool:
    """Keep the crawl's memory flat under glibc (once per process; False where there is no glibc mallopt): with a
    hundred threads each holding a response body of a few hundred kB, glibc gives each thread an arena of its own and,
    after the first large free, raises its mmap threshold, so freed bodies stay in the arenas and the RSS grows with how
    many hosts are crawled at once (182 MB at 1,000 hosts against 99 MB at 100). Two arenas and a fixed 128 kB
    threshold (bodies above it mapped and unmapped) measured 154 MB at 1,000 hosts, and no slower."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, 2)) and bool(mallopt(_M_MMAP_THRESHOLD, 128 * 1024))


# seconds between two malloc_trim calls of a running crawl's driver. The heap's free memory (bodies and parse trees
# given back by a hundred threads) stays resident until reused: 4-12 MB at the peak of a 1,000-host crawl, and more the
# more hosts are in progress. Trimmed every 2 s the peak was 3-5 MB lower at 1,000 hosts (unchanged at 100), for some
# 3 ms of CPU per trim (0.06 s of a 20 CPU-s crawl) and the pages touched again after it
MALLOC_TRIM_S = 2.0


@functools.cache
def malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim (free heap pages given back to the system), or None where there is none."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim  # a CDLL call releases the GIL: the other threads run meanwhile
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


# gen0 collections every 7,000 net allocations instead of 700 (each older generation after 10 younger ones): a crawl
# allocates many short-lived containers, and at 1,000 hosts the default thresholds cost some 6 % of its CPU, most of
# it full collections walking the modules and schema loaded before the crawl (frozen out of them during it)
CRAWL_GC_THRESHOLD = (7000, 10, 10)
_gc_lock = threading.Lock()
_gc_runs: list[tuple[int, int, int]] = []  # the thresholds before the first crawl still running in this process


@contextmanager
def collector_tuned_for_crawl() -> Iterator[None]:
    """While a crawl runs: objects that existed before it frozen out of the cyclic collector's passes, and its
    thresholds raised; both put back when the last crawl running in the process ends. Measured at 1,000 hosts:
    1.6 CPU-s in the collector for the two runs of bench_polite_crawl, 0.5 s so."""
    with _gc_lock:
        if not _gc_runs:
            gc.freeze()
            _gc_runs.append(gc.get_threshold())
            gc.set_threshold(*CRAWL_GC_THRESHOLD)
        else:
            _gc_runs.append(_gc_runs[0])
    try:
        yield
    finally:
        with _gc_lock:
            before = _gc_runs.pop()
            if not _gc_runs:
                gc.set_threshold(*before)
                gc.unfreeze()


def fetch_threads(hosts: int, concurrency: int, cap: int) -> int:
    """Requests in flight across hosts: enough for every host to use all its slots at once, at most `cap`
    (GONGKAI_CRAWL_WORKERS). With 1 s delay and 100 ms latency, 1,000 hosts need some 100 in flight;
    on 2 cores 128 did better than 256 (CPU-bound: more threads only hold more responses)."""
    return max(1, min(cap, max(1, hosts) * max(1, concurrency)))


def warm_up(portals: Iterable[Portal]) -> None:
    """Load what a crawl's first listing pages need while its robots.txt requests are out: their adapters and the
    schema's title rules (a crawler process is given its parent's schema only when the parent had loaded one). Loaded
    lazily, they were loaded on the driver thread at the first listing page done, and every host's turn waited for it:
    at 1,000 hosts the listing page of each host after the first hundred went out 0.2-0.3 s behind its delay, and each
    host's chain of requests, so the whole crawl, ended that much later. A failure is left to the driver, which meets
    the same error where it reads the schema, as before."""
    try:
        for cms in {portal.cms for portal in portals}:
            parser_for(cms)
        schema.current_schema()
    except Exception:  # e.g. a SchemaError: raised again, with its message, where the crawl reads the schema
        log.debug("warming up the crawl failed", exc_info=True)


# requests a second one crawler process can send, rounded up: CPU-bound on one core, 600-800 were measured at 1,000
# hosts (bench_polite_crawl.py --processes 1)
PROCESS_REQUESTS_S = 1000
# the fewest portals admitted at once, whatever the delay: well above the 1,000 hosts of the benchmark's one process
ADMISSION_FLOOR = 2000


def admitted_portals(setting: int, delay: float) -> int:
    """How many portals one scheduler run keeps in progress at once (GONGKAI_CRAWL_PORTALS_IN_PROGRESS; 0: derived).
    Every portal in progress holds memory (its queued work, its hosts' slots, robots.txt and connections, responses in
    flight: some 30 kB a host), and a host sends at most one request per `delay` (a longer Crawl-delay: fewer; the
    per-host concurrency only lets a slow response overlap the next start). So R x delay hosts keep a process sending
    its R requests a second, and any more only wait in their queues, each making every other host's turns later.
    Derived: twice that (hosts do not all send at their limit: robots.txt first, a portal's last requests, slow
    responses, longer Crawl-delays), at least ADMISSION_FLOOR: 2,000 at the default 1 s delay."""
    if setting > 0:
        return setting
    return max(ADMISSION_FLOOR, math.ceil(2 * PROCESS_REQUESTS_S * delay))


# how many requests ahead the serving order looks (CrawlScheduler._urgency): a host with more left than this is
# served as one with this many, so none waits longer than this many delays for those with more to do
LOOKAHEAD = 16


class Workers:
    """Up to `most` threads running tasks from one C queue, a thread started when every one is busy. Not a
    ThreadPoolExecutor: its Future (a Condition and a lock each), work item and idle semaphore (a Condition in Python)
    per task were some 5 % of a crawl's CPU, and the scheduler reads no result (each task reports through the
    driver's events). Only the driver thread submits; `put` from any thread feeds threads `start`ed before."""

    def __init__(self, most: int, name: str) -> None:
        self.most, self.name = max(1, most), name
        self._tasks: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._cancelled = False

    def submit(self, busy: int, fn: Callable[..., None], *args: Any) -> None:
        """Run fn(*args) on a worker; `busy`: the tasks submitted and not yet reported done, this one included."""
        if busy > len(self._threads):
            self.start(len(self._threads) + 1)
        self._tasks.put((fn, args))

    def start(self, count: int) -> None:
        """Start threads until there are `count` (at most `most`), for tasks `put` from other threads."""
        while len(self._threads) < min(count, self.most):
            thread = threading.Thread(target=self._work, name=f"{self.name}_{len(self._threads)}")
            thread.start()
            self._threads.append(thread)

    def put(self, fn: Callable[..., None], *args: Any) -> None:
        """Queue fn(*args) from any thread, for the threads already started (`start`): none is started here."""
        self._tasks.put((fn, args))

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            if self._cancelled:
                continue  # a stop: what had not started is dropped
            fn, args = task
            try:
                fn(*args)
            except Exception:  # the tasks report their own errors; a bug here must not end the worker silently
                log.exception("crawl worker task %s failed", getattr(fn, "__name__", fn))
            del task, fn, args  # not held while waiting for the next task

    def shutdown(self, *, wait: bool, cancel: bool) -> None:
        """After the tasks queued (or, when `cancel`, instead of them) the workers end; `wait`: join them."""
        self._cancelled = self._cancelled or cancel
        for _ in self._threads:
            self._tasks.put(None)
        if wait:
            for thread in self._threads:
                thread.join()


@dataclass
class SchedulerStats:
    fetch_steps: int = 0
    robots_steps: int = 0
    ingests: int = 0
    peak_fetching: int = 0
    peak_ingest_backlog: int = 0
    throttled: int = 0  # times an item waited because extraction was behind
    fetch_threads: int = 0  # the threads this run was given (by its hosts, at most the `workers` cap)
    peak_parsing: int = 0  # steps run at once after their fetch (parsing a page): at most `parsers`
    hosts_finished: int = 0  # hosts whose work was done and whose connections, robots.txt, slots were dropped
    peak_portals_in_progress: int = 0  # the most portals with work queued or under way at once (admission: at most N)


class CrawlScheduler:
    """Runs one Walk: up to `workers` threads fetch (one request each at a time, never waiting on a delay; as many as
    the run's hosts can use: hosts × per-host concurrency), `ingest_workers` threads hand files to the ingest path, at
    most `ingest_backlog` files wait for them, at most `parsers` fetched pages are parsed at once, at most
    `portals_in_progress` portals have work queued or under way (the next in registry order starts when one ends)."""

    def __init__(self, ctx: CrawlContext, slots: HostSlots, *, workers: int = 128, ingest_workers: int = 2,
                 ingest_backlog: int | None = None, pages: Callable[..., Steps] = page_steps,
                 items: Callable[..., Steps] = item_steps, listener: Callable[[str, int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None, grace: float = 3.0, parsers: int = 2,
                 portals_in_progress: int = 0) -> None:
        self.ctx, self.slots = ctx, slots
        # admission: at most this many portals in progress at once (0: derived from the delay, admitted_portals); the
        # others wait, in registry order, as the Walk's Portal objects, and start as portals finish
        self.portals_in_progress = admitted_portals(portals_in_progress, slots.delay)
        # a stop (Ctrl-C, SIGTERM): nothing new starts; what is in flight gets `grace` seconds, the rest is left
        self.should_stop, self.grace = should_stop, grace
        self._stop_by: float | None = None
        self.workers, self.ingest_workers = max(1, workers), max(1, ingest_workers)
        # a step after a fetch parses the page (a parse tree is ~100× the page): CPU work that more threads cannot
        # speed up under the GIL, only hold more trees at once. So at most `parsers` at a time, whatever the threads
        self.parsers = max(1, parsers)
        # run on `parsers` threads of their own (_parse), fed by the fetch threads: lxml keeps, per thread that parsed, a
        # dictionary of the names and short strings of what it parsed (60-280 kB each, as long as the thread lives), so
        # parsing on whichever fetch thread fetched the page held 14-36 MB in 128 threads; now in `parsers` threads only
        self._parse_pool: Workers | None = None
        self._parsing_now = 0
        self._parsing_lock = threading.Lock()
        # files fetched and waiting for the ingest threads: no item starts while `ingest_backlog` wait (each fetch in
        # flight may still bring one: 95 waited at 1,000 hosts). Each is in the crawl's archive already (ctx.archive:
        # stored where it was fetched), so what waits is its digest; only a crawl without an archive holds the bytes
        self.ingest_backlog = ingest_backlog if ingest_backlog is not None else max(32, 2 * self.ingest_workers)
        self.page_steps, self.item_steps = pages, items
        self.listener = listener
        self.stats = SchedulerStats()
        self._events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._queues: dict[str | None, _Queue] = {}
        self._due: list[tuple[float, int, str | None]] = []  # hosts with waiting work, by when to look at them next
        # hosts whose time has come, waiting for a fetch thread: the longest chain of work left first (_urgency)
        self._ready: list[tuple[float, int, str | None]] = []
        self._scheduled: set[str | None] = set()
        self._seq = itertools.count()
        self._robots_asked: set[str] = set()
        self._ingest_waiting: deque[_Unit] = deque()
        self._throttled: set[str | None] = set()  # hosts with only items waiting while extraction is behind
        self._fetching = self._ingesting = 0
        self._open = 0  # jobs queued or under way
        # flat memory: a host is finished once every portal that may send work to it has no job open (_host_finished)
        self._portal_jobs: dict[str, int] = {}  # portal id -> its jobs queued or under way
        # host -> how many portals with open jobs may send work to it (a count, not a set of them: 216 bytes a host)
        self._host_users: dict[str, int] = {}
        self._hosts_done: set[str] = set()  # finished, to be forgotten once the driver holds no turn of theirs
        self._closer: Workers | None = None  # runs Fetcher.forget_host off the driver thread
        slots.on_release = self._released  # one scheduler per run: the slots wake this one

    # -- events from other threads ------------------------------------------------------------------------
    def _released(self, host: str) -> None:
        self._events.put(("released", host))

    # -- the driver ---------------------------------------------------------------------------------------
    def run(self, walk: Walk) -> Walk:
        hosts = {h for portal in walk.portals for h in portal.hosts}
        self.stats.fetch_threads = threads = fetch_threads(len(hosts), self.slots.concurrency, self.workers)
        self._threads = threads
        tune_malloc()
        with batch_scheduling():  # first: the threads made below (warm-up, pools) inherit it from this one
            warming = threading.Thread(target=warm_up, args=(walk.portals,), daemon=True,
                                       name="gongkai-warm-up")
            warming.start()
            try:
                with collector_tuned_for_crawl():
                    return self._drive(walk, threads)
            finally:
                warming.join()  # a crawl shorter than the loading (a refused robots.txt) ends after it: no import at exit

    def _drive(self, walk: Walk, threads: int) -> Walk:
        self.walk = walk  # read by the driver's helpers (_admit, _finish, _take)
        fetch_pool = Workers(threads, "gongkai-fetch")
        ingest_pool = Workers(self.ingest_workers, "gongkai-ingest")
        self._parse_pool = parse_pool = Workers(self.parsers, "gongkai-parse")
        parse_pool.start(self.parsers)  # before any fetch: the fetch threads queue their pages to it
        try:
            self._admit()
            trim, trim_at = malloc_trim(), time.monotonic() + MALLOC_TRIM_S
            while self._open or walk.waiting:
                if trim is not None and time.monotonic() >= trim_at:
                    trim(0)
                    trim_at = time.monotonic() + MALLOC_TRIM_S
                if self._stopping():  # nothing new admitted: the portals waiting are reported not crawled
                    if self._fetching + self._ingesting == 0 or time.monotonic() > (self._stop_by or 0.0):
                        break
                else:
                    self._admit()
                    if not self._open:
                        continue  # every portal left had nothing to ask for
                    self._pump(fetch_pool, ingest_pool)
                timeout = 1.0  # a bound on the wait, whatever happens
                # (_pump leaves no host ready while a thread is free; during a stop nothing new starts: the wait is
                # for the work in flight, or the end of the grace, not a loop over hosts whose time has passed)
                if self._stop_by is not None:
                    timeout = min(timeout, max(0.0, self._stop_by - time.monotonic()))
                elif self._due and self._fetching < self._threads:
                    timeout = min(timeout, max(0.0, self._due[0][0] - time.monotonic()))
                try:
                    event = self._events.get(timeout=timeout)
                except queue.Empty:
                    continue
                self._handle(event)
                while True:  # take every event waiting before deciding what to start
                    try:
                        self._handle(self._events.get_nowait())
                    except queue.Empty:
                        break
        finally:
            # after a stop's grace, work still in flight is abandoned (a load is one transaction: it commits or not)
            stopped = self._stop_by is not None
            fetch_pool.shutdown(wait=not stopped, cancel=stopped)
            parse_pool.shutdown(wait=not stopped, cancel=stopped)  # after the fetches that feed it
            ingest_pool.shutdown(wait=not stopped, cancel=stopped)
            self._closer_done()
        return walk

    def _stopping(self) -> bool:
        if self._stop_by is None and self.should_stop is not None and self.should_stop():
            self._stop_by = time.monotonic() + self.grace
        return self._stop_by is not None

    def _admit(self) -> None:
        """Start the next portals in registry order while fewer than `portals_in_progress` have work (a portal ends with
        its last job: _closed). One with nothing to ask for is not counted: the next is started in its place."""
        while self.walk.waiting and len(self._portal_jobs) < self.portals_in_progress:
            self._add(self.walk.start_next() or [], [])

    def _add(self, pages: list[PageJob], items: list[ItemJob]) -> None:
        for page in pages:
            self._open += 1
            host = host_of(page.request.url)
            self._queue(host).pages.append(page)
            self._schedule(host)
        for item in items:
            self._open += 1
            host = host_of(item.candidate.url)
            self._queue(host).items.append(item)
            self._schedule(host)
        if items and self.listener:
            self.listener("submitted", len(items))
        self._opened(pages, items)

    def _queue(self, host: str | None) -> _Queue:
        q = self._queues.get(host)
        if q is None:
            q = self._queues[host] = _Queue()
        return q

    def _schedule(self, host: str | None, when: float = 0.0) -> None:
        if host not in self._scheduled:
            self._scheduled.add(host)
            heapq.heappush(self._due, (when, next(self._seq), host))

    def _handle(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "released":
            if self._queues.get(event[1]):
                self._schedule(event[1])
        elif kind == "robots":
            self._fetching -= 1
        elif kind == "fetched":
            self._fetching -= 1
            self._advanced(event[1], event[2])
        elif kind == "ingested":
            self._ingesting -= 1
            self._advanced(event[1], event[2])
            if not self._backed_up():  # extraction caught up: their items may be fetched again
                for host in self._throttled:
                    self._schedule(host)
                self._throttled.clear()
        if self._hosts_done:
            self._forget_finished()

    def _advanced(self, unit: _Unit, outcome: tuple[str, Any, str | None]) -> None:
        if outcome[0] == "step":
            self._place(unit, outcome[1])
        else:
            self._finish(unit, outcome[1], outcome[2])

    def _place(self, unit: _Unit, step: Fetch | IngestFile) -> None:
        unit.step = step
        if isinstance(step, Fetch):
            host = host_of(step.url)
            self._queue(host).put_unit(unit)
            self._schedule(host)
        else:
            self._ingest_waiting.append(unit)
            self.stats.peak_ingest_backlog = max(self.stats.peak_ingest_backlog, len(self._ingest_waiting))

    def _finish(self, unit: _Unit, value: Any, error: str | None) -> None:
        self._open -= 1
        if isinstance(unit.job, PageJob):
            pages, items = self.walk.page_done(unit.job, value, error)
            self._add(pages, items)
        else:
            self.walk.item_done(unit.job, value, error)
            if self.listener:
                self.listener("done", 1)
        self._closed(unit.job)

    def _start(self, job: PageJob | ItemJob) -> tuple[_Unit, tuple[str, Any, str | None]]:
        """A job's first step, in the driver (nothing but bookkeeping happens before a unit's first fetch)."""
        try:
            if isinstance(job, PageJob):
                steps = self.page_steps(self.ctx, job.portal, job.request)
            else:
                steps = self.item_steps(self.ctx, job.portal, job.candidate, job.verdict)
        except Exception as exc:
            return _Unit(job, iter(())), ("done", None, f"{type(exc).__name__}: {exc}")  # type: ignore[arg-type]
        unit = _Unit(job, steps)
        return unit, advance(unit, None, None)

    # -- hosts finished (flat memory) ---------------------------------------------------------------------
    def _opened(self, pages: list[PageJob], items: list[ItemJob]) -> None:
        for job in (*pages, *items):
            pid = job.portal.id
            if pid not in self._portal_jobs:
                self._portal_jobs[pid] = 0
                for host in job.portal.hosts:  # the fetcher sends a portal's work to its own hosts only
                    self._host_users[host] = self._host_users.get(host, 0) + 1  # once per portal started
                self.stats.peak_portals_in_progress = max(self.stats.peak_portals_in_progress, len(self._portal_jobs))
            self._portal_jobs[pid] += 1

    def _closed(self, job: PageJob | ItemJob) -> None:
        """A job ended (after the jobs it added were counted). When its portal has none left, no listing page of it can
        add work any more: each of its hosts that no other running portal uses is finished."""
        pid = job.portal.id
        self._portal_jobs[pid] -= 1
        if self._portal_jobs[pid]:
            return
        del self._portal_jobs[pid]  # seen again (it cannot be, within a run), it would count from nothing
        for host in job.portal.hosts:
            users = self._host_users.get(host)
            if users is not None:  # once per portal finished, as it was counted once when it started
                if users > 1:
                    self._host_users[host] = users - 1
                else:
                    del self._host_users[host]
                    self._hosts_done.add(host)

    def _forget_finished(self) -> None:
        """Called between events, when the driver holds no turn: drop what each finished host holds in this run (its
        queue, robots.txt asked, slots entry but its next start, idle connections, robots rules). One still busy
        (a request in flight) or given work again is left for a later event or kept."""
        for host in list(self._hosts_done):
            if host in self._host_users or self._queues.get(host):
                self._hosts_done.discard(host)  # a portal using it started again meanwhile: not finished
                continue
            if not self.slots.forget(host):
                continue  # still in flight: its end's "released" event comes back here
            self._hosts_done.discard(host)
            self._queues.pop(host, None)
            self._throttled.discard(host)
            self._robots_asked.difference_update((f"http://{host}", f"https://{host}"))
            self._forget_in_fetcher(host)
            self.stats.hosts_finished += 1

    def _forget_in_fetcher(self, host: str) -> None:
        """The fetcher's part on a thread of its own: closing a socket gives up the GIL, and getting it back among a
        hundred busy threads cost the driver 2.3 s of a 1,000-host crawl (its own CPU: 0.75 s)."""
        forget = getattr(self.ctx.fetcher, "forget_host", None)
        if forget is None:
            return
        if self._closer is None:
            self._closer = Workers(1, "gongkai-forget")
        self._closer.submit(1, forget, host)  # an error is logged by the worker: memory not dropped, nothing lost

    def _closer_done(self) -> None:
        if self._closer is not None:
            self._closer.shutdown(wait=True, cancel=False)  # a few dict entries and sockets each: done in moments
            self._closer = None

    def _backed_up(self) -> bool:
        return len(self._ingest_waiting) >= self.ingest_backlog

    def _pump(self, fetch_pool: Workers, ingest_pool: Workers) -> None:
        while self._ingest_waiting and self._ingesting < self.ingest_workers:
            unit = self._ingest_waiting.popleft()
            self._ingesting += 1
            self.stats.ingests += 1
            ingest_pool.submit(self._ingesting, self._ingest, unit)
        now = time.monotonic()
        while self._due and self._due[0][0] <= now:
            when, seq, host = heapq.heappop(self._due)
            heapq.heappush(self._ready, (self._urgency(host, when or now), seq, host))
        while self._ready and self._fetching < self._threads:
            _, _, host = heapq.heappop(self._ready)
            self._scheduled.discard(host)
            q = self._queues.get(host)
            if not q:
                continue
            backed_up = self._backed_up()
            if backed_up and not q._pages and not q.listing_first():
                self.stats.throttled += 1
                self._throttled.add(host)
                continue  # the next "ingested" event looks at this host again
            turn = None
            if host is not None:
                got = self.slots.try_reserve(host, now)
                if not isinstance(got, Reservation):
                    if got != math.inf:
                        self._schedule(host, got)
                    continue  # else: the end of one of its requests ("released") looks at it again
                turn = got
            self._take(host, q, turn, backed_up, fetch_pool)
            if q:
                self._schedule(host, now)

    def _urgency(self, host: str | None, due: float) -> float:
        """The order in which hosts whose time has come get a fetch thread (smallest first): the host that will finish
        last first. Each of a host's requests waits a delay after the one before, so its crawl ends no sooner than
        (requests left) x delay from now, and a wait for a thread or the CPU lengthens it for good. Served by due time
        alone (as before), hosts that fell behind early stayed behind: at 1,000 hosts they finished up to 3 s (6 s on a
        loaded machine) after the median host. Requests left, estimated: a unit under way one, an item two (its page,
        its file), a listing page the most (it brings the items); at most LOOKAHEAD, so a host with little left waits
        for the others at most LOOKAHEAD delays past its due time, then goes first."""
        q = self._queues.get(host)
        if not q:
            return due
        pages = len(q._pages) + sum(isinstance(unit.job, PageJob) for unit in q._units)  # (a host's units: one or two)
        left = min(LOOKAHEAD, len(q._units) + 2 * len(q._items) + LOOKAHEAD * pages)
        return due - left * self.slots.delay

    def _take(self, host: str | None, q: _Queue, turn: Reservation | None, backed_up: bool,
              fetch_pool: Workers) -> None:
        """Give the host's turn to its next fetch (or to its robots.txt, first)."""
        while True:
            unit: _Unit | None = None
            if q._units and (not backed_up or q.listing_first()):
                unit = q.take_unit()
            elif q._pages:
                page = q.take_page()
                if self.walk.expired(page.portal):
                    self._open -= 1
                    self.walk.page_skipped(page)
                    self._closed(page)
                    continue
                unit, outcome = self._start(page)
            elif q._items and not backed_up:
                item = q.take_item()
                if self.walk.expired(item.portal):
                    self._open -= 1
                    self.walk.item_skipped(item)
                    self._closed(item)
                    if self.listener:
                        self.listener("done", 1)
                    continue
                unit, outcome = self._start(item)
            else:
                break
            if unit.step is None:  # just started: where its first step goes
                if outcome[0] != "step" or not isinstance(outcome[1], Fetch) or host_of(outcome[1].url) != host:
                    self._advanced(unit, outcome)  # done at once, or its first fetch is for another queue
                    continue
                unit.step = outcome[1]
            assert isinstance(unit.step, Fetch)
            origin = origin_of(unit.step.url)
            # only a host of the unit's portal: any other is refused before a request, its robots.txt never asked for
            if origin is not None and origin not in self._robots_asked and host in unit.portal.hosts:
                # the host's first request is its robots.txt: a step of its own, the unit waits for the next turn
                self._robots_asked.add(origin)
                q.put_unit(unit, first=True)
                self._submit(fetch_pool, self._robots, unit.step.url, turn)
                self.stats.robots_steps += 1
                return
            self._submit(fetch_pool, self._fetch, unit, turn)
            self.stats.fetch_steps += 1
            return
        if turn is not None:
            self.slots.give_back(turn)

    def _submit(self, pool: Workers, fn: Callable[..., None], *args: Any) -> None:
        self._fetching += 1
        self.stats.peak_fetching = max(self.stats.peak_fetching, self._fetching)
        pool.submit(self._fetching, fn, *args)

    # -- in worker threads --------------------------------------------------------------------------------
    def _robots(self, url: str, turn: Reservation | None) -> None:
        try:
            with self.slots.holding(turn):
                self.ctx.fetcher.allowed_by_robots(url)  # read and cached; the unit's fetch judges by it
        except Exception as exc:  # noqa: BLE001 - the unit's own fetch meets the same problem and reports it
            log.debug("robots.txt for %s: %s", url, exc)
        finally:
            self._events.put(("robots",))

    def _fetch(self, unit: _Unit, turn: Reservation | None) -> None:
        step = unit.step
        assert isinstance(step, Fetch)
        value: Any = None
        error: BaseException | None = None
        try:
            with self.slots.holding(turn):
                value = self.ctx.fetch(unit.portal, step.url, validators=step.validators, method=step.method, data=step.data,
                                       stores=step.stores)
        except Exception as exc:  # a FetchError is the unit's to handle; anything else ends it as crashed
            error = exc
        # a page's next step parses it: on a parser thread (_parse), fed from here. A file's (a download, a picture), a
        # failure's, a 304's do not parse: they waited too (some 100 ms each at 1,000 hosts, holding one of the fetch
        # threads the driver counts as busy, so fewer requests went out on time) for a generator step of a few microseconds
        if step.parses and error is None and not getattr(value, "not_modified", False):
            assert self._parse_pool is not None
            self._parse_pool.put(self._parse, unit, value)
            return
        outcome = advance(unit, value, error)
        del value  # the response: not held while the driver places the next step
        self._fetched(unit, outcome)

    def _parse(self, unit: _Unit, value: Any) -> None:
        """On a parser thread (at most `parsers` pages parsed at once): the unit's step after its fetch parses its page."""
        with self._parsing_lock:
            self._parsing_now += 1
            self.stats.peak_parsing = max(self.stats.peak_parsing, self._parsing_now)
        try:
            outcome = advance(unit, value, None)
        finally:
            with self._parsing_lock:
                self._parsing_now -= 1
        del value
        self._fetched(unit, outcome)

    def _fetched(self, unit: _Unit, outcome: tuple[str, Any, str | None]) -> None:
        """The driver told. A file's step comes stored in the archive already (crawl.stored_if_archiving, on this
        thread): the backlog it joins holds its digest, nothing written or read here."""
        self._events.put(("fetched", unit, outcome))

    def _ingest(self, unit: _Unit) -> None:
        step = unit.step
        assert isinstance(step, IngestFile)
        unit.step = None  # the bytes go with the step: not held here once ingested
        value: Any = None
        error: BaseException | None = None
        try:
            value = self.ctx.ingest(step.data, name=step.name, url=step.url, agency=step.agency, year=step.year,
                                    portal=step.portal, **ingest_kwargs(step))
        except Exception as exc:
            error = exc
        del step
        self._events.put(("ingested", unit, advance(unit, value, error)))


def advance(unit: _Unit, value: Any, error: BaseException | None) -> tuple[str, Any, str | None]:
    """Send a step's answer into its unit: ("step", next step, None) or ("done", result, error)."""
    try:
        step = unit.steps.throw(error) if error is not None else unit.steps.send(value)
    except StopIteration as done:
        return "done", done.value, None
    except Exception as exc:  # a page that could not be fetched, or a bug: the walk records it
        return "done", None, str(exc) if isinstance(exc, FetchError) else f"{type(exc).__name__}: {exc}"
    return "step", step, None


def host_slots(fetcher: Any) -> HostSlots:
    """The fetcher's HostSlots; a fetcher with its own per-host gates gets slots of its limits instead (before any
    request of the run: the scheduler and the fetcher must count against the same slots)."""
    if isinstance(fetcher.gate, HostSlots):
        return fetcher.gate
    if fetcher.gate is not None:
        raise ValueError("the fetcher's gate is not the scheduler's: wrap it as HostSlots(inner=...)")
    slots = HostSlots(fetcher.concurrency, fetcher.delay)
    fetcher.gate = slots
    return slots
