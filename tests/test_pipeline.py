"""The one path from a file or a portal to the warehouse (issue 8): typed result, archive first, one pool,
settings read once, logging and per-host counters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gongkai.extractors.extract import extract_report, extract_result
from gongkai.extractors.result import ExtractionResult
from gongkai.warehouse.archive import sha256_of
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
