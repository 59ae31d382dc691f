"""One nightly as shards on a real Prefect server with two real process workers (`gongkai worker`), a real PostgreSQL
warehouse and three loopback hosts: every report loaded once, each file archived once, the crawl state shared, the
per-host limits kept across workers, both workers used; and a worker killed in the middle of a load leaves nothing
half-loaded, its shard recorded as crashed, and the next run completes it.

The Prefect server, the workers and the hosts are started once for the module (the server takes 10–30 s to start).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from s3_fixture import S3Server
from shard_portal import REPORT_YEARS, Hit, ShardPortal, closest_starts, in_flight_peaks, wait_for

ROOT = Path(__file__).resolve().parents[1]
POOL = "gongkai-test"
DELAY, CONCURRENCY = 0.4, 2
# agencies per host; agency 99 is on hosts 0 and 2: one report reachable from two portals in two shards
HOSTS = {0: [1, 2, 99], 1: [3, 4], 2: [5, 99]}
PORTALS = [("a1", 0, 1), ("a2", 0, 2), ("dup-east", 0, 99), ("a3", 1, 3), ("a4", 1, 4), ("a5", 2, 5), ("dup-west", 2, 99)]
PAUSE_IN_LOAD = "GONGKAI_TEST_PAUSE_IN_LOAD"  # warehouse/store.py's hook: seconds asleep inside a load transaction
SHARD_BEAT = "GONGKAI_SHARD_BEAT_S"  # the shard's beat interval (settings.shard_beat_s)

pytestmark = pytest.mark.postgres


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])



@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def children(self) -> list[int]:
        """Every live process under the worker (its flow-run subprocesses), from /proc."""
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
        found, frontier = [], [self.process.pid]
        while frontier:
            parent = frontier.pop()
            kids = [pid for pid, ppid in parents.items() if ppid == parent]
            found += kids
            frontier += kids
        return found

    def kill(self) -> None:
        """SIGKILL the worker and everything under it at once: nothing gets to clean up."""
        for pid in [self.process.pid, *self.children()]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)


@dataclass
class Cluster:
    api_url: str
    db_url: str
    folder: Path
    portal: ShardPortal
    registry: Path
    env: dict[str, str]
    archive: str  # s3://bucket/archive on the loopback S3 server
    s3: S3Server
    workers: list[Worker] = field(default_factory=list)

    def start_worker(self, name: str, **extra_env: str) -> Worker:
        log = self.folder / f"{name}.log"
        data = self.folder / f"data-{name}"  # each worker its own data folder: nothing shared through it
        env = self.env | {"GONGKAI_DATA": str(data)} | extra_env
        process = subprocess.Popen([sys.executable, "-m", "gongkai.cli", "worker", "--pool", POOL, "--name", name, "--limit", "1"],
                                   env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=self.folder)
        worker = Worker(name, process, log)
        self.workers.append(worker)
        wait_for(lambda: name in self.online_workers() or process.poll() is not None, 90, f"worker {name} to join")
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        return worker

    def online_workers(self) -> set[str]:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            try:
                return {w.name for w in client.read_workers_for_work_pool(POOL)}
            except Exception:
                return set()

    def nightly(self, *extra: str, shards: int = 2) -> tuple[int, dict[str, Any], list[Hit]]:
        from gongkai.cli import main

        self.portal.clear()
        code = main(["nightly", "--shards", str(shards), "--pool", POOL, "--registry", str(self.registry), "--delay", str(DELAY),
                     "--concurrency", str(CONCURRENCY), "--shard-deadline", "120", "--json", *extra])
        return code, _last_summary(Path(os.environ["GONGKAI_DATA"])), self.portal.clear()

    def use_fresh_warehouse(self, name: str) -> None:
        """A new database and archive for this cluster's next runs and workers (the server keeps running)."""
        import psycopg

        admin = self.db_url.rsplit("/", 1)[0] + "/postgres"
        database = f"{self.db_url.rsplit('/', 1)[1]}_{name}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {database}")  # type: ignore[arg-type]
        self.db_url = admin.rsplit("/", 1)[0] + f"/{database}"
        self.archive = f"s3://{self.s3.make_bucket()}/archive"
        self.env |= {"GONGKAI_DB": self.db_url, "GONGKAI_ARCHIVE": self.archive}
        # the parent's run summaries apart too: run ids start again at 1 in a new warehouse
        os.environ.update({"GONGKAI_DB": self.db_url, "GONGKAI_ARCHIVE": self.archive,
                           "GONGKAI_DATA": str(self.folder / f"data-parent-{name}")})

    def archived(self) -> list[str]:
        """Every object under the archive's prefix."""
        bucket, _, prefix = self.archive.removeprefix("s3://").partition("/")
        pages = self.s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        from gongkai.warehouse import open_warehouse

        with open_warehouse(self.db_url) as warehouse:
            return warehouse.db.query(sql, params or [])


