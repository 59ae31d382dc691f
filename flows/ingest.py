"""`gongkai ingest PATH...` on Prefect: each file through the one ingest path (flows.pipeline.Pipeline).

`ingest_bytes` is that path for one file without Prefect (tests, benchmarks); `ingest_flow` is the flow
behind the command: a task per file, a bounded window of files in flight, the run recorded in `runs`.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any, NamedTuple

from gongkai.flows.logs import run_logger
from gongkai.flows.pipeline import (
    MEDIA_TYPES,
    Extract,
    ExtractionCache,
    Pipeline,
    already_extracted,
    extract_document,
    extraction_pool,
    extractor_version,
    media_type_of,
)
from gongkai.flows.plain import prefect_flow, prefect_task, run_flow, submit_task
from gongkai.logs import now_iso
from gongkai.settings import Settings, load_settings
from gongkai.stopping import GRACE_S, stop_requested
from gongkai.warehouse.archive import Archive, is_remote, open_archive
from gongkai.warehouse.runs import RecordedRun, RunTally, recorded_run
from gongkai.warehouse.store import IngestOutcome, Warehouse, clean_name, open_warehouse

__all__ = [
    "IngestOutcome", "Warehouse", "Archive", "open_warehouse", "open_archive", "recorded_run", "RunTally", "MEDIA_TYPES",
    "ingest_bytes", "ingest_flow", "ingest_paths", "iter_files", "own_paths", "media_type_of", "extract_document", "already_extracted",
    "extractor_version",
]

# Files in flight at once in the flow: bounds memory however many files a folder holds.
WINDOW = 16


def ingest_bytes(
    data: bytes, *, warehouse: Warehouse, archive: Archive, run_id: int | None = None, extract: Extract | None = None,
    **source: Any,
) -> IngestOutcome:
    """One file through the ingest path, extracted in this thread: `source` is Pipeline.ingest's name, url, agency,
    year, division_code and level. Never raises for bad input: an unreadable file is recorded with its reason, an
    extractor crash or a load error is returned as outcome 'failed'."""
    return Pipeline(warehouse, archive, run_id=run_id, extract=extract).ingest(data, **source)


# The largest local file `ingest` reads: the crawler's cap per download unless set on its own.
DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024


class Refused(NamedTuple):
    """A path `ingest` will not read, and the one-line reason (recorded as an unreadable outcome)."""

    path: Path
    reason: str

    @property
    def name(self) -> str:
        return self.path.name


def own_paths(settings: Settings, db_url: str | None = None, archive_location: str | None = None,
              results_dir: str | None = None) -> frozenset[Path]:
    """What gongkai itself writes (the data folder, the archive, the extraction cache, a DuckDB file): `ingest .`
    run where they live must not archive its own warehouse and caches."""
    url = db_url or settings.database_url
    archive = archive_location or settings.archive_location
    own = {settings.data_dir, Path(results_dir or settings.results_dir)} | (set() if is_remote(archive) else {Path(archive)})
    if url.startswith("duckdb:///"):
        database = Path(url.removeprefix("duckdb:///"))
        own |= {database, database.with_name(database.name + ".wal")}
    return frozenset(p.resolve() for p in own)


def iter_files(paths: Iterable[str | Path], max_bytes: int | None = None, skip: Iterable[Path] = ()) -> Iterator[Path | Refused]:
    """Files named, and files under folders named (recursively, sorted, hidden ones skipped), each a Path,
    or a Refused with its reason: a symlink under a folder that leads out of it (ingest must not copy
    /etc/passwd into the archive), anything but a regular file (a FIFO would block, /dev/zero never end),
    a file larger than `max_bytes` (the settings' max_file_bytes; default 50 MB). Symlinked folders are not entered;
    folders and files in `skip` (own_paths: gongkai's own data) are passed over when met inside a folder named."""
    cap = DEFAULT_MAX_FILE_BYTES if max_bytes is None else max_bytes
    skipped = frozenset(skip)
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            root = path.resolve()
            for folder, dirs, names in os.walk(path):  # followlinks=False: a symlinked folder is not entered
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (Path(folder) / d).resolve() not in skipped)
                names = [n for n in names if not skipped or (Path(folder) / n).resolve() not in skipped]
                for name in dirs:
                    if (Path(folder) / name).is_symlink():
                        yield Refused(Path(folder) / name, "refused: a symlinked folder (not followed)")
                for name in sorted(names):
                    if not name.startswith("."):
                        yield _checked(Path(folder) / name, root, cap)
        elif path.exists() or path.is_symlink():
            yield _checked(path, None, cap)  # named by the user: followed, but still only a regular file, capped
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")


def _checked(path: Path, root: Path | None, cap: int) -> Path | Refused:
    try:
        if root is not None and path.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(root):
                return Refused(path, f"refused: a symlink leading out of the folder ingested (to {target})")
        info = path.stat()
    except (OSError, RuntimeError) as exc:  # a dangling link, a loop, no permission
        return Refused(path, f"unreadable: {type(exc).__name__}: {exc.strerror if isinstance(exc, OSError) else exc}")
    if not stat.S_ISREG(info.st_mode):
        return Refused(path, "refused: not a regular file")
    if info.st_size > cap:
        return Refused(path, f"refused: {info.st_size} bytes, more than the {cap}-byte cap (GONGKAI_INGEST_MAX_BYTES)")
    return path


# --- the Prefect flow ------------------------------------------------------------------------------

@prefect_task(name="ingest file", task_run_name="ingest {path.name}", cache_policy="none", retries=0)
def ingest_file_task(pipeline: Pipeline, path: Path | Refused, agency: str | None, year: int | None) -> IngestOutcome:
    # extraction is deterministic: retrying a failure would fail the same way; it is retried next run
    if isinstance(path, Refused):  # never read: recorded with its reason
        return pipeline.record(IngestOutcome("", "unreadable", clean_name(str(path.path)), reason=clean_name(path.reason, None)))
    return pipeline.ingest(path.read_bytes(), name=path.name, agency=agency, year=year)


# Progress listener for the command line (a callable cannot be a flow parameter).
_progress: Callable[[IngestOutcome], None] | None = None


def set_progress(listener: Callable[[IngestOutcome], None] | None) -> None:
    global _progress
    _progress = listener


def _notify(outcome: IngestOutcome) -> None:
    if _progress is not None:
        _progress(outcome)


# Threads of the flows' task runner; how many files are in flight is bounded by `window_for` (2 per extraction
# process: one extracting while the other waits for the writer).
MAX_THREADS = 32


def task_runner() -> Any:
    """(Prefect's ProcessPoolTaskRunner was measured slower here: its per-task cost in a subprocess is larger than
    an extraction.) Threads suffice: each task hands its document to a process of the one extraction pool."""
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=MAX_THREADS)


