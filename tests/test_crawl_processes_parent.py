"""The parent's side of a crawl over crawler processes (crawler/processes.py): what a child sends it per file and per
crawl-state update, and how many files it takes in at once. Real pipes (multiprocessing's, a socket pair on Linux) and,
for the last test, a real crawl over loopback hosts with the children spawned."""

from __future__ import annotations

import multiprocessing
import os
import socket
import struct
import threading
import time
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

import pytest
from shard_portal import REPORT_YEARS, ShardPortal

from gongkai.crawler.crawl import CrawlContext
from gongkai.crawler.politeness import Politeness
from gongkai.crawler.processes import (
    UPDATES_MOST,
    BodyReader,
    Child,
    ChildPlan,
    ParentLink,
    _ingest_for,
    _serve,
    crawl_in_processes,
)
from gongkai.crawler.registry import Portal, all_hosts, load_registry
from gongkai.crawler.state import CrawlState, pack
from gongkai.warehouse import IngestOutcome

PORTAL = Portal("p1", "示例市第1局", "110001", "department", "trs", ("http://127.0.0.1:1/a1/index.html",),
                frozenset({"127.0.0.1:1"}))


class Reader(threading.Thread):
    """The parent's end, read as the parent does while the child sends (a full pipe would block the sender)."""

    def __init__(self, conn: Any) -> None:
        super().__init__(daemon=True)
        self.conn = conn
        self.messages: list[tuple[Any, ...]] = []
        self.start()

    def run(self) -> None:
        while self.conn.poll(10):
            self.messages.append(self.conn.recv())
            if self.messages[-1][0] == "done":
                return

    def until_done(self) -> list[tuple[Any, ...]]:
        self.join(20)
        assert self.messages and self.messages[-1][0] == "done", self.messages[-3:]
        return self.messages


def test_a_childs_state_updates_and_events_reach_the_parent_in_order_in_few_messages() -> None:
    parent_end, child_end = multiprocessing.Pipe()
    link = ParentLink(child_end, [PORTAL], timeout=5.0)
    reader = Reader(parent_end)
    updates: list[tuple[str, Any]] = []
    for i in range(2 * UPDATES_MOST + 7):
        update = (f"http://127.0.0.1:1/a1/t{i}.html", None if i % 5 == 0 else pack(f'"e{i}"', None, {"i": i}))
        updates.append(update)
        link.state(*update)
        link.event("submitted" if i % 100 == 0 else "done", 1)
    link.send(("done", "result"))  # the child's last word: the updates still waiting go before it

    messages = reader.until_done()
    # one message per update and per event before: ~2,000 of them for what now takes a handful
    assert len(messages) <= 12, [m[0] for m in messages]
    assert {m[0] for m in messages[:-1]} == {"updates"} and messages[-1] == ("done", "result")
    assert [u for m in messages[:-1] for u in m[1]] == updates  # every update, in the order made
    events = [tuple(e) for m in messages[:-1] for e in m[2]]
    expanded = [name for name, n in events for _ in range(n)]
    assert expanded == ["submitted" if i % 100 == 0 else "done" for i in range(len(updates))]
    link.conn.close()
    parent_end.close()


def test_an_update_waits_in_the_child_only_a_moment() -> None:
    parent_end, child_end = multiprocessing.Pipe()
    link = ParentLink(child_end, [PORTAL], timeout=5.0)
    link.state("http://127.0.0.1:1/a1/index.html", pack('"v1"', None, None))
    assert parent_end.poll(5), "a lone update never went"  # the flusher sends it; nothing else comes to push it
    assert parent_end.recv() == ("updates", [("http://127.0.0.1:1/a1/index.html", ('"v1"', None, None))], [])
    link.conn.close()
    parent_end.close()