def _last_summary(data: Path) -> dict[str, Any]:
    files = sorted((data / "runs").glob("*-nightly.json"))
    return json.loads(files[-1].read_text("utf-8"))


def _start_prefect_server(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
        "PREFECT_HOME": str(folder / "prefect-server"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_UI_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
    log = folder / "prefect-server.log"
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port),
                               "--no-scheduler", "--no-ui", "--analytics-off"], env=env, stdout=log.open("wb"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"

    def healthy() -> bool:
        if server.poll() is not None:
            raise AssertionError("prefect server exited: " + log.read_text(errors="replace")[-3000:])
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    wait_for(healthy, 120, "the Prefect server")
    return server, url


@pytest.fixture(scope="module")
def cluster(postgres_server: str, s3_server: S3Server) -> Iterator[Cluster]:
    import psycopg
    from prefect.settings import PREFECT_API_URL, temporary_settings

    folder = Path(tempfile.mkdtemp(prefix="gongkai-shards-"))
    name = f"shards_{os.getpid()}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    db_url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    server, api_url = _start_prefect_server(folder)
    archive = f"s3://{s3_server.make_bucket()}/archive"  # one archive every worker writes to
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GONGKAI_"))} | {
        "PYTHONPATH": str(ROOT), "PREFECT_API_URL": api_url, "PREFECT_HOME": str(folder / "prefect-client"),
        "DO_NOT_TRACK": "1", "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_HEARTBEAT_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "0",
        "GONGKAI_DB": db_url, "GONGKAI_ARCHIVE": archive, "GONGKAI_EXTRACT_PROCESSES": "0"} | s3_server.env()
    saved = {k: os.environ.get(k) for k in ("PREFECT_API_URL", "GONGKAI_DB", "GONGKAI_ARCHIVE", "GONGKAI_DATA", "GONGKAI_EXTRACT_PROCESSES",
                                            *s3_server.env())}
    os.environ.update({"PREFECT_API_URL": api_url, "GONGKAI_DB": db_url, "GONGKAI_ARCHIVE": archive,
                       "GONGKAI_DATA": str(folder / "data-parent"), "GONGKAI_EXTRACT_PROCESSES": "0"} | s3_server.env())
    try:
        with temporary_settings({PREFECT_API_URL: api_url}), ShardPortal(HOSTS) as portal:
            registry = folder / "registry.toml"
            registry.write_text(portal.registry(PORTALS), "utf-8")
            cluster = Cluster(api_url, db_url, folder, portal, registry, env, archive, s3_server)
            try:
                yield cluster
            finally:
                for worker in cluster.workers:
                    if worker.process.poll() is None:
                        worker.kill()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def _assert_each_report_once(cluster: Cluster) -> None:
    """One report row per agency and year (all extracted, with cells), no file loaded twice, every served file kept."""
    rows = cluster.query("SELECT a.division_code, r.year, count(*), min(r.status), min(r.n_cells) FROM reports r "
                         "JOIN agencies a ON a.agency_id = r.agency_id WHERE r.year IS NOT NULL GROUP BY a.division_code, r.year")
    expected = {(f"{110000 + a:06d}", y) for _, _, a in PORTALS for y in REPORT_YEARS}
    assert {(code, year) for code, year, *_ in rows} == expected, rows
    assert all(n == 1 and status == "extracted" and cells > 0 for *_, n, status, cells in rows), rows
    assert cluster.query("SELECT sha256 FROM reports GROUP BY sha256 HAVING count(*) > 1") == []


