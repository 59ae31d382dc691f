"""Re-extraction of archived documents: only what an older extractor produced, a new record only where cells changed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from conftest import DOCUMENTS

from gongkai.cli import main
from gongkai.extractors.extract import extract_report
from gongkai.extractors.version import EXTRACTOR_VERSION
from gongkai.flows.ingest import ingest_bytes
from gongkai.flows.reprocess import reprocess_archive, select_documents, version_tuple
from gongkai.warehouse.archive import Archive, open_archive
from gongkai.warehouse.store import DocumentInfo, Warehouse, open_warehouse

CURRENT = ("shanghai-szfbgt-2019.html", "pingtan-han-2014-notreport.txt", "pingtan-dishuiju-2013.txt")
OLD = "zibo-stats-2023.txt"


def archive_with_an_old_extraction(wh: Warehouse, archive: Archive) -> DocumentInfo:
    """Three files ingested by the current extractor, and one whose cells an older extractor (0.0.9) read wrongly."""
    for name in CURRENT:
        ingest_bytes((DOCUMENTS / name).read_bytes(), name=name, warehouse=wh, archive=archive)
    data = (DOCUMENTS / OLD).read_bytes()
    old_result = extract_report(data, OLD)
    old_result["cells"] = {**old_result["cells"], "requests.new.natural_person": 7}
    doc = DocumentInfo(archive.put(data), len(data), "text/plain", OLD)
    assert wh.load(doc, old_result, "0.0.9").outcome == "new"
    return doc


def test_version_order_is_numeric() -> None:
    assert version_tuple("0.10.0") > version_tuple("0.9.3") > version_tuple("0.9")
    assert version_tuple(EXTRACTOR_VERSION) > version_tuple("0.0.9")


def reprocess(tmp_path: Path, url: str, **kw: Any) -> list[dict[str, Any]]:
    """What `gongkai reprocess` runs (the Prefect flow, extraction cache in tmp_path): each document's outcome."""
    summary = reprocess_archive(db_url=url, archive_location=str(tmp_path / "archive"), results_dir=str(tmp_path / "results"), **kw)
    return list(summary["documents"])


def test_only_documents_of_an_older_extractor_are_re_extracted_and_changed_cells_make_a_new_record(tmp_path: Path) -> None:
    archive = open_archive(tmp_path / "archive")
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    with open_warehouse(url) as wh:
        old = archive_with_an_old_extraction(wh, archive)
        assert [d.name for d in select_documents(wh)] == [OLD]
        assert select_documents(wh, older_than="0.0.9") == []
        assert len(select_documents(wh, all_documents=True)) == 4
    [outcome] = reprocess(tmp_path, url)
    assert (outcome["outcome"], outcome["version"], outcome["revision"], outcome["cells_changed"]) == ("changed", 1, 2, True)
    with open_warehouse(url) as wh:
        expected = extract_report((DOCUMENTS / OLD).read_bytes(), OLD)["cells"]
        assert wh.cells_of(outcome["report_id"])["requests.new.natural_person"] == expected["requests.new.natural_person"] != 7
        assert wh.cells_of(outcome["report_id"]) == expected
        # the old extraction record stays queryable; the new one is current
        assert wh.db.query("SELECT revision, extractor_version FROM reports WHERE sha256 = ? ORDER BY revision", [old.sha256]) == [
            (1, "0.0.9"), (2, EXTRACTOR_VERSION)
        ]
        assert wh.db.scalar("SELECT report_id FROM current_reports WHERE sha256 = ?", [old.sha256]) == outcome["report_id"]
        assert select_documents(wh) == []
        reports_before = wh.db.scalar("SELECT count(*) FROM reports")
    # everything again, with nothing changed: only marked as seen by this version, no new record
    again = reprocess(tmp_path, url, all_documents=True)
    assert [d["outcome"] for d in again] == ["unchanged"] * 4
    with open_warehouse(url) as wh:
        assert wh.db.scalar("SELECT count(*) FROM reports") == reports_before


def test_reprocess_command_names_the_reports_whose_cells_changed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    archive = open_archive(tmp_path / "archive")
    with open_warehouse(url) as wh:
        archive_with_an_old_extraction(wh, archive)
    common = ["--db", url, "--archive", str(tmp_path / "archive")]
    os.environ["GONGKAI_PREFECT_RESULTS"] = str(tmp_path / "results")
    try:
        assert main(["reprocess", "--extractor-older-than", "99.0", *common]) == 0
        out = capsys.readouterr().out
        assert "4 documents" in out and "1 changed" in out and "3 unchanged" in out
        assert out.strip().endswith(f"cells changed in: {OLD}")
        assert main(["reprocess", *common]) == 0  # nothing older than the current extractor is left
        out = capsys.readouterr().out
        assert "0 documents" in out and out.strip().endswith("cells changed in: no report")
    finally:
        os.environ.pop("GONGKAI_PREFECT_RESULTS", None)
    with open_warehouse(url) as wh:
        runs: list[Any] = wh.db.query("SELECT kind, status, n_changed, n_unchanged FROM runs ORDER BY run_id")
        assert runs == [("reprocess", "completed", 1, 3), ("reprocess", "completed", 0, 0)]


def test_a_re_extraction_changing_only_warnings_is_not_listed_as_cells_changed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    archive = open_archive(tmp_path / "archive")
    with open_warehouse(url) as wh:
        data = (DOCUMENTS / OLD).read_bytes()
        old_result = extract_report(data, OLD)
        old_result["warnings"] = [*old_result["warnings"], "an older extractor's warning"]  # same cells
        assert wh.load(DocumentInfo(archive.put(data), len(data), "text/plain", OLD), old_result, "0.0.9").outcome == "new"
    os.environ["GONGKAI_PREFECT_RESULTS"] = str(tmp_path / "results")
    try:
        assert main(["reprocess", "--db", url, "--archive", str(tmp_path / "archive")]) == 0
    finally:
        os.environ.pop("GONGKAI_PREFECT_RESULTS", None)
    out = capsys.readouterr().out
    assert "1 changed" in out  # a new revision all the same: what is stored differs
    assert f"re-extracted, cells unchanged: {OLD}" in out and out.strip().endswith("cells changed in: no report")
