"""One crawl split over two crawler processes by host (crawler/processes.py), for real: loopback hosts serving corpus
reports (tests/shard_portal.py), the nightly's body (flows.crawl.run_crawl) into DuckDB with real extraction in the
parent, the children spawned. Compared with the same crawl in one process; politeness read from the portal's log."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from shard_portal import REPORT_YEARS, Hit, ShardPortal, closest_starts, in_flight_peaks

from gongkai.crawler.processes import MIN_HOSTS_PER_PROCESS, process_count
from gongkai.warehouse import open_warehouse
from gongkai.warehouse.archive import LocalArchive, sha256_of

ROOT = Path(__file__).resolve().parents[1]
DELAY, CONCURRENCY = 0.2, 2
# four hosts; host 0 serves two portals, which must stay in one process (a split by portal would put them apart)
HOSTS = {0: [1, 2], 1: [3], 2: [4], 3: [5, 6]}
PORTALS = [("a1", 0, 1), ("a2", 0, 2), ("a3", 1, 3), ("a4", 2, 4), ("a5", 3, 5), ("a6", 3, 6)]
REPORTS = len(PORTALS) * len(REPORT_YEARS)
POLITENESS = {"delay": DELAY, "concurrency": CONCURRENCY, "read_timeout": 5.0, "retries": 1, "backoff": 0.05}


@dataclass
class Run:
    summary: dict[str, Any]
    hits: list[Hit]


def _crawl(portal: ShardPortal, folder: Path, processes: int, registry: Path) -> Run:
    from gongkai.flows.crawl import run_crawl
    from gongkai.settings import Settings

    portal.clear()
    settings = Settings(data=folder / "data", crawl_processes=processes, extract_processes=0)
    summary = run_crawl("nightly", db_url=f"duckdb:///{folder / 'warehouse.duckdb'}", archive_location=str(folder / "archive"),
                        registry_file=str(registry), politeness=POLITENESS, settings=settings)
    return Run(summary, portal.clear())


@dataclass
class Runs:
    one: Run
    two: Run
    again: Run  # K=2 again, into the K=2 warehouse: nothing changed
    folder: Path
    parent_puts: int  # the archive puts of the K=2 run's own process (the children store the files)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    folder = tmp_path_factory.mktemp("processes")
    with ShardPortal(HOSTS) as portal:
        registry = folder / "registry.toml"
        registry.write_text(portal.registry(PORTALS), "utf-8")
        one = _crawl(portal, folder / "one", 1, registry)
        puts = []
        with pytest.MonkeyPatch.context() as patch:  # in this process only: the children are spawned, their own
            put = LocalArchive.put
            patch.setattr(LocalArchive, "put", lambda self, data: (puts.append(len(data)), put(self, data))[1])
            two = _crawl(portal, folder / "two", 2, registry)
        again = _crawl(portal, folder / "two", 2, registry)
        yield Runs(one, two, again, folder, len(puts))


def _documents(summary: dict[str, Any]) -> Counter[tuple[Any, ...]]:
    # not the sha256: the portal rezips a DOCX on each request (its time stamp in the zip)
    return Counter((d["url"], d["outcome"], d["portal"], d["title"], d["year"]) for d in summary["documents"])


def test_two_processes_load_every_report_once_and_give_the_summary_of_one(runs: Runs) -> None:
    one, two = runs.one.summary, runs.two.summary
    assert two["processes"] == 2 and "processes" not in one
    new = [d["sha256"] for d in two["documents"] if d["outcome"] == "new"]
    assert len(new) == len(set(new)) == REPORTS, two["counts"]
    with open_warehouse(f"duckdb:///{runs.folder / 'two' / 'warehouse.duckdb'}") as warehouse:
        assert warehouse.db.scalar("SELECT count(*) FROM reports") == REPORTS
    assert _documents(two) == _documents(one)
    assert two["portals"] == one["portals"] and list(two["portals"]) == list(one["portals"])
    for key in ("counts", "requests", "hosts", "rejected", "noise"):
        assert two[key] == one[key], key
    # the scheduler's counters are summed over the processes
    assert two["scheduler"]["ingests"] == one["scheduler"]["ingests"] == REPORTS


def test_each_file_is_stored_by_the_child_that_fetched_it_and_once(runs: Runs) -> None:
    """The parent reads the files back from the archive and stores none (no thread of it waits on an fsync); the
    archive holds each loaded file once, complete."""
    assert runs.parent_puts == 0
    archived = {f.name: f.read_bytes() for f in (runs.folder / "two" / "archive").glob("??/*")}
    loaded = {d["sha256"] for d in runs.two.summary["documents"] if d["outcome"] == "new"}
    assert set(archived) == loaded and len(archived) == REPORTS
    assert all(sha256_of(data) == name for name, data in archived.items())


def test_each_host_kept_polite_across_the_processes(runs: Runs) -> None:
    hits = runs.two.hits
    assert {h.host for h in hits} == {h.host for h in runs.one.hits} and len(hits) == runs.two.summary["requests"]
    assert max(in_flight_peaks(hits).values()) <= CONCURRENCY, in_flight_peaks(hits)
    # arrivals can bunch up by the loopback's scheduling jitter, never by a whole delay
    assert min(closest_starts(hits).values()) >= DELAY - 0.1, closest_starts(hits)


def test_the_state_the_children_wrote_makes_the_next_run_conditional(runs: Runs) -> None:
    again = runs.again
    pages = [h for h in again.hits if h.path != "/robots.txt"]
    assert pages and all(h.conditional and h.status == 304 for h in pages), [h for h in pages if not h.conditional][:3]
    assert set(again.summary["counts"]) == {"not_modified"}, again.summary["counts"]
    assert all(p["status"] == "ok" and p["listing_from_cache"] for p in again.summary["portals"].values())


class HangingInItsFirstFile:
    """child_main as it is, except that crawler process 1 stops in the middle of storing its first file in the archive:
    the bytes written to a file that has no name yet (O_TMPFILE), its link to its name never returning (a child's
    archive does not fsync each file: the crawl state's sync covers them); `mid_file` is written then, for the test to
    kill it there. (Spawn pickles this by reference: a module-level class of the tests.)"""

    def __init__(self, mid_file: Path) -> None:
        self.mid_file = mid_file

    def __call__(self, conn: Any, parent_pid: int) -> None:
        from gongkai.crawler import processes

        if multiprocessing.current_process().name.startswith("gongkai-crawler-1-"):
            link = os.link

            def stuck(src: Any, dst: Any, **kw: Any) -> None:
                if os.stat(src).st_size > 1000:  # a file (ARCHIVE-LAYOUT is a line)
                    self.mid_file.write_text(str(os.getpid()))
                    time.sleep(300)
                link(src, dst, **kw)

            os.link = stuck
        processes.child_main(conn, parent_pid)


def _archived(folder: Path) -> dict[str, bytes]:
    """Every file under the archive's folder by its path (the layout's marker apart)."""
    return {str(f.relative_to(folder)): f.read_bytes() for f in folder.rglob("*") if f.is_file() and f.name != "ARCHIVE-LAYOUT"}


def test_a_killed_crawler_process_fails_its_portals_only_and_the_rerun_completes_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Crawler process 1 is killed in the middle of storing a file in the shared archive: its portals fail, the
    archive holds no part of that file (only complete files, each under its digest), and the rerun loads every
    report once."""
    from gongkai.crawler import processes

    mid_file = tmp_path / "mid-file"
    monkeypatch.setattr(processes, "child_main", HangingInItsFirstFile(mid_file))
    with ShardPortal(HOSTS) as portal:
        registry = tmp_path / "registry.toml"
        registry.write_text(portal.registry(PORTALS), "utf-8")
        result: dict[str, Run] = {}
        crawl = threading.Thread(target=lambda: result.setdefault("run", _crawl(portal, tmp_path, 2, registry)))
        crawl.start()
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            kids = [p for p in multiprocessing.active_children() if p.name.startswith("gongkai-crawler-1-")]
            if kids and mid_file.exists():
                victim = kids[0]
            time.sleep(0.05)
        assert victim is not None, "crawler process 1 never reached its first file"
        assert int(mid_file.read_text()) == victim.pid
        victim.kill()
        crawl.join(120)
        assert not crawl.is_alive()
        first = result["run"].summary
        failed = {pid: info for pid, info in first["portals"].items() if info["status"] == "failed"}
        ok = {pid for pid, info in first["portals"].items() if info["status"] == "ok"}
        assert failed and ok and set(failed) | ok == {pid for pid, _, _ in PORTALS}, first["portals"]
        for info in failed.values():
            assert "was killed (SIGKILL)" in info["error"] and "\n" not in info["error"], info["error"]
        # the others were loaded; what the killed one had loaded stays, listed
        loaded = {d["portal"] for d in first["documents"] if d["outcome"] == "new"}
        assert ok <= loaded
        # the file it was storing is nowhere in the archive: every file there is complete, named by its digest
        archived = _archived(tmp_path / "archive")
        assert archived and all(path == f"{sha256_of(data)[:2]}/{sha256_of(data)}" for path, data in archived.items()), \
            sorted(archived)
        assert {d["sha256"] for d in first["documents"] if d["outcome"] == "new"} == {p.split("/")[1] for p in archived}
        monkeypatch.undo()  # the rerun's children as they are
        rerun = _crawl(portal, tmp_path, 2, registry).summary
        assert all(info["status"] == "ok" for info in rerun["portals"].values()), rerun["portals"]
        with open_warehouse(f"duckdb:///{tmp_path / 'warehouse.duckdb'}") as warehouse:
            assert warehouse.db.scalar("SELECT count(*) FROM reports") == REPORTS
            documents = {row[0] for row in warehouse.db.query("SELECT sha256 FROM documents")}
        # each report loaded once over the two runs: the rerun loaded what the killed process had not, no more
        new = [d["url"] for run in (first, rerun) for d in run["documents"] if d["outcome"] == "new"]
        assert len(new) == len(set(new)) == REPORTS, sorted(new)
        archived = _archived(tmp_path / "archive")
        assert {p.split("/")[1] for p in archived} == documents and len(archived) == len(documents) == REPORTS


