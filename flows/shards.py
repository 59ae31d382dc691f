"""One crawl spread over Prefect workers: the registry's portals split into shards by host, each shard a flow run of
the `gongkai-shard/shard` deployment on a process work pool, the parent waiting for them and summing their summaries.

Why by host: politeness is per host, so all portals of one host go to one shard, whose crawler keeps each host's delay
and requests in flight itself; so that another run at once (a backfill beside the nightly) never crawls one of those
hosts too, every shard holds its hosts on the Prefect server for its crawl (`Politeness.host_leases`: one call for
all of them, where per-request limits, `prefect_limits`, cost about 3 calls per request). Shards are balanced by number
of portals and fixed for a given registry (sorted, no randomness), so a host's crawl state and history stay with it
run after run.

The workers share the warehouse (PostgreSQL: their GONGKAI_DB), the archive (GONGKAI_ARCHIVE, a shared folder or an
s3:// URL) and the crawl state (kept in the warehouse). A shard calls the same `run_crawl` as `gongkai nightly`, with
its portals as the `agencies` filter. Nothing secret travels as a flow-run parameter (they show in the Prefect UI):
each worker reads its own environment; the parent passes its run's id and a token, and a shard whose warehouse does
not hold that run refuses to crawl (a worker pointed at another warehouse would split the data).

A process worker runs each flow run as a subprocess (`python -m prefect.engine`, prefect.runner), which a killed
worker leaves running: it goes on crawling, loading and reporting its state to the server on its own. So a worker
that stops sending heartbeats proves nothing about its shard. The shard beats for itself (`ShardBeat`: its `runs`
row's `duration_s`, every SHARD_BEAT_S seconds, on a connection of its own, so a long load does not hold it up): a
shard whose worker is silent but which still beats is waited for, finishes and counts. Only a shard silent on both
counts is given up: the parent first writes it into its own run's `lost_shards` (a shard that still lives reads that
at its next beat and kills itself, as does one that could not beat for longer than the parent waits, and a shard
that had not started refuses to), then marks it Crashed, its `runs` row `crashed`, its portals failed in the
summary, with the reports it had loaded counted there (each load is one transaction: nothing half-loaded). The next
run crawls those portals again. A shard stalled past the fence (SIGSTOP, a long GC, a swapped-out VM) could commit one
more load on resuming, before its next beat: so each load of a shard checks the fence last in its own transaction,
reading the parent's `runs` row FOR KEY SHARE against the fence's FOR UPDATE (warehouse/store.py), and rolls back and
stops the process when fenced. Nothing a shard loads lands after its parent counted it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gongkai.crawler.registry import load_registry, select
from gongkai.crawler.registry import split_by_host as shard_portals  # noqa: I001  (the split shared with crawler/processes.py)
from gongkai.flows.plain import prefect_flow
from gongkai.logs import now_iso
from gongkai.settings import Settings, load_settings, name_database_sessions

FLOW_NAME = "gongkai-shard"
DEPLOYMENT_NAME = "shard"
DEFAULT_POOL = "gongkai"
SUMMARY_KEY = "gongkai-shard-summary"  # the artifact a shard leaves for its parent (the full summary stays on the worker)
POLL_S = 1.0  # how often the parent looks at its shards' states
STALE_HEARTBEATS = 4  # a worker silent for this many heartbeat intervals (at least MIN_STALE_S) is taken for dead
MIN_STALE_S = 10.0
KEPT_QUIET = ("not_modified", "unchanged")  # outcomes a shard counts but does not list back to its parent
SHARD_BEAT_S = 2.0  # how often a shard's process writes its own sign of life into the warehouse
SHARD_STALE_S = max(MIN_STALE_S, STALE_HEARTBEATS * SHARD_BEAT_S)  # a shard silent this long (parent's clock) is dead
FENCE_LOCK_WAIT_S = 2.0  # the parent's fence waits this long for a shard's load to commit before ending its sessions
FENCE_TRIES = 3

log = logging.getLogger(__name__)


class ShardError(RuntimeError):
    """A sharded run that cannot start (no Prefect server, no worker, a DuckDB warehouse): one line for the operator."""


# --- the shard: one flow run on a worker ---------------------------------------------------------------------------

def _shard(
    kind: str,
    portal_ids: list[str],
    shard: str,
    parent_run: int,
    token: str,
    years: list[int] | None = None,
    registry_file: str | None = None,
    demo_port: int | None = None,
    politeness: dict[str, Any] | None = None,
    all_documents: bool = False,
    older_than: str | None = None,
    unfinished: list[str] | None = None,
) -> Any:
    """Crawl these portals (registry ids) as part of run `parent_run`, their hosts held on the Prefect server;
    or, for kind "reprocess", re-extract the shard's part of the archive (documents split by digest). `unfinished`:
    the portals the parent's previous run did not reach or finish, admitted first (None: a parent of an older gongkai,
    the shard reads its worker's own summaries)."""
    from prefect.runtime import flow_run

    # every warehouse session of this shard named after it: the parent can end them on its fence
    name_database_sessions(shard_session_name(str(flow_run.id)))
    settings = load_settings()
    run_params = {"shard": shard, "parent_run": parent_run, "flow_run": str(flow_run.id)}
    with _outliving_the_worker(), ShardBeat(settings.database_url, str(flow_run.id), parent_run, settings.shard_beat_s):
        return _shard_body(kind, portal_ids, shard, parent_run, token, settings, run_params, years, registry_file, demo_port,
                           politeness, all_documents, older_than, unfinished)


