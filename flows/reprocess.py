"""Re-extract archived documents with the current extractors (no network): `gongkai reprocess`.

A document whose re-extraction changes what is stored gets a new extraction record (a new revision of
its report); one whose result is identical is only marked as processed by the current version.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture

from gongkai.flows.ingest import (
    WINDOW,
    _report,
    extract_task,
    extractor_version,
    load_finished,
    results_in,
    summary_of,
    task_runner,
)
from gongkai.warehouse.archive import Archive, open_archive
from gongkai.warehouse.runs import RecordedRun, recorded_run
from gongkai.warehouse.store import DocumentInfo, IngestOutcome, Warehouse, open_warehouse


def version_tuple(version: str) -> tuple[int, ...]:
    """'0.10.2' → (0, 10, 2), so that versions compare as numbers; a non-numeric part counts as 0."""
    return tuple(int(part) if part.isdigit() else 0 for part in version.strip().split("."))


def select_documents(
    warehouse: Warehouse, *, all_documents: bool = False, older_than: str | None = None
) -> list[DocumentInfo]:
    """Documents to re-extract: all of them, or those whose newest extraction is older than `older_than`
    (default: the current extractor version). A document never extracted (its extractor crashed) is always due."""
    threshold = version_tuple(older_than or extractor_version())
    chosen = []
    for doc, versions in warehouse.archived_documents():
        newest = max((version_tuple(v) for v in versions), default=None)
        if all_documents or newest is None or newest < threshold:
            chosen.append(doc)
    return chosen


@flow(name="reprocess", validate_parameters=False, task_runner=task_runner())
def reprocess_flow(
    all_documents: bool = False,
    older_than: str | None = None,
    db_url: str | None = None,
    archive_location: str | None = None,
) -> dict[str, Any]:
    archive = open_archive(archive_location)
    started = time.perf_counter()
    with open_warehouse(db_url) as warehouse:
        docs = select_documents(warehouse, all_documents=all_documents, older_than=older_than)
        params = {"all": all_documents, "older_than": older_than, "extractor_version": extractor_version(), "documents": len(docs)}
        with recorded_run(warehouse, "reprocess", params) as run:
            # --all re-extracts even what the cache holds for this version (e.g. a changed, unbumped extractor).
            extract = extract_task.with_options(refresh_cache=True) if all_documents else extract_task
            _reprocess_with_tasks(docs, warehouse, archive, run, extract)
    return summary_of(run, time.perf_counter() - started)


def reprocess_archive(
    all_documents: bool = False, older_than: str | None = None, db_url: str | None = None,
    archive_location: str | None = None, results_dir: str | None = None,
) -> dict[str, Any]:
    """Run reprocess_flow with its extraction cache in `results_dir` (default: gongkai.settings)."""
    with results_in(results_dir):
        return reprocess_flow(all_documents, older_than, db_url, archive_location)


def _reprocess_with_tasks(docs: list[DocumentInfo], warehouse: Warehouse, archive: Archive, run: RecordedRun, extract: Any) -> None:
    pending: dict[PrefectFuture[dict[str, Any]], DocumentInfo] = {}
    for doc in docs:
        if doc.sha256 not in archive:
            _report(run, IngestOutcome(doc.sha256, "failed", doc.name, reason="not in the archive"))
            continue
        pending[extract.submit(doc.sha256, doc.name or "", archive.location)] = doc
        load_finished(pending, WINDOW, warehouse, run)
    load_finished(pending, 0, warehouse, run)