def window_for(settings: Settings) -> int:
    return min(WINDOW, max(2, 2 * settings.extract_processes))


def open_pipeline(warehouse: Warehouse, archive: Archive, run: RecordedRun, settings: Settings, results_dir: str | None) -> Pipeline:
    """The pipeline of one flow run: the process's one extraction pool, the extraction cache in `results_dir`."""
    return Pipeline(
        warehouse, archive, pool=extraction_pool(settings.extract_processes), timeout_s=settings.extract_timeout,
        ocr_limits=settings.ocr_limits(),
        cache=ExtractionCache(results_dir or settings.results_dir), run=run, listener=_notify,
    )


def run_in_window(submit: Callable[[Any], Any], items: Iterable[Any], window: int = WINDOW) -> bool:
    """Submit a task per item with at most `window` in flight; wait for all (outcomes go to the run tally).
    A task that raised (not a document's failure: those are outcomes) stops the flow, as it should.
    Returns False, or True when a stop was requested (gongkai/stopping.py): nothing more is submitted, what is in
    flight gets GRACE_S to finish (each load is one transaction), the rest is left to the next run."""
    pending: set[Any] = set()
    finished: SimpleQueue[Any] = SimpleQueue()

    def collect(block_until: float | None) -> None:
        """Take one finished task (or none once `block_until`, a monotonic time, has passed)."""
        while True:
            try:
                done = finished.get(timeout=0.2)
            except Empty:
                if stop_requested() and block_until is None:
                    return
                if block_until is not None and time.monotonic() > block_until:
                    return
                continue
            pending.discard(done)
            done.result()
            return

    for item in items:
        if stop_requested():
            break
        future = submit(item)
        pending.add(future)
        future.add_done_callback(finished.put)
        while len(pending) >= window and not stop_requested():
            collect(None)
    while pending and not stop_requested():
        collect(None)
    if not stop_requested():
        return False
    grace_ends = time.monotonic() + GRACE_S
    while pending and time.monotonic() < grace_ends:
        collect(grace_ends)
    return True


@prefect_flow(name="ingest", log_prints=False, validate_parameters=False, task_runner=task_runner)
def ingest_flow(
    paths: list[str],
    agency: str | None = None,
    year: int | None = None,
    db_url: str | None = None,
    archive_location: str | None = None,
    results_dir: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Ingest files and folders; returns the run's summary (counts and each file's outcome). Arguments left out
    come from `settings` (read from the environment, once, when not given)."""
    settings = settings or load_settings()
    files = list(iter_files(paths, settings.max_file_bytes, own_paths(settings, db_url, archive_location, results_dir)))
    archive = open_archive(archive_location or settings.archive_location)
    params = {"paths": paths, "agency": agency, "year": year, "files": len(files)}
    started = time.perf_counter()
    with open_warehouse(db_url or settings.database_url) as warehouse, recorded_run(warehouse, "ingest", params) as run:
        pipeline = open_pipeline(warehouse, archive, run, settings, results_dir)
        run.interrupted = run_in_window(lambda path: submit_task(ingest_file_task, pipeline, path, agency, year), files,  # type: ignore[call-overload]
                                        window_for(settings))
    summary = summary_of(run, time.perf_counter() - started)
    run_logger(__name__).info("ingest run %s: %d files, %s", run.run_id, len(files), {k: v for k, v in run.counts.items() if v})
    return summary


def ingest_paths(
    paths: list[str], agency: str | None = None, year: int | None = None, db_url: str | None = None,
    archive_location: str | None = None, results_dir: str | None = None, settings: Settings | None = None,
) -> dict[str, Any]:
    """Run ingest_flow with its extraction cache in `results_dir` (default: the settings'): on Prefect when a server is
    configured, else its function with plain tasks (flows/plain.py)."""
    return run_flow(ingest_flow, MAX_THREADS, paths=paths, agency=agency, year=year, db_url=db_url,  # type: ignore[no-any-return]
                    archive_location=archive_location, results_dir=results_dir, settings=settings)


def summary_of(run: RunTally, duration_s: float) -> dict[str, Any]:
    return {
        "finished_at": now_iso(),
        "counts": dict(run.counts),
        "checks_failing": run.checks_failing,
        "duration_s": round(duration_s, 3),
        "run_id": getattr(run, "run_id", None),
        "documents": [
            {
                "name": o.name, "sha256": o.sha256, "outcome": o.outcome, "agency": o.agency, "year": o.year,
                "report_id": o.report_id, "version": o.version, "revision": o.revision, "reason": o.reason,
                "failing_checks": o.failing_checks, "cells_changed": o.cells_changed,
            }
            for o in run.outcomes
        ],
    }
