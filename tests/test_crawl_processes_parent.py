"""The parent's side of a crawl over crawler processes (crawler/processes.py): what a child sends it per file (the
digest of a file it stored in the shared archive, never the bytes) and per crawl-state update, how the parent reads a
file back and what it refuses, and how many files it takes in at once. Real pipes (multiprocessing's, a socket pair on
Linux), real archives (a folder; S3 on moto's loopback server) and real crawls over loopback hosts with the children
spawned."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

import pytest
from s3_fixture import S3Server
from shard_portal import REPORT_YEARS, ShardPortal

from gongkai.crawler import processes
from gongkai.crawler.crawl import CrawlContext, Stored
from gongkai.crawler.pictures import MAX_PAGE_PICTURES
from gongkai.crawler.politeness import Politeness
from gongkai.crawler.processes import (
    UPDATES_MOST,
    ArchivedFiles,
    Child,
    ChildPlan,
    ParentLink,
    _ingest_for,
    _serve,
    crawl_in_processes,
)
from gongkai.crawler.registry import Portal, all_hosts, load_registry
from gongkai.crawler.state import CrawlState, pack
from gongkai.warehouse import IngestOutcome, open_archive
from gongkai.warehouse.archive import LocalArchive, sha256_of

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


def test_a_file_goes_to_the_parent_as_its_digest_in_a_small_header_and_its_answer_comes_back(tmp_path: Path) -> None:
    """The child stores the file in the shared archive itself; the parent gets its digest, size and what the ingest
    records, in one small message: nothing follows it on the pipe."""
    archive = LocalArchive(tmp_path / "archive")
    parent_end, child_end = multiprocessing.Pipe()
    link = ParentLink(child_end, [PORTAL], timeout=10.0, archive=archive)
    data, picture = os.urandom(1_000_000), os.urandom(5_000)
    got: dict[str, Any] = {}
    sending = threading.Thread(target=lambda: got.setdefault("outcome", link.ingest(
        data, name="r.pdf", url="http://127.0.0.1:1/a1/r.pdf", agency="示例市第1局", year=2023, portal=PORTAL,
        pictures={"t1.png": picture, "icon.gif": None})))
    sending.start()
    header = parent_end.recv()
    kind, rid, meta = header
    assert kind == "ingest" and len(ForkingPickler.dumps(header)) < 1000, len(ForkingPickler.dumps(header))
    assert meta == {"sha256": sha256_of(data), "size": len(data), "name": "r.pdf", "url": "http://127.0.0.1:1/a1/r.pdf",
                    "agency": "示例市第1局", "year": 2023, "portal": "p1",
                    "pictures": {"t1.png": sha256_of(picture), "icon.gif": None}}
    assert not parent_end.poll(0.3), "something followed the header on the pipe"
    # in the archive, complete, before the parent heard of it
    assert archive.get(meta["sha256"]) == data and archive.get(sha256_of(picture)) == picture
    outcome = IngestOutcome(meta["sha256"], "new", "r.pdf", url=meta["url"], portal="p1")
    parent_end.send(("reply", rid, outcome, None))
    sending.join(10)
    assert got["outcome"] == outcome
    # a file stored when it was fetched (IngestFile.stored_in) goes as it is: not stored again
    # and the parent's error reaches the child's item as the ingest's own error would
    stored = Stored(meta["sha256"], len(data))

    def send_stored() -> None:
        try:
            link.ingest(b"", name="r.pdf", url="u", agency=None, year=None, portal=PORTAL, stored=stored)
        except RuntimeError as exc:
            got["error"] = str(exc)

    sending = threading.Thread(target=send_stored)
    sending.start()
    kind, rid, meta = parent_end.recv()
    assert (meta["sha256"], meta["size"], meta["pictures"]) == (stored.sha256, len(data), None)
    parent_end.send(("reply", rid, None, "LookupError: file … is not in the archive"))
    sending.join(10)
    assert got["error"] == "LookupError: file … is not in the archive"
    link.conn.close()
    parent_end.close()


def _meta(sha256: str, size: int, **more: Any) -> dict[str, Any]:
    return {"sha256": sha256, "size": size, "name": "r.pdf", "url": "u", "agency": None, "year": 2023, "portal": "p1",
            "pictures": None} | more


def test_the_parent_reads_files_of_every_size_whole_from_the_archive(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path / "archive")
    sizes = [0, 1, 4, 16_384, 16_385, 300_000, 3_000_000]
    bodies = [os.urandom(n) for n in sizes]
    files = ArchivedFiles(archive, most=5_000_000)
    digests = [archive.put(b) for b in bodies]
    assert [files.file(d, len(b)) for d, b in zip(digests, bodies, strict=True)] == bodies
    with pytest.raises(ValueError, match="5 bytes in the archive where 6 were announced"):
        files.file(archive.put(b"12345"), 6)


class _Reads:
    """The archive as the parent uses it, every get recorded (what was asked for, with which bound)."""

    def __init__(self, archive: LocalArchive) -> None:
        self.archive, self.location, self.gets = archive, archive.location, []

    def get(self, sha256: str, *, most: int | None = None) -> bytes:
        self.gets.append((sha256, most))
        return self.archive.get(sha256, most=most)


@pytest.mark.parametrize("meta, why, reads", [
    (_meta("a" * 64, 2**40), "ValueError: a file of 1099511627776 bytes announced (a file has 0 to 1000 bytes)", False),
    (_meta("a" * 64, -1), "ValueError: a file of -1 bytes announced", False),
    (_meta("a" * 64, True), "ValueError: a file of True bytes announced", False),
    (_meta("../../../etc/passwd", 10), "ValueError: not a sha256 digest: '../../../etc/passwd'", False),
    (_meta("A" * 64, 10), "ValueError: not a sha256 digest", False),
    (_meta(["not", "text"], 10), "ValueError: not a sha256 digest", False),
    (_meta("b" * 64, 10), "LookupError: file " + "b" * 64 + " is not in the archive", True),
    (_meta("STORED", 12), "ValueError: file {sha} has 11 bytes in the archive where 12 were announced", True),
    (_meta("STORED", 10), "OSError: archive file {sha} is larger than the 10 bytes read at most", True),
    (_meta("BIG", 10), "OSError: archive file {big} is larger than the 10 bytes read at most", True),
    (_meta("STORED", 11, pictures={"t.png": "c" * 64}), "LookupError: picture " + "c" * 64 + " is not in the archive", True),
    (_meta("STORED", 11, pictures={f"{i}.png": None for i in range(MAX_PAGE_PICTURES + 1)}), "ValueError: pictures:", True),
    (_meta("STORED", 11, portal="nope"), "KeyError: 'nope'", False),
    ({"name": "r.pdf", "url": "u"}, "KeyError: 'portal'", False),
    ("not a dict", "TypeError", False),
])
def test_what_a_child_claims_is_checked_and_a_claim_that_fails_is_answered_with_its_line(
        tmp_path: Path, meta: Any, why: str, reads: bool) -> None:
    """The parent loads only a file the archive holds, with the size the child announced, within the crawl's bound,
    read no further than that (a file of a terabyte announced, or stored, is refused before it is read) and checked
    against its digest; a digest is never a path. Each refusal is the file's answer (one line): the child's item fails
    at once instead of waiting its ingest timeout (30 minutes), and the child's other files go on."""
    archive = LocalArchive(tmp_path / "archive")
    stored, big = archive.put(b"x" * 11), archive.put(b"y" * 5_000_000)
    if isinstance(meta, dict) and meta.get("sha256") in ("STORED", "BIG"):
        meta = meta | {"sha256": stored if meta["sha256"] == "STORED" else big}
    reading = _Reads(archive)
    parent_end, child_end = multiprocessing.Pipe()
    child = Child(0, [PORTAL], None, parent_end)
    ctx = CrawlContext(None, CrawlState(None), lambda data, **meta: pytest.fail("ingested"))  # type: ignore[arg-type]
    _ingest_for(child, ctx, {"p1": PORTAL}, ArchivedFiles(reading, most=1000), 7, meta)  # type: ignore[arg-type]
    assert child_end.poll(5), "no answer: the child waits its ingest timeout"
    kind, rid, outcome, error = child_end.recv()
    assert (kind, rid, outcome) == ("reply", 7, None) and error and "\n" not in error, error
    assert error.startswith(why.format(sha=stored, big=big)), error
    assert bool(reading.gets) == reads, reading.gets
    assert all(most is not None and most <= 1000 for _, most in reading.gets), reading.gets  # never read unbounded
    assert not child.ingested
    parent_end.close()
    child_end.close()


