"""Which version of a report is current, and which agency a name is, on real DuckDB and real PostgreSQL.

Every value was always stored; these are the ways the wrong version used to be *shown* as current
(issue 13): a changed detail page without cells, a notice ingested as the report, one file linked
from two agencies' portals, two versions in one run, one agency under two names.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DOCUMENTS

from gongkai.cli import main
from gongkai.flows.ingest import extract_document, ingest_bytes
from gongkai.warehouse.archive import open_archive, sha256_of
from gongkai.warehouse.db import connect
from gongkai.warehouse.migrate import SCHEMA_VERSION, SQL_DIR, current_version
from gongkai.warehouse.runs import recorded_run
from gongkai.warehouse.store import DocumentInfo, Warehouse, open_warehouse

PINGTAN = {"agency": "平潭综合实验区", "division_code": "350128", "level": "city"}


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"


_results: dict[str, dict[str, Any]] = {}


def extracted(name: str) -> dict[str, Any]:
    """The real extraction of a corpus document (once per session), as a fresh copy."""
    if name not in _results:
        _results[name] = extract_document((DOCUMENTS / name).read_bytes(), name).as_json()
    return copy.deepcopy(_results[name])


def detail_page(views: int) -> bytes:
    """A portal's detail page for the 2024 report: the report itself is the attachment; a view counter."""
    return (
        "<html><head><meta charset='utf-8'><title>平潭综合实验区2024年政府信息公开工作年度报告</title></head><body>"
        "<h1>平潭综合实验区2024年政府信息公开工作年度报告</h1><p>发布时间：2025-01-20 来源：综合实验区管委会办公室</p>"
        f"<p>附件：<a href='/files/report-2024.pdf'>平潭综合实验区2024年政府信息公开工作年度报告.pdf</a></p><p>浏览次数：{views}</p>"
        "</body></html>"
    ).encode()


def current(wh: Warehouse) -> list[tuple[Any, ...]]:
    return wh.db.query(
        "SELECT a.name, r.year, r.sha256, r.n_cells > 0 FROM current_reports r JOIN agencies a USING (agency_id) ORDER BY a.name, r.year"
    )


def test_a_changed_detail_page_without_cells_never_replaces_its_attachment(warehouse_url: str, tmp_path: Path) -> None:
    archive = open_archive(tmp_path / "archive")
    attachment = (DOCUMENTS / "pingtan-2024-libreoffice.pdf").read_bytes()
    with open_warehouse(warehouse_url) as wh:
        def crawl(data: bytes, name: str) -> Any:  # as the nightly crawl passes the registry's identity
            return ingest_bytes(data, name=name, year=2024, warehouse=wh, archive=archive, **PINGTAN)

        page = crawl(detail_page(17), "content_17.html")
        report = crawl(attachment, "report-2024.pdf")
        assert page.report_id != report.report_id and wh.cells_of(report.report_id)
        assert current(wh) == [("平潭综合实验区", 2024, sha256_of(attachment), True)]
        changed_page = crawl(detail_page(18), "content_17.html")  # the next night: one more view
        assert changed_page.outcome == "changed" and changed_page.version == 3
        assert (changed_page.reason or "").startswith("warning: kept, not current: no cells")
        assert current(wh) == [("平潭综合实验区", 2024, sha256_of(attachment), True)]
        kept = wh.db.query("SELECT coverage, sha256 FROM coverage WHERE year = 2024")
        assert sorted(kept) == sorted([
            ("extracted", sha256_of(attachment)), ("kept_without_cells", page.sha256), ("kept_without_cells", changed_page.sha256)
        ])


