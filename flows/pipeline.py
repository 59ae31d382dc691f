"""The one ingest path: bytes → archive → extract → load. No Prefect here: the flows wrap it.

1. archive: the bytes are stored under their sha256 first (hashed once, here), whatever extraction does;
2. the format is sniffed once, for the document's media type and the extractor alike;
3. the warehouse is asked once whether this extractor version already loaded the file;
4. extract once per (sha256, extractor version): a result cached on disk is reused, else one process of
   the one bounded pool (`extraction_pool`) extracts it, with a timeout;
5. load, one writer at a time (a lock: the crawler's threads and the ingest flow's tasks share a connection).

`gongkai ingest`, `gongkai reprocess` and the crawler all go through `Pipeline`; failures never raise:
an extractor crash, a timeout or a load error is an outcome 'failed' with its reason (nothing recorded
as extracted, so the next run tries again).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import multiprocessing
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gongkai.crawler.policy import unbatched
from gongkai.extractors.result import ExtractionResult
from gongkai.flows.logs import run_logger
from gongkai.warehouse.archive import Archive, sha256_of
from gongkai.warehouse.runs import RunTally
from gongkai.warehouse.store import DocumentInfo, IngestOutcome, Warehouse, name_key

if TYPE_CHECKING:
    from gongkai.extractors.ocr import Limits as OcrLimits

log = logging.getLogger(__name__)

# a stand-in for the extractor (tests): the typed result, or its JSON object; it runs in the calling thread
Extract = Callable[[bytes, str], "ExtractionResult | Mapping[str, Any]"]

MEDIA_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "html": "text/html",
    "text": "text/plain",
    "doc": "application/msword",
    "wps": "application/vnd.ms-works",
    "odt": "application/vnd.oasis.opendocument.text",
    "rtf": "application/rtf",
}
UNKNOWN_MEDIA_TYPE = "application/octet-stream"
DEFAULT_TIMEOUT_S = 600.0


def extractor_version() -> str:
    from gongkai.extractors.version import EXTRACTOR_VERSION

    return EXTRACTOR_VERSION


def sniff(data: bytes, name: str) -> str | None:
    """The document's format (extractors.sniff), or None for bytes no reader takes (the extractor says why)."""
    from gongkai.extractors.sniff import sniff_format

    try:
        return sniff_format(data, name)
    except ValueError:
        return None


def media_type_of(data: bytes, name: str) -> str:
    fmt = sniff(data, name)
    return MEDIA_TYPES.get(fmt or "", UNKNOWN_MEDIA_TYPE)


def extract_document(
    data: bytes, name: str, extract: Extract | None = None, *, sha256: str | None = None, fmt: str | None = None,
    ocr_limits: OcrLimits | None = None, pictures: Mapping[str, bytes] | None = None,
) -> ExtractionResult:
    """The extraction result; an unreadable document becomes a result with status 'unreadable' and its reason.
    `ocr_limits`: the settings' OCR bounds, handed down (a worker process reads no environment for them);
    `pictures`: an HTML page's linked pictures, by `src` as written in the page."""
    from gongkai.extractors.model import UnreadableDocument

    try:
        if extract is None:
            from gongkai.extractors.extract import extract_result

            return extract_result(data, name, sha256=sha256, fmt=fmt, ocr_limits=ocr_limits, pictures=pictures)
        result = extract(data, name)
    except UnreadableDocument as exc:
        return ExtractionResult.unreadable(str(exc) or type(exc).__name__)
    return result if isinstance(result, ExtractionResult) else ExtractionResult.from_json(result)


BLANK_TEMPLATE = "not a report: a blank template (the standard tables, every cell empty)"


def blank_template_is_not_a_report(result: ExtractionResult) -> ExtractionResult:
    """The national template itself (its tables read, every cell empty) is what `gongkai extract` says it is, but
    it is no agency's report: loaded as one it would be an extracted report of no agency. A report that printed
    its figures has at least one cell with a number (a 0 included). Its empty cells are kept as read (what `extract`
    gives is what is stored); it is only no longer a report of anyone."""
    from gongkai.extractors.result import NOT_A_REPORT

    if not result.cells or any(value is not None for value in result.cells.values()):
        return result
    return replace(result, status=NOT_A_REPORT, agency=None, year=None, warnings=[*result.warnings, BLANK_TEMPLATE],
                   reason=BLANK_TEMPLATE)


