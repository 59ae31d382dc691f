"""Views across templates, from schema/data/concepts.toml: the 2008-2025 concept series, table 二 harmonised
across 2019 and 2021, blank totals derived and flagged; on the real corpus, in DuckDB and PostgreSQL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import load_gold

import gongkai.schema as schema
from gongkai.schema import SchemaError, load_schema
from gongkai.warehouse import DocumentInfo, open_warehouse
from gongkai.warehouse.query import open_read_only

SHANGHAI = "上海市人民政府办公厅"
APPLICANTS = ("natural_person", "commercial", "research", "public_interest", "legal_services", "other_org")


def rows(url: str, sql: str) -> list[dict[str, Any]]:
    with open_read_only(url, allow_writable_role=True) as reader:
        result = reader.run(sql)
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def gold_sum(cells: dict[str, Any], addresses: list[str]) -> float:
    return sum(cells[a] or 0 for a in addresses)


def _printed_concepts(template: str, cells: dict[str, Any]) -> set[str]:
    """The series concepts of which a report of `template` printing `cells` shows a source cell."""
    return {c.key for c in schema.CONCEPTS.series
            if any(template in s.templates and any(cell in cells for cell in s.cells) for s in c.sources)}


def test_series_gives_pingtan_2011_and_2024_side_by_side(corpus_url: str) -> None:
    found = rows(corpus_url, "SELECT * FROM concept_series WHERE agency LIKE '平潭%' ORDER BY year, concept")
    by_year: dict[int, dict[str, dict[str, Any]]] = {}
    for r in found:
        by_year.setdefault(r["year"], {})[r["concept"]] = r
    assert {2011, 2024} <= set(by_year)
    wanted = {"requests_received", "requests_answered", "granted", "partially_granted", "reviews", "lawsuits"}
    old, new = load_gold("pingtan-county-2011.html")["cells"], load_gold("pingtan-2024.html")["cells"]
    assert wanted <= set(by_year[2011]) and wanted <= set(by_year[2024])  # these concepts in both eras
    # and each era every concept it prints a source cell of (the 统计表 has no 无法提供, no carried-over rows)
    assert set(by_year[2024]) == {c.key for c in schema.CONCEPTS.series}
    assert set(by_year[2011]) == _printed_concepts("pre2019", old) < set(by_year[2024])
    assert by_year[2011]["requests_received"]["value"] == old["stats.requests_total.year"]
    assert by_year[2011]["reviews"]["value"] == old["stats.reviews.year"]
    assert by_year[2011]["lawsuits"]["value"] == old["stats.litigation.year"]
    assert by_year[2024]["requests_received"]["value"] == new["requests.new.total"]
    assert by_year[2024]["granted"]["value"] == new["requests.granted.total"]
    assert by_year[2024]["reviews"]["value"] == new["appeals.review.total"]
    lawsuits = by_year[2024]["lawsuits"]
    parts = ["appeals.litigation_direct.total", "appeals.litigation_after_review.total"]
    assert lawsuits["value"] == gold_sum(new, parts) > 0
    assert (lawsuits["match"], lawsuits["source_cells"], lawsuits["cells_shown"]) == ("sum", " + ".join(parts), 2)
    assert by_year[2011]["requests_received"]["match"] == "approximate"
    assert by_year[2024]["requests_received"]["match"] == by_year[2011]["granted"]["match"] == "same"
    assert by_year[2011]["granted"]["template"] == "pre2019" and by_year[2024]["granted"]["template"] == "2021"
    # the source address: the cell's place in the document, as cells_long keeps it
    for r in (by_year[2011]["requests_received"], by_year[2024]["requests_received"], lawsuits):
        first = r["source_cells"].split(" + ")[0]
        [cell] = rows(corpus_url, f"SELECT raw, page, table_no, row_no, col_no, document_url FROM cells_long "
                                  f"WHERE report_id = {r['report_id']} AND address = '{first}'")
        assert {k: r[k] for k in cell if k != "raw"} == {k: v for k, v in cell.items() if k != "raw"}
        assert r["raw"].split(" + ")[0] == cell["raw"] and not r["derived"]


def test_every_match_quality_appears(corpus_url: str) -> None:
    series = {r["match"] for r in rows(corpus_url, "SELECT DISTINCT match FROM concept_series")}
    assert series == {"same", "sum", "approximate"}
    proactive = {r["match"] for r in rows(corpus_url, "SELECT DISTINCT match FROM proactive_harmonised")}
    assert proactive == {"same", "approximate", "none"}
    declared = rows(corpus_url, "SELECT view_name, concept, match FROM concept_dictionary")
    assert len(declared) == sum(len(c.sources) for c in (*schema.CONCEPTS.series, *schema.CONCEPTS.proactive))


def test_a_report_with_blank_totals_gets_them_derived_and_flagged(corpus_url: str) -> None:
    """Shanghai 2019 left the 总计 of most rows of table 三 blank: they are the sums of the applicant columns."""
    gold = load_gold("shanghai-szfbgt-2019.html")["cells"]
    blank_rows = [r.key for r in schema.TABLES["requests"].rows
                  if f"requests.{r.key}.total" in gold and gold[f"requests.{r.key}.total"] is None
                  and any(gold.get(f"requests.{r.key}.{a}") is not None for a in APPLICANTS)]
    assert "granted" in blank_rows
    derived = {r["row_key"]: r for r in rows(corpus_url, f"SELECT * FROM derived_totals WHERE agency = '{SHANGHAI}'")}
    assert sorted(derived) == sorted(blank_rows)
    for row, r in derived.items():
        assert r["value"] == gold_sum(gold, [f"requests.{row}.{a}" for a in APPLICANTS]), row
        assert r["derived"] and r["rule"] == "requests.row_total" and r["parts_shown"] == len(APPLICANTS)
    # no report whose totals are printed gets one derived
    assert {r["agency"] for r in rows(corpus_url, "SELECT DISTINCT agency FROM derived_totals")} == {SHANGHAI}
    [total] = rows(corpus_url, f"SELECT * FROM requests_by_outcome WHERE agency = '{SHANGHAI}' AND applicant = 'total'")
    assert total["granted"] == derived["granted"]["value"]
    assert sorted(total["derived_rows"].split(",")) == sorted(blank_rows)
    assert total["total_handled"] == gold["requests.total_handled.total"]  # printed: kept as printed
    # the derived outcomes add up to the printed （七）总计 (requests.outcome_total)
    outcomes = [r.key for r in schema.TABLES["requests"].rows if r.key not in ("new", "carried_over", "total_handled", "carried_forward")]
    assert sum(total[k] or 0 for k in outcomes if k not in ("other_handling",)) + (total["other_handling"] or 0) == total["total_handled"]
    others = rows(corpus_url, f"SELECT derived_rows FROM requests_by_outcome WHERE agency <> '{SHANGHAI}' OR applicant <> 'total'")
    assert others and all(r["derived_rows"] is None for r in others)
    [granted] = rows(corpus_url, f"SELECT * FROM concept_series WHERE agency = '{SHANGHAI}' AND concept = 'granted'")
    assert (granted["value"], granted["derived"], granted["source_cells"]) == (derived["granted"]["value"], True, "requests.granted.total")
    [received] = rows(corpus_url, f"SELECT * FROM concept_series WHERE agency = '{SHANGHAI}' AND concept = 'requests_received'")
    assert (received["value"], received["derived"]) == (gold["requests.new.total"], False)


def test_table_two_harmonised_across_a_2019_and_a_2021_report(corpus_url: str) -> None:
    found = rows(corpus_url, "SELECT agency, year, template, concept, value, match, source_cells FROM proactive_harmonised")
    by_key = {(r["agency"], r["concept"]): r for r in found}
    old, new = load_gold("shanghai-szfbgt-2019.html")["cells"], load_gold("pingtan-2024.html")["cells"]
    pingtan = "平潭综合实验区"
    assert by_key[(SHANGHAI, "normative_documents_new")]["value"] == old["proactive.normative_documents.made"]
    assert by_key[(SHANGHAI, "normative_documents_new")]["match"] == "approximate"
    assert by_key[(pingtan, "normative_documents_new")]["value"] == new["proactive.normative_documents.issued"]
    assert by_key[(pingtan, "normative_documents_new")]["match"] == "same"
    assert by_key[(SHANGHAI, "regulations_stock")]["source_cells"] == "proactive.regulations.total_published"
    assert by_key[(pingtan, "regulations_stock")]["source_cells"] == "proactive.regulations.in_force"
    for concept in ("licensing_decisions", "penalty_decisions", "coercion_decisions"):  # the same cell in both
        column = concept.removesuffix("_decisions")
        assert by_key[(SHANGHAI, concept)]["value"] == old[f"proactive.{column}.decisions"]
        assert by_key[(pingtan, concept)]["value"] == new[f"proactive.{column}.decisions"]
    # what does not map: each template's own rows, match none, never in a report of the other template
    only_2019 = {r["concept"] for r in found if r["match"] == "none" and r["template"] == "2019"}
    only_2021 = {r["concept"] for r in found if r["match"] == "none" and r["template"] == "2021"}
    assert {"procurement_projects", "procurement_amount", "regulations_published"} <= only_2019
    assert {"fees_amount", "regulations_repealed"} <= only_2021 and not only_2019 & only_2021
    assert by_key[(SHANGHAI, "procurement_amount")]["value"] == pytest.approx(old["proactive.procurement.amount_wan_yuan"])
    assert by_key[(pingtan, "fees_amount")]["value"] == pytest.approx(new["proactive.fees.amount_wan_yuan"])
    assert not [r for r in found if r["template"] == "pre2019"]


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"duckdb:///{tmp_path / 'concepts.duckdb'}"


def test_a_fallback_source_serves_a_table_without_the_first(fresh_url: str, cached_extract: Any) -> None:
    """A 统计表 printing 接受行政诉讼、举报数 and no 行政诉讼数 gives lawsuits from it, as approximate."""
    name = "pingtan-2017.html"
    result = json.loads(json.dumps(cached_extract((Path(__file__).parent / "corpus" / "documents" / name).read_bytes(), name)))
    assert "stats.litigation_or_complaints.year" in result["cells"]
    result["cells"] = {a: v for a, v in result["cells"].items() if not a.startswith("stats.litigation.")}
    result["cells"]["stats.litigation_or_complaints.year"] = 3
    result["checks"] = []
    hints = {"agency": "平潭综合实验区", "division_code": "350128", "level": "city"}
    with open_warehouse(fresh_url) as wh:
        wh.load(DocumentInfo("9" * 64, 1, "text/html", name, **hints, year=2017), result, "test")
    [lawsuits] = rows(fresh_url, "SELECT * FROM concept_series WHERE concept = 'lawsuits'")
    assert (lawsuits["value"], lawsuits["match"], lawsuits["source_cells"]) == (3, "approximate", "stats.litigation_or_complaints.year")
    assert "举报" in lawsuits["match_note"]


@pytest.mark.postgres
@pytest.mark.parametrize("view", ["concept_series", "proactive_harmonised", "concept_dictionary", "derived_totals"])
def test_concept_views_give_the_same_rows_in_duckdb_and_postgresql(view: str, duck_corpus: str, pg_corpus: str) -> None:
    def canonical(url: str) -> list[tuple[Any, ...]]:
        with open_read_only(url) as reader:
            result = reader.run(f"SELECT * FROM {view}")
        out = [tuple(None if v is None else round(float(v), 9) if isinstance(v, int | float) else str(v) for v in row)
               for row in result.rows]
        return sorted(out, key=lambda r: tuple((v is None, str(v)) for v in r))

    duck = canonical(duck_corpus)
    assert duck
    assert canonical(pg_corpus) == duck


def test_dictionary_tags_the_2021_sub_rows_of_other_handling_2021_only(duck_corpus: str) -> None:
    tags = {r["address"]: r["templates"] for r in rows(duck_corpus, "SELECT address, templates FROM cell_dictionary")}
    for row in ("other_no_correction", "other_no_fee", "other_other"):
        assert tags[f"requests.{row}.total"] == "2021"
    assert tags["requests.other_handling.total"] == tags["requests.granted.natural_person"] == "2019,2021"
    assert tags["stats.reviews.year"] == "pre2019"


# --- concepts.toml is data: a slip is refused with one line, a new concept reaches the views ---------------

def _data_copy(tmp_path: Path, old: str, new: str) -> Path:
    data = tmp_path / "data"
    shutil.copytree(schema.DATA, data)
    path = data / "concepts.toml"
    text = path.read_text("utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), "utf-8")
    return data


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('cells = ["requests.new.total"], match = "same" }', 'cells = ["requests.new.total"], mach = "same" }',
         "series concept requests_received source #2: unknown key 'mach' (did you mean 'match'?)"),
        ('cells = ["requests.new.total"], match = "same" }', 'cells = ["requests.new.totl"], match = "same" }',
         "series concept requests_received source #2: cells names 'requests.new.totl', not a cell of template 2019 "
         "(did you mean 'requests.new.total'?)"),
        ('cells = ["appeals.review.total"], match = "same"', 'cells = ["appeals.review.total"], match = "sum"',
         "series concept reviews source #2: match 'sum' takes at least 2 cells, not 1"),
        ('cells = ["stats.reviews.year"], match = "same"', 'cells = ["stats.reviews.year"], match = "alike"',
         "series concept reviews source #1: match: Input should be 'same', 'sum', 'approximate' or 'none' (got 'alike')"),
        ('templates = ["2021"], cells = ["proactive.regulations.issued"]', 'templates = ["2022"], cells = ["proactive.regulations.issued"]',
         "proactive concept regulations_new source #2: templates names '2022', not a template with tables (did you mean '2021'?)"),
        ('derive_totals = ["requests.row_total", "appeals.row_total"]', 'derive_totals = ["requests.balance"]',
         "derive_totals names 'requests.balance', not a row_sum check of checks.toml (did you mean 'requests.row_total'?)"),
    ],
    ids=["unknown-key", "unknown-cell", "sum-of-one", "bad-match", "unknown-template", "not-a-row-sum"],
)
def test_a_slip_in_concepts_toml_is_refused_with_one_line(tmp_path: Path, old: str, new: str, message: str) -> None:
    data = _data_copy(tmp_path, old, new)
    with pytest.raises(SchemaError) as raised:
        load_schema(data)
    assert str(raised.value) == f"{data / 'concepts.toml'}: {message}"


def test_a_row_tagged_with_a_template_not_carrying_its_table_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(schema.DATA, data)
    path = data / "tables.toml"
    path.write_text(path.read_text("utf-8").replace('group = "其他处理", templates = ["2021"], en = "Outcome: other handling - other"',
                                                    'group = "其他处理", templates = ["pre2019"], en = "Outcome: other handling - other"'), "utf-8")
    with pytest.raises(SchemaError, match="table requests row other_other: templates names 'pre2019', not a template carrying"):
        load_schema(data)


def test_adding_a_concept_is_a_data_change(tmp_path: Path, duck_corpus: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A concept appended to concepts.toml appears in concept_series once views.sql is rendered: no code."""
    from gongkai.warehouse import views, views_concepts

    added = (
        '\n[[series]]\nkey = "refused"\nlabel = "不予公开"\nen = "Refused"\nsources = [\n'
        '  { templates = ["pre2019"], cells = ["stats.responses_refused.year"], match = "approximate" },\n'
        '  { templates = ["2019", "2021"], cells = ["requests.denied_state_secret.total", "requests.denied_law_prohibited.total"], match = "sum" },\n]\n'
    )
    data = _data_copy(tmp_path, "\n# Table 二:", added + "\n# Table 二:")
    monkeypatch.setattr(views_concepts, "CONCEPTS", load_schema(data).concepts)
    text = views.render(views.VIEWS_SQL.read_text(encoding="utf-8"))
    database = tmp_path / "copy.duckdb"
    shutil.copy(duck_corpus.removeprefix("duckdb:///"), database)
    with duckdb.connect(str(database)) as conn:
        conn.execute(text)
        found = conn.execute("SELECT agency, year, value, match FROM concept_series WHERE concept = 'refused' ORDER BY year").fetchall()
    hongze = load_gold("hongze-2023.pdf")["cells"]
    expected = gold_sum(hongze, ["requests.denied_state_secret.total", "requests.denied_law_prohibited.total"])
    assert ("淮安市洪泽区人民政府", 2023, expected, "sum") in found
    assert ("平潭县人民政府", 2011, 0, "approximate") in found