def test_a_file_the_archive_holds_is_ingested_as_read_back_and_not_stored_again(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path / "archive")
    data, picture = os.urandom(50_000), os.urandom(2_000)
    sha256 = archive.put(data)
    calls: list[tuple[bytes, dict[str, Any]]] = []

    def ingest(data: bytes, **meta: Any) -> IngestOutcome:
        calls.append((data, meta))
        return IngestOutcome(meta["archived"], "new", meta["name"], url=meta["url"], portal=meta["portal"].id)

    parent_end, child_end = multiprocessing.Pipe()
    child = Child(0, [PORTAL], None, parent_end)
    ctx = CrawlContext(None, CrawlState(None), ingest)  # type: ignore[arg-type]
    meta = _meta(sha256, len(data), pictures={"t.png": archive.put(picture), "icon.gif": None})
    _ingest_for(child, ctx, {"p1": PORTAL}, ArchivedFiles(archive, most=100_000), 3, meta)
    kind, rid, outcome, error = child_end.recv()
    assert (kind, rid, error) == ("reply", 3, None) and outcome.sha256 == sha256
    [(got, kwargs)] = calls
    assert got == data and kwargs["archived"] == sha256 and kwargs["pictures"] == {"t.png": picture, "icon.gif": None}
    assert [d.url for d in child.ingested] == ["u"]
    parent_end.close()
    child_end.close()