def test_the_machine_decides_the_count_unless_told() -> None:
    assert process_count(0, MIN_HOSTS_PER_PROCESS - 1) == 1  # a small crawl stays in one process
    assert process_count(0, 100 * MIN_HOSTS_PER_PROCESS) == min(len(os.sched_getaffinity(0)), 100)
    assert process_count(2, 1) == 1 and process_count(3, 10) == 3 and process_count(1, 10_000) == 1


CHILDREN_SCRIPT = """
import sys, threading, time, multiprocessing
from pathlib import Path
from gongkai.crawler.crawl import CrawlContext
from gongkai.crawler.processes import crawl_in_processes
from gongkai.crawler.registry import all_hosts, load_registry
from gongkai.crawler.state import CrawlState
from gongkai.flows.crawl import Politeness
from gongkai.warehouse import open_archive

named = threading.Lock()

def ingest(*args, **kwargs):  # the crawl is under way in both children: name them, then hang as a long load would
    time.sleep(0.5)
    # once, in one write: the parent ingests on several threads, and two prints interleaved ("A B" "A B" then the
    # two newlines) made the first line read as three pids (2 of 15 runs)
    if named.acquire(blocking=False):
        sys.stdout.write(" ".join(str(p.pid) for p in multiprocessing.active_children()) + "\\n")
        sys.stdout.flush()
    time.sleep(60)

portals = load_registry(Path(sys.argv[1]))
polite = Politeness(delay=0.2, concurrency=2, retries=0)
ctx = CrawlContext(polite.fetcher(all_hosts(portals)), CrawlState(None), ingest)
crawl_in_processes(portals, ctx, processes=2, make_fetcher=polite.fetcher, archive=open_archive(sys.argv[2]))
"""


