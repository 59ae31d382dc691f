"""The one path into gongkai: archive the bytes, extract, reconcile, load.

`ingest_bytes` is what the crawler calls for each downloaded file (no Prefect involved, so a crawler
task can call it directly); `ingest_flow` is the Prefect flow behind `gongkai ingest PATH...`.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from prefect import flow, task
from prefect.futures import PrefectFuture, as_completed

from gongkai.extractors.result import ExtractionResult
from gongkai.warehouse.archive import Archive, open_archive
from gongkai.warehouse.runs import RecordedRun, RunTally, recorded_run
from gongkai.warehouse.store import DocumentInfo, IngestOutcome, Warehouse, clean_name, name_key, open_warehouse

__all__ = [
    "IngestOutcome", "Warehouse", "Archive", "open_warehouse", "open_archive", "recorded_run", "RunTally",
    "ingest_bytes", "ingest_flow", "ingest_paths", "iter_files", "media_type_of", "extract_document",
]

# a stand-in for the extractor (tests): the typed result, or its JSON object
Extract = Callable[[bytes, str], "ExtractionResult | Mapping[str, Any]"]

MEDIA_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "html": "text/html",
    "text": "text/plain",
    "doc": "application/msword",
    "wps": "application/vnd.ms-works",
}
# Documents in flight at once in the flow: bounds memory however many files a folder holds.
WINDOW = 16


def extractor_version() -> str:
    from gongkai.extractors.version import EXTRACTOR_VERSION

    return EXTRACTOR_VERSION


def media_type_of(data: bytes, name: str) -> str:
    from gongkai.extractors.sniff import sniff_format

    try:
        return MEDIA_TYPES[sniff_format(data, name)]
    except ValueError:
        return "application/octet-stream"


def extract_document(data: bytes, name: str, extract: Extract | None = None) -> ExtractionResult:
    """The extraction result; an unreadable document becomes a result with status 'unreadable' and its reason."""
    from gongkai.extractors.model import UnreadableDocument

    if extract is None:
        from gongkai.extractors.extract import extract_result

        extract = extract_result
    try:
        result = extract(data, name)
    except UnreadableDocument as exc:
        return ExtractionResult.unreadable(str(exc) or type(exc).__name__)
    return result if isinstance(result, ExtractionResult) else ExtractionResult.from_json(result)


def ingest_bytes(
    data: bytes,
    *,
    name: str,
    url: str | None = None,
    agency: str | None = None,
    year: int | None = None,
    division_code: str | None = None,
    level: str | None = None,
    warehouse: Warehouse,
    archive: Archive,
    run_id: int | None = None,
    extract: Extract | None = None,
) -> IngestOutcome:
    """Archive, extract (unless this extractor version already did) and load one file.

    `agency`/`year`/`division_code`/`level` are what the caller knows (the crawler's registry, or
    `--agency/--year`); they override what the document says about itself. Never raises for bad
    input: an unreadable file is recorded with its reason, and an extractor crash or a load error is
    returned as outcome 'failed' (not recorded as extracted, so the next run tries again).
    """
    sha256 = archive.put(data)
    doc = DocumentInfo(sha256, len(data), media_type_of(data, name), name, url, agency, year, division_code, level)
    version = extractor_version()
    done = already_extracted(warehouse, doc, version)
    if done is not None:
        return done
    return extract_and_load(warehouse, doc, lambda: extract_document(data, name, extract), version, run_id)


def already_extracted(warehouse: Warehouse, doc: DocumentInfo, version: str) -> IngestOutcome | None:
    """The recorded outcome if this extractor version already loaded the document as the caller describes it
    (the document is then only touched); None when it must be loaded: never extracted by this version, or
    the caller now gives an agency or year other than the stored report's (e.g. `ingest --agency --year`)."""
    done = warehouse.extracted_with(doc.sha256, version, doc)
    if done is None:
        return None
    if (doc.agency is not None and name_key(doc.agency) != name_key(done.agency or "")) or (
        doc.year is not None and doc.year != done.year
    ):
        return None
    warehouse.touch_document(doc)
    return replace(done, name=doc.name)