def test_every_picture_a_child_fetched_for_a_page_is_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent bounds a page's pictures as the child's picture_steps fetched them (a picture taken while those
    before it hold less than MAX_PAGE_PICTURE_BYTES, the last one may cross it): a page one process loads whole is
    loaded whole from a crawler process too, not failed. (The bound made small: pictures of kilobytes, not 60 MB.)"""
    from types import SimpleNamespace

    from gongkai.crawler import pictures as pictures_module

    bound = 10_000
    monkeypatch.setattr(pictures_module, "MAX_PAGE_PICTURE_BYTES", bound)
    monkeypatch.setattr(processes, "MAX_PAGE_PICTURE_BYTES", bound)
    sizes = [3_000, 6_000, 4_000, 2_000]  # the third crosses the bound, the fourth is not fetched
    bodies = {f"t{i}.bmp": b"BM" + os.urandom(n - 2) for i, n in enumerate(sizes)}
    steps = pictures_module.picture_steps([(src, f"http://127.0.0.1:1/{src}") for src in bodies])
    step = next(steps)
    try:  # the child's picture_steps, each fetch answered with the picture's bytes
        while True:
            step = steps.send(SimpleNamespace(content=bodies[step.url.rsplit("/", 1)[1]], headers={}))
    except StopIteration as done:
        fetched: dict[str, bytes | None] = done.value
    assert list(fetched) == ["t0.bmp", "t1.bmp", "t2.bmp"] and sum(map(len, fetched.values())) > bound  # type: ignore[arg-type]
    archive = LocalArchive(tmp_path / "archive")
    stored = Stored.put(archive, b"<html>page</html>", fetched)  # what the child sends: the digests
    files = ArchivedFiles(archive, most=6_000)  # the fetcher's cap: each picture is within it
    assert files.pictures(stored.pictures) == fetched
    # one past what picture_steps takes is refused, in one line
    sha = archive.put(b"BM" + os.urandom(100))
    with pytest.raises(ValueError, match="past the 10000 bytes"):
        files.pictures(stored.pictures | {"t3.bmp": sha})


def test_a_fifo_at_a_claimed_digests_path_is_answered_at_once(tmp_path: Path) -> None:
    """Something other than a file at the path of the digest a child names (a FIFO: its open waits for a writer) does
    not hold the parent's ingest thread: the child gets its one line at once."""
    archive = LocalArchive(tmp_path / "archive")
    sha = sha256_of(b"never written")
    archive.path_for(sha).parent.mkdir(parents=True)
    os.mkfifo(archive.path_for(sha))
    parent_end, child_end = multiprocessing.Pipe()
    child = Child(0, [PORTAL], None, parent_end)
    ctx = CrawlContext(None, CrawlState(None), lambda data, **meta: pytest.fail("ingested"))  # type: ignore[arg-type]
    reading = threading.Thread(target=_ingest_for, args=(child, ctx, {"p1": PORTAL}, ArchivedFiles(archive, most=1000), 5,
                                                         _meta(sha, 13)), daemon=True)
    reading.start()
    assert child_end.poll(5), "the parent's ingest thread waits on the FIFO"
    kind, rid, outcome, error = child_end.recv()
    assert (kind, rid, outcome) == ("reply", 5, None) and error.startswith("OSError: archive file") and "regular" in error
    parent_end.close()
    child_end.close()


