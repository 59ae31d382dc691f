"""The one-process crawl stores each file in the archive where it was fetched and its ingest path reads it back
(crawler.processes.reading_back over ArchivedFiles): a file the archive cannot give back is that item's one line, its
crawl state not committed, and the next run fetches, stores (once) and ingests it. Real HTTP over loopback: the
benchmark portal of benchmarks/bench_polite_crawl.py, a real local archive."""

from __future__ import annotations

import errno
import gzip
import threading
import tracemalloc
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from bench_portals import Portal
from s3_fixture import S3Server

from gongkai.crawler import urls
from gongkai.crawler.crawl import CrawlContext, Limits, Stored, Walk, _fetch_and_ingest, run_steps
from gongkai.crawler.fetcher import BODY_SINK, SINK_CHUNK, Fetcher
from gongkai.crawler.processes import ArchivedFiles, reading_back
from gongkai.crawler.registry import Portal as RegistryPortal
from gongkai.crawler.registry import all_hosts, load_registry
from gongkai.crawler.scheduler import CrawlScheduler, HostSlots
from gongkai.crawler.state import CrawlState
from gongkai.extractors.report_meta import TitleVerdict
from gongkai.warehouse import IngestOutcome, open_archive
from gongkai.warehouse.archive import sha256_of

HOSTS = 2


@pytest.fixture(scope="module")
def portal() -> Iterator[Portal]:
    served = Portal(HOSTS, 0.0)
    yield served
    served.close()


def scheduled_crawl(portals: list[RegistryPortal], state: CrawlState, archive: Any, ingest: Any) -> Walk:
    """One run of the crawl over `portals` with the scheduler, each file stored in `archive` where it was fetched."""
    slots = HostSlots(2, 0.0)
    fetcher = Fetcher(all_hosts(portals), delay=0.0, concurrency=2, retries=1, backoff=0.05, gate=slots)
    ctx = CrawlContext(fetcher, state, ingest, archive=archive)
    return CrawlScheduler(ctx, slots, workers=4, ingest_workers=1).run(Walk(ctx, portals, Limits()))


def test_reading_back_hands_the_ingest_the_file_and_its_digest(tmp_path: Path) -> None:
    archive = open_archive(tmp_path / "archive")
    calls: list[dict[str, Any]] = []

    def ingest(data: bytes, **meta: Any) -> IngestOutcome:
        calls.append({"data": data, **meta})
        return IngestOutcome(meta.get("archived") or "", "new")

    read = reading_back(ingest, ArchivedFiles(archive, 1000))
    stored = Stored.put(archive, b"<html>report</html>", {"a.png": b"png", "icon.gif": None})
    read(b"", name="a.html", url="http://h/a.html", stored=stored)
    read(b"pdf", name="b.pdf", url="http://h/b.pdf", archived="c" * 64)  # a crawler process's file, as it is
    assert calls == [
        {"data": b"<html>report</html>", "name": "a.html", "url": "http://h/a.html", "archived": stored.sha256,
         "pictures": {"a.png": b"png", "icon.gif": None}},
        {"data": b"pdf", "name": "b.pdf", "url": "http://h/b.pdf", "archived": "c" * 64},
    ]
    with pytest.raises(ValueError, match="announced"):  # past the crawl's size bound: refused unread
        read(b"", name="c", url="u", stored=Stored(stored.sha256, 5000))
    with pytest.raises(LookupError, match="not in the archive"):
        read(b"", name="c", url="u", stored=Stored("d" * 64, 3))