def _assert_polite(hits: list[Hit]) -> None:
    assert hits
    assert max(in_flight_peaks(hits).values()) <= CONCURRENCY, in_flight_peaks(hits)
    # arrivals can bunch up by the loopback's scheduling jitter, never by a whole delay
    assert min(closest_starts(hits).values()) >= DELAY - 0.15, closest_starts(hits)


def test_a_sharded_nightly_loads_each_report_once_shares_the_state_and_keeps_each_host_polite(cluster: Cluster) -> None:
    first_worker, second_worker = cluster.start_worker("w1"), cluster.start_worker("w2")
    code, summary, hits = cluster.nightly()
    assert code == 0, summary
    assert {s["state"] for s in summary["shards"]} == {"COMPLETED"}, summary["shards"]
    # both workers ran a shard; each host's portals all in one shard
    assert {s["worker"] for s in summary["shards"]} == {"w1", "w2"}, summary["shards"]
    assert {pid: info["status"] for pid, info in summary["portals"].items()} == {pid: "ok" for pid, _, _ in PORTALS}
    _assert_polite(hits)

    _assert_each_report_once(cluster)
    # agency 99's report, reached from host 0 (shard 1) and host 2 (shard 2): one row, one version
    [(n_rows,)] = cluster.query("SELECT count(*) FROM reports r JOIN agencies a ON a.agency_id = r.agency_id "
                                "WHERE a.division_code = '110099'")
    assert n_rows == len(REPORT_YEARS)
    documents = {sha for (sha,) in cluster.query("SELECT sha256 FROM documents")}
    archived = cluster.archived()
    _, _, prefix = cluster.archive.removeprefix("s3://").partition("/")
    marker = f"{prefix}/ARCHIVE-LAYOUT"  # the archive's layout, written once before its first file
    assert archived.count(marker) == 1, archived
    files = [key for key in archived if key != marker]
    assert sorted(key.rsplit("/", 1)[1] for key in files) == sorted(documents)  # every file once, nothing else
    assert all(key == f"{prefix}/{key.rsplit('/', 1)[1][:2]}/{key.rsplit('/', 1)[1]}" for key in files), files  # ab/<sha>
    assert summary["counts"]["new"] == len({a for _, _, a in PORTALS}) * len(REPORT_YEARS)
    runs = cluster.query("SELECT kind, status FROM runs ORDER BY run_id")
    assert sorted(runs) == [("crawl-nightly", "completed"), ("crawl-nightly-shard", "completed"), ("crawl-nightly-shard", "completed")]

    # the second run: other shard-to-worker pairs may happen, the state is in the warehouse, so only 304s
    code, again, hits = cluster.nightly()
    assert code == 0, again
    full = [h for h in hits if h.path != "/robots.txt" and not h.conditional]
    assert not full, full
    assert again["counts"].get("new", 0) == 0 and again["counts"]["not_modified"] > 0, again["counts"]
    _assert_polite(hits)
    assert {s.name for s in (first_worker, second_worker)} <= cluster.online_workers()