def test_research_doc_answers_questions_with_the_series_and_the_harmonised_views() -> None:
    """docs/research.md's outputs are checked on the demo by test_views; here, that it uses these views."""
    from research_fixtures import research_examples

    used = {view: [h for h, sql, out in research_examples() if f"FROM {view}" in sql and out]
            for view in ("concept_series", "proactive_harmonised", "derived_totals", "concept_dictionary")}
    assert all(used.values()), used
    [pingtan] = [out for _h, sql, out in research_examples() if "FROM concept_series" in sql and "lawsuits" in sql and "GROUP BY" in sql]
    assert pingtan and "2011" in pingtan and "2024" in pingtan


def test_series_reads_the_current_version_of_a_report_only(fresh_url: str, cached_extract: Any) -> None:
    """A corrected report (a second document for the same agency and year) replaces the first in the series."""
    name = "pingtan-2017.html"
    first = json.loads(json.dumps(cached_extract((Path(__file__).parent / "corpus" / "documents" / name).read_bytes(), name)))
    second = json.loads(json.dumps(first))
    second["cells"]["stats.requests_total.year"] = 12
    second["cells"]["stats.responses_total.year"] = 12
    second["cells"]["stats.responses_granted.year"] = 12
    second["checks"] = []
    hints = {"agency": "平潭综合实验区", "division_code": "350128", "level": "city"}
    with open_warehouse(fresh_url) as wh:
        wh.load(DocumentInfo("7" * 64, 1, "text/html", "v1", **hints, year=2017), first, "test")
        wh.load(DocumentInfo("8" * 64, 1, "text/html", "v2", **hints, year=2017), second, "test")
    [current] = rows(fresh_url, "SELECT report_id, sha256 FROM report_index WHERE year = 2017")
    found = rows(fresh_url, "SELECT report_id, concept, value FROM concept_series")
    assert len(found) == len(_printed_concepts("pre2019", first["cells"])) and {r["report_id"] for r in found} == {current["report_id"]}
    received = next(r["value"] for r in found if r["concept"] == "requests_received")
    assert received == (12 if current["sha256"] == "8" * 64 else first["cells"]["stats.requests_total.year"])
    assert len(rows(fresh_url, "SELECT report_id FROM reports")) == 2  # both versions kept, one current


def test_query_list_and_export_describe_the_new_views(duck_corpus: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gongkai.cli import main

    assert main(["query", "--db", duck_corpus, "--list", "--format", "json"]) == 0
    listed = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    views = ("concept_series", "proactive_harmonised", "concept_dictionary", "derived_totals")
    for view in views:
        assert listed[view]["kind"] == "view" and listed[view]["description"], view
    assert main(["export", "--db", duck_corpus, "--format", "csv", "--out", str(tmp_path), "--only", ",".join(views)]) == 0
    package = json.loads((tmp_path / "datapackage.json").read_text(encoding="utf-8"))
    fields = {r["name"]: {f["name"]: f for f in r["schema"]["fields"]} for r in package["resources"]}
    assert set(fields) == set(views)
    assert fields["concept_series"]["derived"]["type"] == "boolean" and "sum of its parts" in fields["concept_series"]["derived"]["description"]
    assert all(f["description"] for view in fields.values() for f in view.values())