# two processes, each with two hosts (split by host: crawler.registry.split_by_host), each host one agency's column
HOSTS = {0: [1], 1: [2], 2: [3], 3: [4]}
PORTALS = [("a1", 0, 1), ("a2", 1, 2), ("a3", 2, 3), ("a4", 3, 4)]
INGEST_WORKERS = 2


class RecordingChild:
    """child_main as it is, its end of the pipe recorded: every byte the child sends goes to a file of `folder` (spawn
    pickles this by reference: a module-level class of the tests, importable in the child)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, conn: Any, parent_pid: int) -> None:
        with open(self.folder / f"sent-{os.getpid()}", "wb") as out:
            processes.child_main(_Recorded(conn, out), parent_pid)  # type: ignore[arg-type]


class _Recorded:
    def __init__(self, conn: Any, out: Any) -> None:
        self._conn, self._out, self._lock = conn, out, threading.Lock()

    def send(self, obj: Any) -> None:
        self.send_bytes(bytes(ForkingPickler.dumps(obj)))

    def send_bytes(self, data: bytes) -> None:
        with self._lock:  # as the connection's own writes: one message at a time
            self._out.write(data)
            self._out.flush()
        self._conn.send_bytes(data)

    def __getattr__(self, name: str) -> Any:  # recv, poll, close: the connection's own
        return getattr(self._conn, name)


def test_the_parent_takes_in_every_file_a_child_may_have_in_flight_at_once(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Each child hands the parent up to `ingest_workers` files at once and waits for each answer: the parent gives each
    such file a thread, so a slow ingest (a long extraction) of one child never holds another's file in a queue. With
    the parent's threads as many as one child's files, the four files below could not all be in the parent at once
    (the barrier breaks). The children store the files in the archive themselves: what they send the parent holds no
    file's bytes (on the old code every file followed its header on the pipe)."""
    sent = tmp_path / "sent"
    sent.mkdir()
    monkeypatch.setattr(processes, "child_main", RecordingChild(sent))
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
        archive = LocalArchive(tmp_path / "archive")
        summary = crawl_in_processes(portals, ctx, processes=2, make_fetcher=polite.fetcher, archive=archive,
                                     ingest_workers=INGEST_WORKERS)
    assert summary["processes"] == 2 and not broken, broken
    files = [d["url"] for d in summary["documents"]]
    assert sorted(files) == sorted(ingested) and len(set(files)) == len(files) == len(PORTALS) * len(REPORT_YEARS)
    assert all(p["status"] == "ok" for p in summary["portals"].values()), summary["portals"]
    # the children's crawl-state updates all reached the parent's state: each file's validators, each listing's
    assert all(state.get(url) is not None for url in files)
    assert all(state.get(p.listing[0]) is not None for p in portals)
    # every file in the archive, each once, complete (its content is its name)
    stored = {f.name: f.read_bytes() for f in (tmp_path / "archive").glob("??/*")}
    assert len(stored) == len(files) and all(sha256_of(data) == name for name, data in stored.items())
    # and none of their bytes on the pipe: what the children sent is a few kB of headers, states and their results
    pipe = [f.read_bytes() for f in sent.iterdir()]
    assert len(pipe) == 2 and all(pipe), [len(p) for p in pipe]
    assert sum(map(len, pipe)) < sum(map(len, stored.values())) / 4, (sum(map(len, pipe)), sum(map(len, stored.values())))
    for data in stored.values():
        middle = data[len(data) // 2:len(data) // 2 + 256]
        assert not any(middle in p for p in pipe), "a file's bytes crossed the pipe"


def test_the_children_store_their_files_in_an_s3_archive_and_the_parent_reads_them_from_there(
        tmp_path: Path, s3_server: S3Server, s3_archive_url: str) -> None:
    """The archive's location goes to each child as the parent opened it (s3://bucket/prefix); its endpoint and
    credentials are the AWS environment the children inherit, as the flows' workers set it (tests/s3_fixture.py)."""
    archive = open_archive(s3_archive_url)
    ingested: list[tuple[str, str]] = []

    def ingest(data: bytes, **meta: Any) -> IngestOutcome:
        ingested.append((sha256_of(data), meta["archived"]))
        return IngestOutcome(meta["archived"], "new", meta["name"], url=meta["url"], portal=meta["portal"].id)

    with ShardPortal(HOSTS) as portal:
        registry = tmp_path / "registry.toml"
        registry.write_text(portal.registry(PORTALS), "utf-8")
        portals = load_registry(registry)
        polite = Politeness(delay=0.05, concurrency=2, retries=0)
        ctx = CrawlContext(polite.fetcher(all_hosts(portals)), CrawlState(None), ingest)
        summary = crawl_in_processes(portals, ctx, processes=2, make_fetcher=polite.fetcher, archive=archive)
    assert all(p["status"] == "ok" for p in summary["portals"].values()), summary["portals"]
    objects = {key.rsplit("/", 1)[1]: size for key, size in s3_server.objects(s3_archive_url).items()}
    assert objects.pop("ARCHIVE-LAYOUT")  # written once, before the first file
    assert len(objects) == len(ingested) == len(PORTALS) * len(REPORT_YEARS), (objects, ingested)
    assert {read for read, _ in ingested} == set(objects) and all(read == said for read, said in ingested)


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
        self.files: list[Any] = []

    def put(self, fn: Any, *args: Any) -> None:
        self.files.append(args[-1])


def test_a_child_sending_files_ahead_of_the_answers_waits_instead_of_filling_the_parents_memory() -> None:
    """A child has at most its plan's ingest_workers files in the parent; one sending more without waiting for the
    answers (a bug, or an ingest it gave up on) is read no further until a place is free: its messages stay unread,
    the parent's work for it bounded."""
    ingest_workers = 2
    parent_end, child_end = multiprocessing.Pipe()
    process = _Alive()
    child = Child(0, [PORTAL], process, parent_end)
    plan = ChildPlan(0, [PORTAL], None, {}, None, None, 1, ingest_workers, 1.0)  # type: ignore[arg-type]
    ctx = CrawlContext(None, CrawlState(None), None)  # type: ignore[arg-type]
    pool = _Held()
    serving = threading.Thread(target=_serve, args=(child, plan, ctx, {"p1": PORTAL}, pool, None, None), daemon=True)
    serving.start()
    assert child_end.recv()[0] == "plan"

    def flood() -> None:
        try:
            for rid in range(ingest_workers + 3):
                child_end.send(("ingest", rid, _meta(f"{rid:064x}", 100_000)))
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
    # the old message (a header, then the file's bytes): not the parent's any more
    (lambda end: end.send(("ingest", 1, 10**12, {})), "ValueError: too many values to unpack"),
    (lambda end: end.send(("ingest", 1)), "ValueError: not enough values to unpack"),
])
def test_a_child_sending_what_the_parent_cannot_read_fails_with_one_line(hostile: Any, why: str) -> None:
    parent_end, child_end = multiprocessing.Pipe()
    child = Child(0, [PORTAL], _Alive(), parent_end)
    plan = ChildPlan(0, [PORTAL], None, {}, None, None, 1, 2, 1.0)  # type: ignore[arg-type]
    ctx = CrawlContext(_Fetcher(), CrawlState(None), None)  # type: ignore[arg-type]
    pool = _Held()
    serving = threading.Thread(target=_serve, args=(child, plan, ctx, {"p1": PORTAL}, pool, None, None), daemon=True)
    serving.start()
    assert child_end.recv()[0] == "plan"
    hostile(child_end)
    serving.join(10)
    assert child.finished.is_set() and not pool.files
    assert child.error and child.error.startswith("sent what the parent cannot read") and why in child.error, child.error
    assert "\n" not in child.error
    child_end.close()
    parent_end.close()


