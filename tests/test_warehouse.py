"""The warehouse layer on real DuckDB and real PostgreSQL: schema, agencies, versions, transactions, runs, archive.

Extraction results here are built from the corpus gold files (the hand-read cells of real reports),
so these tests exercise loading independently of the extractors.
"""

from __future__ import annotations

import itertools
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from conftest import DOCUMENTS, gold_files, load_gold

from gongkai.warehouse.archive import ArchiveUnavailable, LocalArchive, open_archive, sha256_of
from gongkai.warehouse.db import connect
from gongkai.warehouse.migrate import SCHEMA_VERSION, SQL_DIR, current_version, migrate
from gongkai.warehouse.runs import recorded_run
from gongkai.warehouse.store import DocumentInfo, IngestOutcome, Warehouse, name_key, open_warehouse


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"


@pytest.fixture
def warehouse(warehouse_url: str) -> Any:
    with open_warehouse(warehouse_url) as opened:
        yield opened


def gold_result(name: str) -> dict[str, Any]:
    """A gold file as the extractor's output: cells, provenance pointing at each cell, failing checks."""
    gold = load_gold(name)
    if gold["cells"]:
        status = "extracted"
    elif gold["kind"].startswith("not a report"):
        status = "not_a_report"
    else:
        status = "no_standard_tables"
    cells = gold["cells"]
    provenance = {
        address: {"raw": "" if cells[address] is None else str(cells[address]), "page": 1 + i // 80, "table": 1 + i % 3, "row": i, "col": 2,
                  "bbox": [10.0, 20.5 + i, 30.0, 40.25 + i]}
        for i, address in enumerate(sorted(cells))
    }
    checks = [{"rule": c["rule"], "target": c["target"], "expected": 11, "actual": 0, "status": c["status"]} for c in gold["failing_checks"]]
    return {
        "source": {"path": name, "sha256": "", "format": ""}, "status": status, "agency": gold["agency"], "year": gold["year"],
        "template": gold["template"], "cells": cells, "provenance": provenance, "checks": checks, "warnings": [], "title": None,
    }


def doc_for(name: str, **hints: Any) -> DocumentInfo:
    data = (DOCUMENTS / name).read_bytes()
    return DocumentInfo(sha256_of(data), len(data), "text/html", name, None, **hints)


def count(wh: Warehouse, table: str) -> int:
    return int(wh.db.scalar(f"SELECT count(*) FROM {table}"))


def test_schema_version_is_recorded_and_migrating_again_changes_nothing(warehouse_url: str) -> None:
    with open_warehouse(warehouse_url) as wh:
        assert current_version(wh.db) == SCHEMA_VERSION == 5
        wh.load(doc_for("zibo-stats-2023.txt"), gold_result("zibo-stats-2023.txt"), "0.1.0")
    with open_warehouse(warehouse_url) as wh:  # a second open: migrate is a no-op, data kept
        assert migrate(wh.db) == SCHEMA_VERSION
        assert count(wh, "schema_meta") == 1
        assert count(wh, "cells") == 200


