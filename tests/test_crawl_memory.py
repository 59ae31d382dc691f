"""The crawl's memory does not grow with the hosts it has done: once a host has no work left in the run (every portal
that may send work to it finished), its idle connections are closed and its robots.txt rules, slots and queue
dropped (CrawlScheduler._host_finished, Fetcher.forget_host, HostSlots.forget), while its politeness delay still
holds should it be seen again. Real HTTP over loopback: benchmarks/bench_polite_crawl.py's portal, one process
listening on one port per host."""

from __future__ import annotations

import gc
import json
import os
import pickle
import sys
import time
import tracemalloc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench_portals import Portal

from gongkai.crawler import urls
from gongkai.crawler.crawl import CrawlContext, Limits, Walk
from gongkai.crawler.fetcher import Fetcher
from gongkai.crawler.registry import all_hosts, load_registry
from gongkai.crawler.scheduler import CrawlScheduler, HostSlots, Reservation
from gongkai.crawler.state import CrawlState
from gongkai.warehouse import IngestOutcome, open_archive

ROOT = Path(__file__).resolve().parents[1]
HOSTS = 12
DELAY = 0.5
LATENCY = 0.02


@pytest.fixture(scope="module")
def portal() -> Iterator[Portal]:
    served = Portal(HOSTS, LATENCY)
    yield served
    served.close()


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:  # closed meanwhile (the listing's own descriptor)
            pass
    return count


def crawl(portal: Portal, folder: Path, hosts: int) -> tuple[Walk, CrawlScheduler, HostSlots, Fetcher]:
    folder.mkdir(parents=True, exist_ok=True)
    reg = folder / "registry.toml"
    reg.write_text(portal.registry(portal.ports[:hosts]), "utf-8")
    portals = load_registry(reg)
    archive = open_archive(folder / "archive")

    def archived(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Any) -> IngestOutcome:
        return IngestOutcome(archive.put(data), "new", name, agency=agency, year=year, url=url, portal=portal.id)

    slots = HostSlots(2, DELAY, record=True)
    fetcher = Fetcher(all_hosts(portals), delay=DELAY, concurrency=2, retries=1, backoff=0.05, gate=slots)
    ctx = CrawlContext(fetcher, CrawlState(folder / "state.json"), archived)
    scheduler = CrawlScheduler(ctx, slots, workers=16)
    walk = scheduler.run(Walk(ctx, portals, Limits()))
    return walk, scheduler, slots, fetcher


def held_per_host(scheduler: CrawlScheduler, slots: HostSlots, fetcher: Fetcher) -> dict[str, int]:
    """Everything the run holds per host beyond its counters (the run summary's) and its crawl state (saved)."""
    return {
        "idle connection pools": len(fetcher._adapter.poolmanager.pools),
        "robots.txt rules": len(fetcher._robots),
        "robots.txt locks": len(fetcher._robots_locks),
        "resolved addresses": len(fetcher._addresses),
        "slots": len(slots._hosts),
        "queues": len([host for host in scheduler._queues if host is not None]),
        "robots.txt asked": len(scheduler._robots_asked),
    }


def test_a_finished_host_has_its_connections_closed_and_its_robots_and_slots_dropped(portal: Portal,
                                                                                      tmp_path: Path) -> None:
    sockets = open_sockets()
    walk, scheduler, slots, fetcher = crawl(portal, tmp_path, HOSTS)
    assert sorted(d.outcome for d in walk.documents) == ["new"] * (HOSTS * 5)  # nothing lost to the forgetting
    assert scheduler.stats.hosts_finished == HOSTS
    # every host's keep-alive connection used to stay open in the shared pool until the fetcher went away
    assert open_sockets() <= sockets
    assert held_per_host(scheduler, slots, fetcher) == dict.fromkeys(held_per_host(scheduler, slots, fetcher), 0)
    # what is kept of a forgotten host: when its next request may start, dropped once that time has passed
    assert slots.sweep_resting(time.monotonic() + 60 * DELAY) == 0
    assert fetcher.host_stats()[f"127.0.0.1:{portal.ports[0]}"]["requests"] == 11  # the summary's counters stay
    # and the limits held throughout
    assert slots.log is not None
    kept = portal.politeness_from_log(slots.log)
    assert kept["min_gap_s"] >= DELAY and kept["max_in_flight"] <= 2


def test_what_is_held_per_host_does_not_grow_with_the_hosts_crawled(portal: Portal, tmp_path: Path) -> None:
    """After N hosts finished, the per-host entries held are none, for 3 hosts as for 12 (they were N each)."""
    few = held_per_host(*crawl(portal, tmp_path / "few", 3)[1:])
    many = held_per_host(*crawl(portal, tmp_path / "many", HOSTS)[1:])
    assert sum(few.values()) == sum(many.values()) == 0, (few, many)


def test_a_finished_run_is_not_kept_alive_by_the_deadline_watch(portal: Portal, tmp_path: Path) -> None:
    """The deadline watch keeps each finished request for its deadline (300 s by default): it used to keep the request's
    gate with it, and through it the scheduler, fetcher and walk of the whole run: a second run (the no-change nightly,
    a worker's next shard) started with the first one's pages, items and connections still in memory."""
    walk, scheduler, slots, fetcher = crawl(portal, tmp_path, 2)
    assert len(walk.documents) == 10
    gone = [weakref.ref(walk), weakref.ref(scheduler), weakref.ref(slots), weakref.ref(fetcher)]
    del walk, scheduler, slots, fetcher
    gc.collect()
    assert [ref() is None for ref in gone] == [True] * 4


def test_a_forgotten_host_seen_again_keeps_its_delay(portal: Portal, tmp_path: Path) -> None:
    """A host forgotten and then asked for again (a redirect to it, a later portal) waits its delay from its last
    request all the same: its next start outlives its slots entry."""
    portal.log()
    _, _, slots, fetcher = crawl(portal, tmp_path, 2)
    assert slots.log is not None
    last_host = max(slots.log, key=lambda request: request[1])[0]  # the host crawled last: its delay not yet over
    assert last_host not in slots._hosts  # forgotten
    index = portal.ports.index(int(last_host.rsplit(":", 1)[1]))
    fetcher.fetch(f"http://{last_host}/a{index}/index.html", allowed_hosts=[last_host])  # its robots.txt read again
    kept = portal.politeness_from_log([r for r in slots.log if r[0] == last_host])
    assert kept["min_gap_s"] >= DELAY
    seen = portal.politeness_from_log([r for r in portal.log() if r[0] == int(last_host.rsplit(":", 1)[1])])
    assert seen["min_gap_s"] >= DELAY - 0.1  # as the portal saw it (its own process reads a request a little late)


def test_slots_forget_an_idle_host_but_not_its_next_start() -> None:
    slots = HostSlots(2, 10.0)
    with slots("a") as sent:
        sent()
    started = time.monotonic()
    assert slots.forget("a")
    assert "a" not in slots._hosts
    again = slots.try_reserve("a")
    assert not isinstance(again, Reservation) and again >= started + 9.9  # still ten seconds after the last start
    assert slots.sweep_resting(started + 11.0) == 0  # once that time has passed nothing is kept of it


