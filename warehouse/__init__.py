"""The raw archive and the research warehouse (DuckDB or PostgreSQL)."""

from gongkai.warehouse.archive import Archive, LocalArchive, open_archive
from gongkai.warehouse.runs import RecordedRun, RunTally, recorded_run
from gongkai.warehouse.store import DocumentInfo, IngestOutcome, Warehouse, open_warehouse

__all__ = [
    "Archive", "DocumentInfo", "IngestOutcome", "LocalArchive", "RecordedRun", "RunTally", "Warehouse",
    "open_archive", "open_warehouse", "recorded_run",
]