def test_reprocess_in_shards_reextracts_each_archived_document_once(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    from gongkai.cli import main

    if len(cluster.online_workers()) < 2:
        cluster.start_worker("w1"), cluster.start_worker("w2")
    documents = cluster.query("SELECT count(*) FROM documents")[0][0]
    capsys.readouterr()
    code = main(["reprocess", "--all", "--shards", "2", "--pool", POOL, "--shard-deadline", "120", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0, summary
    assert {s["state"] for s in summary["shards"]} == {"COMPLETED"}, summary["shards"]
    # the archive split by digest: every document re-extracted by exactly one shard, nothing changed
    assert sum(summary["counts"].values()) == documents and summary["counts"]["changed"] == 0, summary["counts"]
    runs = cluster.query("SELECT status, params FROM runs WHERE kind = 'reprocess' ORDER BY run_id")
    assert [status for status, _ in runs] == ["completed"] * 3
    assert sorted(json.loads(p).get("shard") or "parent" for _, p in runs) == ["1/2", "2/2", "parent"]


def test_a_worker_killed_mid_shard_leaves_nothing_partial_and_the_rerun_completes_it(cluster: Cluster) -> None:
    for worker in cluster.workers:  # a fresh warehouse, archive and workers: one worker pauses inside its first load
        worker.kill()
    cluster.workers.clear()
    cluster.use_fresh_warehouse("killed")
    victim = cluster.start_worker("victim", **{PAUSE_IN_LOAD: "60"})

    import contextvars
    import threading

    result: dict[str, Any] = {}
    context = contextvars.copy_context()  # Prefect's settings (the test server's URL) live in a context variable
    thread = threading.Thread(target=lambda: result.update(zip(("code", "summary", "hits"), context.run(cluster.nightly), strict=True)))
    thread.start()
    # the victim takes a shard, writes a report row and sleeps inside the transaction: kill it there
    wait_for(lambda: b"paused inside the load transaction" in victim.log.read_bytes(), 120, "the victim's load to pause")
    victim.kill()
    helper = cluster.start_worker("helper")  # takes the shard the victim never started
    thread.join(timeout=150)
    assert not thread.is_alive()
    summary = result["summary"]
    lost = [s for s in summary["shards"] if s["lost"]]
    assert len(lost) == 1 and "victim" in lost[0]["lost"] and lost[0]["state"] in ("RUNNING", "CRASHED"), summary["shards"]
    assert result["code"] == 1
    assert any(info["status"] == "failed" and "stopped sending heartbeats" in info["error"] for info in summary["portals"].values())
    # nothing partial: every report row has its cells; the killed shard's run is recorded crashed
    assert cluster.query("SELECT count(*) FROM reports WHERE status = 'extracted' AND n_cells = 0") == [(0,)]
    assert cluster.query("SELECT count(*) FROM reports r WHERE NOT EXISTS (SELECT 1 FROM cells c WHERE c.report_id = r.report_id) "
                         "AND r.n_cells > 0") == [(0,)]
    statuses = [s for _, s in cluster.query("SELECT kind, status FROM runs WHERE kind = 'crawl-nightly-shard' ORDER BY run_id")[-2:]]
    assert sorted(statuses) == ["completed", "crashed"], statuses

    # the rerun, on the surviving worker: everything loaded, each once
    code, rerun, _ = cluster.nightly()
    assert code == 0, rerun["shards"]
    _assert_each_report_once(cluster)
    assert {s["worker"] for s in rerun["shards"]} == {helper.name}


def test_a_worker_killed_while_its_shard_process_lives_on_lets_the_shard_finish_and_count(cluster: Cluster) -> None:
    """A process worker's flow run is its subprocess, which a SIGKILL of the worker alone leaves running: the parent
    waits for it (it still beats) instead of marking it crashed while it goes on loading, and its summary counts."""
    for worker in cluster.workers:
        worker.kill()
    cluster.workers.clear()
    cluster.use_fresh_warehouse("orphaned")
    worker = cluster.start_worker("short-lived", **{PAUSE_IN_LOAD: "5"})  # each load of its shard takes 5 s

    import contextvars
    import threading

    result: dict[str, Any] = {}
    context = contextvars.copy_context()
    thread = threading.Thread(target=lambda: result.update(zip(("code", "summary", "hits"), context.run(
        cluster.nightly, "--agency", "a3", "--agency", "a4", shards=1), strict=True)))
    thread.start()
    wait_for(lambda: b"paused inside the load transaction" in worker.log.read_bytes(), 120, "the shard's first load")
    shard_processes = worker.children()
    os.kill(worker.process.pid, signal.SIGKILL)  # the worker only: its flow-run process goes on (4 loads × 5 s)
    worker.process.wait(timeout=10)
    assert any(_alive(pid) for pid in shard_processes)
    thread.join(timeout=150)
    assert not thread.is_alive()
    summary = result["summary"]
    [shard] = summary["shards"]
    assert shard["state"] == "COMPLETED" and shard["lost"] is None and shard["worker_lost"], summary["shards"]
    assert result["code"] == 0, summary
    assert summary["counts"]["new"] == 2 * len(REPORT_YEARS), summary["counts"]
    assert [s for (s,) in cluster.query("SELECT status FROM runs ORDER BY run_id")] == ["completed", "completed"]
    [(reports,)] = cluster.query("SELECT count(*) FROM reports")
    assert reports == 2 * len(REPORT_YEARS)
    wait_for(lambda: not any(_alive(pid) for pid in shard_processes), 30, "the shard's process to exit")


def test_a_shard_stalled_past_its_fence_commits_nothing_after_it_and_the_rerun_completes_it(cluster: Cluster) -> None:
    """A shard stopped (SIGSTOP: a long GC, a swapped-out VM) inside a load for longer than the parent waits is fenced
    and counted; resumed (SIGCONT), it must not commit that load, although its next beat, which would notice the
    fence, is far off (a 60 s beat here: the load would always win that race). The load's own check stops it."""
    for worker in cluster.workers:
        worker.kill()
    cluster.workers.clear()
    cluster.use_fresh_warehouse("stalled")
    victim = cluster.start_worker("stalled", **{PAUSE_IN_LOAD: "2", SHARD_BEAT: "60"})

    import contextvars
    import threading

    result: dict[str, Any] = {}
    context = contextvars.copy_context()
    thread = threading.Thread(target=lambda: result.update(zip(("code", "summary", "hits"), context.run(
        cluster.nightly, "--agency", "a3", "--agency", "a4", shards=1), strict=True)))
    thread.start()
    wait_for(lambda: b"paused inside the load transaction" in victim.log.read_bytes(), 120, "the shard's first load")
    stopped = [victim.process.pid, *victim.children()]
    for pid in stopped:  # the worker and its flow-run process: neither Prefect heartbeats nor the shard's own beat
        os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: "lost_shards" in "".join(p for (p,) in cluster.query("SELECT params FROM runs WHERE kind = 'crawl-nightly'")),
                 60, "the parent to fence the stalled shard")
        thread.join(timeout=30)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    assert not thread.is_alive()
    [shard] = result["summary"]["shards"]
    assert shard["lost"] and shard["state"] in ("RUNNING", "CRASHED"), shard
    # resumed: its load finishes (the rest of the pause) and must then roll back and stop the shard's process
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in stopped[1:]) and time.monotonic() < deadline:
        time.sleep(0.2)
    victim.kill()  # the old code's shard would go on loading until its next beat: stop it to count what it did
    [(shard_run, fenced_at)] = cluster.query("SELECT run_id, finished_at FROM runs WHERE kind = 'crawl-nightly-shard'")
    [(loaded, last_loaded)] = cluster.query("SELECT count(*), max(loaded_at) FROM reports WHERE run_id = ?", [shard_run])
    assert loaded == shard["loaded_before_lost"], (loaded, shard)  # what the parent counted is all there is
    assert last_loaded is None or last_loaded < fenced_at, (last_loaded, fenced_at)
    assert b"load rolled back, stopping this shard now" in victim.log.read_bytes()

    helper = cluster.start_worker("after-the-stall")
    code, rerun, _ = cluster.nightly("--agency", "a3", "--agency", "a4", shards=1)
    assert code == 0, rerun["shards"]
    assert {s["worker"] for s in rerun["shards"]} == {helper.name}
    rows = cluster.query("SELECT a.division_code, r.year, count(*) FROM reports r JOIN agencies a ON a.agency_id = r.agency_id "
                         "WHERE r.year IS NOT NULL AND r.status = 'extracted' AND r.n_cells > 0 GROUP BY a.division_code, r.year")
    assert sorted(rows) == [(f"{110000 + a:06d}", y, 1) for a in (3, 4) for y in REPORT_YEARS], rows


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_host_held_by_one_crawl_waits_for_it_in_another(cluster: Cluster) -> None:
    """Shards hold their hosts for their crawl (one call, all or none): another run's crawl of one of those hosts
    waits for them, within its bound, and gets them once they are let go."""
    import threading

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from gongkai.crawler.host_limits import HostsBusy, hosts_held

    held, release = threading.Event(), threading.Event()

    def first_crawl() -> None:
        with temporary_settings({PREFECT_API_URL: cluster.api_url}), hosts_held(["127.0.0.1:1", "127.0.0.1:2"], 0.0, 30):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=first_crawl)
    thread.start()
    try:
        assert held.wait(60)
        started = time.monotonic()
        with pytest.raises(HostsBusy, match="another run held"):
            with hosts_held(["127.0.0.1:2", "127.0.0.1:3"], 0.0, 2):
                pass
        assert time.monotonic() - started >= 2
        with hosts_held(["127.0.0.1:3"], 0.0, 10):  # a host the first does not hold: at once
            pass
    finally:
        release.set()
        thread.join(timeout=30)
    with hosts_held(["127.0.0.1:2", "127.0.0.1:3"], 0.5, 30):  # let go: taken, one delay after
        assert time.monotonic() - started >= 2.5