def test_a_childs_file_goes_to_the_parent_only_once_it_is_synced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A child's archive does not fsync each put (open_archive(sync_each=False), as child_main opens it): the durability
    promise moves to the file's message. It reaches the parent after one syncfs begun after the file and its pictures
    were stored (the parent loads the file into the warehouse at once, and its answer is what commits the URL's
    validators); a sync that fails fails the file's ingest with its line, and nothing reaches the parent."""
    from gongkai.warehouse import archive as archive_module

    seen: list[str] = []
    real_syncfs = archive_module.syncfs
    failing: list[OSError] = []

    def recording_syncfs(folder: str, held: int | None = None) -> None:
        if failing:
            raise failing[0]
        real_syncfs(folder, held)
        seen.append("synced")

    monkeypatch.setattr(archive_module, "syncfs", recording_syncfs)
    archive = open_archive(tmp_path / "archive", sync_each=False)
    parent_end, child_end = multiprocessing.Pipe()
    link = ParentLink(child_end, [PORTAL], timeout=5.0, archive=archive)
    url = "http://127.0.0.1:1/a1/r.pdf"
    stored = Stored.put(archive, os.urandom(20_000), {"t1.png": os.urandom(3_000)})  # as a fetch thread stores it
    seen.append("stored")
    got: dict[str, Any] = {}

    def ingest(stored: Stored, url: str) -> None:
        try:
            got[url] = link.ingest(b"", name="r.pdf", url=url, agency=None, year=None, portal=PORTAL, stored=stored)
        except OSError as exc:
            got[url] = exc

    sending = threading.Thread(target=ingest, args=(stored, url))
    sending.start()
    assert parent_end.poll(5)
    kind, rid, meta = parent_end.recv()
    seen.append("sent")
    assert kind == "ingest" and meta["sha256"] == stored.sha256 and meta["pictures"] == stored.pictures
    assert seen == ["stored", "synced", "sent"] and archive._synced == archive._puts == 2  # type: ignore[attr-defined]
    outcome = IngestOutcome(stored.sha256, "new", "r.pdf", url=url, portal="p1")
    parent_end.send(("reply", rid, outcome, None))
    sending.join(5)
    assert got[url] == outcome
    # crawl-state updates need no sync of their own: each commit follows the parent's answer to its file
    link.state(url, pack('"v1"', None, None))
    assert parent_end.poll(5) and parent_end.recv() == ("updates", [(url, ('"v1"', None, None))], [])
    assert seen == ["stored", "synced", "sent"]

    failing.append(OSError(5, "Input/output error"))
    other = Stored.put(archive, os.urandom(20_000))
    ingest(other, url + "?2")
    assert isinstance(got[url + "?2"], OSError) and "Input/output error" in str(got[url + "?2"])
    assert not parent_end.poll(0.3), "a file not synced reached the parent"
    link.conn.close()
    parent_end.close()