def test_a_file_the_archive_cannot_give_back_is_its_items_line_and_the_rerun_completes_it(portal: Portal,
                                                                                         tmp_path: Path) -> None:
    reg = tmp_path / "registry.toml"
    reg.write_text(portal.registry(portal.ports[:HOSTS]), "utf-8")
    portals = load_registry(reg)
    archive = open_archive(tmp_path / "archive")
    state = CrawlState(tmp_path / "state.json")
    puts: list[str] = []
    put = archive.put

    def counting_put(data: bytes) -> str:
        puts.append(put(data))
        return puts[-1]

    archive.put = counting_put  # type: ignore[method-assign]
    link = archive._link  # a file stored as it was read (LocalArchive.incoming) is named here: a store too

    def counting_link(incoming: Any) -> str:
        puts.append(link(incoming))
        return puts[-1]

    archive._link = counting_link  # type: ignore[method-assign]
    lost: set[str] = set()

    def ingest(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Any,
               archived: str | None = None) -> IngestOutcome:
        return IngestOutcome(archived or "", "new", name, agency=agency, year=year, url=url, portal=portal.id)

    def crawl(losing: bool) -> Walk:
        files = ArchivedFiles(archive, 50 * 1024 * 1024)
        read = reading_back(ingest, files)

        def maybe_lost(data: bytes, **meta: Any) -> IngestOutcome:
            stored = meta.get("stored")
            if losing and stored is not None and not lost and meta["url"].endswith(".pdf"):
                lost.add(meta["url"])  # the first PDF goes missing between its store and its ingest
                archive.path_for(stored.sha256).unlink()
            return read(data, **meta)

        return scheduled_crawl(portals, state, archive, maybe_lost)

    first = crawl(losing=True)
    (url,) = lost
    failed = [d for d in first.documents if d.outcome == "crashed"]
    assert len(failed) == 1  # its item (the listing's URL), with the reason's one line
    assert "LookupError" in (failed[0].reason or "") and "\n" not in (failed[0].reason or "")
    assert sum(d.outcome == "new" for d in first.documents) == HOSTS * 5 - 1
    assert state.get(url) is None  # not committed: fetched again next run
    puts.clear()
    second = crawl(losing=False)
    again = [d for d in second.documents if d.outcome == "new"]
    assert [d.url for d in again] == [url] and len(puts) == 1  # fetched, stored once, ingested
    assert archive.path_for(again[0].sha256).exists()


def test_the_one_process_crawl_stores_in_an_s3_archive_and_reads_each_file_back_from_it(
        portal: Portal, tmp_path: Path, s3_server: S3Server, s3_archive_url: str) -> None:
    """An S3 archive (moto on loopback) in one process: each file put on the thread that fetched it, read back by
    digest for the ingest path, the bytes it gets those the archive holds under that digest; each file stored once."""
    reg = tmp_path / "registry.toml"
    reg.write_text(portal.registry(portal.ports[:HOSTS]), "utf-8")
    portals = load_registry(reg)
    archive = open_archive(s3_archive_url)
    ingested: list[tuple[str, str | None]] = []

    def ingest(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Any,
               archived: str | None = None) -> IngestOutcome:
        ingested.append((sha256_of(data), archived))
        return IngestOutcome(archived or "", "new", name, agency=agency, year=year, url=url, portal=portal.id)

    slots = HostSlots(2, 0.0)
    fetcher = Fetcher(all_hosts(portals), delay=0.0, concurrency=2, retries=1, backoff=0.05, gate=slots)
    ctx = CrawlContext(fetcher, CrawlState(None), reading_back(ingest, ArchivedFiles(archive, fetcher.max_bytes)),
                       archive=archive)
    walk = CrawlScheduler(ctx, slots, workers=4, ingest_workers=1).run(Walk(ctx, portals, Limits()))
    assert sum(d.outcome == "new" for d in walk.documents) == HOSTS * 5, [(d.outcome, d.reason) for d in walk.documents]
    objects = {key.rsplit("/", 1)[1] for key in s3_server.objects(s3_archive_url)} - {"ARCHIVE-LAYOUT"}
    assert len(ingested) == HOSTS * 5 and all(read == said for read, said in ingested)
    assert {read for read, _ in ingested} == objects  # every file stored, once (a key per digest), and read back


# --- a file's body goes into the archive as it is read (CrawlContext.fetch, Fetcher._read_body, LocalArchive.incoming) --