def test_every_gold_cell_round_trips_with_provenance(warehouse: Warehouse) -> None:
    outcomes = {}
    for path in gold_files():
        name = path.name.removesuffix(".json")
        result = gold_result(name)
        outcome = outcomes[name] = warehouse.load(doc_for(name), result, "0.1.0")
        assert outcome.report_id is not None
        assert warehouse.cells_of(outcome.report_id) == result["cells"], name
        assert outcome.failing_checks == sum(1 for c in result["checks"] if c["status"] == "fail")
        loaded_checks = warehouse.checks_of(outcome.report_id)
        assert sorted((c["rule"], c["target"], c["status"], c["expected"], c["actual"]) for c in loaded_checks) == sorted(
            (c["rule"], c["target"], c["status"], 11, 0) for c in result["checks"]
        )
    hongze = warehouse.db.query_one(
        "SELECT c.value, c.raw, c.page, c.table_no, c.row_no, c.col_no, c.bbox_x0, c.bbox_y1, a.name, r.year, r.template "
        "FROM cells c JOIN reports r ON r.report_id = c.report_id JOIN agencies a ON a.agency_id = r.agency_id "
        "WHERE a.name = '淮安市洪泽区人民政府' AND c.address = 'proactive.fees.amount_wan_yuan'"
    )
    # 7730.28 万元 (a decimal) keeps its decimals and its place in the document
    assert hongze is not None
    rank = sorted(load_gold("hongze-2023.pdf")["cells"]).index("proactive.fees.amount_wan_yuan")
    assert hongze == (7730.28, "7730.28", 1 + rank // 80, 1 + rank % 3, rank, 2, 10.0, 40.25 + rank, "淮安市洪泽区人民政府", 2023, "2021")
    # the same report as HTML, DOCX and PDF (same cells): one version, the other files linked to it
    statuses = dict(warehouse.db.query("SELECT status, count(*) FROM reports GROUP BY status"))
    assert statuses == {"extracted": 7, "no_standard_tables": 1, "not_a_report": 1}  # 2011 and 2017: 统计表 read
    first = outcomes["pingtan-2024-libreoffice.docx"]  # gold files load in name order
    assert first.outcome == "new"
    for name in ("pingtan-2024-libreoffice.pdf", "pingtan-2024.html"):
        assert (outcomes[name].outcome, outcomes[name].report_id) == ("unchanged", first.report_id)
        assert "another file or format" in (outcomes[name].reason or "")
    assert int(warehouse.db.scalar("SELECT count(*) FROM extractions")) == 12
    # the letter and the blank template have no agency-year: each is its own report key
    assert count(warehouse, "current_reports") == 12 - 2 - 1  # pingtan x3 and shanghai x2 share their agency-year


def test_same_result_again_loads_nothing(warehouse: Warehouse) -> None:
    doc, result = doc_for("hongze-2023.pdf"), gold_result("hongze-2023.pdf")
    first = warehouse.load(doc, result, "0.1.0")
    second = warehouse.load(doc, result, "0.2.0")  # a newer extractor, same result
    assert (first.outcome, second.outcome) == ("new", "unchanged")
    assert second.report_id == first.report_id
    assert (count(warehouse, "reports"), count(warehouse, "cells"), count(warehouse, "checks")) == (1, 186, 2)
    assert warehouse.extracted_with(doc.sha256, "0.2.0") is not None
    assert warehouse.extracted_with(doc.sha256, "0.3.0") is None


def test_republished_report_is_a_new_version_and_the_old_one_stays(warehouse: Warehouse) -> None:
    original, corrected_result = doc_for("zibo-stats-2023.txt"), gold_result("zibo-stats-2023.txt")
    first = warehouse.load(original, gold_result("zibo-stats-2023.txt"), "0.1.0")
    corrected_result["cells"]["requests.new.natural_person"] = 99
    corrected = DocumentInfo(sha256_of(b"corrected zibo"), 14, "text/plain", "zibo-corrected.txt")
    second = warehouse.load(corrected, corrected_result, "0.1.0")
    assert (first.outcome, first.version, second.outcome, second.version) == ("new", 1, "changed", 2)
    current = warehouse.db.query("SELECT report_id, sha256, version FROM current_reports")
    assert current == [(second.report_id, corrected.sha256, 2)]
    assert warehouse.cells_of(first.report_id)["requests.new.natural_person"] != 99  # the old version is queryable
    assert warehouse.cells_of(second.report_id)["requests.new.natural_person"] == 99
    # the old file re-extracted differently (gongkai reprocess): a new revision of version 1, still not current
    old_again = gold_result("zibo-stats-2023.txt")
    old_again["warnings"] = ["a new extractor noticed something"]
    third = warehouse.load(original, old_again, "0.2.0")
    assert (third.outcome, third.version, third.revision) == ("changed", 1, 2)
    assert warehouse.db.query("SELECT report_id FROM current_reports") == [(second.report_id,)]
    assert count(warehouse, "reports") == 3


def test_a_letter_in_the_report_column_never_supersedes_the_report(warehouse: Warehouse) -> None:
    report = warehouse.load(doc_for("pingtan-2024.html"), gold_result("pingtan-2024.html"), "0.1.0")
    letter = gold_result("pingtan-han-2014-notreport.txt")
    # the crawler found it in 平潭综合实验区's 2024 column, so it passes that agency and year
    outcome = warehouse.load(doc_for("pingtan-han-2014-notreport.txt", agency="平潭综合实验区", year=2024), letter, "0.1.0")
    assert outcome.outcome == "not_a_report"
    current = warehouse.db.query("SELECT report_id FROM current_reports WHERE status = 'extracted'")
    assert current == [(report.report_id,)]


def test_agency_identity_by_code_and_name_or_by_name_alone(warehouse: Warehouse) -> None:
    by_name = warehouse.resolve_agency("平潭综合实验区")
    assert warehouse.resolve_agency("平潭综合 实验区") == by_name  # white space in a printed name does not matter
    assert name_key("平潭综合实验区　") == name_key("平潭综合实验区")
    # the registry names it later with its division code: the hand-collected agency is adopted, not duplicated
    by_code = warehouse.resolve_agency("平潭综合实验区", "350128", "county")
    assert by_code == by_name
    # another agency of the same region shares the code but is a different agency
    tax = warehouse.resolve_agency("平潭综合实验区地方税务局", "350128", "department")
    assert tax != by_code
    assert warehouse.resolve_agency("平潭综合实验区地方税务局") == tax
    rows = warehouse.db.query("SELECT name, division_code, level FROM agencies ORDER BY agency_id")
    assert rows == [("平潭综合实验区", "350128", "county"), ("平潭综合实验区地方税务局", "350128", "department")]


def test_registry_hints_override_the_document_and_are_kept_for_reprocessing(warehouse: Warehouse) -> None:
    doc = doc_for("pingtan-2024.html", agency="福建省平潭综合实验区管理委员会", division_code="350128", level="county")
    outcome = warehouse.load(doc, gold_result("pingtan-2024.html"), "0.1.0")
    assert outcome.agency == "福建省平潭综合实验区管理委员会"
    [(stored, versions)] = warehouse.archived_documents()
    assert versions == ["0.1.0"]
    assert (stored.agency, stored.division_code, stored.level, stored.year) == ("福建省平潭综合实验区管理委员会", "350128", "county", None)
    assert warehouse.db.query("SELECT a.name, r.year FROM reports r JOIN agencies a USING (agency_id)") == [
        ("福建省平潭综合实验区管理委员会", 2024)
    ]


def test_a_failed_load_leaves_the_previous_state(warehouse: Warehouse) -> None:
    good = warehouse.load(doc_for("zibo-stats-2023.txt"), gold_result("zibo-stats-2023.txt"), "0.1.0")
    before = {t: count(warehouse, t) for t in ("agencies", "documents", "reports", "cells", "checks", "extractions")}
    broken = gold_result("hongze-2023.pdf")
    broken["cells"]["requests.new.total"] = "not a number"  # the database refuses it after the report row is written
    with pytest.raises(Exception):  # noqa: B017 - each driver raises its own conversion error
        warehouse.load(doc_for("hongze-2023.pdf"), broken, "0.1.0")
    after = {t: count(warehouse, t) for t in before}
    assert after == before
    assert warehouse.extracted_with(doc_for("hongze-2023.pdf").sha256, "0.1.0") is None
    assert warehouse.cells_of(good.report_id) == load_gold("zibo-stats-2023.txt")["cells"]


def test_runs_record_what_was_asked_and_the_counts(warehouse: Warehouse) -> None:
    with recorded_run(warehouse, "ingest", {"paths": ["a", "b"]}) as run:
        run.add(warehouse.load(doc_for("hongze-2023.pdf"), gold_result("hongze-2023.pdf"), "0.1.0"))
        run.add(warehouse.load(doc_for("hongze-2023.pdf"), gold_result("hongze-2023.pdf"), "0.1.0"))
        run.add(IngestOutcome("0" * 64, "unreadable", "x.pdf", reason="empty file (0 bytes)"))
    with pytest.raises(RuntimeError), recorded_run(warehouse, "crawl-nightly", {}):
        raise RuntimeError("network down")
    rows = warehouse.db.query(
        "SELECT kind, params, status, n_new, n_unchanged, n_changed, n_unreadable, checks_failing, duration_s >= 0, "
        "finished_at >= started_at FROM runs ORDER BY run_id"
    )
    assert rows[0] == ("ingest", json.dumps({"paths": ["a", "b"]}), "completed", 1, 1, 0, 1, 4, True, True)
    assert rows[1][:3] == ("crawl-nightly", "{}", "failed")


def test_archive_stores_once_never_overwrites_and_trusts_no_name(tmp_path: Path) -> None:
    archive = open_archive(tmp_path / "archive")
    data = (DOCUMENTS / "hongze-2023.pdf").read_bytes()
    sha = archive.put(data)
    path = archive.path_for(sha)
    assert path == tmp_path / "archive" / sha[:2] / sha  # 256 folders (an earlier version's: test_archive.py)
    assert archive.put(data) == sha and archive.get(sha) == data and sha in archive
    assert not stat.S_IMODE(path.stat().st_mode) & 0o222  # read-only once written
    assert [p.name for p in path.parent.iterdir()] == [sha]  # no temp files left behind
    for hostile in ("../../etc/passwd", "A" * 64, sha[:63]):
        with pytest.raises(ValueError):
            archive.get(hostile)
        assert hostile not in archive
    os.chmod(path, 0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(OSError, match="corrupt"):
        archive.get(sha)
    assert isinstance(open_archive(f"file://{tmp_path / 'other'}"), LocalArchive)
    # an object store is an archive too now (tests/test_archive_s3.py); a scheme fsspec does not know is one line
    with pytest.raises(ArchiveUnavailable, match="unknown scheme 'nosuchstore'"):
        open_archive("nosuchstore://bucket/prefix")


def test_the_same_report_in_another_format_is_linked_and_never_supersedes_a_correction(warehouse: Warehouse) -> None:
    html = warehouse.load(doc_for("pingtan-2024.html"), gold_result("pingtan-2024.html"), "0.1.0")
    pdf_doc = doc_for("pingtan-2024-libreoffice.pdf")
    pdf = warehouse.load(pdf_doc, gold_result("pingtan-2024-libreoffice.pdf"), "0.1.0")
    assert (pdf.outcome, pdf.report_id, pdf.version) == ("unchanged", html.report_id, 1)
    corrected_result = gold_result("pingtan-2024.html")
    corrected_result["cells"]["requests.new.total"] = 1234
    corrected = warehouse.load(DocumentInfo(sha256_of(b"corrected"), 9, "text/html", "corrected.html"), corrected_result, "0.1.0")
    assert (corrected.outcome, corrected.version) == ("changed", 2)
    # a newer extractor reads the PDF the same: still linked to version 1, nothing new
    again = warehouse.load(pdf_doc, gold_result("pingtan-2024-libreoffice.pdf"), "0.2.0")
    assert (again.outcome, again.report_id) == ("unchanged", html.report_id)
    # ... or differently: the PDF gets its own row, as a revision of version 1, and version 2 stays current
    misread = gold_result("pingtan-2024-libreoffice.pdf")
    misread["cells"]["requests.new.total"] = 5
    own = warehouse.load(pdf_doc, misread, "0.3.0")
    assert (own.outcome, own.version, own.revision) == ("changed", 1, 2)
    assert warehouse.db.query("SELECT report_id FROM current_reports WHERE status = 'extracted'") == [(corrected.report_id,)]


def test_a_linked_file_re_extracted_like_its_report_stays_linked_to_the_new_revision(warehouse: Warehouse) -> None:
    html_doc, pdf_doc = doc_for("pingtan-2024.html"), doc_for("pingtan-2024-libreoffice.pdf")
    html = warehouse.load(html_doc, gold_result("pingtan-2024.html"), "0.1.0")
    pdf = warehouse.load(pdf_doc, gold_result("pingtan-2024-libreoffice.pdf"), "0.1.0")
    assert (html.version, html.revision, pdf.outcome, pdf.report_id) == (1, 1, "unchanged", html.report_id)
    # a new extractor reads both files the same new way: the HTML becomes 1.2, the PDF is that report again
    reread = {"requests.new.total": 5}
    html_again = warehouse.load(html_doc, gold_result("pingtan-2024.html") | {"cells": gold_result("pingtan-2024.html")["cells"] | reread}, "0.2.0")
    pdf_again = warehouse.load(
        pdf_doc, gold_result("pingtan-2024-libreoffice.pdf") | {"cells": gold_result("pingtan-2024-libreoffice.pdf")["cells"] | reread}, "0.2.0"
    )
    assert (html_again.outcome, html_again.version, html_again.revision) == ("changed", 1, 2)
    assert (pdf_again.outcome, pdf_again.report_id) == ("unchanged", html_again.report_id)
    assert count(warehouse, "reports") == 2
    assert warehouse.db.query("SELECT report_id FROM current_reports") == [(html_again.report_id,)]


def test_current_report_of_two_revisions_of_one_version_is_the_latest_revision(warehouse: Warehouse) -> None:
    html_doc, pdf_doc = doc_for("pingtan-2024.html"), doc_for("pingtan-2024-libreoffice.pdf")
    html = warehouse.load(html_doc, gold_result("pingtan-2024.html"), "0.1.0")
    warehouse.load(pdf_doc, gold_result("pingtan-2024-libreoffice.pdf"), "0.1.0")
    misread = gold_result("pingtan-2024-libreoffice.pdf")
    misread["cells"]["requests.new.total"] = 5
    own = warehouse.load(pdf_doc, misread, "0.2.0")  # the PDF alone read differently: its own row, 1.2
    assert (own.version, own.revision) == (1, 2)
    # each file's latest row is of version 1: the later revision is current, whichever row the engine sees first
    assert warehouse.db.query("SELECT report_id FROM current_reports") == [(own.report_id,)]
    assert html.report_id != own.report_id


def test_a_version_1_database_migrates_to_the_current_schema(warehouse_url: str) -> None:
    db = connect(warehouse_url)
    try:  # a warehouse made by the first release: schema.sql only, recorded as version 1
        with db.transaction():
            db.execute_script((SQL_DIR / "schema.sql").read_text(encoding="utf-8"))
            db.execute("INSERT INTO schema_meta (key, value) VALUES ('schema_version', '1')")
        assert current_version(db) == 1
    finally:
        db.close()
    with open_warehouse(warehouse_url) as wh:
        assert current_version(wh.db) == SCHEMA_VERSION
        pdf_doc = doc_for("pingtan-2024-libreoffice.pdf")
        wh.load(doc_for("pingtan-2024.html"), gold_result("pingtan-2024.html"), "0.1.0")
        wh.load(pdf_doc, gold_result("pingtan-2024-libreoffice.pdf"), "0.1.0")
        misread = gold_result("pingtan-2024-libreoffice.pdf")
        misread["cells"]["requests.new.total"] = 5
        own = wh.load(pdf_doc, misread, "0.2.0")
        assert wh.db.query("SELECT report_id FROM current_reports") == [(own.report_id,)]
        assert wh.db.scalar("SELECT count(*) FROM current_cells") == len(misread["cells"])


def test_of_files_with_the_same_cells_the_source_file_is_the_same_in_any_load_order(warehouse: Warehouse) -> None:
    """Issue 11: a report's page, its PDF and a Word copy carry the same cells; whichever is loaded first, the
    version's file is the PDF (warehouse/source_preference.toml), its cells carry the PDF's page/bbox provenance,
    and the other files stay recorded (documents, extractions) as copies of that one version."""
    base = gold_result("pingtan-2024.html")
    kinds = {"pdf": "application/pdf", "docx": "application/msword", "html": "text/html"}

    def as_file(kind: str, year: int) -> tuple[DocumentInfo, dict[str, Any]]:
        result = json.loads(json.dumps(base))
        result["title"] = f"平潭 {kind}"
        if kind != "pdf":  # a page or a Word file: no page, no bounding box
            result["provenance"] = {a: {"raw": p["raw"], "table": p["table"], "row": p["row"], "col": p["col"]}
                                    for a, p in result["provenance"].items()}
        doc = DocumentInfo(sha256_of(f"{kind} {year}".encode()), 100, kinds[kind], f"pingtan.{kind}", None, base["agency"], year)
        return doc, result

    orders = list(itertools.permutations(kinds))
    for year, order in enumerate(orders, start=2030):  # one agency-year per load order
        outcomes = [warehouse.load(*as_file(kind, year), "0.1.0") for kind in order]
        assert len({o.report_id for o in outcomes}) == 1 and {o.version for o in outcomes} == {1}, order
        pdf = as_file("pdf", year)[0]
        report_id, sha256, title = warehouse.db.query_one(
            "SELECT r.report_id, r.sha256, r.title FROM current_reports r WHERE r.year = ?", [year])
        assert (report_id, sha256, title) == (outcomes[0].report_id, pdf.sha256, "平潭 pdf"), order
        assert warehouse.cells_of(report_id) == base["cells"]
        assert warehouse.db.scalar("SELECT count(*) FROM cells WHERE report_id = ? AND (page IS NULL OR bbox_x0 IS NULL)",
                                   [report_id]) == 0, order
        assert count_where(warehouse, "reports", "year = ?", year) == 1
        copies = warehouse.db.query("SELECT sha256, report_id FROM extractions WHERE sha256 IN (?, ?, ?) ORDER BY sha256",
                                    [as_file(k, year)[0].sha256 for k in kinds])
        assert len(copies) == 3 and {r for _, r in copies} == {report_id}, order
        if order[0] != "pdf":  # the PDF came later and took the version over: its outcome says so
            assert "now the version's source file" in (outcomes[order.index("pdf")].reason or ""), order
    assert count(warehouse, "documents") == 3 * len(orders)
    # the earlier publication date comes first, before the format: the page published first is the source
    for year, later_first in ((2040, True), (2041, False)):
        page, page_result = as_file("html", year)
        pdf, pdf_result = as_file("pdf", year)
        page_result["published"], pdf_result["published"] = "2025-01-10", "2025-01-20"
        loads = [(pdf, pdf_result), (page, page_result)] if later_first else [(page, page_result), (pdf, pdf_result)]
        for doc, result in loads:
            warehouse.load(doc, result, "0.1.0")
        assert warehouse.db.scalar("SELECT sha256 FROM current_reports WHERE year = ?", [year]) == page.sha256


def count_where(wh: Warehouse, table: str, condition: str, *params: Any) -> int:
    return int(wh.db.scalar(f"SELECT count(*) FROM {table} WHERE {condition}", list(params)))