def test_each_shard_admits_first_the_portals_the_last_sharded_run_left_whatever_worker_runs_it(cluster: Cluster) -> None:
    """A shard's summary stays on the worker that ran it; the next night's shard may run on another worker, or a new
    one. The parent's summary names every portal of the run: the parent tells each shard which of its portals the
    last run did not reach or finish, and the shard admits those first (crawler/run_history.py)."""
    from gongkai.crawler.registry import load_registry, split_by_host
    from gongkai.crawler.run_history import UNFINISHED

    for worker in cluster.workers:
        worker.kill()
    cluster.workers.clear()
    cluster.use_fresh_warehouse("order")
    # one portal at a time per shard, every answer 0.5 s, a 2 s deadline: each shard reaches its first portal only
    hurried = {"GONGKAI_CRAWL_PORTAL_DEADLINE": "2", "GONGKAI_CRAWL_PORTALS_IN_PROGRESS": "1"}
    first_workers = [cluster.start_worker("hurried-1", **hurried), cluster.start_worker("hurried-2", **hurried)]
    cluster.portal.slow_s = 0.5
    try:
        _code, first, _ = cluster.nightly()
    finally:
        cluster.portal.slow_s = 0.0
    statuses = {pid: info["status"] for pid, info in first["portals"].items()}
    left = {pid for pid, status in statuses.items() if status in UNFINISHED}
    assert left and len(left) < len(PORTALS), statuses
    # the next night on workers that never ran these shards (their data folders empty), one portal at a time
    for worker in first_workers:
        worker.kill()
    cluster.workers.clear()
    cluster.start_worker("fresh-1", GONGKAI_CRAWL_PORTALS_IN_PROGRESS="1")
    cluster.start_worker("fresh-2", GONGKAI_CRAWL_PORTALS_IN_PROGRESS="1")
    code, second, hits = cluster.nightly()
    assert code == 0, second
    by_host_agency = {(cluster.portal.host(index), f"a{agency}"): pid for pid, index, agency in PORTALS}
    asked: list[str] = []
    for hit in sorted(hits, key=lambda h: h.started):
        pid = by_host_agency.get((hit.host, hit.path.split("/")[1]))
        if pid is not None and pid not in asked:
            asked.append(pid)
    for group in split_by_host(load_registry(cluster.registry), 2):
        ids = [p.id for p in sorted(group, key=lambda p: [pid for pid, _, _ in PORTALS].index(p.id))]  # registry order
        order = [pid for pid in asked if pid in ids]
        assert order == [pid for pid in ids if pid in left] + [pid for pid in ids if pid not in left], (order, statuses)