def test_slots_keep_a_host_with_a_request_in_flight() -> None:
    slots = HostSlots(2, 0.0)
    turn = slots.try_reserve("a")
    assert isinstance(turn, Reservation)
    assert not slots.forget("a")  # reserved: in flight
    slots.give_back(turn)
    assert slots.forget("a")
    assert isinstance(slots.try_reserve("a"), Reservation)  # nothing kept: a new host again


def test_slots_keep_a_host_whose_request_waits_for_its_delay() -> None:
    """A request outside a turn (a redirect hop, a robots.txt redirected here) waits for the delay before it counts as
    in flight; forgetting the host under it would let it and the host's next request go out within the delay."""
    import threading

    from gongkai.crawler.scheduler import _has_waiters

    slots = HostSlots(2, 1.0)
    with slots("a") as sent:
        sent()
    waiting = threading.Thread(target=lambda: slots("a").__enter__())
    waiting.start()
    bound = time.monotonic() + 10
    while not _has_waiters(slots._hosts["a"].changed) and time.monotonic() < bound:
        time.sleep(0.005)
    assert not slots.forget("a") and "a" in slots._hosts
    waiting.join(10)


def test_forgetting_many_resting_hosts_sweeps_without_deadlock() -> None:
    """forget() sweeps the kept start times once enough hosts rest; the sweep must not take the slots' (plain, not
    reentrant) lock a second time: on the old code the 64th forgotten host hung the scheduler's driver for good."""
    import threading

    slots = HostSlots(2, 60.0)
    for i in range(200):
        with slots(f"h{i}") as sent:
            sent()
    done: list[int] = []
    worker = threading.Thread(target=lambda: done.extend(int(slots.forget(f"h{i}")) for i in range(200)), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "forget() hung sweeping its resting hosts"
    assert sum(done) == 200 and not slots._hosts
    assert slots.sweep_resting() == 200  # each still rests a minute from its last start


def test_forget_host_drops_its_pool_by_key_without_listing_every_pool(portal: Portal, tmp_path: Path) -> None:
    """Each finished host listed every pool to find its own: O(hosts²) over a run (5 % of a 1,000-host crawl's CPU).
    Its pool is now found by urllib3's own key, built where the pool is got, and the pools closed are still all."""
    from urllib3._collections import RecentlyUsedContainer

    listed: list[int] = []
    keys = RecentlyUsedContainer.keys

    def counted(self: Any) -> Any:
        listed.append(1)
        return keys(self)

    RecentlyUsedContainer.keys = counted  # type: ignore[method-assign]
    try:
        walk, scheduler, slots, fetcher = crawl(portal, tmp_path, HOSTS)
    finally:
        RecentlyUsedContainer.keys = keys  # type: ignore[method-assign]
    assert scheduler.stats.hosts_finished == HOSTS
    assert len(fetcher._adapter.poolmanager.pools) == 0  # every host's pool found and dropped
    assert not listed


# --- the run's own record (crawler/crawl.py Documents, PortalProgress.settle; crawler/state.py Entry) -----------------

def record_held(portal: Portal, folder: Path, hosts: int) -> tuple[int, int, int]:
    """(bytes of Python memory held by a finished run's walk, by its crawl state, documents), measured by tracemalloc
    as what is given back when each is dropped (the scheduler, fetcher and slots dropped first)."""
    gc.collect()
    tracemalloc.start()
    try:
        walk, scheduler, slots, fetcher = crawl(portal, folder, hosts)
        state = walk.ctx.state
        documents = len(walk.documents)
        portals = [progress.portal for progress in walk.progress.values()]  # the registry's: the caller's, kept
        scheduler.walk = None  # type: ignore[assignment]
        del scheduler, slots, fetcher
        walk.ctx = None  # type: ignore[assignment]  # the context (fetcher, state) is not the walk's own record
        gc.collect()
        with_both = tracemalloc.get_traced_memory()[0]
        del walk
        gc.collect()
        with_state = tracemalloc.get_traced_memory()[0]
        del state
        gc.collect()
        without = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(portals) == hosts
    return with_both - with_state, with_state - without, documents


def test_the_runs_record_holds_little_memory_per_document(portal: Portal, tmp_path: Path) -> None:
    """What a run keeps of what it crawled until its summary: its documents, each listing page's response and every
    candidate of every listing (kept to the end of the run), each URL's crawl state with its listing or detail page
    parsed. At 1,000 hosts it was some 14 MB (2.8 kB a document), held among the crawl's short-lived objects. Per
    document (3 hosts against 12: what grows with the documents, not what a run holds whatever its size), the walk now
    keeps one JSON line of each document (streamed to a temporary file past 256 kB) and its counts, the state a tuple of
    each URL's validators and its derived JSON as UTF-8."""
    few_walk, few_state, few_docs = record_held(portal, tmp_path / "few", 3)
    many_walk, many_state, many_docs = record_held(portal, tmp_path / "many", HOSTS)
    assert (few_docs, many_docs) == (15, HOSTS * 5)
    walk_per_doc = (many_walk - few_walk) / (many_docs - few_docs)
    state_per_doc = (many_state - few_state) / (many_docs - few_docs)
    print(f"held per document: walk {walk_per_doc:.0f} B, crawl state {state_per_doc:.0f} B")
    assert walk_per_doc < 600, walk_per_doc  # was 1,140 B (measured the same way), now ~410 B
    assert state_per_doc < 900, state_per_doc  # was 1,500 B, now ~630 B


def test_files_waiting_for_the_ingest_path_are_in_the_archive_not_in_memory_nor_spilled(portal: Portal, tmp_path: Path) -> None:
    """Each fetch in flight may bring a file when extraction is behind: 95 whole files waited in memory at 1,000 hosts
    (2 at most were meant to), then those beyond the backlog in a temporary folder (written, read back, unlinked).
    Now each file is stored in the crawl's archive on the thread that fetched it and what waits is its digest: no
    waiting step holds a byte, nothing is written but the archive, the ingest path (one thread, behind) stores
    nothing and reads every file back byte for byte."""
    import threading
    from urllib.parse import urlsplit

    from bench_portals import bench_module

    from gongkai.crawler.crawl import IngestFile
    from gongkai.crawler.processes import ArchivedFiles, reading_back

    served = bench_module().route
    reg = tmp_path / "registry.toml"
    reg.write_text(portal.registry(portal.ports[:HOSTS]), "utf-8")
    portals = load_registry(reg)
    archive = open_archive(tmp_path / "archive")
    in_memory: list[int] = []
    waited: list[int] = []
    wrong: list[str] = []
    put_on: set[int] = set()
    ingested_on: set[int] = set()
    box: dict[str, CrawlScheduler] = {}
    put = archive.put

    def recording_put(data: bytes) -> str:
        put_on.add(threading.get_ident())
        return put(data)

    archive.put = recording_put  # type: ignore[method-assign]

    def slow(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Any,
             archived: str | None = None) -> IngestOutcome:
        ingested_on.add(threading.get_ident())
        waiting = [unit.step for unit in list(box["scheduler"]._ingest_waiting) if isinstance(unit.step, IngestFile)]
        waited.append(len(waiting))
        in_memory.append(sum(1 for step in waiting if step.data or step.stored is None))
        if data != served(urlsplit(url).path)[0] or archived is None:
            wrong.append(url)
        time.sleep(0.05)  # extraction behind the fetching
        return IngestOutcome(archived or "", "new", name, agency=agency, year=year, url=url, portal=portal.id)

    slots = HostSlots(2, 0.05)
    fetcher = Fetcher(all_hosts(portals), delay=0.05, concurrency=2, retries=1, backoff=0.05, gate=slots)
    ctx = CrawlContext(fetcher, CrawlState(None), reading_back(slow, ArchivedFiles(archive, fetcher.max_bytes)), archive=archive)
    scheduler = box["scheduler"] = CrawlScheduler(ctx, slots, workers=16, ingest_workers=1, ingest_backlog=2)
    walk = scheduler.run(Walk(ctx, portals, Limits()))
    assert sorted(d.outcome for d in walk.documents) == ["new"] * (HOSTS * 5) and not wrong
    assert max(in_memory) == 0, max(in_memory)  # was up to the backlog (2) in memory, the others on disk
    assert max(waited) > 2  # the fetching did run ahead of the backlog
    assert put_on and not put_on & ingested_on  # stored where fetched, never by the ingest path
    assert not hasattr(scheduler, "_spill_dir")


def test_documents_read_as_the_list_of_outcomes_they_replace() -> None:
    """The walk's documents, streamed to a buffer and then a file, read back as they were given, pickled (a crawler
    process's record) whole, listed in the summary as IngestOutcome.as_dict lists them."""
    import pickle

    from gongkai.crawler.crawl import SPOOL_BYTES, Documents

    outcomes = [IngestOutcome("a" * 64, "new", "报告.pdf", 7, 1, 0, "示例市", 2023, None, 2, True, "http://127.0.0.1/a.pdf",
                              "示例市2023年政府信息公开工作年度报告", "p-1"),
                IngestOutcome("", "fetch_failed", reason="broken \udc80 text", url="http://127.0.0.1/b")]
    outcomes += [IngestOutcome("", "not_modified", url=f"http://127.0.0.1/{i}.html", portal="p") for i in range(5000)]
    documents = Documents(outcomes[:2])
    documents.extend(outcomes[2:])
    assert documents._file._rolled and len(outcomes) * 80 > SPOOL_BYTES  # past the buffer: in the file
    assert list(documents) == outcomes and documents == outcomes and len(documents) == len(outcomes)
    assert documents[0] == outcomes[0] and documents[-1] == outcomes[-1] and documents[1:3] == outcomes[1:3]
    assert documents.as_dicts() == [o.as_dict() for o in outcomes]
    again = pickle.loads(pickle.dumps(documents))
    assert again == outcomes and len(again) == len(outcomes)
    merged = Documents()
    merged.extend(again)
    merged.extend(outcomes[:1])
    assert list(merged) == outcomes + outcomes[:1]
    assert Documents() == [] and Documents() != outcomes


def test_the_summary_shares_the_values_its_documents_repeat() -> None:
    """A run's summary (Documents.as_dicts, built at a crawl's end: the parent's largest step there) holds one object
    for each value many documents repeat (outcome, portal, agency, year, reason), not one per document as JSON reads
    them back; unique values (URL, digest) are the documents' own, and the dicts equal IngestOutcome.as_dict."""
    from gongkai.crawler.crawl import Documents

    outcomes = [IngestOutcome(f"{i:064x}", "new", f"{i}.pdf", agency="示例市人民政府", year=2023, reason="too large",
                              url=f"http://127.0.0.1/{i}.pdf", portal="p-1") for i in range(3000)]
    docs = Documents(outcomes).as_dicts()
    assert docs == [o.as_dict() for o in outcomes]
    for key in ("outcome", "portal", "agency", "year", "reason"):
        assert len({id(d[key]) for d in docs}) == 1, key
    assert len({id(d["url"]) for d in docs}) == len(docs)


def test_the_state_file_is_written_as_before_and_read_back(tmp_path: Path) -> None:
    """Entries are kept packed (validators and derived JSON as UTF-8); the file is the same JSON text the unpacked
    entries made, and reads back to the same entries; a malformed entry of an old file is left out, not fatal."""
    import json

    from gongkai.crawler.state import CrawlState

    derived = {"attachments": [["http://127.0.0.1/报告.pdf", "附件"]], "agency": None, "n": 3, "ok": True}
    old_form = {"http://127.0.0.1/a.html": {"etag": '"e1"', "last_modified": None, "derived": derived},
                "http://127.0.0.1/b.html": {"etag": None, "last_modified": "Mon, 01 Jan 2024 00:00:00 GMT",
                                            "derived": [{"title": "标题", "url": "http://127.0.0.1/c"}]},
                "http://127.0.0.1/c.pdf": {"etag": '"e2"', "last_modified": None, "derived": None}}
    state = CrawlState(tmp_path / "state.json")
    for url, entry in old_form.items():
        state.commit(url, **entry)
    state.commit("http://127.0.0.1/none", etag=None, last_modified=None, derived=[1])  # nothing to compare: not kept
    assert {url: state.get(url) for url in old_form} == old_form and state.get("http://127.0.0.1/none") is None
    state.save()
    text = (tmp_path / "state.json").read_text("utf-8")
    assert text == json.dumps(old_form, ensure_ascii=False, sort_keys=True)
    again = CrawlState(tmp_path / "state.json")
    assert {url: again.get(url) for url in old_form} == old_form and len(again) == 3
    assert again.validators("http://127.0.0.1/b.html") == {"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"}
    broken = CrawlState(None)  # a page's broken text (a lone surrogate) is kept in memory as it was
    broken.commit("http://127.0.0.1/d", etag='"e"', last_modified=None, derived=["附件 \udc80"])
    assert broken.get("http://127.0.0.1/d") == {"etag": '"e"', "last_modified": None, "derived": ["附件 \udc80"]}
    (tmp_path / "old.json").write_text(json.dumps({"http://x/1": "junk", "http://x/2": {"etag": '"e"', "derived": [1]}}))
    assert CrawlState(tmp_path / "old.json").get("http://x/2") == {"etag": '"e"', "last_modified": None, "derived": [1]}


@pytest.mark.parametrize("chunk", [1, 7, 256 * 1024])
def test_a_state_file_is_read_as_json_reads_it(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """The state file read a piece at a time and member by member (CrawlState.__init__): the entries json.loads of the
    whole file gave, in any JSON spelling of the object (spaces, newlines, escapes, a repeated URL: the last counts, an
    empty object), wherever the pieces end; a file json.loads refuses (or not an object) is unreadable: the state starts
    empty, with a warning."""
    import json

    from gongkai.crawler import state as state_module
    from gongkai.crawler.state import CrawlState

    monkeypatch.setattr(state_module, "STATE_READ", chunk)

    derived = {"attachments": [["http://127.0.0.1/报告.pdf", "附件"]], "n": 3, "ok": True, "none": None, "s": "a\"}, b"}
    entry = {"etag": '"e1"', "last_modified": None, "derived": derived}
    spellings = {
        "canonical": json.dumps({"http://a/1": entry, "http://a/2": entry}, ensure_ascii=False, sort_keys=True),
        "indented": json.dumps({"http://a/1": entry, "http://a/2": entry}, indent=2),
        "escaped": json.dumps({"http://a/报告": entry}, ensure_ascii=True),
        "tight": json.dumps({"http://a/1": entry}, separators=(",", ":")),
        "spaced": ' \n { "http://a/1" :\t' + json.dumps(entry) + ' , "http://a/2":' + json.dumps(entry) + " } \n",
        "repeated": '{"http://a/1": ' + json.dumps(entry) + ', "http://a/1": {"etag": "\\"e2\\""}}',
        "repeated, then junk": '{"http://a/1": ' + json.dumps(entry) + ', "http://a/1": "junk"}',
        "spaces after the colon": '{"http://a/1": \n  ' + json.dumps(entry) + ',\n"http://a/2":  ' + json.dumps(entry) + "}",
        "empty": "{}",
        "empty, spaced": " { \n } ",
    }
    for name, text in spellings.items():
        (tmp_path / "state.json").write_text(text, "utf-8")
        state = CrawlState(tmp_path / "state.json")
        expected = {url: e for url, e in json.loads(text).items() if isinstance(e, dict)}
        assert {url: state.get(url) for url in expected} == {
            url: {"etag": e.get("etag"), "last_modified": e.get("last_modified"), "derived": e.get("derived")}
            for url, e in expected.items()}, name
        assert len(state) == len(expected), name
    for text in ("", "[]", '"x"', "{", '{"a": }', '{"a": 1,}', '{"a" 1}', '{"a": 1} x', "{} {}", "{'a': 1}", '{a: 1}',
                 '{"a": 1 "b": 2}', '{"a": {"etag": "e"}'):
        (tmp_path / "state.json").write_text(text, "utf-8")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        assert not isinstance(parsed, dict), text  # what the whole file's json.loads refused too
        caplog.clear()
        assert len(CrawlState(tmp_path / "state.json")) == 0 and "unreadable" in caplog.text, text


def test_a_state_file_reads_the_same_wherever_its_first_piece_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The state file as `save` writes it (and pretty-printed), read with its first piece ending at every character:
    the entries json.loads of the whole file gives. A piece that ended between a member's comma and the space after
    it (or inside the whitespace before the next name) left the next piece starting with that whitespace, which was
    taken for a malformed name: the whole file was refused (a 52 MB state file of 100,000 entries was, at 64 k)."""
    import json

    from gongkai.crawler import state as state_module

    state = CrawlState(tmp_path / "state.json")
    for i in range(3):
        state.commit(f"http://a/{i}", etag=f'W/"{i}\\""', last_modified=None,
                     derived={"candidates": [{"url": f"http://a/{i}.pdf", "title": "报告\ud83d\ude00", "year": 2023}]})
    state.save()
    saved = (tmp_path / "state.json").read_text("utf-8")
    for text in (saved, json.dumps(json.loads(saved), indent="\n \t")):
        (tmp_path / "state.json").write_text(text, "utf-8")
        expected = {url: {"etag": e["etag"], "last_modified": e["last_modified"], "derived": e["derived"]}
                    for url, e in json.loads(text).items()}
        for chunk in range(1, len(text) + 1):
            monkeypatch.setattr(state_module, "STATE_READ", chunk)
            again = CrawlState(tmp_path / "state.json")
            assert {url: again.get(url) for url in expected} == expected and len(again) == 3, chunk


def test_a_repeated_url_in_a_state_file_is_not_counted_malformed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A URL the file repeats is one entry, the last one counting (as json.loads reads it): the warning counts the
    URLs left out, not the members read (a repeated, valid URL was reported as a malformed entry)."""
    (tmp_path / "state.json").write_text('{"http://a/1": {"etag": "\\"1\\""}, "http://a/1": {"etag": "\\"2\\""}, '
                                         '"http://a/2": 5, "http://a/2": 6, "http://a/3": 7, "http://a/3": {"etag": "3"}}')
    state = CrawlState(tmp_path / "state.json")
    assert state.get("http://a/1") == {"etag": '"2"', "last_modified": None, "derived": None} and len(state) == 2
    assert [r.getMessage() for r in caplog.records] == ["crawl state: 1 malformed entr(ies) left out"]


def test_a_state_file_nested_too_deep_is_unreadable_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A state file whose JSON nests deeper than Python's recursion limit (a corrupt or hand-made one) is unreadable:
    the crawl starts with an empty state and a warning, as for any other damaged file; json's RecursionError
    ended the crawl instead (json.loads of the whole file raised it too)."""
    (tmp_path / "state.json").write_text('{"http://a/1": {"etag": "e", "derived": ' + "[" * 100_000 + "]" * 100_000 + "}}")
    assert len(CrawlState(tmp_path / "state.json")) == 0 and "unreadable" in caplog.text


def test_whitespace_before_a_state_file_object_is_passed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whitespace around the object's braces (a hand-edited or padded file) is read past once, whatever the pieces:
    the characters the reader scans for whitespace grow with the file (a member re-read as its piece grows, at most
    a few times), not with the file times the pieces read (the leading whitespace was scanned again at every piece,
    quadratic), and the file reads as json.loads reads it."""
    from gongkai.crawler import state as state_module

    scanned = []
    space = state_module._space

    def counted(text: str, i: int) -> int:
        end = space(text, i)
        scanned.append(end - i)
        return end

    monkeypatch.setattr(state_module, "_space", counted)
    monkeypatch.setattr(state_module, "STATE_READ", 7)
    pad = " \n\t\r" * 5000
    for text in (pad + '{"http://a/1": {"etag": "e"}}' + pad, "{" + pad + '"http://a/1": {"etag": "e"}' + pad + "}",
                 pad + "{" + pad + "}" + pad):
        (tmp_path / "state.json").write_text(text, "utf-8", newline="")
        scanned.clear()
        state = CrawlState(tmp_path / "state.json")
        assert len(state) == len(json.loads(text)) and sum(scanned) <= 3 * len(text), text.strip()
    (tmp_path / "state.json").write_text(pad + "{" + pad, "utf-8", newline="")
    assert len(CrawlState(tmp_path / "state.json")) == 0


def test_reading_a_state_file_does_not_hold_it_parsed_whole(tmp_path: Path) -> None:
    """A crawl's start reads its state file a piece at a time: beside the packed entries, a piece of its text and one
    entry parsed. Read whole (its bytes, its text, json.loads of it: every entry's derived JSON as dicts and lists), it
    took some three times its text more, the parent's peak as a second crawl started (bench_polite_crawl.py, 1,000 hosts)."""
    from gongkai.crawler.state import CrawlState

    state = CrawlState(tmp_path / "state.json")
    for h in range(1000):
        base = f"http://127.0.0.1:{20000 + h}/col/"
        state.commit(base + "index.html", etag=f'"{h}"', last_modified=None, derived={"candidates": [
            {"url": f"{base}{i}.html", "title": f"某某县{h}年政府信息公开工作年度报告", "date": "2026-01-01"} for i in range(5)]})
        for i in range(5):
            state.commit(f"{base}{i}.html", etag=f'"{h}-{i}"', last_modified=None, derived={"attachments": [f"{base}{i}.pdf"]})
    state.save()
    text = sys.getsizeof((tmp_path / "state.json").read_text("utf-8"))
    tracemalloc.start()
    try:
        again = CrawlState(tmp_path / "state.json")
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(again) == len(state) == 6000
    assert peak - held < text / 4, (peak, held, text)


def test_a_file_that_cannot_be_stored_where_fetched_leaves_no_partial_copy(tmp_path: Path) -> None:
    """A full disk (here: a file size limit, EFBIG, in a child process) fails the file's store at fetch, which raises
    (the item ends with its one line, its crawl state not committed: fetched again next run); nothing partial is left
    in the archive (its atomic write), as nothing was left in the spill folder it replaces."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import os, resource, signal, sys
        from gongkai.crawler.crawl import IngestFile
        from gongkai.warehouse.archive import open_archive
        archive = open_archive(sys.argv[1])
        archive.put(b"small")  # the archive's layout marker and a first folder: written before the limit
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        step = IngestFile(b"x" * 65536, "a.pdf", "http://h/a.pdf", None, None, None)  # type: ignore[arg-type]
        try:
            step.stored_in(archive)
        except OSError as exc:
            print("refused", exc.errno)
        print(sorted(name for _, _, names in os.walk(sys.argv[1]) for name in names))
    """)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "archive")], capture_output=True, text=True,
                          timeout=60, env={**os.environ})
    assert done.returncode == 0, done.stderr
    import hashlib

    kept = ["ARCHIVE-LAYOUT", hashlib.sha256(b"small").hexdigest()]
    assert done.stdout.splitlines() == ["refused 27", repr(sorted(kept))]  # EFBIG, and nothing partial left behind