def test_a_file_goes_to_the_parent_as_its_bytes_after_a_small_header_and_its_answer_comes_back() -> None:
    parent_end, child_end = multiprocessing.Pipe()
    link = ParentLink(child_end, [PORTAL], timeout=10.0)
    data = os.urandom(1_000_000)
    got: dict[str, Any] = {}
    sending = threading.Thread(target=lambda: got.setdefault("outcome", link.ingest(
        data, name="r.pdf", url="http://127.0.0.1:1/a1/r.pdf", agency="示例市第1局", year=2023, portal=PORTAL)))
    sending.start()
    header = parent_end.recv()
    kind, rid, size, meta = header
    # the header names the file; its bytes are not pickled into it (a copy on each side), they follow as they are
    assert kind == "ingest" and size == len(data) and len(ForkingPickler.dumps(header)) < 1000, len(ForkingPickler.dumps(header))
    assert meta == {"name": "r.pdf", "url": "http://127.0.0.1:1/a1/r.pdf", "agency": "示例市第1局", "year": 2023,
                    "portal": "p1", "pictures": None}
    body = BodyReader(parent_end)
    assert body.read(size) == data
    outcome = IngestOutcome("a" * 64, "new", "r.pdf", url=meta["url"], portal="p1")
    parent_end.send(("reply", rid, outcome, None))
    sending.join(10)
    assert got["outcome"] == outcome
    body.close()
    link.conn.close()
    parent_end.close()


@pytest.mark.parametrize("duplex", [True, False])
def test_the_parent_reads_bodies_of_every_size_whole(duplex: bool) -> None:
    # duplex: a socket pair (the crawl's), read with one recv; not duplex: an os.pipe, read by recv_bytes
    reader_end, writer_end = multiprocessing.Pipe(duplex=duplex)
    sizes = [0, 1, 4, 16_384, 16_385, 300_000, 3_000_000]
    bodies = [os.urandom(n) for n in sizes]

    def write() -> None:  # a large body blocks until read
        for b in bodies:
            writer_end.send_bytes(b)

    writer = threading.Thread(target=write)
    writer.start()
    body = BodyReader(reader_end)
    assert (body._sock is not None) == duplex
    assert [body.read(len(b)) for b in bodies] == bodies
    writer.join(10)
    writer_end.send_bytes(b"12345")
    with pytest.raises(ValueError, match="5 bytes where 6 were announced"):
        body.read(6)
    body.close()
    reader_end.close()
    writer_end.close()


def test_a_child_gone_mid_file_is_an_end_not_a_short_file() -> None:
    ours, theirs = socket.socketpair()
    conn = multiprocessing.connection.Connection(ours.detach())
    theirs.sendall(struct.pack("!i", 1000) + b"x" * 10)  # a 1,000-byte file announced, 10 bytes sent, then gone
    theirs.close()
    body = BodyReader(conn)
    with pytest.raises(EOFError):
        body.read(1000)
    body.close()
    conn.close()


# two processes, each with two hosts (split by host: crawler.registry.split_by_host), each host one agency's column
HOSTS = {0: [1], 1: [2], 2: [3], 3: [4]}
PORTALS = [("a1", 0, 1), ("a2", 1, 2), ("a3", 2, 3), ("a4", 3, 4)]
INGEST_WORKERS = 2