class _Unbroken:
    """A standard stream whose reader may be gone: the flow-run process's stdout and stderr are pipes to its worker, and
    a killed worker leaves them broken. The shard goes on (its state, logs and summary go to the Prefect server, its
    loads to the warehouse); what it prints is dropped instead of failing the write (a load, say) with EPIPE."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def _outliving_the_worker() -> Iterator[None]:
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Unbroken(sys.stdout), _Unbroken(sys.stderr)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def _shard_body(kind: str, portal_ids: list[str], shard: str, parent_run: int, token: str, settings: Settings,
                run_params: dict[str, Any], years: list[int] | None, registry_file: str | None, demo_port: int | None,
                politeness: dict[str, Any] | None, all_documents: bool, older_than: str | None,
                unfinished: list[str] | None = None) -> Any:
    from prefect.artifacts import Artifact

    from gongkai.flows.crawl import final_state, run_crawl

    if kind == "reprocess":
        from gongkai.flows.ingest import MAX_THREADS
        from gongkai.flows.plain import plain_tasks
        from gongkai.flows.reprocess import reprocess_flow

        _check_same_warehouse(settings, parent_run, token)
        index, _, count = shard.partition("/")
        with plain_tasks(MAX_THREADS):
            summary = reprocess_flow.fn(all_documents=all_documents, older_than=older_than, settings=settings,
                                        shard=[int(index), int(count)], run_params=run_params)
        Artifact(type="gongkai-summary", key=SUMMARY_KEY, description=f"shard {shard} of run {parent_run}",
                 data=_for_parent(summary)).create()
        return summary
    registry = load_registry(Path(registry_file) if registry_file else settings.registry_file, demo_port=demo_port)
    missing = sorted(set(portal_ids) - {p.id for p in registry})
    if missing:
        raise ShardError(f"shard {shard}: portals {', '.join(missing[:5])} are not in this worker's registry "
                         f"({registry_file or settings.registry_file}): give every worker the parent's registry")
    _check_same_warehouse(settings, parent_run, token)
    summary = run_crawl(f"{kind}-shard", years=years, agencies=portal_ids, registry_file=registry_file, demo_port=demo_port,
                        politeness=(politeness or {}) | {"host_leases": True}, settings=settings,
                        run_params=run_params, unfinished=unfinished)
    Artifact(type="gongkai-summary", key=SUMMARY_KEY, description=f"shard {shard} of run {parent_run}",
             data=_for_parent(summary)).create()
    return final_state(summary)


shard_flow = prefect_flow(name=FLOW_NAME, validate_parameters=False, log_prints=False)(_shard)


def _flow_run_mark(flow_run_id: str) -> str:
    """The LIKE pattern of a shard's `runs` row: its params (JSON, as runs.start_run writes them) name its flow run.
    The key too: the parent's params list the shards it gave up (`lost_shards`)."""
    return f'%"flow_run": "{flow_run_id}"%'