# --- what a crawl holds at its peak, all hosts in progress at once (crawler/crawl.py take_content, scheduler parse pool) --

def bodies_held_by(unit: Any) -> int:
    """Bytes (or characters) of response bodies a suspended unit of work keeps in its generators' frames (beside its
    step): a Response's content, or a page's body or decoded text held by a local of its own (the benchmark's pages
    that are reports are 36 and 109 kB; no title or URL is as long as 8 kB)."""
    from gongkai.crawler.fetcher import Response

    def size(value: Any) -> int:
        if isinstance(value, Response):
            return len(value.content)
        return len(value) if isinstance(value, (bytes, str)) and len(value) > 8192 else 0

    held, generator = 0, unit.steps
    while generator is not None and generator.gi_frame is not None:
        held += sum(size(v) for v in generator.gi_frame.f_locals.values())
        generator = generator.gi_yieldfrom
    return held


def test_a_unit_waiting_for_the_ingest_path_holds_its_file_only_in_its_step(portal: Portal, tmp_path: Path) -> None:
    """A unit kept its Response (for the validators it commits last) while its file waited for the ingest path, spilled
    to disk exactly so as not to wait in memory, and while its detail page's attachments were fetched: some 380 bodies
    were held at once at 1,000 hosts. The body now goes with the file's step (crawler.crawl.take_content); what waits
    holds none, and every file still reaches the ingest path whole and its state is committed as before. A detail page
    that is the report also kept its decoded text and its UTF-8 body in item_steps' frame (`text`, `utf8`): dropped
    once parsed."""
    from urllib.parse import urlsplit

    from bench_portals import bench_module

    served = bench_module().route
    reg = tmp_path / "registry.toml"
    reg.write_text(portal.registry(portal.ports[:HOSTS]), "utf-8")
    portals = load_registry(reg)
    held: list[int] = []
    waited: list[int] = []
    wrong: list[str] = []
    box: dict[str, CrawlScheduler] = {}

    def slow(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Any) -> IngestOutcome:
        waiting = list(box["scheduler"]._ingest_waiting)  # one ingest thread (this one): none of them can resume now
        waited.append(len(waiting))
        held.append(sum(bodies_held_by(unit) for unit in waiting))
        if data != served(urlsplit(url).path)[0]:
            wrong.append(url)
        time.sleep(0.03)  # extraction behind the fetching
        return IngestOutcome("", "new", name, agency=agency, year=year, url=url, portal=portal.id)

    slots = HostSlots(2, 0.05)
    fetcher = Fetcher(all_hosts(portals), delay=0.05, concurrency=2, retries=1, backoff=0.05, gate=slots)
    state = CrawlState(None)
    ctx = CrawlContext(fetcher, state, slow)
    scheduler = box["scheduler"] = CrawlScheduler(ctx, slots, workers=16, ingest_workers=1, ingest_backlog=2)
    walk = scheduler.run(Walk(ctx, portals, Limits()))
    assert sorted(d.outcome for d in walk.documents) == ["new"] * (HOSTS * 5) and not wrong
    assert max(waited) > 2  # units did wait for the ingest path (beyond the backlog: no archive here, in memory)
    assert max(held) == 0, max(held)  # was the size of each waiting file again, and its detail page
    # committed as before, validators included: per host its listing, 5 report pages or notices, 3 attachments
    assert len(state) == HOSTS * 9
    assert {state.get(f"http://127.0.0.1:{port}/a{i}/index.html")["etag"] for i, port in enumerate(portal.ports[:HOSTS])} \
        == {'"bench-v1"'}