def test_the_parent_takes_in_every_file_a_child_may_have_in_flight_at_once(tmp_path: Path) -> None:
    """Each child hands the parent up to `ingest_workers` files at once and waits for each answer: the parent gives each
    such file a thread, so a slow ingest (an archive's fsync, a long extraction) of one child never holds another's
    file in a queue. With the parent's threads as many as one child's files, the four files below could not all be
    in the parent at once (the barrier breaks), and the children's backlogs filled up (spilled to disk) behind them."""
    in_parent_at_once = threading.Barrier(2 * INGEST_WORKERS, timeout=30)
    lock = threading.Lock()
    ingested: list[str] = []
    broken: list[str] = []

    def ingest(data: bytes, **meta: Any) -> IngestOutcome:
        with lock:
            first_wave = len(ingested) < 2 * INGEST_WORKERS
            ingested.append(meta["url"])
        if first_wave:
            try:
                in_parent_at_once.wait()
            except threading.BrokenBarrierError:
                broken.append(meta["url"])
                raise
        return IngestOutcome("0" * 64, "new", meta["name"], url=meta["url"], portal=meta["portal"].id)

    with ShardPortal(HOSTS) as portal:
        registry = tmp_path / "registry.toml"
        registry.write_text(portal.registry(PORTALS), "utf-8")
        portals = load_registry(registry)
        polite = Politeness(delay=0.05, concurrency=2, retries=0)
        state = CrawlState(None)
        ctx = CrawlContext(polite.fetcher(all_hosts(portals)), state, ingest)
        summary = crawl_in_processes(portals, ctx, processes=2, make_fetcher=polite.fetcher,
                                     ingest_workers=INGEST_WORKERS)
    assert summary["processes"] == 2 and not broken, broken
    files = [d["url"] for d in summary["documents"]]
    assert sorted(files) == sorted(ingested) and len(set(files)) == len(files) == len(PORTALS) * len(REPORT_YEARS)
    assert all(p["status"] == "ok" for p in summary["portals"].values()), summary["portals"]
    # the children's crawl-state updates all reached the parent's state: each file's validators, each listing's
    assert all(state.get(url) is not None for url in files)
    assert all(state.get(p.listing[0]) is not None for p in portals)


@pytest.mark.parametrize("framed, announced", [(2**40, 2**40), (2**40, 10), (10, 2**40), (11, 10)])
def test_a_header_whose_length_lies_or_is_huge_is_refused_before_anything_is_read(framed: int, announced: int) -> None:
    """A child's header announces `announced` bytes, the frame that follows says `framed`: more than the crawl's
    max_bytes, or not what was announced, is one clear error, before the parent allocates (a terabyte) or waits
    for bytes that never come; the serving thread ends with a line, the other children go on."""
    ours, theirs = socket.socketpair()
    conn = multiprocessing.connection.Connection(ours.detach())
    theirs.sendall(struct.pack("!i", -1) + struct.pack("!Q", framed) + b"x" * 11)  # then nothing: a read would hang
    body = BodyReader(conn, most=1000)
    theirs.settimeout(None)
    timer = threading.Timer(10, theirs.close)  # on the old code: an end instead of a hang (or a MemoryError)
    timer.start()
    try:
        with pytest.raises(ValueError, match="announced"):
            body.read(announced)
    finally:
        timer.cancel()
        body.close()
        conn.close()
        theirs.close()


def test_a_pipe_body_longer_than_announced_is_refused_before_it_is_read() -> None:
    reader_end, writer_end = multiprocessing.Pipe(duplex=False)
    writer_end.send_bytes(b"x" * 100)
    body = BodyReader(reader_end, most=1000)
    with pytest.raises(ValueError, match="announced"):
        body.read(10)
    with pytest.raises(ValueError, match="more than the 1000"):
        body.read(5000)
    body.close()
    reader_end.close()
    writer_end.close()


@pytest.mark.parametrize("meta", [{"name": "r.pdf", "url": "u", "agency": None, "year": 2023, "portal": "nope", "pictures": None},
                                  {"name": "r.pdf", "url": "u"}, "not a dict"])
def test_a_header_the_parent_cannot_use_is_answered_with_its_error(meta: Any) -> None:
    """A file whose header names a portal the parent does not know (or lacks its fields) gets an answer with the
    error's line, as an ingest that raised does: the child's item fails at once instead of waiting its ingest timeout
    (30 minutes) for an answer that never comes."""
    parent_end, child_end = multiprocessing.Pipe()
    child = Child(0, [PORTAL], None, parent_end)
    ctx = CrawlContext(None, CrawlState(None), lambda data, **meta: pytest.fail("ingested"))  # type: ignore[arg-type]
    _ingest_for(child, ctx, {"p1": PORTAL}, ("ingest", 7, 3, meta), b"abc")
    assert child_end.poll(5), "no answer: the child waits its ingest timeout"
    kind, rid, outcome, error = child_end.recv()
    assert (kind, rid, outcome) == ("reply", 7, None) and error and "\n" not in error, error
    assert not child.ingested
    parent_end.close()
    child_end.close()


