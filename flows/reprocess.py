"""Re-extract archived documents with the current extractors (no network): `gongkai reprocess`.

A document whose re-extraction changes what is stored gets a new extraction record (a new revision of
its report); one whose result is identical is only marked as processed by the current version.
"""

from __future__ import annotations

import time
from typing import Any

from gongkai.flows.ingest import MAX_THREADS, open_pipeline, run_in_window, summary_of, task_runner, window_for
from gongkai.flows.logs import run_logger
from gongkai.flows.pipeline import Pipeline, extractor_version
from gongkai.flows.plain import prefect_flow, prefect_task, run_flow, submit_task
from gongkai.settings import Settings, load_settings
from gongkai.warehouse.archive import open_archive
from gongkai.warehouse.runs import recorded_run
from gongkai.warehouse.store import DocumentInfo, IngestOutcome, Warehouse, open_warehouse


def version_tuple(version: str) -> tuple[int, ...]:
    """'0.10.2' → (0, 10, 2), so that versions compare as numbers; a non-numeric part counts as 0."""
    return tuple(int(part) if part.isdigit() else 0 for part in version.strip().split("."))


def in_shard(sha256: str, shard: tuple[int, int] | list[int] | None) -> bool:
    """Whether a document belongs to shard (i, n), 1 ≤ i ≤ n, of a sharded reprocess: split by its digest."""
    return shard is None or int(sha256[:8], 16) % shard[1] == shard[0] - 1


def select_documents(
    warehouse: Warehouse, *, all_documents: bool = False, older_than: str | None = None,
    shard: tuple[int, int] | list[int] | None = None,
) -> list[DocumentInfo]:
    """Documents to re-extract: all of them, or those whose newest extraction is older than `older_than`
    (default: the current extractor version). A document never extracted (its extractor crashed) is always due.
    `shard` (i, n): only the i-th of n parts, by digest (flows/shards.py)."""
    threshold = version_tuple(older_than or extractor_version())
    chosen = []
    for doc, versions in warehouse.archived_documents():
        if not in_shard(doc.sha256, shard):
            continue
        newest = max((version_tuple(v) for v in versions), default=None)
        if all_documents or newest is None or newest < threshold:
            chosen.append(doc)
    return chosen


@prefect_task(name="reprocess document", task_run_name="reprocess {doc.name}", cache_policy="none", retries=0)
def reprocess_task(pipeline: Pipeline, doc: DocumentInfo, refresh: bool) -> IngestOutcome:
    return pipeline.reprocess(doc, refresh=refresh)


@prefect_flow(name="reprocess", validate_parameters=False, task_runner=task_runner)
def reprocess_flow(
    all_documents: bool = False,
    older_than: str | None = None,
    db_url: str | None = None,
    archive_location: str | None = None,
    results_dir: str | None = None,
    settings: Settings | None = None,
    shard: list[int] | None = None,
    run_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    settings = settings or load_settings()
    archive = open_archive(archive_location or settings.archive_location)
    started = time.perf_counter()
    with open_warehouse(db_url or settings.database_url) as warehouse:
        docs = select_documents(warehouse, all_documents=all_documents, older_than=older_than, shard=shard)
        params = {"all": all_documents, "older_than": older_than, "extractor_version": extractor_version(), "documents": len(docs),
                  **(run_params or {})}
        with recorded_run(warehouse, "reprocess", params) as run:
            pipeline = open_pipeline(warehouse, archive, run, settings, results_dir)
            # --all re-extracts even what the cache holds for this version (e.g. a changed, unbumped extractor).
            run.interrupted = run_in_window(lambda doc: submit_task(reprocess_task, pipeline, doc, all_documents), docs,  # type: ignore[call-overload]
                                            window_for(settings))
    summary = summary_of(run, time.perf_counter() - started)
    run_logger(__name__).info("reprocess run %s: %d documents, %s", run.run_id, len(docs), {k: v for k, v in run.counts.items() if v})
    return summary


def reprocess_archive(
    all_documents: bool = False, older_than: str | None = None, db_url: str | None = None,
    archive_location: str | None = None, results_dir: str | None = None, settings: Settings | None = None,
) -> dict[str, Any]:
    """Run reprocess_flow with its extraction cache in `results_dir` (default: the settings')."""
    return run_flow(reprocess_flow, MAX_THREADS, all_documents=all_documents, older_than=older_than,  # type: ignore[no-any-return]
                    db_url=db_url, archive_location=archive_location, results_dir=results_dir, settings=settings)