class ExtractionTimeout(Exception):
    pass


class ExtractionStopped(Exception):
    pass


class ExtractionPool:
    """Extraction is pure CPU: worker processes, outside the writer lock. `processes` ≤ 1: in the calling thread
    (no timeout is possible there). Spawned, not forked: the calling process runs threads (Prefect, HTTP).

    A worker past the timeout is killed with its pool (a pathological file must not keep a core for ever); the
    other documents then in flight are tried once more in a fresh pool.
    """

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self.executors_started = 0  # how many pools this object had to start (1 unless workers were killed)

    def extract(
        self, data: bytes, name: str, *, sha256: str, fmt: str | None, timeout_s: float, ocr_limits: OcrLimits | None = None,
        pictures: Mapping[str, bytes] | None = None,
    ) -> ExtractionResult:
        if self.processes <= 1:
            return extract_document(data, name, sha256=sha256, fmt=fmt, ocr_limits=ocr_limits, pictures=pictures)
        for attempt in (1, 2):
            executor = self._current()
            try:
                # a worker started by this submit begins life deaf to the terminal's Ctrl-C, and under the process's
                # scheduling policy, not a crawl's (it outlives the crawl whose ingest thread may be starting it)
                with _interrupts_blocked(), unbatched():
                    future = executor.submit(extract_document, data, name, sha256=sha256, fmt=fmt, ocr_limits=ocr_limits,
                                             pictures=pictures)
                return future.result(timeout=timeout_s)
            except FutureTimeout:
                self._discard(executor, kill=True)
                raise ExtractionTimeout(f"extraction took more than {timeout_s:g} s") from None
            except BrokenProcessPool:  # a worker died (killed, out of memory, a reader crashed the interpreter)
                self._discard(executor)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _current(self) -> ProcessPoolExecutor:
        from gongkai.stopping import stop_requested

        with self._lock:
            if self._executor is None:
                if stop_requested():  # the command is stopping: no new workers (their start would outlive it)
                    raise ExtractionStopped("the command is stopping: not extracted, the next run does it")
                self._executor = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                                     initializer=_start_worker, initargs=(os.getpid(),))
                self.executors_started += 1
            return self._executor

    def _discard(self, executor: ProcessPoolExecutor, kill: bool = False) -> None:
        with self._lock:
            if self._executor is executor:
                self._executor = None
        if kill:
            # ProcessPoolExecutor cannot cancel a running call: end its workers (a private map, the only handle)
            for process in list(getattr(executor, "_processes", {}).values()):
                process.terminate()
        executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(cancel_futures=True)