BIG = bytes(range(256)) * (48 * 1024)  # 12 MB: held whole, the old path's peak was at least this
CAP = 1024 * 1024
ENCODED = 300_000  # the part of BIG sent gzip- or deflate-encoded
ROBOTS = b"User-agent: *\nDisallow: /private/\n"
MID = bytes(range(256)) * 1200  # 300 kB: the size of a report's PDF, below READ_CHUNK (1 MB)


class _Files(BaseHTTPRequestHandler):
    """/whole.pdf: BIG with its length; /over-cap.pdf: chunked, twice the cap; /dropped.pdf: BIG's length announced,
    the connection closed after a third of it (until the test serves it whole: `modes`)."""

    protocol_version = "HTTP/1.1"
    modes: dict[str, str] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path
        if self.modes.get(path) == "whole":
            path = "/whole.pdf"
        if path == "/robots.txt":
            self._head(200, {"Content-Length": str(len(ROBOTS))})
            self.wfile.write(ROBOTS)
        elif path == "/whole.pdf":
            self._head(200, {"Content-Length": str(len(BIG)), "ETag": '"v1"'})
            for start in range(0, len(BIG), 256 * 1024):
                self.wfile.write(BIG[start:start + 256 * 1024])
        elif path == "/mid.pdf":  # a file below READ_CHUNK with its length: the old path read it in one piece
            self._head(200, {"Content-Length": str(len(MID))})
            self.wfile.write(MID)
        elif path == "/over-cap.pdf":
            self._head(200, {"Transfer-Encoding": "chunked"})
            for _ in range(2 * CAP // 65536 + 1):
                self.wfile.write(b"10000\r\n" + b"x" * 65536 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif path in ("/gzip.pdf", "/deflate.pdf"):  # sent encoded: the file is its decoded bytes
            body = gzip.compress(BIG[:ENCODED]) if path == "/gzip.pdf" else zlib.compress(BIG[:ENCODED])
            self._head(200, {"Content-Length": str(len(body)), "Content-Encoding": path[1:-4]})
            self.wfile.write(body)
        elif path == "/dropped-then-304.pdf" and self.modes.get(path) == "304":
            self._head(304, {"ETag": '"v1"'})
        elif path in ("/dropped.pdf", "/dropped-then-304.pdf"):
            if path == "/dropped-then-304.pdf":
                self.modes[path] = "304"  # the retry finds it unchanged
            self._head(200, {"Content-Length": str(len(BIG))})
            self.wfile.write(BIG[: len(BIG) // 3])
            self.wfile.flush()
            self.close_connection = True
        else:
            self._head(404, {"Content-Length": "0"})

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def file_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def streamed_crawl(host: str, tmp_path: Path, max_bytes: int = 50 * 1024 * 1024) -> tuple[Any, ...]:
    """One file's unit of work driven in this thread with a local archive, what it opened in the archive recorded."""
    archive = open_archive(tmp_path / "archive")
    opened: list[Any] = []
    incoming = archive.incoming  # type: ignore[attr-defined]
    archive.incoming = lambda: opened.append(incoming()) or opened[-1]  # type: ignore[attr-defined]
    given: list[dict[str, Any]] = []

    def ingest(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Any,
               stored: Stored | None = None) -> IngestOutcome:
        given.append({"data": data, "stored": stored})
        return IngestOutcome(stored.sha256 if stored else "", "new", name, url=url, portal=portal.id)

    fetcher = Fetcher({host}, delay=0.0, concurrency=2, retries=1, backoff=0.01, max_bytes=max_bytes)
    ctx = CrawlContext(fetcher, CrawlState(None), ingest, archive=archive)
    site = RegistryPortal("p", "agency", "000000", "county", "generic", (f"http://{host}/",), frozenset({host}))

    def fetch(path: str) -> IngestOutcome:
        verdict = TitleVerdict(True, 2023, None, "a report")
        outcome: IngestOutcome = run_steps(ctx, site, _fetch_and_ingest(ctx, site, f"http://{host}{path}", "report", verdict))
        return outcome

    return archive, ctx, fetch, given, opened


def archived_files(root: Path) -> list[str]:
    """The archive's files, temporary ones included (the layout marker apart)."""
    return sorted(p.name for p in root.rglob("*") if p.is_file() and p.name != "ARCHIVE-LAYOUT")


def test_a_downloaded_file_goes_into_the_archive_as_it_is_read_never_held_whole(file_server: str, tmp_path: Path) -> None:
    """The body was read into one bytes object, hashed and written afterwards: a 12 MB file held 12 MB (more with its
    chunks) while it was fetched and stored. It is now written to the archive's temporary file as each chunk comes,
    hashed as written, named at its digest once whole; the step carries the digest, the counters count its bytes."""
    archive, ctx, fetch, given, opened = streamed_crawl(file_server, tmp_path)
    ctx.fetcher.allowed_by_robots(f"http://{file_server}/")  # (robots.txt read, the connection open, before the measure)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        outcome = fetch("/whole.pdf")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert outcome.outcome == "new" and outcome.sha256 == sha256_of(BIG)
    assert peak < len(BIG) // 4, peak  # a few read chunks at most (READ_CHUNK: 1 MB)
    assert given[-1] == {"data": b"", "stored": Stored(sha256_of(BIG), len(BIG))}
    assert archive.get(sha256_of(BIG)) == BIG and archived_files(tmp_path / "archive") == [sha256_of(BIG)]
    assert ctx.state.get(f"http://{file_server}/whole.pdf")["etag"] == '"v1"'  # committed as before
    assert ctx.fetcher.host_stats()[file_server]["bytes"] == len(ROBOTS) + len(BIG)
    assert opened and all(f._fd == -1 for f in opened)  # each temporary file closed


def test_a_file_in_flight_holds_at_most_one_sink_chunk_whatever_its_declared_length(file_server: str) -> None:
    """A body going into a sink was read in one piece of its declared length when that was below READ_CHUNK: each file
    in flight held a buffer of its size (a 300 kB PDF, 300 kB) until written, so what a crawl held grew with the files in
    flight. Now read SINK_CHUNK at a time: the sink is handed chunks of at most that, the file whole and in order."""
    chunks: list[bytes] = []

    class Recording:
        def write(self, data: bytes) -> None:
            chunks.append(data)

        def abort(self) -> None:
            raise AssertionError("nothing failed")

    fetcher = Fetcher({file_server}, delay=0.0, concurrency=1, retries=0)
    fetcher.allowed_by_robots(f"http://{file_server}/")
    token = BODY_SINK.set(Recording)
    try:
        reply = fetcher.fetch(f"http://{file_server}/mid.pdf", allowed_hosts={file_server})
    finally:
        BODY_SINK.reset(token)
    assert reply.content == b"" and b"".join(chunks) == MID
    assert len(chunks) > 1 and max(map(len, chunks)) <= SINK_CHUNK < len(MID), [len(c) for c in chunks]


def test_a_body_cut_by_the_cap_is_never_named_and_the_next_run_fetches_it_again(file_server: str, tmp_path: Path) -> None:
    archive, ctx, fetch, given, opened = streamed_crawl(file_server, tmp_path, max_bytes=CAP)
    url = f"http://{file_server}/over-cap.pdf"
    outcome = fetch("/over-cap.pdf")
    assert outcome.outcome == "fetch_failed" and f"more than {CAP} bytes" in (outcome.reason or "")
    assert "\n" not in (outcome.reason or "") and not given
    assert len(opened) == 1 and opened[0]._fd == -1  # it was being written, then dropped
    assert archived_files(tmp_path / "archive") == [] and ctx.state.get(url) is None  # nothing kept: fetched again


def test_a_connection_dropped_mid_body_leaves_nothing_and_the_next_run_stores_the_file_once(file_server: str,
                                                                                           tmp_path: Path) -> None:
    archive, ctx, fetch, given, opened = streamed_crawl(file_server, tmp_path)
    url = f"http://{file_server}/dropped.pdf"
    outcome = fetch("/dropped.pdf")
    assert outcome.outcome == "fetch_failed" and "gave up after 2 attempts" in (outcome.reason or "")
    assert "\n" not in (outcome.reason or "") and not given
    assert len(opened) == 2 and all(f._fd == -1 for f in opened)  # each attempt's file dropped, none named
    assert archived_files(tmp_path / "archive") == [] and ctx.state.get(url) is None
    _Files.modes["/dropped.pdf"] = "whole"
    try:
        ctx.first_time(url)
        again = fetch("/dropped.pdf")
    finally:
        _Files.modes.clear()
    assert again.outcome == "new" and given == [{"data": b"", "stored": Stored(sha256_of(BIG), len(BIG))}]
    assert archived_files(tmp_path / "archive") == [sha256_of(BIG)] and ctx.state.get(url) is not None


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_an_encoded_body_is_stored_decoded_as_before(file_server: str, tmp_path: Path, encoding: str) -> None:
    """The file named at its digest is the body decoded (Content-Encoding), exactly the bytes the old path put."""
    archive, ctx, fetch, given, opened = streamed_crawl(file_server, tmp_path)
    outcome = fetch(f"/{encoding}.pdf")
    assert outcome.outcome == "new" and given == [{"data": b"", "stored": Stored(sha256_of(BIG[:ENCODED]), ENCODED)}]
    assert archive.get(sha256_of(BIG[:ENCODED])) == BIG[:ENCODED]
    assert archived_files(tmp_path / "archive") == [sha256_of(BIG[:ENCODED])] and len(opened) == 1


def test_a_retry_answered_304_after_a_body_dropped_mid_way_is_not_modified_nothing_named(file_server: str,
                                                                                        tmp_path: Path) -> None:
    """The first attempt's 200 body was cut (its temporary file aborted) and the retry is a 304: the fetch's answer is
    that 304. The aborted file was still taken as the fetch's body and named (link on a closed file: an OSError that
    crashed the item) instead of the item being not_modified."""
    archive, ctx, fetch, given, opened = streamed_crawl(file_server, tmp_path)
    try:
        outcome = fetch("/dropped-then-304.pdf")
    finally:
        _Files.modes.clear()
    assert outcome.outcome == "not_modified" and not given
    assert len(opened) == 1 and opened[0]._fd == -1
    assert archived_files(tmp_path / "archive") == []


def test_a_stored_file_whose_digest_fails_on_reading_is_its_items_line_and_the_rerun_stores_it_whole(
        portal: Portal, tmp_path: Path) -> None:
    """The file named at its digest no longer matches it when the ingest path reads it back (a disk's damage): that
    item's one line, its state not committed; the next run fetches it, writes it as it comes and, finding the damaged
    file at its digest, replaces it whole (as a put repairs it)."""
    reg = tmp_path / "registry.toml"
    reg.write_text(portal.registry(portal.ports[:1]), "utf-8")
    portals = load_registry(reg)
    archive = open_archive(tmp_path / "archive")
    state = CrawlState(tmp_path / "state.json")
    damaged: set[str] = set()
    opened: list[Any] = []
    incoming = archive.incoming  # type: ignore[attr-defined]
    archive.incoming = lambda: opened.append(incoming()) or opened[-1]  # type: ignore[attr-defined]

    def ingest(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Any,
               archived: str | None = None) -> IngestOutcome:
        return IngestOutcome(archived or "", "new", name, agency=agency, year=year, url=url, portal=portal.id)

    def crawl(damaging: bool) -> Walk:
        read = reading_back(ingest, ArchivedFiles(archive, 50 * 1024 * 1024))

        def maybe_damaged(data: bytes, **meta: Any) -> IngestOutcome:
            stored = meta.get("stored")
            if damaging and stored is not None and not damaged and meta["url"].endswith(".pdf"):
                damaged.add(meta["url"])
                path = archive.path_for(stored.sha256)
                path.chmod(0o644)
                path.write_bytes(b"\0" * stored.size)  # as many bytes, not these
                path.chmod(0o444)
            return read(data, **meta)

        return scheduled_crawl(portals, state, archive, maybe_damaged)

    first = crawl(damaging=True)
    (url,) = damaged
    failed = [d for d in first.documents if d.outcome == "crashed"]
    assert len(failed) == 1 and "corrupt" in (failed[0].reason or "") and "\n" not in (failed[0].reason or "")
    assert state.get(url) is None
    assert opened  # its files were written as they came
    opened.clear()
    second = crawl(damaging=False)
    again = [d for d in second.documents if d.outcome == "new"]
    assert [d.url for d in again] == [url] and len(opened) == 1
    assert sha256_of(archive.get(again[0].sha256)) == again[0].sha256  # whole again


def test_the_robots_txt_read_within_a_stored_fetch_is_read_as_rules_never_into_the_file(file_server: str,
                                                                                         tmp_path: Path) -> None:
    """A host's first request reads its robots.txt inside the fetch (a walk in one thread; a redirect to a host not seen
    yet): that body is the rules, not the file's, whatever the fetch's body goes into."""
    archive, ctx, fetch, given, opened = streamed_crawl(file_server, tmp_path)
    assert fetch("/whole.pdf").outcome == "new"  # robots.txt read first, inside this fetch
    refused = fetch("/private/report.pdf")
    assert refused.outcome == "refused" and "robots.txt" in (refused.reason or "")
    assert archived_files(tmp_path / "archive") == [sha256_of(BIG)] and len(opened) == 1


def test_a_download_the_archive_cannot_take_leaves_nothing_and_the_next_fetch_goes_on(file_server: str, tmp_path: Path,
                                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk mid-body: the store's error ends the fetch (the item's one line in a crawl, its state not committed),
    the temporary file is dropped, the connection given up; the next file is fetched and stored as usual."""
    from gongkai.warehouse.archive import Incoming

    archive, ctx, fetch, given, opened = streamed_crawl(file_server, tmp_path)
    real_write = Incoming.write

    def full_after_a_chunk(self: Incoming, data: bytes) -> None:
        if self.size:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, data)

    monkeypatch.setattr(Incoming, "write", full_after_a_chunk)
    with pytest.raises(OSError, match="No space left"):
        fetch("/whole.pdf")
    assert archived_files(tmp_path / "archive") == [] and opened[0]._fd == -1 and not given
    assert ctx.state.get(f"http://{file_server}/whole.pdf") is None
    monkeypatch.setattr(Incoming, "write", real_write)
    ctx.seen.clear()
    assert fetch("/whole.pdf").outcome == "new" and archived_files(tmp_path / "archive") == [sha256_of(BIG)]


def test_an_archive_that_cannot_open_a_file_gives_the_connection_up_at_once(file_server: str, tmp_path: Path) -> None:
    """The archive cannot even open the file to write the body into (too many open files, a read-only disk): the
    fetch's error, as a full disk mid-body is, and the connection closed and handed back to its pool there and then.
    It stayed checked out with its body unread, its socket held as long as the error was (the scheduler keeps it)."""
    archive, ctx, fetch, given, opened = streamed_crawl(file_server, tmp_path)
    site = RegistryPortal("p", "agency", "000000", "county", "generic", (f"http://{file_server}/",),
                          frozenset({file_server}))
    ctx.fetcher.allowed_by_robots(f"http://{file_server}/")  # robots.txt read: its connection idle in the pool
    pool = ctx.fetcher._pool(urls.parse(f"http://{file_server}/whole.pdf"))
    idle = pool.pool.qsize()

    def no_file() -> Any:
        raise OSError(errno.EMFILE, "Too many open files")

    archive.incoming = no_file  # type: ignore[attr-defined]
    with pytest.raises(OSError, match="Too many open files") as held:  # held, as the scheduler holds a unit's error
        ctx.fetch(site, f"http://{file_server}/whole.pdf", stores=True)
    assert pool.pool.qsize() == idle, "the connection is still checked out"
    assert held.value.errno == errno.EMFILE and archived_files(tmp_path / "archive") == []
