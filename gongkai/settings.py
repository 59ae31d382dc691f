"""Where gongkai keeps its data, read from the environment once, with defaults a fresh clone can use."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    return Path(os.environ.get("GONGKAI_DATA", "data")).resolve()


def archive_dir() -> Path:
    return Path(os.environ.get("GONGKAI_ARCHIVE", str(data_dir() / "archive"))).resolve()


def prefect_results_dir() -> Path:
    """Cached extraction results (keyed on sha256 + extractor version) live beside the warehouse they feed."""
    return Path(os.environ.get("GONGKAI_PREFECT_RESULTS", str(data_dir() / "prefect-results"))).resolve()


def database_url() -> str:
    """DuckDB file by default; `postgresql://…` for a team warehouse."""
    return os.environ.get("GONGKAI_DB", f"duckdb:///{data_dir() / 'gongkai.duckdb'}")


def quiet_prefect() -> None:
    """Prefect runs offline unless the user says otherwise: no telemetry, a patient ephemeral-server start."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def extract_processes() -> int:
    """Worker processes for extraction (default: the CPU count; 0 or 1 = in the calling thread)."""
    return int(os.environ.get("GONGKAI_EXTRACT_PROCESSES", str(os.cpu_count() or 1)))


def extract_timeout_s() -> float:
    return float(os.environ.get("GONGKAI_EXTRACT_TIMEOUT", "600"))