def test_pages_are_parsed_on_the_parser_threads_only(portal: Portal, tmp_path: Path) -> None:
    """lxml keeps, per thread that parsed, a dictionary of what it parsed (60-280 kB for as long as the thread lives):
    parsing on whichever of 128 fetch threads fetched the page held 14-36 MB. The step after each fetch (the page's
    parse) now runs on `parsers` threads of their own, whatever the fetch threads."""
    import threading

    from gongkai.crawler.crawl import Fetch

    parsed_on: set[int] = set()
    fetched_on: set[int] = set()
    lock = threading.Lock()

    def items(ctx: CrawlContext, portal_: Any, candidate: Any, verdict: Any) -> Any:
        with lock:
            fetched_on.add(threading.get_ident())  # its first step: in the driver
        yield Fetch(candidate.url, None)
        with lock:
            parsed_on.add(threading.get_ident())
        time.sleep(0.002)  # parsing
        return []

    reg = tmp_path / "registry.toml"
    reg.write_text(portal.registry(portal.ports[:HOSTS]), "utf-8")
    portals = load_registry(reg)
    slots = HostSlots(2, 0.0)
    fetcher = Fetcher(all_hosts(portals), delay=0.0, concurrency=2, retries=1, backoff=0.05, gate=slots)
    ctx = CrawlContext(fetcher, CrawlState(None), lambda *_a, **_k: None)  # type: ignore[arg-type]
    scheduler = CrawlScheduler(ctx, slots, workers=24, items=items, parsers=2)
    scheduler.run(Walk(ctx, portals, Limits()))
    assert scheduler.stats.fetch_steps >= HOSTS * 6 and scheduler.stats.peak_fetching > 2
    assert 1 <= len(parsed_on) <= 2, len(parsed_on)  # was up to one per fetch thread
    assert not parsed_on & fetched_on
    assert 1 <= scheduler.stats.peak_parsing <= 2