def shard_session_name(flow_run_id: str) -> str:
    """The application_name of a shard's PostgreSQL sessions (at most 63 characters: a flow run id is 36)."""
    return f"gongkai-shard {flow_run_id}"


class ShardBeat:
    """The shard process's own heartbeat in the warehouse, on a connection of its own: every SHARD_BEAT_S seconds its
    `runs` row's `duration_s` (seconds so far; the parent watches it change, so no two machines' clocks are compared)
    and a look at the parent's run. It stops the process at once (SIGKILL: an open load transaction is rolled back)
    when the parent has given the shard up or ended, or when it could not beat for SHARD_STALE_S (a process stopped
    or cut off that long may have been given up meanwhile). A shard given up before it started refuses to start."""

    def __init__(self, url: str, flow_run_id: str, parent_run: int, interval_s: float = SHARD_BEAT_S) -> None:
        self.url, self.flow_run_id, self.parent_run, self.interval_s = url, flow_run_id, parent_run, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._db: Any = None
        self._started = time.monotonic()

    def __enter__(self) -> ShardBeat:
        from gongkai.warehouse.db import connect

        self._db = connect(self.url)
        if self._given_up(starting=True):
            self._db.close()
            raise ShardError(f"run {self.parent_run} gave this shard up (or ended) before it started: not crawling")
        self._thread = threading.Thread(target=self._loop, name="gongkai-shard-beat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._db.close()

    def _given_up(self, *, starting: bool = False) -> bool:
        """The parent named this shard in its `lost_shards`; or, before the start, the parent has ended (once started,
        an ending parent stops its shards through Prefect: Cancelling, and a graceful SIGTERM from the worker)."""
        row = self._db.query_one("SELECT status, params FROM runs WHERE run_id = ?", [self.parent_run])
        if row is None:  # not this warehouse's run: the shard's own check says so (_check_same_warehouse)
            return False
        return bool((starting and row[0] != "running") or self.flow_run_id in json.loads(row[1]).get("lost_shards", []))

    def _loop(self) -> None:
        last_beat = time.monotonic()
        while not self._stop.wait(self.interval_s):
            try:
                self._db.execute("UPDATE runs SET duration_s = ? WHERE status = 'running' AND params LIKE ?",
                                 [round(time.monotonic() - self._started, 3), _flow_run_mark(self.flow_run_id)])
                given_up = self._given_up()
                last_beat = time.monotonic()
            except Exception as exc:  # a warehouse out of reach: loads fail too; beat again, within the bound below
                log.warning("shard beat failed (%s: %s)", type(exc).__name__, exc)
                given_up = time.monotonic() - last_beat > SHARD_STALE_S
            if given_up and not self._stop.is_set():
                log.error("run %d gave this shard up (its worker and this process were silent): stopping now", self.parent_run)
                os.kill(os.getpid(), signal.SIGKILL)


def _check_same_warehouse(settings: Settings, parent_run: int, token: str) -> None:
    from gongkai.warehouse import open_warehouse
    from gongkai.warehouse.archive_remote import redacted  # the one place that strips credentials from a URL

    with open_warehouse(settings.database_url) as warehouse:
        params = warehouse.db.scalar("SELECT params FROM runs WHERE run_id = ?", [parent_run])
    if params is None or json.loads(params).get("token") != token:
        raise ShardError(f"this worker's warehouse ({redacted(settings.database_url)}) does not hold run {parent_run}: "
                         "set GONGKAI_DB to the warehouse the sharded run writes to")


def _for_parent(summary: dict[str, Any]) -> dict[str, Any]:
    """The shard's summary without the documents that changed nothing (counted, not listed: a national crawl has
    tens of thousands of 304s); the complete summary is in the worker's data folder (runs/<run_id>-<kind>.json)."""
    documents = [d for d in summary["documents"] if d["outcome"] not in KEPT_QUIET]
    return summary | {"documents": documents}


# --- the parent ----------------------------------------------------------------------------------------------------

def ensure_pool(pool: str) -> None:
    """The process work pool, created when missing (as `prefect work-pool create --type process NAME` would)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            found = client.read_work_pool(pool)
        except ObjectNotFound:
            try:
                client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            except ObjectAlreadyExists:
                pass  # created meanwhile by a worker's `gongkai worker`
            return
        if found.type != "process":
            raise ShardError(f"work pool {pool} is of type {found.type}, not process")


def register_shard_deployment(pool: str) -> Any:
    """The shard deployment on `pool` (registered again each run: idempotent). Its entrypoint is the module path
    gongkai.flows.shards:shard_flow, imported from the gongkai installed beside each worker: no code is copied, and
    workers on other machines need only the same gongkai version."""
    from prefect.types.entrypoint import EntrypointType

    deployment = shard_flow.to_deployment(
        name=DEPLOYMENT_NAME, work_pool_name=pool, entrypoint_type=EntrypointType.MODULE_PATH,
        description="One shard of a sharded gongkai crawl (portals grouped by host); started by `gongkai nightly --shards N`.",
        tags=["gongkai", "crawl", "shard"],
    )
    return deployment.apply()


def online_workers(pool: str) -> dict[str, Any]:
    """The pool's workers by name, with their last heartbeat (read now)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return {w.name: w for w in client.read_workers_for_work_pool(pool)}


def _silent_for(worker: Any, now: datetime) -> float | None:
    """Seconds past the point where this worker should have sent its next heartbeats, or None while it is alive."""
    if worker is None or worker.last_heartbeat_time is None:
        return None
    allowed = max(MIN_STALE_S, STALE_HEARTBEATS * float(worker.heartbeat_interval_seconds or 30))
    silent = (now - worker.last_heartbeat_time).total_seconds()
    return silent if silent > allowed else None


@dataclass
class ShardRun:
    index: int
    portals: list[str]
    flow_run_id: Any
    state: str = "SCHEDULED"
    message: str | None = None
    worker: str | None = None
    summary: dict[str, Any] | None = None
    lost: str | None = None  # why the parent gave up on it (crashed worker, deadline)
    extra: dict[str, Any] = field(default_factory=dict)


class ShardWatch:
    """What the parent knows of its shards' own processes, from the warehouse: each one's last beat (`ShardBeat`) and
    when it changed on the parent's clock; and the fence that gives a shard up."""

    def __init__(self, db: Any, parent_run: int) -> None:
        self.db, self.parent_run = db, parent_run
        self._beats: dict[str, tuple[float, float]] = {}  # flow run id -> (its beat, when it last changed)

    def look(self, shards: list[ShardRun]) -> None:
        rows = self.db.query("SELECT params, duration_s FROM runs WHERE status = 'running' AND params LIKE ?",
                             [f'%"parent_run": {self.parent_run}%'])
        now = time.monotonic()
        for params, beat in rows:
            fields = json.loads(params)
            flow_run = fields.get("flow_run")
            if flow_run is None or beat is None or fields.get("parent_run") != self.parent_run:
                continue
            if self._beats.get(flow_run, (None, 0.0))[0] != beat:
                self._beats[flow_run] = (beat, now)

    def silent_for(self, s: ShardRun) -> float:
        """Seconds since the shard's process last beat (since the parent started watching it, if it never did)."""
        since = max(self._beats.get(str(s.flow_run_id), (None, 0.0))[1], s.extra.setdefault("watched_since", time.monotonic()))
        return time.monotonic() - since

    def give_up(self, s: ShardRun, status: str = "crashed") -> None:
        """Write the shard into this run's `lost_shards` (read by the shard at its next beat, or when it starts), then
        its `runs` row `status`: from here on the shard's process stops itself, whatever is left of it."""
        import psycopg

        from gongkai.warehouse.store import utcnow

        for attempt in range(FENCE_TRIES):
            try:
                with self.db.transaction():
                    # FOR UPDATE: ordered against each shard load's fence check (warehouse/store.py, FOR KEY SHARE of
                    # this row, last in its transaction): a load commits before the fence, or sees it and rolls back
                    self.db.execute(f"SET LOCAL lock_timeout = '{int(FENCE_LOCK_WAIT_S * 1000)}ms'")
                    params = json.loads(self.db.scalar("SELECT params FROM runs WHERE run_id = ? FOR UPDATE", [self.parent_run]))
                    params["lost_shards"] = [*params.get("lost_shards", []), str(s.flow_run_id)]
                    self.db.execute("UPDATE runs SET params = ? WHERE run_id = ?",
                                    [json.dumps(params, ensure_ascii=False, default=str, sort_keys=True), self.parent_run])
                    self.db.execute("UPDATE runs SET status = ?, finished_at = ? WHERE status = 'running' AND params LIKE ?",
                                    [status, utcnow(), _flow_run_mark(str(s.flow_run_id))])
                return
            except psycopg.errors.LockNotAvailable:
                # a load stalled between its check and its commit holds the row: end the given-up shard's sessions
                # (its open transaction rolls back), found by the name each shard gives them (PGAPPNAME)
                # only this role's: any client may name its session so (a superuser warehouse role could end another
                # role's, a plain one would fail the fence on it); the shard connects with the parent's role
                ended = self.db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ? "
                                      "AND usename = current_user AND pid <> pg_backend_pid()",
                                      [shard_session_name(str(s.flow_run_id))])
                log.warning("shard %d held run %d's row while given up: ended %d of its warehouse session(s) (try %d)",
                            s.index, self.parent_run, len(ended), attempt + 1)
        raise ShardError(f"could not write the fence of shard {s.index} (run {self.parent_run}'s row stays locked)")

    def loaded(self, s: ShardRun) -> int:
        """Reports the shard's run loaded (committed) before it was given up: kept, and said in the summary."""
        return int(self.db.scalar("SELECT count(*) FROM reports WHERE run_id IN (SELECT run_id FROM runs WHERE params LIKE ?)",
                                  [_flow_run_mark(str(s.flow_run_id))]) or 0)