TUNED_SCRIPT = """
import ctypes, json, sys, tempfile
from collections.abc import Iterator
from pathlib import Path
from gongkai.crawler.crawl import CrawlContext
from gongkai.crawler.processes import crawl_in_processes
from gongkai.crawler.registry import all_hosts, load_registry
from gongkai.crawler.state import CrawlState
from gongkai.crawler.politeness import Politeness
from gongkai.warehouse import IngestOutcome, open_archive

def heaps():
    # glibc's own account of its arenas (malloc_info: one <heap nr=...> each)
    libc = ctypes.CDLL("libc.so.6")
    libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    with tempfile.NamedTemporaryFile(suffix=".xml") as out:
        stream = libc.fopen(out.name.encode(), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        return Path(out.name).read_text().count("<heap nr=")

def ingest(data, **meta):
    return IngestOutcome(meta["archived"], "new", meta["name"], url=meta["url"], portal=meta["portal"].id)

if __name__ == "__main__":
    portals = load_registry(Path(sys.argv[1]))
    polite = Politeness(delay=0.05, concurrency=2, retries=0)
    ctx = CrawlContext(polite.fetcher(all_hosts(portals)), CrawlState(None), ingest)
    summary = crawl_in_processes(portals, ctx, processes=2, make_fetcher=polite.fetcher, archive=open_archive(sys.argv[2]),
                                 ingest_workers=4)
    print(json.dumps({"ok": all(p["status"] == "ok" for p in summary["portals"].values()), "heaps": heaps()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_the_parents_malloc_is_tuned_as_a_crawler_processes_is(tmp_path: Path) -> None:
    """The parent reads every file back from the archive (a few hundred kB each) on as many threads as the children's
    files in flight: under glibc's defaults each thread got an arena of its own and, once a large block was freed, the
    mmap threshold rose above it, so the freed files stayed in the arenas (at 1,000 hosts 15 MB free in the heap at the
    parent's peak, 84 MiB against 77 tuned). The parent tunes its malloc as a crawler process does
    (crawler.scheduler.tune_malloc): after a crawl whose ingest ran on eight threads its heap is in two arenas at most
    (on the old code, one per thread that allocated). In a process of its own: the tuning is once per process."""
    root = Path(__file__).resolve().parent.parent
    with ShardPortal(HOSTS) as portal:
        registry = tmp_path / "registry.toml"
        registry.write_text(portal.registry(PORTALS), "utf-8")
        env = {**os.environ, "PYTHONPATH": str(root)}
        script = tmp_path / "parent.py"
        script.write_text(TUNED_SCRIPT, "utf-8")
        out = subprocess.run([sys.executable, str(script), str(registry), str(tmp_path / "archive")], env=env,
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ok"] and 1 <= result["heaps"] <= 2, result


def test_a_childs_crawl_state_follows_its_plan_in_pieces_and_the_child_has_it_whole() -> None:
    """The crawl state of a child's hosts goes after its plan, STATE_PIECE entries a message: pickled inside the plan
    (a few MB at 1,000 hosts, the children's at once) it was the parent's peak as a second crawl began. The child puts
    the pieces back together as the plan it was given (on the old code the plan held every entry, none followed)."""
    piece = getattr(processes, "STATE_PIECE", 1000)  # (the old code had none)
    parent_end, child_end = multiprocessing.Pipe()
    child = Child(0, [PORTAL], _Alive(), parent_end)
    entries = {f"http://127.0.0.1:1/a1/t{i}.html": pack(f'"e{i}"', None, {"i": i}) for i in range(2 * piece + 7)}
    plan = ChildPlan(0, [PORTAL], None, entries, None, None, 1, 2, 1.0)  # type: ignore[arg-type]
    ctx = CrawlContext(_Fetcher(), CrawlState(None), None)  # type: ignore[arg-type]
    serving = threading.Thread(target=_serve, args=(child, plan, ctx, {"p1": PORTAL}, _Held(), None, None), daemon=True)
    serving.start()
    kind, sent = child_end.recv()
    assert kind == "plan" and sent.state == {} and sent.state_pieces == 3
    pieces = [child_end.recv() for _ in range(sent.state_pieces)]
    assert [kind for kind, _ in pieces] == ["state"] * 3
    assert all(0 < len(entries_sent) <= piece for _, entries_sent in pieces)
    assert {url: e for _, sent_piece in pieces for url, e in sent_piece.items()} == entries
    assert not child_end.poll(0.2)  # nothing more before the child speaks
    child_end.send(("done", None))
    serving.join(10)
    assert child.finished.is_set()

    # the child's side (child_main's receive_plan) puts the pieces back into the plan before anything else
    parent_end, child_end = multiprocessing.Pipe()
    sender = threading.Thread(target=processes._send_plan, args=(Child(0, [PORTAL], _Alive(), parent_end), plan))
    sender.start()
    received = processes.receive_plan(child_end)
    sender.join(5)
    assert received is not None and received.state == entries and received.state_pieces == 3
    parent_end.close()
    child_end.close()


def test_splitting_the_state_between_the_children_leaves_the_crawlers_url_cache_alone() -> None:
    """The parent hands each child the entries of its hosts (CrawlState.entries, by host_key): through the crawler's
    cache of parsed URLs (urls.parse) every URL of the state stayed in it for the process's life, some 2 MB at 1,000
    hosts in a parent that fetches none of them. The keys are the crawler's (urls.parse's) all the same."""
    from gongkai.crawler import urls
    from gongkai.crawler.state import host_key

    state = CrawlState(None)
    for i in range(500):
        state.commit(f"http://127.0.0.1:{i % 7 + 1}/cache-probe/{i}.html", etag=f'"e{i}"', last_modified=None)
    state.commit("HTTP://Example.COM:80/cache-probe/x.html", etag='"x"', last_modified=None)
    urls._parse_cached.cache_clear()  # type: ignore[attr-defined]
    hosts = frozenset({"127.0.0.1:1", "127.0.0.1:2", "example.com"})
    picked = processes._state_entries(state, hosts)
    assert urls._parse_cached.cache_info().currsize == 0  # type: ignore[attr-defined]
    assert len(picked) == sum(1 for i in range(500) if i % 7 < 2) + 1 and "HTTP://Example.COM:80/cache-probe/x.html" in picked
    assert all(host_key(url) == urls.parse(url).key for url in picked)


def _big_state(pieces: int) -> dict[str, Any]:
    """A child's crawl state of `pieces` STATE_PIECE's and a few entries, each piece well past a pipe's buffer (64 kB)."""
    piece = getattr(processes, "STATE_PIECE", 1000)
    return {f"http://127.0.0.1:1/a1/{'t' * 100}{i}.html": pack(f'"e{i}"', None, {"i": i})
            for i in range(pieces * piece + 7)}


def test_a_stop_asked_for_while_the_plans_pieces_go_reaches_the_child_after_the_last_of_them() -> None:
    """The plan's state goes in pieces the child reads before anything else (receive_plan); a stop the parent passes on
    meanwhile (_wait: a Ctrl-C in a crawl's first seconds, while the children import and the pieces wait in the pipe) went
    between them, and the child failed on it (a ValueError unpacking ("stop",) as a piece) instead of stopping: its portals
    failed. The stop now follows the last piece, and the child has its whole state and then the stop."""
    entries = _big_state(4)
    parent_end, child_end = multiprocessing.Pipe()
    child = Child(0, [PORTAL], _Alive(), parent_end)
    plan = ChildPlan(0, [PORTAL], None, entries, None, None, 1, 2, 1.0)  # type: ignore[arg-type]
    ctx = CrawlContext(_Fetcher(), CrawlState(None), None)  # type: ignore[arg-type]
    serving = threading.Thread(target=_serve, args=(child, plan, ctx, {"p1": PORTAL}, _Held(), None, None), daemon=True)
    serving.start()
    stopping = threading.Thread(target=processes._wait, args=([child], lambda: True, 30.0, None), daemon=True)
    stopping.start()
    time.sleep(0.3)  # the stop asked for, the serving thread held by the full pipe
    received = processes.receive_plan(child_end)
    assert received is not None and received.state == entries
    assert child_end.poll(5) and child_end.recv() == ("stop",)
    child_end.send(("done", None))
    serving.join(10)
    stopping.join(10)
    assert child.finished.is_set() and not stopping.is_alive()
    parent_end.close()
    child_end.close()


def _never_reads(conn: Any, parent_pid: int) -> None:
    """A child hung before it reads its plan (in its imports, say)."""
    time.sleep(60)


@contextlib.contextmanager
def _served_child_that_never_reads() -> Iterator[tuple[Child, threading.Thread]]:
    """A real spawned child that never reads its plan, and the parent's thread serving it (blocked sending the plan)."""
    spawn = multiprocessing.get_context("spawn")
    parent_end, child_end = spawn.Pipe()
    process = spawn.Process(target=_never_reads, args=(child_end, os.getpid()), daemon=True)
    process.start()
    child_end.close()
    try:
        child = Child(0, [PORTAL], process, parent_end)
        plan = ChildPlan(0, [PORTAL], None, _big_state(2), None, None, 1, 2, 1.0)  # type: ignore[arg-type]
        ctx = CrawlContext(_Fetcher(), CrawlState(None), None)  # type: ignore[arg-type]
        serving = threading.Thread(target=_serve, args=(child, plan, ctx, {"p1": PORTAL}, _Held(), None, None),
                                   daemon=True)
        serving.start()
        yield child, serving
    finally:
        process.kill()
        process.join(5)
        parent_end.close()


def test_a_stop_while_a_child_does_not_read_its_plan_kills_it_after_the_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child that does not read its plan (hung in its imports) leaves its serving thread blocked in the send, with the
    child's send lock. The stop (_wait) took that lock too, and so waited with it: forever, and the kill after the stop's
    grace, the one thing that would free the send, never came; the parent hung. The stop now waits for the plan without
    holding _wait: the child is killed after the grace, the send fails, the child is recorded as not ending in time."""
    monkeypatch.setattr(processes, "KILL_AFTER_S", 0.5)
    with _served_child_that_never_reads() as (child, serving):
        stopping = threading.Thread(target=processes._wait, args=([child], lambda: True, 0.0, None), daemon=True)
        stopping.start()
        stopping.join(15)
        assert not stopping.is_alive(), "the parent waits on a plan its child does not read"
        serving.join(5)
        assert child.finished.is_set() and child.killed_after_stop and child.error == "did not end within the stop's grace"


def test_a_child_that_never_reads_its_plan_is_given_up_after_the_start_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child not ready within START_TIMEOUT_S is given up (_serve looks at the time between its messages). One that
    never reads its plan held its serving thread in the send, where nothing looks at the time: without a stop or a crawl
    bound the parent waited on it forever. It is now killed once past the start timeout, recorded as not started."""
    monkeypatch.setattr(processes, "KILL_AFTER_S", 0.5)
    monkeypatch.setattr(processes, "START_TIMEOUT_S", 1.0)
    with _served_child_that_never_reads() as (child, _serving):
        waiting = threading.Thread(target=processes._wait, args=([child], None, 0.0, None), daemon=True)
        waiting.start()
        waiting.join(15)
        assert not waiting.is_alive(), "the parent waits forever on a child that does not read its plan"
        assert child.finished.is_set() and child.error == "did not start in 1 s" and not child.killed_after_stop