def extract_and_load(
    warehouse: Warehouse, doc: DocumentInfo, result_of: Callable[[], Mapping[str, Any]], version: str, run_id: int | None
) -> IngestOutcome:
    """Load the extraction `result_of()` gives. One document's failure (an extractor bug, a value the database
    refuses) must not stop the others: it becomes outcome 'failed' with its reason, nothing recorded as
    extracted (so the next run tries again), the document only touched."""
    try:
        result = result_of()
    except Exception as exc:
        reason = f"extractor error: {type(exc).__name__}: {exc}"
        warehouse.touch_document(doc, reason, run_id)
        return IngestOutcome(doc.sha256, "failed", doc.name, reason=reason)
    try:
        return warehouse.load(doc, result, version, run_id)
    except Exception as exc:
        reason = f"load error: {type(exc).__name__}: {exc}"
        warehouse.touch_document(doc, reason, run_id)
        return IngestOutcome(doc.sha256, "failed", doc.name, reason=reason)


# The largest local file `ingest` reads: the crawler's cap per download unless set on its own.
DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024


def max_file_bytes() -> int:
    value = os.environ.get("GONGKAI_INGEST_MAX_BYTES") or os.environ.get("GONGKAI_CRAWL_MAX_BYTES")
    return int(value) if value else DEFAULT_MAX_FILE_BYTES


class Refused(NamedTuple):
    """A path `ingest` will not read, and the one-line reason (recorded as an unreadable outcome)."""

    path: Path
    reason: str

    @property
    def name(self) -> str:
        return self.path.name


def iter_files(paths: Iterable[str | Path], max_bytes: int | None = None) -> Iterator[Path | Refused]:
    """Files named, and files under folders named (recursively, sorted, hidden ones skipped), each a Path,
    or a Refused with its reason: a symlink under a folder that leads out of it (ingest must not copy
    /etc/passwd into the archive), anything but a regular file (a FIFO would block, /dev/zero never end),
    a file larger than `max_bytes` (default max_file_bytes()). Symlinked folders are not entered."""
    cap = max_file_bytes() if max_bytes is None else max_bytes
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            root = path.resolve()
            for folder, dirs, names in os.walk(path):  # followlinks=False: a symlinked folder is not entered
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
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

def _extraction_key(_context: Any, parameters: dict[str, Any]) -> str:
    """Extraction depends only on the bytes and the extractor: never extract an unchanged document twice."""
    return f"extract-{parameters['sha256']}-{extractor_version()}"


@task(
    name="extract",
    task_run_name="extract {name}",
    cache_key_fn=_extraction_key,
    persist_result=True,
    result_serializer="json",
    retries=0,  # extraction is deterministic: retrying a failure would fail the same way
)
def extract_task(sha256: str, name: str, archive_location: str) -> dict[str, Any]:
    pool = _extraction_pool()
    if pool is None:
        return _extract_archived(sha256, name, archive_location)
    try:
        return pool.submit(_extract_archived, sha256, name, archive_location).result()
    except BrokenProcessPool:  # a worker died (e.g. a reader crashed the interpreter): a fresh pool for the rest
        _discard_pool(pool)
        raise


def _extract_archived(sha256: str, name: str, archive_location: str) -> dict[str, Any]:
    return extract_document(open_archive(archive_location).get(sha256), name).as_json()


_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def extract_processes() -> int:
    """Worker processes for extraction: GONGKAI_EXTRACT_PROCESSES (shared with the crawler), default the CPU count."""
    return int(os.environ.get("GONGKAI_EXTRACT_PROCESSES", str(os.cpu_count() or 1)))


def _extraction_pool() -> ProcessPoolExecutor | None:
    """Extraction is CPU-bound pure Python: Prefect tasks run in threads (cheap), each hands its document to
    a process of this pool (parallel). Spawned, not forked: the flow's process runs threads. None: in-thread."""
    global _pool
    if extract_processes() <= 1:
        return None
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(extract_processes(), mp_context=multiprocessing.get_context("spawn"))
            atexit.register(_pool.shutdown, cancel_futures=True)
        return _pool