def _wait(shards: list[ShardRun], pool: str, deadline_s: float, watch: ShardWatch | None = None) -> bool:
    """Until every shard ended, was given up (its worker and its own process silent) or the deadline passed; True when
    the parent was asked to stop."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled, Cancelling, Crashed

    from gongkai.stopping import stop_requested

    give_up_at = time.monotonic() + deadline_s
    with get_client(sync_client=True) as client:
        while True:
            waiting = [s for s in shards if s.lost is None and s.state not in _FINAL]
            if not waiting:
                return False
            stopping, late = stop_requested(), time.monotonic() > give_up_at
            workers = {w.name: w for w in client.read_workers_for_work_pool(pool)}
            now = datetime.now(UTC)
            if watch is not None:
                watch.look(waiting)
            for s in waiting:
                run = client.read_flow_run(s.flow_run_id)
                s.state = run.state_type.value if run.state_type else "SCHEDULED"
                s.message = run.state.message if run.state else None
                label = (run.labels or {}).get("prefect.worker.name")
                s.worker = str(label) if label else s.worker
                if s.state in _FINAL:
                    continue
                silent = _silent_for(workers.get(s.worker), now) if s.worker and s.state in ("RUNNING", "PENDING") else None
                # the worker's silence is only a hint: its flow run is a subprocess a killed worker leaves running
                quiet = watch.silent_for(s) if watch is not None and silent is not None else None
                if silent is not None and quiet is not None and quiet <= SHARD_STALE_S:
                    if not s.extra.get("orphaned"):
                        s.extra["orphaned"] = True
                        log.warning("shard %d: worker %s stopped sending heartbeats, the shard's own process still runs: "
                                    "waiting for it", s.index, s.worker)
                elif silent is not None:
                    s.lost = f"worker {s.worker} stopped sending heartbeats {silent:.0f} s ago" + (
                        f" and the shard's process {quiet:.0f} s ago" if quiet is not None else "") + (
                        " (killed or its machine is gone)")
                    if watch is not None:
                        watch.give_up(s)  # first the fence, then the mark
                        s.extra["loaded"] = watch.loaded(s)
                    client.set_flow_run_state(s.flow_run_id, Crashed(message=s.lost), force=True)
                elif stopping or late:
                    s.lost = "the run was stopped" if stopping else f"not finished within the deadline of {deadline_s:.0f} s"
                    # a worker kills the flow run's process on Cancelling; one that never started is simply cancelled
                    ending = Cancelled if s.state == "SCHEDULED" else Cancelling
                    if watch is not None and s.state != "SCHEDULED":  # a shard whose worker is gone stops itself
                        watch.give_up(s, "interrupted" if stopping else "crashed")
                        s.extra["loaded"] = watch.loaded(s)
                    client.set_flow_run_state(s.flow_run_id, ending(message=s.lost), force=True)
            if stopping:
                return True
            time.sleep(POLL_S)


_FINAL = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")


def _read_summaries(shards: list[ShardRun]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        for s in shards:
            if s.lost is not None:
                continue
            found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[SUMMARY_KEY])),
                                          flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[s.flow_run_id])))
            if found:
                data = found[0].data
                s.summary = json.loads(data) if isinstance(data, str) else data


def _mark_lost_rows(warehouse: Any, shards: list[ShardRun]) -> None:
    """The `runs` row of a shard that left no summary (its worker killed, its process crashed, cancelled), still
    'running' because its process never got to finish it, becomes 'crashed' (or 'interrupted' when stopped)."""
    from gongkai.warehouse.store import utcnow

    for s in shards:
        if s.summary is not None:
            continue
        status = "interrupted" if s.lost == "the run was stopped" or s.state == "CANCELLED" else "crashed"
        with warehouse.db.transaction():
            warehouse.db.execute("UPDATE runs SET status = ?, finished_at = ? WHERE status = 'running' AND params LIKE ?",
                                 [status, utcnow(), _flow_run_mark(str(s.flow_run_id))])


def _merge(kind: str, shards: list[ShardRun]) -> dict[str, Any]:
    """The shards' summaries as one run summary; a shard without one (lost, or it raised) fails its portals."""
    merged: dict[str, Any] = {"portals": {}, "documents": [], "rejected": [], "noise": {}, "hosts": {}, "counts": {},
                              "checks_failing": 0, "requests": 0}
    for s in shards:
        summary = s.summary
        if summary is None:
            why = s.lost or f"shard flow run ended {s.state}" + (f": {s.message}" if s.message else "")
            if s.extra.get("loaded"):
                why += f"; the {s.extra['loaded']} report(s) it had loaded are kept"
            for pid in s.portals:
                merged["portals"][pid] = {"status": "failed", "error": f"shard {s.index}: {why}", "pages": 0, "listed": 0,
                                          "listing_from_cache": False}
            continue
        merged["portals"] |= summary["portals"]
        merged["documents"] += summary["documents"]
        merged["rejected"] += summary.get("rejected") or []
        merged["noise"] |= summary.get("noise") or {}
        merged["hosts"] |= summary.get("hosts") or {}
        for outcome, n in summary["counts"].items():
            merged["counts"][outcome] = merged["counts"].get(outcome, 0) + n
        merged["checks_failing"] += summary["checks_failing"]
        merged["requests"] += summary["requests"]
        if summary.get("interrupted"):
            merged["interrupted"] = True
    merged["shards"] = [{"shard": s.index, "portals": len(s.portals), "flow_run": str(s.flow_run_id), "state": s.state,
                         "worker": s.worker, "run_id": (s.summary or {}).get("run_id"), "lost": s.lost,
                         "loaded_before_lost": s.extra.get("loaded", 0), "worker_lost": bool(s.extra.get("orphaned"))}
                        for s in shards]
    return merged