class _Alive:
    """A child process as _serve sees it: running (its end of the pipe closing is its end)."""

    exitcode = None
    alive = True

    def is_alive(self) -> bool:
        return self.alive

    def join(self, timeout: float | None = None) -> None:
        return None


class _Held:
    """The parent's ingest threads, holding every file (an archive stuck on a disk): the answers do not come."""

    def __init__(self) -> None:
        self.files: list[bytes] = []

    def put(self, fn: Any, *args: Any) -> None:
        self.files.append(args[-1])


def test_a_child_sending_files_ahead_of_the_answers_waits_instead_of_filling_the_parents_memory() -> None:
    """A child has at most its plan's ingest_workers files in the parent; one sending more without waiting for the
    answers (a bug, or an ingest it gave up on) is read no further until a place is free: its bytes stay on its side."""
    ingest_workers = 2
    parent_end, child_end = multiprocessing.Pipe()
    process = _Alive()
    child = Child(0, [PORTAL], process, parent_end)
    plan = ChildPlan(0, [PORTAL], None, {}, None, None, 1, ingest_workers, 1.0)  # type: ignore[arg-type]
    ctx = CrawlContext(None, CrawlState(None), None)  # type: ignore[arg-type]
    pool = _Held()
    serving = threading.Thread(target=_serve, args=(child, plan, ctx, {"p1": PORTAL}, pool, None), daemon=True)
    serving.start()
    assert child_end.recv()[0] == "plan"
    meta = {"name": "r.pdf", "url": "u", "agency": None, "year": 2023, "portal": "p1", "pictures": None}

    def flood() -> None:
        try:
            for rid in range(ingest_workers + 3):
                child_end.send(("ingest", rid, 100_000, dict(meta)))
                child_end.send_bytes(b"x" * 100_000)
        except (OSError, ValueError, TypeError):  # its end closed under it at the test's end
            pass

    threading.Thread(target=flood, daemon=True).start()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and len(pool.files) <= ingest_workers:
        time.sleep(0.05)
    assert len(pool.files) == ingest_workers, f"{len(pool.files)} files taken in, {ingest_workers} may be"
    child.files.release()  # an answer: the next file is taken in
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and len(pool.files) <= ingest_workers:
        time.sleep(0.05)
    assert len(pool.files) == ingest_workers + 1
    process.alive = False  # killed: the wait for a place ends with it
    child_end.close()
    serving.join(10)
    assert child.finished.is_set()
    parent_end.close()


class _Fetcher:
    max_bytes = 1000


@pytest.mark.parametrize("hostile, why", [
    (lambda end: end.send_bytes(b"\x80\x05not a pickle"), "UnpicklingError"),
    (lambda end: end.send(("ingest", 1, 10**12, {})), "ValueError: a file of 1000000000000 bytes announced"),
    (lambda end: (end.send(("ingest", 1, 10, {})), end.send_bytes(b"x" * 500)), "ValueError: a file of 500 bytes where 10"),
])
def test_a_child_sending_what_the_parent_cannot_read_fails_with_one_line(hostile: Any, why: str) -> None:
    parent_end, child_end = multiprocessing.Pipe()
    child = Child(0, [PORTAL], _Alive(), parent_end)
    plan = ChildPlan(0, [PORTAL], None, {}, None, None, 1, 2, 1.0)  # type: ignore[arg-type]
    ctx = CrawlContext(_Fetcher(), CrawlState(None), None)  # type: ignore[arg-type]
    pool = _Held()
    serving = threading.Thread(target=_serve, args=(child, plan, ctx, {"p1": PORTAL}, pool, None), daemon=True)
    serving.start()
    assert child_end.recv()[0] == "plan"
    hostile(child_end)
    serving.join(10)
    assert child.finished.is_set() and not pool.files
    assert child.error and child.error.startswith("sent what the parent cannot read") and why in child.error, child.error
    assert "\n" not in child.error
    child_end.close()
    parent_end.close()
