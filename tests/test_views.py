"""The analysis views (warehouse/views.sql) on the real corpus, in DuckDB and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import load_gold

from gongkai.warehouse import DocumentInfo, open_warehouse
from gongkai.warehouse.query import open_read_only
from gongkai.warehouse.views import VIEWS_SQL, cell_catalog, render

HONGZE = "淮安市洪泽区人民政府"

# Warehouses loaded with the corpus and the demo portal (DuckDB, PostgreSQL), and the PostgreSQL fixtures.


def rows(url: str, sql: str) -> list[dict[str, Any]]:
    # Some tests load a warehouse of their own and read it with the same (owner's) URL; the shared corpus and
    # demo warehouses are read as a read-only role.
    with open_read_only(url, allow_writable_role=True) as reader:
        result = reader.run(sql)
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def test_views_sql_is_generated_from_the_current_schema() -> None:
    text = VIEWS_SQL.read_text(encoding="utf-8")
    assert render(text) == text, "run: .venv/bin/python -m warehouse.views"
    assert "requests__denied_security_stability__public_interest" in text


def test_a_known_cell_appears_in_the_wide_view_with_its_report(corpus_url: str) -> None:
    [row] = rows(corpus_url, f"SELECT * FROM report_cells_wide WHERE agency = '{HONGZE}' AND year = 2023")
    assert row["requests__new__total"] == 21
    assert row["appeals__review__upheld"] == 10
    assert row["proactive__fees__amount_wan_yuan"] == pytest.approx(7730.28)
    assert row["requests__other_no_correction__total"] is None  # the report prints the single 2019-style row
    assert (row["division_code"], row["level"], row["province"], row["template"]) == ("320813", "county", "江苏省", "2021")
    assert row["checks_failing"] == 2
    assert row["document_url"] == "https://example.gov.cn/hongze-2023.pdf"
    # every cell address of the schema is a column, named table__row__column
    assert {c.wide_column for c in cell_catalog()} <= set(row)


def wide_by_year(wide: dict, year: int) -> dict:
    [row] = [r for r in wide.values() if r["year"] == year]
    return row


def test_wide_view_holds_exactly_the_cells_of_each_report(corpus_url: str) -> None:
    long = rows(corpus_url, "SELECT report_id, address, value FROM cells_long WHERE report_id IN (SELECT report_id FROM report_cells_wide)")
    wide = {r["report_id"]: r for r in rows(corpus_url, "SELECT * FROM report_cells_wide")}
    assert len(long) > 700
    for cell in long:
        assert wide[cell["report_id"]][cell["address"].replace(".", "__")] == cell["value"], cell
    # one row per agency and year: the three pre-2019 reports (2011 and 2017 with a 统计表), shanghai 2019,
    # hongze, zibo, pingtan
    assert sorted((r["year"], r["status"]) for r in wide.values()) == [
        (2011, "extracted"), (2013, "no_standard_tables"), (2017, "extracted"), (2019, "extracted"),
        (2023, "extracted"), (2023, "extracted"), (2024, "extracted"),
    ]
    assert wide_by_year(wide, 2011)["stats__proactive_total__cumulative"] == 1516


def test_cells_long_keeps_raw_text_provenance_and_url(corpus_url: str) -> None:
    [cell] = rows(
        corpus_url,
        f"SELECT * FROM cells_long WHERE agency = '{HONGZE}' AND address = 'proactive.fees.amount_wan_yuan'",
    )
    assert (cell["table_name"], cell["row_key"], cell["column_key"]) == ("proactive", "fees", "amount_wan_yuan")
    assert cell["raw"] == "7730.28" and cell["value"] == pytest.approx(7730.28)
    assert cell["page"] is not None and cell["year"] == 2023 and cell["template"] == "2021"
    assert cell["document_url"] == "https://example.gov.cn/hongze-2023.pdf"


def test_hongze_table_four_failures_show_in_check_results(corpus_url: str) -> None:
    failing = rows(
        corpus_url,
        f"SELECT rule, target, expected, actual, difference FROM check_results "
        f"WHERE agency = '{HONGZE}' AND status = 'fail' ORDER BY target",
    )
    assert failing == [
        {"rule": "appeals.row_total", "target": "appeals.litigation_after_review.total", "expected": 5, "actual": 0, "difference": -5},
        {"rule": "appeals.row_total", "target": "appeals.review.total", "expected": 11, "actual": 0, "difference": -11},
    ]
    gold = {(c["rule"], c["target"]) for c in load_gold("hongze-2023.pdf")["failing_checks"] if c["status"] == "fail"}
    assert {(f["rule"], f["target"]) for f in failing} == gold


def test_check_error_rates_by_year_province_and_level(corpus_url: str) -> None:
    found = rows(corpus_url, "SELECT * FROM check_error_rates WHERE rule = 'appeals.row_total'")
    by_year = {r["year"]: r for r in found if r["breakdown"] == "year"}
    # 2023: hongze and zibo, three rows of table 四 each; hongze fails two of its three
    assert (by_year[2023]["n_checks"], by_year[2023]["n_fail"], by_year[2023]["n_incomplete"]) == (6, 2, 0)
    assert by_year[2023]["fail_rate"] == pytest.approx(2 / 6)
    by_province = {r["province"]: r for r in found if r["breakdown"] == "province"}
    assert by_province["江苏省"]["fail_rate"] == pytest.approx(2 / 3)
    assert by_province["山东省"]["fail_rate"] == 0
    by_level = {r["level"]: r for r in found if r["breakdown"] == "level"}
    assert by_level["county"]["n_fail"] == 2 and by_level["department"]["n_fail"] == 0


def test_coverage_marks_reports_non_reports_pre_2019_and_gaps(corpus_url: str) -> None:
    found = rows(corpus_url, "SELECT agency, year, coverage, reason, status FROM coverage")
    by_key = {(r["agency"], r["year"]): r for r in found if r["coverage"] != "not_a_report"}
    not_reports = [r for r in found if r["coverage"] == "not_a_report"]
    assert len(not_reports) == 2  # the letter, and the national template itself (issue 11: a blank template is not a report)
    [letter] = [r for r in not_reports if "函" in r["reason"]]
    assert letter["status"] == "not_a_report" and "函" in letter["reason"]
    for agency, year in (("平潭综合实验区地方税务局", 2013),):
        assert by_key[(agency, year)]["coverage"] == "not_extractable"
        assert by_key[(agency, year)]["reason"] == "pre-2019 report: no national standard tables"
    # the pre-2019 统计表 is read (table stats): that agency-year is extracted
    assert by_key[("平潭县人民政府", 2011)]["coverage"] == "extracted"
    assert by_key[(HONGZE, 2023)]["coverage"] == "extracted_failing_checks"
    assert by_key[("淄博市统计局", 2023)]["coverage"] == "extracted"
    assert by_key[("平潭综合实验区", 2024)]["coverage"] == "extracted"
    # the years of the national templates where an agency has no report are gaps
    assert by_key[("上海市人民政府办公厅", 2020)]["coverage"] == "not_found"
    assert by_key[(HONGZE, 2024)]["coverage"] == "not_found"
    assert ("平潭县人民政府", 2012) not in by_key  # before the national templates, no expectation


def test_requests_by_outcome_harmonises_other_handling(corpus_url: str) -> None:
    totals = {
        (r["agency"], r["year"]): r
        for r in rows(corpus_url, "SELECT * FROM requests_by_outcome WHERE applicant = 'total'")
    }
    pingtan = load_gold("pingtan-2024.html")["cells"]
    split = [pingtan[f"requests.{k}.total"] for k in ("other_no_correction", "other_no_fee", "other_other")]
    row = totals[("平潭综合实验区", 2024)]
    assert row["other_handling"] == sum(split) == 3 and row["other_handling_printed"] is None
    assert row["unavailable_not_held"] == 75 and row["total_handled"] == 218
    assert row["unavailable"] == sum(pingtan[f"requests.unavailable_{k}.total"] for k in ("not_held", "needs_creation", "unclear"))
    hongze = totals[(HONGZE, 2023)]  # template 2021, printed with the single （六）其他处理 row
    assert hongze["other_handling"] == hongze["other_handling_printed"] == 0
    assert hongze["unavailable_not_held"] == 10 and hongze["total_handled"] == 21
    assert totals[("上海市人民政府办公厅", 2019)]["template"] == "2019"
    assert totals[("上海市人民政府办公厅", 2019)]["total_handled"] == 805
    applicants = {r["applicant"] for r in rows(corpus_url, "SELECT DISTINCT applicant FROM requests_by_outcome")}
    assert applicants == {"natural_person", "commercial", "research", "public_interest", "legal_services", "other_org", "total"}


# --- year over year: the corpus has one year per agency, so a second year is loaded next to zibo 2023 ---

@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"duckdb:///{tmp_path / 'yoy.duckdb'}"


def test_year_over_year_compares_consecutive_reports(fresh_url: str, cached_extract: Any) -> None:
    name = "zibo-stats-2023.txt"
    data = (Path(__file__).parent / "corpus" / "documents" / name).read_bytes()
    first = dict(cached_extract(data, name))
    cells = first["cells"]
    second = json.loads(json.dumps(first))
    second["cells"] = dict(cells)
    for column in ("natural_person", "total"):  # carried over as the previous year carried forward ...
        second["cells"][f"requests.carried_over.{column}"] = cells[f"requests.carried_forward.{column}"]
    second["cells"]["requests.carried_over.commercial"] = (cells["requests.carried_forward.commercial"] or 0) + 2  # ... but one
    second["cells"]["proactive.normative_documents.issued"] = 3
    second["cells"]["proactive.normative_documents.repealed"] = 1
    second["cells"]["proactive.normative_documents.in_force"] = cells["proactive.normative_documents.in_force"] + 2
    second["cells"]["proactive.regulations.in_force"] = None
    hints = {"agency": "淄博市统计局", "division_code": "370300", "level": "department"}
    with open_warehouse(fresh_url) as wh:
        wh.load(DocumentInfo("a" * 64, 1, "text/plain", "zibo-2023", **hints, year=2023), first, "test")
        wh.load(DocumentInfo("b" * 64, 1, "text/plain", "zibo-2024", **hints, year=2024), second, "test")
    found = {r["target"]: r for r in rows(fresh_url, "SELECT * FROM year_over_year")}
    assert {r["year"] for r in found.values()} == {2024}
    assert found["requests.carried_over.total"]["status"] == "pass"
    commercial = found["requests.carried_over.commercial"]
    assert (commercial["status"], commercial["difference"]) == ("fail", 2)
    assert commercial["previous_address"] == "requests.carried_forward.commercial"
    normative = found["proactive.normative_documents.in_force"]
    assert (normative["expected"], normative["actual"], normative["status"]) == (cells["proactive.normative_documents.in_force"] + 2,) * 2 + ("pass",)
    regulations = found["proactive.regulations.in_force"]
    assert regulations["actual"] is None
    assert regulations["status"] == "incomplete"  # this year blank, last year known: cannot be decided
    # the warehouse-level checks join the document checks in check_results and its rates
    warehouse_checks = rows(fresh_url, "SELECT rule, target, status FROM check_results WHERE source = 'warehouse' AND status = 'fail'")
    assert warehouse_checks == [{"rule": "requests.year_over_year", "target": "requests.carried_over.commercial", "status": "fail"}]


def test_year_over_year_compares_only_cells_both_reports_show(fresh_url: str, cached_extract: Any) -> None:
    """As schema.reconcile.year_over_year: no requests table in either report, no requests comparison."""
    name = "zibo-stats-2023.txt"
    first = json.loads(json.dumps(cached_extract((Path(__file__).parent / "corpus" / "documents" / name).read_bytes(), name)))
    first["cells"] = {a: v for a, v in first["cells"].items() if a.startswith("proactive.")}
    first["checks"] = []
    second = json.loads(json.dumps(first))
    second["cells"]["proactive.regulations.issued"] = 1  # a different report: not the same cells as the first
    hints = {"agency": "淄博市统计局", "division_code": "370300", "level": "department"}
    with open_warehouse(fresh_url) as wh:
        wh.load(DocumentInfo("c" * 64, 1, "text/plain", "zibo-2023", **hints, year=2023), first, "test")
        wh.load(DocumentInfo("d" * 64, 1, "text/plain", "zibo-2024", **hints, year=2024), second, "test")
    found = rows(fresh_url, "SELECT rule, target FROM year_over_year ORDER BY target")
    assert found == [
        {"rule": "proactive.in_force_year_over_year", "target": "proactive.normative_documents.in_force"},
        {"rule": "proactive.in_force_year_over_year", "target": "proactive.regulations.in_force"},
    ]


# --- the demo portal, crawled by the nightly flow ---------------------------------------------------------

def test_demo_portal_crawl_in_the_views(demo_url: str) -> None:
    [hongze] = rows(demo_url, f"SELECT * FROM report_cells_wide WHERE agency = '{HONGZE}' AND year = 2023")
    assert hongze["requests__new__total"] == 21 and hongze["checks_failing"] == 2
    assert hongze["document_url"].startswith("http://127.0.0.1:") and hongze["province"] == "江苏省"
    coverage = {(r["agency"], r["year"]): r for r in rows(demo_url, "SELECT * FROM coverage")}
    corrupt = coverage[(HONGZE, 2022)]  # the demo serves a corrupt PDF as hongze's 2022 report
    assert corrupt["coverage"] == "not_extractable" and corrupt["reason"].startswith("unreadable: ") and "PDF" in corrupt["reason"]
    assert coverage[("平潭县人民政府", 2011)]["coverage"] == "extracted"  # its 统计表 read (table stats)
    # Its row totals are blank: by the reference's blank-subtotal clause its column total is incomplete, not a
    # failure, so it no longer counts as failing (it did before that clause).
    assert coverage[("上海市人民政府办公厅", 2019)]["coverage"] == "extracted"
    assert coverage[("上海市人民政府办公厅", 2019)]["checks_incomplete"] > 0
    assert coverage[("淄博市统计局", 2023)]["coverage"] == "extracted"
    # the letter in pingtan's report column is refused by its title: never downloaded, so never in coverage
    assert not [r for r in coverage.values() if r["coverage"] == "not_a_report"]
    levels = dict((r["agency"], r["level"]) for r in rows(demo_url, "SELECT DISTINCT agency, level FROM report_index"))
    assert levels[HONGZE] == "county" and levels["上海市人民政府办公厅"] == "province"
    failing = rows(demo_url, "SELECT agency, rule, target FROM check_results WHERE status = 'fail' ORDER BY agency, target")
    assert [(r["rule"], r["target"]) for r in failing if r["agency"] == HONGZE] == [
        ("appeals.row_total", "appeals.litigation_after_review.total"), ("appeals.row_total", "appeals.review.total"),
    ]


def test_research_doc_shows_what_its_queries_return_on_the_demo(demo_url: str) -> None:
    from research_fixtures import research_examples

    from gongkai.warehouse.query import to_table

    examples = research_examples()
    assert len(examples) >= 12 and all(output for _h, _sql, output in examples)
    with open_read_only(demo_url) as reader:
        for heading, sql, output in examples:
            printed = to_table(reader.run(sql))
            if demo_url.startswith("duckdb"):
                assert printed == output, f"{heading}: docs/research.md shows\n{output}\nthe demo warehouse gives\n{printed}"
            else:  # PostgreSQL may order names by another collation: the same lines, in some order
                assert sorted(printed.splitlines()) == sorted(str(output).splitlines()), heading


@pytest.mark.postgres
@pytest.mark.parametrize(
    "view",
    ["report_cells_wide", "cells_long", "requests_by_outcome", "check_results", "check_error_rates", "coverage",
     "year_over_year", "cell_dictionary", "report_index"],
)
def test_views_give_the_same_rows_in_duckdb_and_postgresql(view: str, duck_corpus: str, pg_corpus: str) -> None:
    def canonical(url: str) -> list[tuple[Any, ...]]:
        with open_read_only(url) as reader:
            result = reader.run(f"SELECT * FROM {view}")
        keep = [i for i, c in enumerate(result.columns) if c not in ("loaded_at", "created_at")]
        out = [tuple(None if row[i] is None else round(float(row[i]), 9) if isinstance(row[i], int | float) else str(row[i])
                     for i in keep) for row in result.rows]
        return sorted(out, key=lambda r: tuple((v is None, str(v)) for v in r))

    duck = canonical(duck_corpus)
    assert duck or view == "year_over_year"  # the corpus has no agency with two consecutive years
    assert canonical(pg_corpus) == duck


def test_coverage_counts_a_report_filed_in_two_formats_once(fresh_url: str, tmp_path: Path, cached_extract: Any) -> None:
    """The PDF carrying the HTML page's cells is linked to the HTML's report (no reports row of its own)."""
    from research_fixtures import DOCUMENTS, HINTS

    from gongkai.flows.ingest import ingest_bytes
    from gongkai.warehouse import open_archive

    archive = open_archive(tmp_path / "archive")
    with open_warehouse(fresh_url) as wh:
        for name in ("pingtan-2024.html", "pingtan-2024-libreoffice.pdf"):
            ingest_bytes((DOCUMENTS / name).read_bytes(), name=name, warehouse=wh, archive=archive, year=2024,
                         extract=cached_extract, **HINTS["pingtan-2024.html"])
    found = rows(fresh_url, "SELECT coverage, reason FROM coverage WHERE agency = '平潭综合实验区' AND year = 2024")
    assert found == [{"coverage": "extracted", "reason": None}]


@pytest.mark.postgres
def test_a_second_writer_waits_for_the_views_being_recreated_and_leaves_them(postgres_url: str) -> None:
    """Views are re-created under the migration lock, and only if still stale once it is held."""
    import threading
    import time

    import psycopg

    open_warehouse(postgres_url).close()
    text = VIEWS_SQL.read_text(encoding="utf-8")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP VIEW views_version")
        conn.execute("CREATE VIEW views_version AS SELECT CAST('old' AS TEXT) AS digest")  # stale views
    opened: list[BaseException | None] = []

    def second_writer() -> None:
        try:
            open_warehouse(postgres_url).close()
            opened.append(None)
        except BaseException as exc:  # reported by the main thread
            opened.append(exc)

    with psycopg.connect(postgres_url) as first:  # a writer that found the views stale too, and got the lock first
        first.execute("SELECT pg_advisory_xact_lock(hashtext('gongkai-migrate'))")
        thread = threading.Thread(target=second_writer)
        thread.start()
        time.sleep(1.0)
        assert thread.is_alive()  # waiting for the lock
        first.execute(text)  # type: ignore[arg-type]
        oid = first.execute("SELECT 'views_version'::regclass::oid").fetchone()
        first.commit()
    thread.join(30)
    assert opened == [None]
    with psycopg.connect(postgres_url) as conn:  # the views the first writer made, not made again
        assert conn.execute("SELECT 'views_version'::regclass::oid").fetchone() == oid


def test_cumulative_chain_of_the_statistics_table(fresh_url: str, cached_extract: Any) -> None:
    """stats.cumulative_chain: 2011 + 2012 of one agency; 2012's 历年累计 chains for one row and not another."""
    name = "pingtan-county-2011.html"
    first = json.loads(json.dumps(cached_extract((Path(__file__).parent / "corpus" / "documents" / name).read_bytes(), name)))
    cells = first["cells"]
    second = json.loads(json.dumps(first))
    second["cells"]["stats.proactive_total.year"] = 100
    second["cells"]["stats.proactive_total.cumulative"] = cells["stats.proactive_total.cumulative"] + 100  # chains
    second["cells"]["stats.proactive_website.year"] = 90
    second["cells"]["stats.proactive_website.cumulative"] = cells["stats.proactive_website.cumulative"]  # forgot 2012
    second["cells"]["stats.proactive_gazette.year"] = 0  # 7 of 2011 + 0 = the 7 printed again: chains
    second["checks"] = []
    hints = {"agency": "平潭县人民政府", "division_code": "350128", "level": "county"}
    with open_warehouse(fresh_url) as wh:
        wh.load(DocumentInfo("e" * 64, 1, "text/html", "pingtan-county-2011", **hints, year=2011), first, "test")
        wh.load(DocumentInfo("f" * 64, 1, "text/html", "pingtan-county-2012", **hints, year=2012), second, "test")
    found = {r["target"]: r for r in rows(fresh_url, "SELECT * FROM check_results WHERE rule = 'stats.cumulative_chain'")}
    assert found["stats.proactive_total.cumulative"]["status"] == "pass"
    website = found["stats.proactive_website.cumulative"]
    assert (website["status"], website["expected"], website["actual"]) == ("fail", 1509 + 90, 1509)
    assert found["stats.reviews.cumulative"]["status"] == "pass"  # 0 + 0 = 0
    assert len(found) == len({a.rsplit(".", 1)[0] for a in cells})  # one per row both reports print
    rates = rows(fresh_url, "SELECT n_checks, n_fail FROM check_error_rates WHERE rule = 'stats.cumulative_chain' AND breakdown = 'year'")
    assert rates == [{"n_checks": len(found), "n_fail": 1}]