def _submit(deployment_id: Any, kind: str, parent_run: int, token: str, parts: list[list[str]],
            common: dict[str, Any], unfinished: set[str] | None = None) -> list[ShardRun]:
    """One flow run of the shard deployment per part, returned at once (the workers pick them up); `unfinished`: the
    portals each shard admits first (its part of them)."""
    from prefect.deployments import run_deployment

    runs = []
    for i, ids in enumerate(parts, 1):
        flow_run = run_deployment(
            deployment_id, timeout=0, flow_run_name=f"{kind}-run-{parent_run}-shard-{i}-of-{len(parts)}",
            parameters={"kind": kind, "portal_ids": ids, "shard": f"{i}/{len(parts)}", "parent_run": parent_run,
                        "token": token} | common
                       | ({"unfinished": [pid for pid in ids if pid in unfinished]} if unfinished is not None else {}),
        )
        runs.append(ShardRun(i, ids, flow_run.id))  # type: ignore[union-attr]  # called outside an event loop: a FlowRun
    return runs


def _ready(pool: str, settings: Settings) -> Any:
    """The pool, the deployment and a worker, or one line saying what is missing; the deployment's id."""
    url = settings.database_url
    if not url.startswith(("postgresql://", "postgres://")):
        raise ShardError(f"--shards needs a PostgreSQL warehouse that every worker reaches (GONGKAI_DB), not {url}")
    ensure_pool(pool)
    deployment_id = register_shard_deployment(pool)
    if not online_workers(pool):
        raise ShardError(f"no worker has joined work pool {pool}: start one per machine with `gongkai worker --pool {pool}`")
    return deployment_id


