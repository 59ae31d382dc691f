"""Accuracy on the real corpus, cell by cell against gold (tests/corpus, copied from ../shared/corpus)."""

from __future__ import annotations

import math

import pytest
from conftest import DOCUMENTS, gold_files, load_gold

from gongkai.extractors.extract import NOT_A_REPORT, extract_report

GOLD = {path.name.removesuffix(".json"): load_gold(path.name.removesuffix(".json")) for path in gold_files()}


@pytest.fixture(scope="module")
def extracted() -> dict[str, dict]:
    return {name: extract_report((DOCUMENTS / name).read_bytes(), name) for name in GOLD}


def same(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), abs_tol=1e-6)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(GOLD))
def test_every_gold_cell_and_no_extra(name: str, extracted: dict[str, dict]) -> None:
    gold, out = GOLD[name], extracted[name]
    wrong = {a: (v, out["cells"].get(a, "missing")) for a, v in gold["cells"].items() if not (a in out["cells"] and same(out["cells"][a], v))}
    assert wrong == {}
    assert sorted(set(out["cells"]) - set(gold["cells"])) == []


@pytest.mark.parametrize("name", sorted(GOLD))
def test_template_year_agency(name: str, extracted: dict[str, dict]) -> None:
    gold, out = GOLD[name], extracted[name]
    assert out["template"] == gold["template"]
    assert out["year"] == gold["year"]
    if gold["agency"]:
        assert out["agency"] and (gold["agency"] in out["agency"] or out["agency"] in gold["agency"])
    else:
        assert out["agency"] is None


@pytest.mark.parametrize("name", sorted(GOLD))
def test_failing_checks_with_status(name: str, extracted: dict[str, dict]) -> None:
    gold, out = GOLD[name], extracted[name]
    seen = {(c["rule"], c["target"], c["status"]) for c in out["checks"] if c["status"] != "pass"}
    wanted = {(c["rule"], c["target"], c["status"]) for c in gold["failing_checks"]}
    assert seen == wanted


def test_negatives_are_not_reports_or_have_no_cells(extracted: dict[str, dict]) -> None:
    assert extracted["pingtan-han-2014-notreport.txt"]["status"] == NOT_A_REPORT
    # a pre-2019 report without a 统计表 has no cells (pingtan-county-2011 was here until its 统计表 was read: issue 9)
    for name in ("pingtan-dishuiju-2013.txt",):
        assert extracted[name]["cells"] == {}
        assert extracted[name]["template"] == "pre2019"
        assert extracted[name]["status"] == "no_standard_tables"


def test_pre2019_statistics_tables_are_read(extracted: dict[str, dict]) -> None:
    for name in ("pingtan-county-2011.html", "pingtan-2017.html"):
        out = extracted[name]
        assert (out["status"], out["template"]) == ("extracted", "pre2019")
        assert {c["rule"] for c in out["checks"]} == {"stats.channel_sum", "stats.response_sum"}
        assert all(c["status"] == "pass" for c in out["checks"])


def test_provenance_points_at_the_printed_cell(extracted: dict[str, dict]) -> None:
    out = extracted["shanghai-szfbgt-2019.html"]
    prov = out["provenance"]["proactive.procurement.amount_wan_yuan"]
    assert prov["raw"] == "251000元" and out["cells"]["proactive.procurement.amount_wan_yuan"] == 25.1
    assert set(out["provenance"]) == set(out["cells"])
    hongze = extracted["hongze-2023.pdf"]["provenance"]["requests.carried_forward.total"]
    assert hongze["page"] == 4 and hongze["bbox"]


def test_hongze_table_four_failures_are_kept_as_published(extracted: dict[str, dict]) -> None:
    checks = {c["target"]: c for c in extracted["hongze-2023.pdf"]["checks"] if c["rule"] == "appeals.row_total"}
    review = checks["appeals.review.total"]
    assert (review["expected"], review["actual"], review["status"]) == (11, 0, "fail")
    assert extracted["hongze-2023.pdf"]["cells"]["appeals.review.total"] == 0


def test_agency_takes_the_fuller_name_the_body_gives(extracted: dict[str, dict]) -> None:
    # the PDF's title says 洪泽区人民政府; its first paragraph 淮安市洪泽区人民政府办公室
    assert extracted["hongze-2023.pdf"]["agency"] == "淮安市洪泽区人民政府"
    assert extracted["shanghai-szfbgt-2019.html"]["agency"] == "上海市人民政府办公厅"
