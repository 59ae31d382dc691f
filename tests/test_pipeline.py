"""The one path from a file or a portal to the warehouse (issue 8): typed result, archive first, one pool,
settings read once, logging and per-host counters."""

from __future__ import annotations

import json
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