@contextmanager
def _interrupts_blocked() -> Iterator[None]:
    """SIGINT blocked in this thread while it may start a worker: a spawned process inherits the mask, so a Ctrl-C
    that arrives while the worker is still importing stays pending until `_ignore_interrupts` discards it. (Python
    runs signal handlers in the main thread anyway: blocking here changes nothing for the command.)"""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _ignore_interrupts() -> None:
    """In each extraction worker: a terminal's Ctrl-C reaches the whole process group, workers included. The
    command decides how to stop (gongkai/stopping.py); a worker printing its own KeyboardInterrupt traceback and
    breaking the pool is what an operator must not see. SIGTERM still ends a worker (the reaper sends it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # one that arrived while starting is dropped


def _start_worker(parent: int) -> None:
    """`parent` is the command's pid, given by the command: a worker asking getppid() here, while it starts, would
    take its new parent (init) for the command when the command ended before the worker got this far, and wait on
    init for good."""
    _ignore_interrupts()
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True, name="gongkai-parent-watch").start()


def _exit_with_parent(parent: int) -> None:
    """A worker never outlives its command: after a second Ctrl-C or a kill -9 the command ends at once, and the
    reaper (gongkai/reaper.py), which notes workers every half second, can miss one started in between or not be
    running at all (a library caller). Re-parented, the worker ends itself."""
    while os.getppid() == parent:
        threading.Event().wait(PARENT_POLL_S)
    os._exit(1)


PARENT_POLL_S = 0.5
_pools: dict[int, ExtractionPool] = {}
_pools_lock = threading.Lock()


def stop_pools() -> None:
    """After a requested stop: end the extraction workers now (an abandoned extraction is redone next run)."""
    with _pools_lock:
        pools = list(_pools.values())
    for pool in pools:
        with pool._lock:
            executor, pool._executor = pool._executor, None
        if executor is not None:
            pool._discard(executor, kill=True)


def extraction_pool(processes: int) -> ExtractionPool:
    """The process's one extraction pool (of this size), shared by every ingest, reprocess and crawl it runs;
    its workers start on first use and stop when the process exits."""
    with _pools_lock:
        pool = _pools.get(processes)
        if pool is None:
            pool = _pools[processes] = ExtractionPool(processes)
            atexit.register(pool.close)
        return pool


class ExtractionCache:
    """Extraction results on disk, keyed on (sha256, extractor version): a fresh warehouse, or a re-run after a
    crash, reuses them. One JSON file per result ({"result": "<the extract JSON>"}), written atomically."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _path(self, sha256: str, version: str) -> Path:
        return self.folder / f"extract-{sha256}-{version}"

    def get(self, sha256: str, version: str) -> ExtractionResult | None:
        try:
            record = json.loads(self._path(sha256, version).read_text("utf-8"))
            return ExtractionResult.from_json(json.loads(record["result"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # a damaged entry: extract again
            log.warning("extraction cache entry %s unreadable (%s): extracting again", self._path(sha256, version), exc)
            return None

    def put(self, sha256: str, version: str, result: ExtractionResult) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"result": json.dumps(result.as_json(), ensure_ascii=False)}, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".incoming-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(tmp, self._path(sha256, version))
        except BaseException:
            os.unlink(tmp)
            raise


class Pipeline:
    """archive → extract → load for one run; thread-safe (many callers, one warehouse writer at a time)."""

    def __init__(
        self,
        warehouse: Warehouse,
        archive: Archive,
        *,
        pool: ExtractionPool | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        cache: ExtractionCache | None = None,
        run: RunTally | None = None,
        run_id: int | None = None,
        extract: Extract | None = None,
        listener: Callable[[IngestOutcome], None] | None = None,
        ocr_limits: OcrLimits | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.archive = archive
        self.pool = pool or ExtractionPool(0)
        self.timeout_s = timeout_s
        self.cache = cache
        self.run = run
        self.run_id = run_id if run_id is not None else getattr(run, "run_id", None)
        self.extract_override = extract
        self.listener = listener
        self.ocr_limits = ocr_limits  # the settings' OCR bounds, handed to each extraction
        self.version = extractor_version()
        self.lock = threading.Lock()  # one warehouse connection: one writer at a time

    def ingest(
        self,
        data: bytes,
        *,
        name: str,
        url: str | None = None,
        agency: str | None = None,
        year: int | None = None,
        division_code: str | None = None,
        level: str | None = None,
        pictures: Mapping[str, bytes | None] | None = None,
        archived: str | None = None,
    ) -> IngestOutcome:
        """Archive, extract (unless this extractor version already did) and load one file.

        `agency`/`year`/`division_code`/`level` are what the caller knows (the crawler's registry, or
        `--agency/--year`); they override what the document says about itself. `pictures`: an HTML page's linked
        pictures the crawler fetched, by `src` as written in the page (None: fetched and skipped as an icon); each
        is archived and the page → picture link recorded, so reprocess reads them again. `archived`: the digest of
        `data`, which the caller read back from this archive (checked against it): not stored again (a crawler
        process stored it, crawler/processes.py)."""
        sha256 = archived or self.archive.put(data)  # first: the bytes are kept whatever extraction does
        linked = self._archive_pictures(sha256, pictures or {}, stored=archived is not None)
        fmt = sniff(data, name)
        doc = DocumentInfo(sha256, len(data), MEDIA_TYPES.get(fmt or "", UNKNOWN_MEDIA_TYPE), name, url, agency, year,
                           division_code, level)
        with self.lock:
            done = already_extracted(self.warehouse, doc, self.version)
        if done is not None:
            return self.record(done)
        return self._extract_and_load(doc, data, fmt, pictures=linked)

    def _archive_pictures(self, page_sha256: str, pictures: Mapping[str, bytes | None], *,
                          stored: bool = False) -> dict[str, bytes]:
        """Archive a page's linked pictures and record which page links them (src as written → digest).
        `stored`: the page and its pictures were read back from this archive (the crawler stored them where it
        fetched them), so each picture is only hashed, not put a second time (on S3: a HEAD each)."""
        if not pictures:
            return {}
        keep = sha256_of if stored else self.archive.put
        digests = {src: (keep(data) if data else None) for src, data in pictures.items()}
        with self.lock:
            self.warehouse.record_page_pictures(page_sha256, digests)
        return {src: data or b"" for src, data in pictures.items()}

    def _archived_pictures(self, page_sha256: str) -> dict[str, bytes]:
        """The linked pictures recorded for a page, from the archive (OSError: the archive cannot give them)."""
        with self.lock:
            recorded = self.warehouse.page_pictures(page_sha256)
        return {src: (self.archive.get(digest) if digest else b"") for src, digest in recorded.items()}

    def reprocess(self, doc: DocumentInfo, *, refresh: bool = False) -> IngestOutcome:
        """Re-extract an archived document as its caller described it; `refresh`: ignore the cached result."""
        try:  # an object store that cannot be reached is this document's failure too (ArchiveUnavailable: an OSError)
            if doc.sha256 not in self.archive:
                return self.record(IngestOutcome(doc.sha256, "failed", doc.name, reason="not in the archive"))
            data = self.archive.get(doc.sha256)
            pictures = self._archived_pictures(doc.sha256)  # a page's linked pictures, as the crawl fetched them
        except OSError as exc:
            return self.record(IngestOutcome(doc.sha256, "failed", doc.name, reason=f"archive error: {exc}"))
        return self._extract_and_load(doc, data, sniff(data, doc.name or ""), refresh=refresh, pictures=pictures)

    def _extract_and_load(self, doc: DocumentInfo, data: bytes, fmt: str | None, refresh: bool = False,
                          pictures: Mapping[str, bytes] | None = None) -> IngestOutcome:
        try:
            result = self._extraction(doc, data, fmt, refresh, pictures or {})
        except Exception as exc:
            reason = f"extractor error: {type(exc).__name__}: {exc}"
            log.warning("%s: %s", doc.name or doc.sha256, reason)
            with self.lock:
                self.warehouse.touch_document(doc, reason, self.run_id)
            return self.record(IngestOutcome(doc.sha256, "failed", doc.name, reason=reason))
        result = blank_template_is_not_a_report(result)
        with self.lock:
            try:
                outcome = self.warehouse.load(doc, result, self.version, self.run_id)
            except Exception as exc:  # a value the database refuses: this document fails, the others load
                reason = f"load error: {type(exc).__name__}: {exc}"
                self.warehouse.touch_document(doc, reason, self.run_id)
                outcome = IngestOutcome(doc.sha256, "failed", doc.name, reason=reason)
        return self.record(outcome)

    def _extraction(self, doc: DocumentInfo, data: bytes, fmt: str | None, refresh: bool,
                    pictures: Mapping[str, bytes]) -> ExtractionResult:
        name = doc.name or ""
        if self.extract_override is not None:
            return extract_document(data, name, self.extract_override)
        # the name as stored (no surrogates of an undecodable file name) is the one the extractor sees
        key = cache_key(doc.sha256, pictures)
        if self.cache is not None and not refresh:
            cached = self.cache.get(key, self.version)
            if cached is not None:
                return cached
        result = self.pool.extract(data, name, sha256=doc.sha256, fmt=fmt, timeout_s=self.timeout_s, ocr_limits=self.ocr_limits,
                                   pictures=pictures or None)
        if self.cache is not None:
            self.cache.put(key, self.version, result)
        return result

    def record(self, outcome: IngestOutcome) -> IngestOutcome:
        """Count an outcome in the run and tell the listener (every outcome of the run passes here)."""
        run_logger(__name__).info("%s: %s%s", outcome.name or outcome.sha256, outcome.outcome,
                                  f" ({outcome.reason})" if outcome.reason else "")
        if self.run is not None:
            with self.lock:
                self.run.add(outcome)
        if self.listener is not None:
            self.listener(outcome)
        return outcome


def cache_key(sha256: str, pictures: Mapping[str, bytes]) -> str:
    """A page read with its linked pictures is another extraction than the page alone: its cache key says which."""
    if not pictures:
        return sha256
    linked = hashlib.sha256()
    for src in sorted(pictures):
        linked.update(f"{src}\0{hashlib.sha256(pictures[src]).hexdigest()}\0".encode("utf-8", "surrogatepass"))
    return f"{sha256}-{linked.hexdigest()[:16]}"


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