def run_sharded_reprocess(
    shards: int, *, all_documents: bool = False, older_than: str | None = None, settings: Settings | None = None,
    pool: str = DEFAULT_POOL, deadline_s: float | None = None,
) -> dict[str, Any]:
    """`gongkai reprocess --shards N`: the archive's documents split by digest into N flow runs on the workers; the
    summary as `reprocess` prints it, a lost shard counted as one failed document naming why."""
    from gongkai.flows.ingest import summary_of
    from gongkai.warehouse import IngestOutcome, open_warehouse, recorded_run

    settings = settings or load_settings()
    deployment_id = _ready(pool, settings)
    deadline = deadline_s if deadline_s is not None else 2 * settings.extract_timeout + 3600
    started, token = time.perf_counter(), uuid.uuid4().hex
    params = {"all": all_documents, "older_than": older_than, "shards": shards, "pool": pool, "token": token}
    with open_warehouse(settings.database_url) as warehouse:
        with recorded_run(warehouse, "reprocess", params) as run:
            runs = _submit(deployment_id, "reprocess", run.run_id, token, [[] for _ in range(shards)],
                           {"all_documents": all_documents, "older_than": older_than})
            stopped = _wait(runs, pool, deadline, ShardWatch(warehouse.db, run.run_id))
            _read_summaries(runs)
            _mark_lost_rows(warehouse, runs)
            documents: list[dict[str, Any]] = []
            for s in runs:
                if s.summary is None:
                    why = s.lost or f"shard flow run ended {s.state}" + (f": {s.message}" if s.message else "")
                    run.add(IngestOutcome("", "failed", f"shard {s.index}/{shards}", reason=why))
                    continue
                for outcome, n in s.summary["counts"].items():
                    run.counts[outcome] = run.counts.get(outcome, 0) + n
                run.checks_failing += s.summary["checks_failing"]
                documents += s.summary["documents"]
            run.interrupted = stopped
    summary = summary_of(run, time.perf_counter() - started)
    summary["documents"] += documents
    summary["shards"] = [{"shard": s.index, "flow_run": str(s.flow_run_id), "state": s.state, "worker": s.worker,
                          "run_id": (s.summary or {}).get("run_id"), "lost": s.lost} for s in runs]
    return summary