def test_a_hosts_connection_pool_is_small_and_still_reuses_its_connection(portal: Portal) -> None:
    """Every host in progress has a connection pool, and at 1,000 hosts all are in progress at once: urllib3's LifoQueue
    (three Conditions with their bound methods) made a pool some 4.9 kB, 4.9 MB in all. The pools never block, so a
    plain stack does (transport.ConnectionStack): measured by tracemalloc, each pool now some 1.8 kB."""
    from gongkai.crawler.transport import PinnedAdapter

    fetcher = Fetcher(frozenset(f"127.0.0.1:{port}" for port in portal.ports), delay=0.0, concurrency=2)
    manager = fetcher._adapter.poolmanager
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        pools = [manager.connection_from_host("127.0.0.1", 40000 + i, scheme="http") for i in range(200)]
        per_pool = (tracemalloc.get_traced_memory()[0] - before) / len(pools)
    finally:
        tracemalloc.stop()
    assert per_pool < 2500, per_pool  # was 4,950 bytes
    # one connection per host, reused from its pool by the next request (keep-alive), and given back on the way
    sockets = open_sockets()
    url = f"http://127.0.0.1:{portal.ports[0]}/robots.txt"
    for _ in range(3):
        assert fetcher.fetch(url, allowed_hosts=frozenset({f"127.0.0.1:{portal.ports[0]}"})).status == 200
    [pool] = [p for p in manager.pools._container.values() if p.port == portal.ports[0] and p.num_connections]
    assert pool.num_connections == 1 and pool.pool is not None and pool.pool.qsize() == 2  # the one, and a free place
    assert open_sockets() == sockets + 1
    with pytest.raises(ValueError, match="never block"):
        PinnedAdapter(pool_block=True)


