"""The one-process crawl stores each file in the archive where it was fetched and its ingest path reads it back
(crawler.processes.reading_back over ArchivedFiles): a file the archive cannot give back is that item's one line, its
crawl state not committed, and the next run fetches, stores (once) and ingests it. Real HTTP over loopback: the
benchmark portal of benchmarks/bench_polite_crawl.py, a real local archive."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench_portals import Portal
from s3_fixture import S3Server

from gongkai.crawler.crawl import CrawlContext, Limits, Stored, Walk
from gongkai.crawler.fetcher import Fetcher
from gongkai.crawler.processes import ArchivedFiles, reading_back
from gongkai.crawler.registry import all_hosts, load_registry
from gongkai.crawler.scheduler import CrawlScheduler, HostSlots
from gongkai.crawler.state import CrawlState
from gongkai.warehouse import IngestOutcome, open_archive
from gongkai.warehouse.archive import sha256_of

HOSTS = 2


@pytest.fixture(scope="module")
def portal() -> Iterator[Portal]:
    served = Portal(HOSTS, 0.0)
    yield served
    served.close()


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

        slots = HostSlots(2, 0.0)
        fetcher = Fetcher(all_hosts(portals), delay=0.0, concurrency=2, retries=1, backoff=0.05, gate=slots)
        ctx = CrawlContext(fetcher, state, maybe_lost, archive=archive)
        return CrawlScheduler(ctx, slots, workers=4, ingest_workers=1).run(Walk(ctx, portals, Limits()))

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