def run_sharded(
    kind: str,
    shards: int,
    *,
    years: list[int] | None = None,
    agencies: list[str] | None = None,
    registry_file: str | None = None,
    demo_port: int | None = None,
    politeness: dict[str, Any] | None = None,
    settings: Settings | None = None,
    pool: str = DEFAULT_POOL,
    deadline_s: float | None = None,
) -> dict[str, Any]:
    """The parent's body: split, submit, wait, sum; recorded in `runs` as one `crawl-<kind>` run whose shards are
    `crawl-<kind>-shard` runs. Returns the run summary (stored beside the warehouse like any crawl's)."""
    from gongkai.crawler.run_history import UNFINISHED, last_statuses, statuses_folder
    from gongkai.flows.crawl import FAILED_PORTAL, _opened_or_recorded, _store_summary, _summary_artifact
    from gongkai.flows.logs import run_logger
    from gongkai.warehouse import IngestOutcome, recorded_run

    settings = settings or load_settings()
    log = run_logger(__name__)
    url = settings.database_url
    portals = select(load_registry(Path(registry_file) if registry_file else settings.registry_file, demo_port=demo_port), agencies)
    groups = shard_portals(portals, shards)
    deployment_id = _ready(pool, settings)
    deadline = deadline_s if deadline_s is not None else 2 * settings.crawl_portal_deadline + 600
    started, started_at, token = time.perf_counter(), now_iso(), uuid.uuid4().hex
    params = {"portals": [p.id for p in portals], "years": years, "agencies": agencies, "shards": len(groups), "pool": pool,
              "token": token}
    log.info("%s crawl of %d portals in %d shards on work pool %s", kind, len(portals), len(groups), pool)
    with _opened_or_recorded(url, kind, started_at, settings.data_dir) as warehouse:
        # the order of each shard's portals from the parent's summaries, which name every portal of each run (a shard's
        # stays on whichever worker ran it: the next night's shard may run on another, or on a new one)
        previous = last_statuses(statuses_folder(settings.data_dir), [p.id for p in portals], warehouse=warehouse.url)
        with recorded_run(warehouse, f"crawl-{kind}", params) as run:
            runs = _submit(deployment_id, kind, run.run_id, token, [[p.id for p in group] for group in groups], {
                "years": years, "registry_file": registry_file, "demo_port": demo_port,
                "politeness": {k: v for k, v in (politeness or {}).items() if v is not None}},
                unfinished={pid for pid, status in previous.items() if status in UNFINISHED})
            stopped = _wait(runs, pool, deadline, ShardWatch(warehouse.db, run.run_id))
            _read_summaries(runs)
            _mark_lost_rows(warehouse, runs)
            summary = _merge(kind, runs)
            for outcome, n in summary["counts"].items():
                run.counts[outcome] = run.counts.get(outcome, 0) + n
            run.checks_failing = summary["checks_failing"]
            for pid, info in summary["portals"].items():
                if info["status"] in FAILED_PORTAL:
                    run.add(IngestOutcome("", "failed", pid, reason=f"portal {pid}: {info['error']}", portal=pid))
            run.interrupted = stopped or bool(summary.get("interrupted"))
        summary |= {"run_id": run.run_id, "kind": kind, "duration_s": round(time.perf_counter() - started, 3),
                    "warehouse": warehouse.url, "started_at": started_at, "finished_at": now_iso()}
        if run.interrupted:
            summary["interrupted"] = True
    _store_summary(summary, settings.data_dir)
    for s in runs:
        log.info("shard %d (%d portals): %s on %s%s", s.index, len(s.portals), s.state, s.worker or "no worker",
                 f" — {s.lost}" if s.lost else "")
    _summary_artifact(summary)
    return summary