# --- what each host in progress holds (all 1,000 hosts of a national crawl are in progress at once) ---------------------

def bytes_per(make: Any, count: int) -> float:
    """Python memory held per thing `make(i)` keeps (tracemalloc: what is still allocated after the calls)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [make(i) for i in range(count)]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(kept) == count
    return held / count


def test_a_host_waiting_with_items_only_holds_one_small_queue() -> None:
    """A host's queue was three deques (units under way, listing pages, items), 624 bytes each however empty: at
    1,000 hosts, most with only items waiting, 1.9 MB. Lists now, made when work is put in them and dropped once
    emptied."""
    from gongkai.crawler.crawl import ItemJob

    sched = CrawlScheduler(None, HostSlots(2, 1.0), workers=1)  # type: ignore[arg-type]  # nothing here fetches
    item = ItemJob.__new__(ItemJob)

    def host_with_items(i: int) -> Any:
        q = sched._queue(f"h{i}")
        q.items.extend([item] * 5)
        return q

    per_host = bytes_per(host_with_items, 1000)
    assert per_host < 500, per_host  # was ~2,470 bytes, now ~250
    q = sched._queue("h0")
    taken = [q.take_item() for _ in range(5)]
    assert taken == [item] * 5 and not q and q._items == ()  # emptied: no deque kept


def test_a_queued_item_page_and_host_record_hold_no_dict_each() -> None:
    """Every item listed waits in its host's queue until its turn (some 5,000 at once at 1,000 hosts), as an ItemJob with
    its Candidate and TitleVerdict; every listing page as a PageJob with its PageRequest; every host in progress has a
    _Host in the slots. Each had a __dict__ (its values array): slotted now, as are each portal's PortalProgress and
    each host's HostStats (kept for the run's summary). Measured by tracemalloc, the objects only
    (their strings made beforehand): an item was ~310 bytes, now ~185; a page ~220, now ~135; a host ~225, now ~175."""
    from gongkai.crawler.adapters import Candidate, PageRequest
    from gongkai.crawler.crawl import ItemJob, PageJob
    from gongkai.extractors.report_meta import TitleVerdict

    titles = [f"示例市第{i}局2023年政府信息公开工作年度报告" for i in range(2000)]
    addresses = [f"http://127.0.0.1:20000/a{i}/202403/t20240301_2023.html" for i in range(2000)]
    per_item = bytes_per(lambda i: ItemJob(None, Candidate(titles[i], addresses[i], "2024-03-01"),  # type: ignore[arg-type]
                                           TitleVerdict(True, 2023, "示例市", "annual report")), 2000)
    per_page = bytes_per(lambda i: PageJob(None, PageRequest(addresses[i], number=2), addresses[0]), 2000)  # type: ignore[arg-type]
    slots = HostSlots(2, 1.0)
    per_host = bytes_per(lambda i: slots._host(f"h{i}"), 2000)
    assert per_item < 250, per_item
    assert per_page < 180, per_page
    assert per_host < 200, per_host
    # kept for every portal and host of the run (its summary): PortalProgress ~470 -> ~415 bytes, HostStats ~135 -> ~90
    from gongkai.crawler.crawl import PortalProgress
    from gongkai.crawler.fetcher import HostStats

    assert bytes_per(lambda i: PortalProgress(None, 1.0), 2000) < 445  # type: ignore[arg-type]
    assert bytes_per(lambda i: HostStats(), 2000) < 110
    assert pickle.loads(pickle.dumps(HostStats(requests=3))) == HostStats(requests=3)  # a child's counts go to its parent
    # still what they were: frozen, equal by value, hashable, pickled (a child's walk goes back to its parent)
    job = ItemJob(None, Candidate("t", "http://h/x", None), TitleVerdict(True, 2023, None, "annual report"))  # type: ignore[arg-type]
    assert pickle.loads(pickle.dumps(job.candidate)) == job.candidate and hash(job.verdict) == hash(pickle.loads(pickle.dumps(job.verdict)))
    with pytest.raises(AttributeError):
        job.candidate.url = "http://elsewhere/"  # type: ignore[misc]


def test_queued_items_share_their_agency_year_and_date() -> None:
    """A portal's items name the same agency, a few years and a few dates: each queued item carried its own copy of each
    (~90 + 28 + 60 bytes an item, some 5,000 items waiting at once at 1,000 hosts). Shared now, through tables that
    are emptied when full (a hostile listing of made-up names cannot grow them for good)."""
    from gongkai.crawler.adapters import links
    from gongkai.extractors import report_meta

    first, second = (report_meta.classify_title(f"示例市第7局{2020 + n}年政府信息公开工作年度报告") for n in (3, 3))
    assert first.is_report and first.agency == "示例市第7局" and first.year == 2023
    assert first.agency is second.agency and first.year is second.year
    dates = [links.iso_date(f"发布日期：2024年3月{day}日") for day in (1, 1)]
    assert dates == ["2024-03-01"] * 2 and dates[0] is dates[1]
    for i in range(report_meta.MAX_AGENCIES + 10):  # bounded
        report_meta.classify_title(f"示例市第{i}局2023年政府信息公开工作年度报告")
        links.iso_date(f"{2000 + i % 50}-{1 + i % 12}-{1 + i % 28}")
    assert len(report_meta._AGENCIES) <= report_meta.MAX_AGENCIES and len(links._DATES) <= links.MAX_DATES


def test_the_parse_cache_holds_what_a_crawl_has_in_flight_not_every_url_it_met() -> None:
    """urls.parse remembered 16,384 URLs: every URL of a 1,000-host crawl (11,000, 1.7 MB by its end), more the more
    hosts. Now what a crawl has in flight (a URL is parsed when queued and again when sent), a bounded few hundred kB;
    a URL evicted is parsed again (5 us)."""
    addresses = [f"http://127.0.0.1:{20000 + i % 1000}/a{i}/202403/t20240301_2023.html" for i in range(12000)]
    urls._parse_cached.cache_clear()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for address in addresses:
            urls.parse(address)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        urls._parse_cached.cache_clear()
    assert held < 1_000_000, held  # was ~2.0 MB (12,000 kept), now ~0.7 MB
    assert urls.parse(addresses[0]) == urls.parse_uncached(addresses[0])


def test_a_host_in_the_slots_holds_no_condition_until_a_request_waits_for_it() -> None:
    """Each host in the slots had a threading.Condition (with its waiters' deque, ~1 kB) from its first turn; the
    scheduler gives turns when they are due, so most hosts never wait on one. It is now made on the first wait."""
    import threading

    slots = HostSlots(2, 0.2)

    def host_with_a_turn(i: int) -> Any:
        turn = slots.try_reserve(f"h{i}")
        assert isinstance(turn, Reservation)
        slots.give_back(turn)
        return turn

    per_host = bytes_per(host_with_a_turn, 1000)
    assert per_host < 700, per_host  # was ~1,400 bytes, now ~360 (with the turn kept here)
    assert slots._hosts["h0"].changed is None
    # a request outside a turn waits for the delay on the host's condition, made then, and goes out after it
    with slots("a") as sent:
        sent()
    started = time.monotonic()
    waited = threading.Thread(target=lambda: slots("a").__enter__()())
    waited.start()
    waited.join(10)
    assert slots._hosts["a"].changed is not None and slots.log is None
    assert slots._hosts["a"].last_start - started >= 0.2 - 0.01


def test_a_parsed_url_kept_in_the_parse_cache_is_small() -> None:
    """urls.parse keeps up to PARSED_CACHE parsed URLs, one per URL of a crawl of thousands of hosts: each SafeURL had a
    __dict__ and a host, scheme and port string/int of its own (~430 bytes with its cache entry).
    Now slotted, with its host, scheme and port shared among a host's URLs."""
    from gongkai.crawler import urls

    addresses = [f"http://portal{i % 100}.gov.cn:8080/a{i}/index.html" for i in range(5000)]
    urls._parse_cached.cache_clear()
    per_url = bytes_per(lambda i: urls.parse(addresses[i]), len(addresses))
    assert per_url < 220, per_url  # was ~335 bytes, now ~160
    parsed = urls.parse(addresses[0])
    assert (parsed.url, parsed.scheme, parsed.host, parsed.port, parsed.key) == (
        addresses[0], "http", "portal0.gov.cn", 8080, "portal0.gov.cn:8080")
    assert parsed.key is urls.parse(addresses[100]).key  # one politeness key per host, however many requests keep it


def test_the_portals_using_a_host_are_counted_not_kept() -> None:
    """Which portals with open jobs may still send work to a host (to tell when it is finished) was a set per host,
    216 bytes each; a count tells the same. A host shared by two portals is finished when the second one is."""
    from types import SimpleNamespace

    from gongkai.crawler.crawl import PageJob

    sched = CrawlScheduler(None, HostSlots(2, 1.0), workers=1)  # type: ignore[arg-type]  # nothing here fetches

    def job(pid: str, hosts: frozenset[str]) -> Any:
        page = PageJob.__new__(PageJob)
        object.__setattr__(page, "portal", SimpleNamespace(id=pid, hosts=hosts))
        return page

    jobs = [job(f"p{i}", frozenset({f"h{i}"})) for i in range(1000)]
    per_host = bytes_per(lambda i: sched._opened([jobs[i]], []), len(jobs))
    assert per_host < 150, per_host  # was ~280 bytes (its portal counted beside), now ~60
    shared = frozenset({"shared"})
    first, second = job("a", shared), job("b", shared)
    sched._opened([first, second], [])
    sched._closed(first)
    assert "shared" not in sched._hosts_done
    sched._closed(second)
    assert "shared" in sched._hosts_done and "shared" not in sched._host_users


def test_a_running_crawl_gives_its_free_heap_back(portal: Portal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The heap's free memory (bodies and parse trees freed by a hundred threads) stayed resident for the whole crawl:
    4-12 MB at the peak of 1,000 hosts. The driver now gives it back (glibc's malloc_trim) every MALLOC_TRIM_S."""
    from gongkai.crawler import scheduler as scheduler_module

    real = scheduler_module.malloc_trim()
    if real is None:
        pytest.skip("no glibc malloc_trim here")
    trims: list[float] = []

    def counted(pad: int) -> int:
        trims.append(time.monotonic())
        return real(pad)

    monkeypatch.setattr(scheduler_module, "malloc_trim", lambda: counted)
    monkeypatch.setattr(scheduler_module, "MALLOC_TRIM_S", 0.2)
    walk, scheduler, _, _ = crawl(portal, tmp_path, 4)
    assert sorted(d.outcome for d in walk.documents) == ["new"] * 20  # nothing lost to it
    assert len(trims) >= 5, len(trims)  # a crawl of ~5 s (a 0.5 s delay, 11 requests a host)
    assert min(b - a for a, b in zip(trims, trims[1:], strict=False)) >= 0.2 - 0.01  # no more often than asked


def test_the_hosts_of_parsed_urls_are_not_kept_for_good(monkeypatch: pytest.MonkeyPatch) -> None:
    """SafeURLs of a host share its strings (memory). They were shared through sys.intern, which on Python 3.12 makes a
    string immortal (PEP 683): every host of every link parsed stayed in the process for good, thousands of made-up
    ones from a hostile page. Simulated here on any Python: what sys.intern is given is kept. What is kept for the
    sharing is bounded, and URLs of one host still share its strings."""
    kept_for_good: dict[str, str] = {}

    def immortal(text: str) -> str:  # sys.intern as Python 3.12 has it: one string per text, never freed
        return kept_for_good.setdefault(text, text)

    monkeypatch.setattr(sys, "intern", immortal)
    urls._parse_cached.cache_clear()
    try:
        made_up = urls.PARSED_CACHE + 5000
        for i in range(made_up):
            urls.parse(f"http://h{i}.example.org:8080/a")
        a, b = urls.parse_uncached("http://same.example.org:81/a"), urls.parse_uncached("http://same.example.org:81/b")
    finally:
        urls._parse_cached.cache_clear()
    assert a.host is b.host and a.key is b.key and a.scheme is b.scheme  # still shared
    assert len(kept_for_good) + len(getattr(urls, "_SHARED", ())) <= urls.PARSED_CACHE


def test_a_response_in_flight_holds_a_small_read_buffer_and_still_reads_in_few_calls() -> None:
    """Each response holds its read buffer from its request's send (http.client makes it before the server answers) to
    its end: 128 requests are in flight at all times at 1,000 hosts, against ~10 at 100, so the 64 kB buffer held ~8 MB
    more at 1,000 hosts. It is 16 kB now; a head with a small body is still one recv, a larger body two more (its middle
    read past the buffer straight into the body, its last part through the buffer), every byte read as before."""
    import socket
    import threading

    from gongkai.crawler import wire

    class Counted(socket.socket):
        calls = 0

        def recv_into(self, *args: Any, **kwargs: Any) -> int:
            Counted.calls += 1
            return super().recv_into(*args, **kwargs)

    near, far = socket.socketpair()
    sock = Counted(near.family, near.type, near.proto, fileno=near.detach())
    try:
        per_response = bytes_per(lambda i: wire.response_class(sock, method="GET"), 50)
        assert per_response < 20 * 1024, per_response  # was ~66 kB (the 64 kB buffer)
        # (a socket pair's buffer holds 100 kB: the largest body arrives while it is read, in as many calls as it takes)
        for size, most_calls in ((0, 1), (12_000, 1), (60_000, 3), (300_000, None)):
            body = bytes(i % 251 for i in range(size))
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\nContent-Length: {size}\r\n\r\n".encode()
            sender = threading.Thread(target=far.sendall, args=(head + body,))
            sender.start()
            if most_calls is not None:
                sender.join(10)  # all of it arrived: what is counted is the reading, not the wait
            Counted.calls = 0
            response = wire.response_class(sock, method="GET")
            response.begin()
            assert response.status == 200 and response.getheader("content-length") == str(size)
            assert response.read(size) == body and response.isclosed()
            sender.join(10)
            assert most_calls is None or Counted.calls <= most_calls, (size, Counted.calls)
    finally:
        sock.close()
        far.close()


def test_an_idle_connection_keeps_no_response(portal: Portal) -> None:
    """http.client kept each keep-alive connection's last response (its head parsed, ~1.2 kB) until its next request:
    one per host in progress, 1,000 at 1,000 hosts. A connection given back to its pool now holds none, and is still
    reused by the host's next request."""
    fetcher = Fetcher(frozenset(f"127.0.0.1:{port}" for port in portal.ports), delay=0.0, concurrency=2)
    host = f"127.0.0.1:{portal.ports[1]}"
    for path in ("/robots.txt", "/a1/index.html"):
        assert fetcher.fetch(f"http://{host}{path}", allowed_hosts=frozenset({host})).status == 200
        [pool] = [p for p in fetcher._adapter.poolmanager.pools._container.values()
                  if p.port == portal.ports[1] and p.num_connections]
        idle = [conn for conn in pool.pool._items if conn is not None]
        assert pool.num_connections == 1 and len(idle) == 1  # the one connection, reused
        assert getattr(idle[0], "_HTTPConnection__response", "missing") is None  # was the response just read


def test_hosts_with_the_same_robots_txt_share_its_parsed_rules() -> None:
    """Each host in progress held robots.txt rules of its own (~1.3 kB for three lines), 1,000 at 1,000 hosts, though
    most read the same (a platform's, or none). The same text is now parsed once and its rules shared; a host's own
    reason for not reading it stays its own, a long text is parsed per host, and what is shared is bounded."""
    import functools

    from gongkai.crawler import robots
    from gongkai.crawler.robots import Robots

    getattr(robots, "_shared", functools.lru_cache(lambda: None)).cache_clear()  # (none before: the test fails below)
    lines = ["User-agent: *", "Disallow: /private/", "Crawl-delay: 2"]
    per_host = bytes_per(lambda i: Robots.parse(lines), 1000)
    assert per_host < 250, per_host  # was ~1,330 bytes
    a, b = Robots.parse(lines), Robots.parse(lines, unreachable="HTTP 503")
    assert a.parser is b.parser and (a.unreachable, b.unreachable) == (None, "HTTP 503")
    assert a.can_fetch("gongkai/1.0", "http://h/public/x") and not a.can_fetch("gongkai/1.0", "http://h/private/x")
    assert a.crawl_delay("gongkai/1.0") == 2.0
    long = ["User-agent: *"] + [f"Disallow: /p{i}/" for i in range(robots.SHARED_ROBOTS_MAX_CHARS // 10)]
    assert Robots.parse(long).parser is not Robots.parse(long).parser  # not kept beyond its host
    for i in range(robots.SHARED_ROBOTS + 10):
        Robots.parse(["User-agent: *", f"Disallow: /x{i}/"])
    assert robots._shared.cache_info().currsize <= robots.SHARED_ROBOTS


def test_what_the_shared_robots_rules_pin_at_worst_is_small() -> None:
    """The cache full of texts just under its length bound, each of as many short wildcard rules as fit (what a hostile
    or odd portal could serve; a wildcard rule parses to the most): what it keeps stays under 2 MB (64 texts of 4,096
    characters pinned ~22 MB)."""
    import tracemalloc

    from gongkai.crawler import robots
    from gongkai.crawler.robots import Robots

    robots._shared.cache_clear()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for host in range(robots.SHARED_ROBOTS):
            lines = ["User-agent: *", f"Disallow: /h{host}"]
            size = len("\n".join(lines))
            while size + len(rule := f"Disallow: /*{len(lines)}*$") + 1 <= robots.SHARED_ROBOTS_MAX_CHARS:
                lines.append(rule)
                size += len(rule) + 1
            assert len("\n".join(lines)) <= robots.SHARED_ROBOTS_MAX_CHARS
            Robots.parse(lines)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        robots._shared.cache_clear()
    assert robots.SHARED_ROBOTS_MAX_CHARS >= 512  # a platform's usual robots.txt is still shared
    assert held < 2_000_000, held
