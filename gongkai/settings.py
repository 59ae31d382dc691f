"""Every setting of gongkai in one place, read from the environment once and validated.

`load_settings()` is called once at the top of a process: by the command line (`gongkai.cli.main`), or
by a flow started without it (a Prefect deployment, a test), at the start of its run. Everything below
(crawler, warehouse, flows' helpers) receives the values it needs as arguments and never reads the
environment. A bad value is a one-line `SettingsError` naming the variable.

| variable | default | meaning |
|---|---|---|
| GONGKAI_DATA | `data` | data folder: archive, crawl state, run summaries, extraction cache, default DuckDB file |
| GONGKAI_DB | `duckdb:///<data>/gongkai.duckdb` | the warehouse (`duckdb:///path` or `postgresql://…`) |
| GONGKAI_ARCHIVE | `<data>/archive` | the raw archive (files by sha256): a folder, or `s3://bucket/prefix` (the [s3] extra) |
| GONGKAI_PREFECT_RESULTS | `<data>/prefect-results` | cached extraction results, by sha256 and extractor version |
| GONGKAI_REGISTRY | `crawler/registry.toml` (shipped) | the portal registry |
| GONGKAI_EXTRACT_PROCESSES | CPU count | extraction worker processes (0 or 1: in the calling thread) |
| GONGKAI_EXTRACT_TIMEOUT | `600` | seconds one extraction may take before its worker is killed (outcome failed) |
| GONGKAI_OCR_MAX_PAGES, _BUDGET, _DPI, _THREADS | `20`, `300`, `200`, `2` | OCR per document (the [ocr] extra): pages or pictures, CPU seconds, dpi of scans, ONNX threads |
| GONGKAI_CRAWL_WORKERS | `128` | most requests in flight at once across hosts in a crawl (the threads: hosts × GONGKAI_CRAWL_CONCURRENCY, at most this) |
| GONGKAI_CRAWL_PROCESSES | `0` (the machine decides) | crawler processes of one crawl, its hosts split between them (0: the cores, each process given at least 200 hosts; 1: one process) |
| GONGKAI_CRAWL_STATE_SAVE_S | `10` | seconds between saves of the crawl state during a crawl (a killed crawl re-fetches in full only what it loaded since) |
| GONGKAI_CRAWL_DELAY | `1.0` | seconds between requests to one host |
| GONGKAI_CRAWL_CONCURRENCY | `2` | requests in flight per host |
| GONGKAI_CRAWL_CONNECT_TIMEOUT | `10` | seconds to connect |
| GONGKAI_CRAWL_READ_TIMEOUT | `30` | seconds between bytes of a response |
| GONGKAI_CRAWL_RETRIES | `3` | retries of a 5xx, timeout or reset |
| GONGKAI_CRAWL_BACKOFF | `1.0` | base of the exponential backoff, seconds |
| GONGKAI_CRAWL_MAX_BYTES | `52428800` | largest file downloaded (50 MB) |
| GONGKAI_INGEST_MAX_BYTES | GONGKAI_CRAWL_MAX_BYTES | largest local file `gongkai ingest` reads |
| GONGKAI_CRAWL_PREFECT_LIMITS | `false` | per-host limits as Prefect global concurrency limits |
| GONGKAI_CRAWL_MAX_PAGES | `500` | listing pages read per portal per run |
| GONGKAI_CRAWL_MAX_ITEMS | `5000` | listing items fetched per portal per run |
| GONGKAI_CRAWL_PORTAL_DEADLINE | `3600` | seconds after which a portal gets no new work in a run |
| GONGKAI_NIGHTLY_CRON | `0 2 * * *` | schedule of `gongkai serve` |
| GONGKAI_NIGHTLY_TZ | `Asia/Shanghai` | its time zone |
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from gongkai.extractors.ocr import Limits as OcrLimits


class SettingsError(ValueError):
    """A setting that does not validate: one line naming the variable, the value and what is wrong."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GONGKAI_", extra="ignore", frozen=True)

    data: Path = Path("data")
    db: str | None = None
    archive: str | None = None  # a folder, or an fsspec URL (s3://bucket/prefix): see archive_location
    prefect_results: Path | None = None
    registry: Path | None = None

    extract_processes: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=0)
    extract_timeout: float = Field(600.0, gt=0)
    # OCR (the [ocr] extra): validated here, handed to each extraction as `ocr_limits()`
    ocr_max_pages: int = Field(20, ge=1)
    ocr_budget: float = Field(300.0, gt=0)
    ocr_dpi: int = Field(200, ge=72, le=600)
    ocr_threads: int = Field(2, ge=1, le=64)

    crawl_workers: int = Field(128, ge=1)
    crawl_processes: int = Field(0, ge=0)  # 0: the machine's cores, each process at least 200 hosts (crawler/processes.py)
    # portals in progress at once in one crawler process (0: derived from the delay: crawler/scheduler.py admitted_portals)
    crawl_portals_in_progress: int = Field(0, ge=0)
    crawl_delay: float = Field(1.0, ge=0)
    crawl_concurrency: int = Field(2, ge=1)
    crawl_connect_timeout: float = Field(10.0, gt=0)
    crawl_read_timeout: float = Field(30.0, gt=0)
    crawl_retries: int = Field(3, ge=0)
    crawl_backoff: float = Field(1.0, ge=0)
    crawl_max_bytes: int = Field(50 * 1024 * 1024, gt=0)
    crawl_prefect_limits: bool = False
    ingest_max_bytes: int | None = Field(None, gt=0)
    crawl_max_pages: int = Field(500, ge=1)
    crawl_max_items: int = Field(5000, ge=1)
    crawl_portal_deadline: float = Field(3600.0, gt=0)
    crawl_state_save_s: float = Field(10.0, gt=0)  # seconds between saves of the crawl state during a crawl
    # seconds between a shard's signs of life in the warehouse; its parent gives a shard up after 10 s of silence, so
    # keep it well under that (tests lengthen it so that a stalled shard's load, not its beat, meets the fence first)
    shard_beat_s: float = Field(2.0, gt=0)

    nightly_cron: str = "0 2 * * *"
    nightly_tz: str = "Asia/Shanghai"

    @field_validator("nightly_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from gongkai.argtypes import cron_expression

        return _as_value_error(cron_expression, value)

    @field_validator("nightly_tz")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        from gongkai.argtypes import time_zone

        return _as_value_error(time_zone, value)

    @property
    def data_dir(self) -> Path:
        return self.data.resolve()

    @field_validator("archive")
    @classmethod
    def _archive(cls, value: str | None) -> str | None:
        from gongkai.warehouse.archive import is_remote

        if value is not None and is_remote(value):
            from urllib.parse import urlsplit

            parts = urlsplit(value)
            if not parts.netloc:
                raise ValueError("an archive URL names its bucket: s3://bucket/prefix")
            if "@" in parts.netloc:  # the URL is printed and logged: credentials come from the AWS environment
                raise ValueError("no credentials in the archive URL: use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
        return value

    @property
    def archive_location(self) -> str:
        """What `open_archive` takes: the object store's URL as given (s3://…), else the local folder, resolved."""
        from gongkai.warehouse.archive import is_remote

        if self.archive is not None and is_remote(self.archive):
            return self.archive
        return str(self.archive_dir)

    @property
    def archive_dir(self) -> Path | None:
        """The local archive folder; None when the archive is an object store (no local path to read or skip)."""
        from gongkai.warehouse.archive import is_remote

        if self.archive is not None and is_remote(self.archive):
            return None
        return (Path(self.archive.removeprefix("file://")) if self.archive else self.data_dir / "archive").resolve()

    @property
    def results_dir(self) -> Path:
        """Cached extraction results (keyed on sha256 + extractor version) live beside the warehouse they feed."""
        return (self.prefect_results or self.data_dir / "prefect-results").resolve()

    @property
    def database_url(self) -> str:
        """DuckDB file by default; `postgresql://…` for a team warehouse."""
        return self.db or f"duckdb:///{self.data_dir / 'gongkai.duckdb'}"

    @property
    def max_file_bytes(self) -> int:
        """The largest local file `gongkai ingest` reads: the crawler's cap per download unless set on its own."""
        return self.ingest_max_bytes or self.crawl_max_bytes

    @property
    def registry_file(self) -> Path:
        from gongkai.crawler.registry import DEFAULT_REGISTRY

        return self.registry or DEFAULT_REGISTRY

    def ocr_limits(self) -> OcrLimits:
        """The OCR bounds per document, handed down through every extraction call (workers read no environment)."""
        from gongkai.extractors.ocr import Limits

        return Limits(max_pages=self.ocr_max_pages, budget=self.ocr_budget, dpi=self.ocr_dpi, threads=self.ocr_threads)

    def politeness(self) -> dict[str, Any]:
        """The fetcher's settings (crawler.politeness.Politeness fields)."""
        return {name: getattr(self, f"crawl_{name}") for name in (
            "delay", "concurrency", "connect_timeout", "read_timeout", "retries", "backoff", "max_bytes", "prefect_limits")}


def _as_value_error(check: Any, value: str) -> str:
    """The command line's check of a value (an argparse type), as pydantic wants its errors."""
    import argparse

    try:
        return str(check(value))
    except argparse.ArgumentTypeError as exc:
        raise ValueError(str(exc)) from None


def name_database_sessions(name: str) -> None:
    """Every PostgreSQL session this process opens from now on carries `name` as its application_name (libpq reads
    PGAPPNAME): a shard's, so the parent can find and end them when it fences the shard."""
    os.environ["PGAPPNAME"] = name


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the environment (once per process or run: pass the result down)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        shown = first.get("input")
        if field == "archive" and isinstance(shown, str):  # an archive URL's credentials are never printed
            from gongkai.warehouse.archive_remote import redacted

            shown = redacted(shown)
        raise SettingsError(f"setting GONGKAI_{field.upper()}={shown!r}: {first['msg']}") from None


def quiet_prefect() -> None:
    """Prefect runs offline unless the user says otherwise: no telemetry, a patient ephemeral-server start."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
