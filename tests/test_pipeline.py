"""The one path from a file or a portal to the warehouse (issue 8): typed result, archive first, one pool,
settings read once, logging and per-host counters."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gongkai.extractors.extract import extract_report, extract_result
from gongkai.extractors.result import ExtractionResult
from gongkai.flows.ingest import ingest_bytes
from gongkai.flows.pipeline import ExtractionPool, Pipeline, extraction_pool
from gongkai.warehouse.archive import open_archive, sha256_of
from gongkai.warehouse.store import DocumentInfo, open_warehouse

DOCUMENTS = Path(__file__).parent / "corpus" / "documents"


@pytest.mark.parametrize("name", ["zibo-stats-2023.txt", "pingtan-2024.html", "hongze-2023.pdf"])
def test_the_typed_result_is_the_extract_json_and_loads_as_is(name: str, tmp_path: Path) -> None:
    data = (DOCUMENTS / name).read_bytes()
    result = extract_result(data, name)
    assert isinstance(result, ExtractionResult) and isinstance(result.status, str)
    assert all(isinstance(w, str) for w in result.warnings)
    as_json = result.as_json()
    assert as_json == extract_report(data, name)  # `gongkai extract` prints exactly this
    assert ExtractionResult.from_json(json.loads(json.dumps(as_json))) == result  # a cached result reads back the same
    doc = DocumentInfo(sha256_of(data), len(data), "text/plain", name)
    with open_warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as wh:
        typed = wh.load(doc, result, "0.1.0")
        assert typed.outcome == "new" and wh.cells_of(typed.report_id or 0) == result.cells
        assert typed.failing_checks == result.failing_checks
        assert wh.load(doc, as_json, "0.2.0").outcome == "unchanged"  # its JSON is the same result


# --- one ingest path, archive first ---------------------------------------------------------------------

def _count_calls(monkeypatch: pytest.MonkeyPatch, attribute: str, counted: Callable[..., bool]) -> list[int]:
    """Wrap `attribute` wherever a gongkai module holds it (modules import it by name); count the calls `counted` picks."""
    calls = [0]
    modules = [m for n, m in list(sys.modules.items()) if n.startswith("gongkai") and hasattr(m, attribute)]
    original = getattr(modules[0], attribute)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if counted(*args):
            calls[0] += 1
        return original(*args, **kwargs)

    for module in modules:
        if getattr(module, attribute) is original:
            monkeypatch.setattr(module, attribute, wrapper)
    return calls


@pytest.mark.parametrize("name", ["zibo-stats-2023.txt", "pingtan-2024-libreoffice.docx"])
def test_a_file_is_hashed_once_and_its_format_sniffed_once(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    import gongkai.extractors.extract  # noqa: F401  (every module that sniffs or hashes is loaded before counting)
    import gongkai.flows.crawl  # noqa: F401

    data = (DOCUMENTS / name).read_bytes()
    sniffed = _count_calls(monkeypatch, "sniff_format", lambda d, *_: d is data)
    hashed = [0]
    real_sha256 = hashlib.sha256
    monkeypatch.setattr(hashlib, "sha256", lambda *a, **k: (hashed.__setitem__(0, hashed[0] + (bool(a) and a[0] is data)), real_sha256(*a, **k))[1])
    with open_warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as wh:
        outcome = ingest_bytes(data, name=name, warehouse=wh, archive=open_archive(tmp_path / "archive"))
    assert outcome.outcome == "new"
    assert (hashed[0], sniffed[0]) == (1, 1)


def test_the_archive_keeps_a_file_whose_extraction_crashed_and_the_next_run_extracts_it(tmp_path: Path) -> None:
    data = (DOCUMENTS / "zibo-stats-2023.txt").read_bytes()
    archive = open_archive(tmp_path / "archive")

    def crash(_data: bytes, _name: str) -> ExtractionResult:
        raise MemoryError("a reader blew up")

    with open_warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as wh:
        failed = Pipeline(wh, archive, extract=crash).ingest(data, name="zibo.txt")
        assert failed.outcome == "failed" and "MemoryError: a reader blew up" in (failed.reason or "")
        assert sha256_of(data) in archive and archive.get(sha256_of(data)) == data  # archived before extraction
        assert Pipeline(wh, archive).ingest(data, name="zibo.txt").outcome == "new"


def test_one_bounded_pool_kills_an_extraction_past_its_timeout_and_goes_on(tmp_path: Path) -> None:
    from gongkai.flows import crawl, ingest

    assert extraction_pool(2) is extraction_pool(2)  # the process's one pool, for every path
    assert all(m.extraction_pool is extraction_pool for m in (crawl, ingest))
    pool = ExtractionPool(2)
    data = (DOCUMENTS / "hongze-2023.pdf").read_bytes()
    try:
        with open_warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as wh:
            slow = Pipeline(wh, open_archive(tmp_path / "a"), pool=pool, timeout_s=0.001).ingest(data, name="hongze.pdf")
            assert slow.outcome == "failed" and "ExtractionTimeout: extraction took more than 0.001 s" in (slow.reason or "")
            again = Pipeline(wh, open_archive(tmp_path / "a"), pool=pool, timeout_s=120).ingest(data, name="hongze.pdf")
            assert again.outcome == "new" and pool.executors_started == 2  # a fresh pool after the kill
    finally:
        pool.close()


# --- one settings object, read once --------------------------------------------------------------------

def test_settings_keep_their_variable_names_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from gongkai.settings import Settings

    for name in [n for n in os.environ if n.startswith("GONGKAI_")]:
        monkeypatch.delenv(name)
    defaults = Settings()
    assert (defaults.data_dir, defaults.archive_dir, defaults.results_dir) == (
        Path("data").resolve(), Path("data/archive").resolve(), Path("data/prefect-results").resolve())
    assert defaults.database_url == f"duckdb:///{Path('data').resolve() / 'gongkai.duckdb'}"
    assert (defaults.extract_processes, defaults.extract_timeout, defaults.crawl_workers) == (os.cpu_count() or 1, 600.0, 128)
    assert defaults.politeness() == {"delay": 1.0, "concurrency": 2, "connect_timeout": 10.0, "read_timeout": 30.0, "retries": 3,
                                     "backoff": 1.0, "max_bytes": 50 * 1024 * 1024, "prefect_limits": False}
    assert (defaults.nightly_cron, defaults.nightly_tz) == ("0 2 * * *", "Asia/Shanghai")
    for name, value in {"GONGKAI_DATA": "/srv/g", "GONGKAI_DB": "postgresql://g@h/g", "GONGKAI_CRAWL_READ_TIMEOUT": "5",
                        "GONGKAI_CRAWL_PREFECT_LIMITS": "yes", "GONGKAI_REGISTRY": "/srv/r.toml", "GONGKAI_EXTRACT_PROCESSES": "0"}.items():
        monkeypatch.setenv(name, value)
    given = Settings()
    assert (given.data_dir, given.archive_dir, given.database_url, given.registry_file) == (
        Path("/srv/g"), Path("/srv/g/archive"), "postgresql://g@h/g", Path("/srv/r.toml"))
    assert given.politeness()["read_timeout"] == 5.0 and given.politeness()["prefect_limits"] is True
    assert given.extract_processes == 0


@pytest.mark.parametrize(("name", "value", "message"), [
    ("GONGKAI_EXTRACT_PROCESSES", "two", "gongkai: setting GONGKAI_EXTRACT_PROCESSES='two': Input should be a valid integer"),
    ("GONGKAI_CRAWL_DELAY", "-1", "gongkai: setting GONGKAI_CRAWL_DELAY='-1': Input should be greater than or equal to 0"),
])
def test_a_bad_setting_is_one_clear_line_and_nothing_runs(
    name: str, value: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gongkai.cli import main

    monkeypatch.setenv(name, value)
    db = tmp_path / "w.duckdb"
    code = main(["ingest", str(DOCUMENTS / "zibo-stats-2023.txt"), "--db", f"duckdb:///{db}", "--archive", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(message) and err.count("\n") == 1
    assert not db.exists() and not (tmp_path / "a").exists()


def test_the_command_line_reads_the_settings_once_and_the_layers_below_never_read_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gongkai.cli import main
    from gongkai.settings import Settings

    made = [0]
    real_init = Settings.__init__

    def counted(self: Settings, **kw: Any) -> None:
        made[0] += 1
        real_init(self, **kw)

    monkeypatch.setattr(Settings, "__init__", counted)
    monkeypatch.setenv("GONGKAI_EXTRACT_PROCESSES", "1")
    monkeypatch.setenv("GONGKAI_PREFECT_RESULTS", str(tmp_path / "results"))
    code = main(["ingest", str(DOCUMENTS / "zibo-stats-2023.txt"), "--db", f"duckdb:///{tmp_path / 'w.duckdb'}",
                 "--archive", str(tmp_path / "a"), "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["counts"]["new"] == 1
    assert made[0] == 1
    assert len(list((tmp_path / "results").iterdir())) == 1  # the setting reached the pipeline as an argument
    root = Path(__file__).resolve().parent.parent
    readers = [str(p.relative_to(root)) for folder in ("crawler", "warehouse", "flows") for p in (root / folder).rglob("*.py")
               if "os.environ" in p.read_text("utf-8")]
    assert readers == ["warehouse/store.py"]  # only the kill -9 test's hook (GONGKAI_TEST_PAUSE_IN_LOAD)