def test_no_crawler_process_outlives_its_parent(tmp_path: Path) -> None:
    with ShardPortal(HOSTS) as portal:
        registry = tmp_path / "registry.toml"
        registry.write_text(portal.registry(PORTALS), "utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(tmp_path / "err", "w") as err:
            parent = subprocess.Popen([sys.executable, "-c", CHILDREN_SCRIPT, str(registry), str(tmp_path / "archive")], env=env,
                                      stdout=subprocess.PIPE, stderr=err, text=True)
            try:
                assert parent.stdout is not None
                pids = [int(p) for p in parent.stdout.readline().split()]
                assert len(pids) == 2, (tmp_path / "err").read_text()[-2000:]
            finally:
                parent.kill()  # as kill -9 does: no clean-up in the parent
                parent.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_a_stop_reaches_the_children_and_the_crawl_ends_within_its_grace(tmp_path: Path) -> None:
    from gongkai.crawler.crawl import CrawlContext
    from gongkai.crawler.processes import crawl_in_processes
    from gongkai.crawler.registry import all_hosts, load_registry
    from gongkai.crawler.state import CrawlState
    from gongkai.flows.crawl import Politeness
    from gongkai.warehouse import IngestOutcome, open_archive

    ingested = threading.Event()

    def ingest(data: bytes, **meta: Any) -> IngestOutcome:
        ingested.set()
        return IngestOutcome("0" * 64, "new", meta["name"], url=meta["url"], portal=meta["portal"].id)

    with ShardPortal(HOSTS) as portal:
        registry = tmp_path / "registry.toml"
        registry.write_text(portal.registry(PORTALS), "utf-8")
        portal.slow_s = 0.5  # without the stop, the crawl would take well over the bound below
        portals = load_registry(registry)
        polite = Politeness(delay=0.5, concurrency=1, retries=0)
        ctx = CrawlContext(polite.fetcher(all_hosts(portals)), CrawlState(None), ingest)
        started = time.monotonic()
        summary = crawl_in_processes(portals, ctx, processes=2, make_fetcher=polite.fetcher, should_stop=ingested.is_set,
                                     grace=0.5, archive=open_archive(tmp_path / "archive"))
        took = time.monotonic() - started
        assert ingested.is_set() and took < 15, took
        assert not [p for p in multiprocessing.active_children() if p.name.startswith("gongkai-crawler-")]
        # the children stopped themselves (they sent their results): nothing failed, the rest waits for the next run
        assert all(info["status"] != "failed" for info in summary["portals"].values()), summary["portals"]
        assert len(summary["documents"]) < REPORTS


def test_with_per_host_limits_on_prefect_the_children_use_the_parents_server_or_the_crawl_stays_in_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from gongkai.crawler.processes import prefect_api_url, processes_with_prefect_limits

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # the ephemeral server: it lives in one process
        assert processes_with_prefect_limits(2) == 1
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4200/api"}):  # a server (a worker's, set in its environment)
        assert processes_with_prefect_limits(2) == 2 and prefect_api_url() == "http://127.0.0.1:4200/api"


class LoggingItsPutsAndSyncs:
    """child_main as it is, logging to `log` (one line per event, CLOCK_MONOTONIC: one clock for every process of the
    machine) each file it names in the archive, each sync's start and end, and each file's message to the parent (the
    time before it is sent). (Spawn pickles this by reference.)"""

    def __init__(self, log: Path) -> None:
        self.log = log

    def __call__(self, conn: Any, parent_pid: int) -> None:
        from gongkai.crawler import processes
        from gongkai.warehouse import archive as archive_module

        out = open(self.log, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 (the process's life)
        put, syncfs = LocalArchive.put, archive_module.syncfs

        def logged_put(archive: LocalArchive, data: bytes) -> str:
            sha = put(archive, data)
            out.write(f"put {sha} {time.monotonic()}\n")
            return sha

        def logged_syncfs(folder: str, held: int | None = None) -> None:
            started = time.monotonic()
            syncfs(folder, held)
            out.write(f"sync {started} {time.monotonic()}\n")

        link = LocalArchive._link  # a file stored as it was fetched (LocalArchive.incoming) is named here

        def logged_link(archive: LocalArchive, incoming: Any) -> str:
            sha = link(archive, incoming)
            out.write(f"put {sha} {time.monotonic()}\n")
            return sha

        LocalArchive.put = logged_put  # type: ignore[method-assign]
        LocalArchive._link = logged_link  # type: ignore[method-assign]
        archive_module.syncfs = logged_syncfs
        processes.child_main(_LoggingSends(conn, out), parent_pid)


class _LoggingSends:
    """A child's end of the pipe, logging each file's message ("ingest") before it is sent."""

    def __init__(self, conn: Any, out: Any) -> None:
        self._conn, self._out = conn, out

    def send(self, message: tuple[Any, ...]) -> None:
        if message[0] == "ingest":  # the file's digest and its pictures' (None: a picture not fetched)
            at, meta = time.monotonic(), message[2]
            for sha in [meta["sha256"], *(meta["pictures"] or {}).values()]:
                if sha is not None:
                    self._out.write(f"ingest {sha} {at}\n")
        self._conn.send(message)

    def __getattr__(self, name: str) -> Any:  # recv, poll, close: the pipe's own
        return getattr(self._conn, name)


@dataclass
class LoggedCrawl:
    summary: dict[str, Any]
    named: dict[str, float]  # digest: when a child first named it in the archive
    syncs: list[tuple[float, float]]  # each syncfs's start and end
    sent: list[tuple[str, float]]  # each file's message to the parent: its digest (and its pictures'), the time before
    recorded: dict[str, float]  # URL: when its validators reached the parent's crawl state


@pytest.fixture(scope="module")
def logged_crawl(tmp_path_factory: pytest.TempPathFactory) -> LoggedCrawl:
    """A real two-process crawl, its children logging their puts, syncs and file messages (one crawl for the tests
    of the durability promise)."""
    from gongkai.crawler import processes

    folder = tmp_path_factory.mktemp("durable")
    log = folder / "children.log"
    recorded: dict[str, float] = {}
    apply_states = processes._apply_states

    def recording(state: Any, updates: list[tuple[str, Any]]) -> None:
        apply_states(state, updates)
        recorded.update((url, time.monotonic()) for url, entry in updates if entry is not None)

    with pytest.MonkeyPatch.context() as patch, ShardPortal(HOSTS) as portal:
        patch.setattr(processes, "child_main", LoggingItsPutsAndSyncs(log))
        patch.setattr(processes, "_apply_states", recording)
        registry = folder / "registry.toml"
        registry.write_text(portal.registry(PORTALS), "utf-8")
        summary = _crawl(portal, folder, 2, registry).summary
    named: dict[str, float] = {}
    syncs: list[tuple[float, float]] = []
    sent: list[tuple[str, float]] = []
    for line in log.read_text("utf-8").splitlines():
        kind, a, b = line.split()
        if kind == "put":
            named.setdefault(a, float(b))
        elif kind == "ingest":
            sent.append((a, float(b)))
        else:
            syncs.append((float(a), float(b)))
    return LoggedCrawl(summary, named, syncs, sent, recorded)


def test_no_files_validators_reach_the_crawl_state_before_a_sync_begun_after_its_file_was_stored(
        logged_crawl: LoggedCrawl) -> None:
    """The children do not fsync each file they store: the promise is that the crawl state records no file (its URL's
    validators, which make the next run skip it) before the file is on disk. Each report's validators reach the
    parent's crawl state after a sync of its child that began once that child had named the file."""
    named, syncs, recorded = logged_crawl.named, logged_crawl.syncs, logged_crawl.recorded
    new = [d for d in logged_crawl.summary["documents"] if d["outcome"] == "new"]
    assert len(new) == REPORTS and syncs
    for doc in new:
        stored, committed = named[doc["sha256"]], recorded[doc["url"]]
        assert any(stored <= start and end <= committed for start, end in syncs), (doc["url"], stored, committed)


def test_no_file_reaches_the_parent_before_a_sync_begun_after_it_was_stored(logged_crawl: LoggedCrawl) -> None:
    """The parent loads a child's file into the warehouse as soon as its message arrives, and the warehouse promises
    every value traceable to its archived document: no file's message leaves a child before a sync of the archive
    that began once the file (and each of its pictures) was named, and ended before the message was sent."""
    named, syncs, sent = logged_crawl.named, logged_crawl.syncs, logged_crawl.sent
    new = {d["sha256"] for d in logged_crawl.summary["documents"] if d["outcome"] == "new"}
    assert len(new) == REPORTS and new <= {sha for sha, _ in sent}
    for sha, at in sent:
        assert any(named[sha] <= start and end <= at for start, end in syncs), (sha, named[sha], at)


def test_a_stop_asked_for_as_the_crawl_starts_stops_the_children_with_a_state_of_many_pieces(tmp_path: Path) -> None:
    """A stop at a crawl's start (a Ctrl-C as the children import) while each child's crawl state is still going to it in
    pieces: the stop went between the pieces, the child failed reading it as one (its portals failed, "ended with exit
    code 1"). The children now get the stop after their whole plan and stop as they would later on: nothing fails."""
    from gongkai.crawler.crawl import CrawlContext
    from gongkai.crawler.processes import STATE_PIECE, crawl_in_processes
    from gongkai.crawler.registry import all_hosts, load_registry
    from gongkai.crawler.state import CrawlState
    from gongkai.flows.crawl import Politeness
    from gongkai.warehouse import IngestOutcome, open_archive

    def ingest(data: bytes, **meta: Any) -> IngestOutcome:
        return IngestOutcome("0" * 64, "new", meta["name"], url=meta["url"], portal=meta["portal"].id)

    with ShardPortal(HOSTS) as portal:
        registry = tmp_path / "registry.toml"
        registry.write_text(portal.registry(PORTALS), "utf-8")
        portals = load_registry(registry)
        polite = Politeness(delay=0.5, concurrency=1, retries=0)
        state = CrawlState(None)
        for host in sorted(all_hosts(portals)):  # each child's state several pieces, each past a pipe's buffer
            for i in range(STATE_PIECE + STATE_PIECE // 2):
                state.commit(f"http://{host}/old/{'p' * 100}{i}.html", etag=f'"e{i}"', last_modified=None)
        ctx = CrawlContext(polite.fetcher(all_hosts(portals)), state, ingest)
        summary = crawl_in_processes(portals, ctx, processes=2, make_fetcher=polite.fetcher, should_stop=lambda: True,
                                     grace=0.5, archive=open_archive(tmp_path / "archive"))
        assert all(info["status"] != "failed" for info in summary["portals"].values()), summary["portals"]