def _discard_pool(broken: ProcessPoolExecutor) -> None:
    global _pool
    with _pool_lock:
        if _pool is broken:
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)


@contextmanager
def results_in(results_dir: str | None) -> Iterator[None]:
    """Persist task results (the extraction cache) in `results_dir` (default: gongkai.settings).

    A setting rather than a result_storage block (Prefect wants blocks saved server-side first); it must
    be in force when the flow run starts, which builds its result store then: wrap the flow call in it.
    """
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    from gongkai.settings import prefect_results_dir

    with temporary_settings(updates={PREFECT_RESULTS_LOCAL_STORAGE_PATH: str(results_dir or prefect_results_dir())}):
        yield


# Progress listener for the command line (a callable cannot be a flow parameter).
_progress: Callable[[IngestOutcome], None] | None = None


def set_progress(listener: Callable[[IngestOutcome], None] | None) -> None:
    global _progress
    _progress = listener


def _report(tally: RunTally, outcome: IngestOutcome) -> None:
    tally.add(outcome)
    if _progress is not None:
        _progress(outcome)


def task_runner() -> Any:
    """Enough threads to keep every extraction process busy while the flow's thread loads results.

    (Prefect's ProcessPoolTaskRunner was measured slower here: its per-task cost in a subprocess is larger
    than an extraction.)"""
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=max(2, 2 * extract_processes()))


@flow(name="ingest", log_prints=False, validate_parameters=False, task_runner=task_runner())
def ingest_flow(
    paths: list[str],
    agency: str | None = None,
    year: int | None = None,
    db_url: str | None = None,
    archive_location: str | None = None,
) -> dict[str, Any]:
    """Ingest files and folders; returns the run's summary (counts and each file's outcome)."""
    files = list(iter_files(paths))
    archive = open_archive(archive_location)
    params = {"paths": paths, "agency": agency, "year": year, "files": len(files)}
    started = time.perf_counter()
    with open_warehouse(db_url) as warehouse, recorded_run(warehouse, "ingest", params) as run:
        _ingest_files(files, agency, year, warehouse, archive, run, extract_task)
    return summary_of(run, time.perf_counter() - started)


def ingest_paths(
    paths: list[str], agency: str | None = None, year: int | None = None, db_url: str | None = None,
    archive_location: str | None = None, results_dir: str | None = None,
) -> dict[str, Any]:
    """Run ingest_flow with its extraction cache in `results_dir` (default: gongkai.settings)."""
    with results_in(results_dir):
        return ingest_flow(paths, agency, year, db_url, archive_location)


def _ingest_files(
    files: list[Path | Refused], agency: str | None, year: int | None, warehouse: Warehouse, archive: Archive, run: RecordedRun,
    extract: Any,
) -> None:
    version = extractor_version()
    pending: dict[PrefectFuture[dict[str, Any]], DocumentInfo] = {}
    for path in files:
        if isinstance(path, Refused):
            _report(run, IngestOutcome("", "unreadable", clean_name(str(path.path)), reason=clean_name(path.reason, None)))
            continue
        data = path.read_bytes()
        sha256 = archive.put(data)
        doc = DocumentInfo(sha256, len(data), media_type_of(data, path.name), path.name, None, agency, year)
        done = already_extracted(warehouse, doc, version)
        if done is not None:
            _report(run, done)
            continue
        pending[extract.submit(sha256, doc.name or path.name, archive.location)] = doc  # a name fit to log (no surrogates)
        load_finished(pending, WINDOW, warehouse, run)
    load_finished(pending, 0, warehouse, run)


def load_finished(
    pending: dict[PrefectFuture[dict[str, Any]], DocumentInfo], limit: int, warehouse: Warehouse, run: RecordedRun
) -> None:
    """Load extractions as they finish until at most `limit` are in flight (loads are serial: one writer)."""
    version = extractor_version()
    while len(pending) > limit:
        future = next(as_completed(list(pending)))
        doc = pending.pop(future)
        _report(run, extract_and_load(warehouse, doc, future.result, version, run.run_id))


def summary_of(run: RunTally, duration_s: float) -> dict[str, Any]:
    return {
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