def _sharded(
    kind: str,
    shards: int,
    years: list[int] | None = None,
    agencies: list[str] | None = None,
    registry_file: str | None = None,
    demo_port: int | None = None,
    politeness: dict[str, Any] | None = None,
    settings: Settings | None = None,
    pool: str = DEFAULT_POOL,
    deadline_s: float | None = None,
    all_documents: bool = False,
    older_than: str | None = None,
) -> Any:
    """The parent flow run: ends Failed naming what failed (a lost shard's portals too), Cancelled when stopped."""
    from gongkai.flows.crawl import final_state

    if kind == "reprocess":
        from prefect.states import Failed

        summary = run_sharded_reprocess(shards, all_documents=all_documents, older_than=older_than, settings=settings, pool=pool,
                                        deadline_s=deadline_s)
        failed = summary["counts"].get("failed", 0)
        return Failed(message=f"{failed} document(s) or shard(s) failed", data=summary) if failed else summary
    return final_state(run_sharded(kind, shards, years=years, agencies=agencies, registry_file=registry_file,
                                   demo_port=demo_port, politeness=politeness, settings=settings, pool=pool,
                                   deadline_s=deadline_s))


sharded_flow = prefect_flow(name="gongkai-sharded-crawl", validate_parameters=False)(_sharded)


def run_sharded_command(**parameters: Any) -> dict[str, Any]:
    """What the commands call: the parent flow on the configured Prefect server; its summary, whatever its end."""
    from gongkai.prefect_server import prefect_server_configured

    if not prefect_server_configured():
        raise ShardError("--shards needs a Prefect server with workers: set PREFECT_API_URL (see `gongkai worker --help`)")
    state = sharded_flow(**parameters, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    return dict(result)