def test_a_notice_ingested_as_the_report_does_not_become_current(
    warehouse_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`gongkai ingest notice.html --agency X --year Y` after the real report, then the real report again."""
    folder = tmp_path / "files"
    folder.mkdir()
    real = folder / "zibo-stats-2023.txt"
    real.write_bytes((DOCUMENTS / real.name).read_bytes())
    notice = folder / "notice.html"
    notice.write_text(
        "<html><head><meta charset='utf-8'><title>淄博市统计局2023年政府信息公开工作年度报告</title></head><body>"
        "<p>淄博市统计局2023年政府信息公开工作年度报告已编制完成，全文见附件。</p></body></html>", encoding="utf-8",
    )
    common = ["--db", warehouse_url, "--archive", str(tmp_path / "archive"), "--json"]
    os.environ["GONGKAI_PREFECT_RESULTS"] = str(tmp_path / "results")
    try:
        def ingest(*args: str) -> dict[str, Any]:
            assert main(["ingest", *args, *common]) == 0
            summary: dict[str, Any] = json.loads(capsys.readouterr().out)
            return summary

        first = ingest(str(real))
        ingest(str(notice), "--agency", "淄博市统计局", "--year", "2023")
        again = ingest(str(real))
    finally:
        os.environ.pop("GONGKAI_PREFECT_RESULTS", None)
    assert [d["outcome"] for d in again["documents"]] == ["unchanged"]
    with open_warehouse(warehouse_url) as wh:
        assert current(wh) == [("淄博市统计局", 2023, first["documents"][0]["sha256"], True)]
        assert int(wh.db.scalar("SELECT count(*) FROM reports WHERE n_cells = 0 AND year = 2023")) == 1  # the notice is kept


def test_one_file_linked_from_two_agencies_portals_is_current_for_both_every_night(warehouse_url: str, tmp_path: Path) -> None:
    archive = open_archive(tmp_path / "archive")
    data = (DOCUMENTS / "zibo-stats-2023.txt").read_bytes()
    portals = [
        {"agency": "淄博市统计局", "division_code": "370300", "level": "department"},
        {"agency": "淄博市人民政府办公室", "division_code": "370300", "level": "department"},
    ]
    with open_warehouse(warehouse_url) as wh:
        for night in range(3):
            outcomes = [
                ingest_bytes(data, name="report.txt", year=2023, warehouse=wh, archive=archive, **portal).outcome for portal in portals
            ]
            assert outcomes == (["new", "new"] if night == 0 else ["unchanged", "unchanged"])
            assert [(name, year) for name, year, *_ in current(wh)] == [("淄博市人民政府办公室", 2023), ("淄博市统计局", 2023)]
        assert int(wh.db.scalar("SELECT count(*) FROM reports")) == 2  # no new row night after night


@pytest.fixture
def second_url(warehouse_url: str, tmp_path: Path) -> Iterator[str]:
    """Another empty warehouse on the same engine."""
    if warehouse_url.startswith("duckdb"):
        yield f"duckdb:///{tmp_path / 'second.duckdb'}"
        return
    import psycopg

    server, name = warehouse_url.rsplit("/", 1)[0], f"second_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    yield f"{server}/{name}"
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


def test_two_versions_in_one_run_give_the_same_current_report_whichever_loads_last(warehouse_url: str, second_url: str) -> None:
    original = extracted("zibo-stats-2023.txt")
    corrected = copy.deepcopy(original)
    corrected["cells"]["requests.new.natural_person"] = 99
    docs = {
        name: (DocumentInfo(sha256_of(name.encode()), 9, "text/plain", f"{name}.txt"), result)
        for name, result in (("original", original), ("corrected", corrected))
    }

    def current_sha(wh: Warehouse) -> str:
        return str(wh.db.scalar("SELECT sha256 FROM current_reports WHERE status = 'extracted'"))

    for url, order in ((warehouse_url, ["original", "corrected"]), (second_url, ["corrected", "original"])):
        with open_warehouse(url) as wh, recorded_run(wh, "ingest", {}) as run:  # one run; extractions finish in either order
            for name in order:
                run.add(wh.load(*docs[name], "0.1.0", run.run_id))
    with open_warehouse(warehouse_url) as one, open_warehouse(second_url) as other:
        assert current_sha(one) == current_sha(other)
    with open_warehouse(warehouse_url) as wh:
        # a later run that finds a correction makes it current (the republished report) ...
        later = copy.deepcopy(original)
        later["cells"]["requests.new.natural_person"] = 7
        with recorded_run(wh, "ingest", {}) as run:
            later_doc = DocumentInfo(sha256_of(b"later"), 5, "text/plain", "later.txt")
            wh.load(later_doc, later, "0.1.0", run.run_id)
        assert current_sha(wh) == later_doc.sha256
        # ... and a report with a later publication date beats one found later without a date
        dated = copy.deepcopy(original)
        dated["cells"]["requests.new.natural_person"] = 8
        dated["published"] = "2024-03-01"
        dated_doc = DocumentInfo(sha256_of(b"dated"), 5, "text/plain", "dated.txt")
        with recorded_run(wh, "ingest", {}) as run:
            wh.load(dated_doc, dated, "0.1.0", run.run_id)
        with recorded_run(wh, "ingest", {}) as run:
            latest = copy.deepcopy(later)
            latest["cells"]["requests.new.natural_person"] = 6
            wh.load(DocumentInfo(sha256_of(b"latest"), 5, "text/plain", "latest.txt"), latest, "0.1.0", run.run_id)
        assert current_sha(wh) == dated_doc.sha256


def test_one_agency_under_two_names_is_one_agency_and_year_over_year_runs(warehouse_url: str) -> None:
    report_2024 = extracted("pingtan-2024.html")
    assert report_2024["agency"] == "平潭综合实验区"
    report_2023 = copy.deepcopy(report_2024)  # as 平潭's 2021 report did: it names itself with the province
    report_2023["agency"], report_2023["year"] = "福建省平潭综合实验区", 2023
    report_2023["cells"]["requests.new.total"] = (report_2023["cells"]["requests.new.total"] or 0) + 1
    with open_warehouse(warehouse_url) as wh:
        first = wh.load(DocumentInfo(sha256_of(b"2023"), 4, "text/html", "2023.html"), report_2023, "0.1.0")
        second = wh.load(DocumentInfo(sha256_of(b"2024"), 4, "text/html", "2024.html"), report_2024, "0.1.0")
        assert (first.outcome, second.outcome) == ("new", "new")
        agencies = wh.db.query("SELECT DISTINCT agency_id FROM reports")
        assert len(agencies) == 1
        # the registry names it with its code and the 管委会 form: the same agency, adopted with the code
        assert wh.resolve_agency("平潭综合实验区管理委员会", "350128", "city") == agencies[0][0]
        assert wh.db.query("SELECT division_code FROM agencies") == [("350128",)]
        aliases = {name for (name,) in wh.db.query("SELECT name FROM agency_aliases")}
        assert aliases == {"福建省平潭综合实验区", "平潭综合实验区", "平潭综合实验区管理委员会"}
        yoy = wh.db.query("SELECT DISTINCT year FROM year_over_year")
        assert yoy == [(2024,)]


def test_names_that_only_look_alike_stay_different_agencies(warehouse_url: str) -> None:
    with open_warehouse(warehouse_url) as wh:
        resolve = wh.resolve_agency
        assert resolve("上海市人民政府办公厅") != resolve("北京市人民政府办公厅")  # the province is all that tells them apart
        assert resolve("广东省公安厅") != resolve("公安厅")
        nanjing, fuzhou = resolve("南京市鼓楼区人民政府"), resolve("福州市鼓楼区人民政府")
        assert nanjing != fuzhou
        assert resolve("鼓楼区人民政府") not in (nanjing, fuzhou)  # which 鼓楼区? neither: a name of its own
        hongze = resolve("淮安市洪泽区人民政府")
        assert resolve("洪泽区人民政府") == hongze == resolve("江苏省淮安市洪泽区人民政府")  # one 洪泽区: the city prefix may go
        assert resolve("平潭综合实验区地方税务局", "350128") != resolve("平潭综合实验区", "350128")
        # two division codes are two agencies, whatever their names
        assert resolve("鼓楼区人民政府", "320106") != resolve("鼓楼区人民政府", "350102")


def test_a_version_2_warehouse_gets_aliases_of_its_agencies(warehouse_url: str) -> None:
    db = connect(warehouse_url)
    try:  # a warehouse made before version 3, with one agency and its report
        with db.transaction():
            for name in ("schema.sql", "002_current_reports_rank.sql"):
                db.execute_script((SQL_DIR / name).read_text(encoding="utf-8"))
            db.execute("INSERT INTO schema_meta (key, value) VALUES ('schema_version', '2')")
            db.execute("INSERT INTO agencies (name, name_key, created_at) VALUES ('平潭综合实验区', '平潭综合实验区', now())")
            db.execute("INSERT INTO runs (run_id, kind, params, status, started_at) VALUES (7, 'nightly', '{}', 'completed', '2024-01-01 02:00:00')")
            for version, revision, run_id, loaded_at in ((1, 1, 7, "2024-01-01 02:05:00"), (2, 1, None, "2024-02-01 00:00:00"),
                                                         (2, 2, None, "2024-03-01 00:00:00")):
                db.execute(
                    "INSERT INTO reports (report_key, version, revision, sha256, status, warnings, n_cells, checks_failing, "
                    "checks_incomplete, extractor_version, fingerprint, run_id, loaded_at) "
                    "VALUES ('1:2023', ?, ?, ?, 'extracted', '[]', 1, 0, 0, 'v', 'f', ?, ?)",
                    [version, revision, f"sha{version}", run_id, loaded_at],
                )
    finally:
        db.close()
    with open_warehouse(warehouse_url) as wh:
        assert current_version(wh.db) == SCHEMA_VERSION >= 3  # through version 3 to the latest
        found = wh.db.query("SELECT version, revision, CAST(found_at AS TEXT) FROM reports ORDER BY version, revision")
        assert found == [(1, 1, "2024-01-01 02:00:00"), (2, 1, "2024-02-01 00:00:00"), (2, 2, "2024-02-01 00:00:00")]
        assert wh.db.query("SELECT version, revision FROM current_reports") == [(2, 2)]
        assert wh.db.query("SELECT name, identity_key FROM agency_aliases") == [("平潭综合实验区", "平潭综合实验区")]
        assert wh.resolve_agency("福建省平潭综合实验区") == wh.db.scalar("SELECT agency_id FROM agencies")
