"""What the warehouse holds and how it got there: last runs, coverage by year, reports that failed to extract.

Read through the read-only connection (warehouse.query), from the `runs` table and the `coverage` view.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gongkai.warehouse.query import QueryResult, ReadOnlyWarehouse
from gongkai.warehouse.store import utcnow

COVERAGE_CLASSES = ("extracted", "extracted_failing_checks", "not_extractable", "not_a_report", "not_found", "kept_without_cells")

LAST_RUNS = """
SELECT run_id, kind, status, started_at, round(CAST(duration_s AS NUMERIC), 1) AS duration_s,
       n_new, n_unchanged, n_changed, n_not_a_report, n_unreadable, n_failed, checks_failing
FROM runs ORDER BY run_id DESC LIMIT {limit}
"""
COVERAGE_BY_YEAR = (
    "SELECT year, "
    + ", ".join(f"CAST(sum(CASE WHEN coverage = '{c}' THEN 1 ELSE 0 END) AS BIGINT) AS {c}" for c in COVERAGE_CLASSES)
    + " FROM coverage GROUP BY year ORDER BY year NULLS LAST"
)
# A run killed without a chance to record its end (kill -9, a lost machine) stays 'running' in `runs`.
RUNNING_AT_MOST = timedelta(hours=6)
NOT_EXTRACTED = """
SELECT agency, year, coverage, reason, document_url, sha256
FROM coverage WHERE coverage IN ('not_extractable', 'not_a_report')
ORDER BY agency NULLS LAST, year NULLS LAST, sha256
"""
# Why loads failed (the runs' n_failed), grouped: documents that have not loaded since their last failure.
FAILURES = """
SELECT kind, count(*) AS documents, min(name) AS example, max(reason) AS one_reason, max(failed_at) AS last_failed
FROM load_failures_open GROUP BY kind ORDER BY count(*) DESC, kind
"""


@dataclass(frozen=True)
class Status:
    runs: QueryResult
    coverage_by_year: QueryResult
    not_extracted: QueryResult
    failures: QueryResult
    reports: int
    cells: int
    failing_checks: int


def warehouse_status(reader: ReadOnlyWarehouse, last_runs: int = 5) -> Status:
    counts = reader.run(
        "SELECT (SELECT count(*) FROM report_cells_wide), (SELECT count(*) FROM cells_long), "
        "(SELECT count(*) FROM check_results WHERE status = 'fail')"
    ).rows[0]
    return Status(
        runs=_with_time_zone(_flag_interrupted(reader.run(LAST_RUNS.format(limit=int(last_runs))))),
        coverage_by_year=reader.run(COVERAGE_BY_YEAR),
        not_extracted=reader.run(NOT_EXTRACTED),
        failures=reader.run(FAILURES),
        reports=int(counts[0]),
        cells=int(counts[1]),
        failing_checks=int(counts[2]),
    )


def _with_time_zone(runs: QueryResult) -> QueryResult:
    """started_at is stored in UTC without a zone (both engines' TIMESTAMP): shown with its offset, to the second."""
    at = runs.columns.index("started_at")
    rows = [
        (*row[:at], row[at].replace(tzinfo=UTC).isoformat(timespec="seconds") if isinstance(row[at], datetime) else row[at],
         *row[at + 1:])
        for row in runs.rows
    ]
    return QueryResult(runs.columns, rows)


def _flag_interrupted(runs: QueryResult) -> QueryResult:
    """Show as `interrupted?` a `running` run that is not the newest, or has run longer than any run should."""
    status, started = runs.columns.index("status"), runs.columns.index("started_at")
    cutoff = utcnow() - RUNNING_AT_MOST
    rows = [
        (*row[:status], "interrupted?", *row[status + 1:])
        if row[status] == "running" and (position > 0 or row[started] < cutoff) else row
        for position, row in enumerate(runs.rows)  # newest first
    ]
    return QueryResult(runs.columns, rows)
