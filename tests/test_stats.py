"""The pre-2019 统计表 (table `stats`, template pre2019): each dev report's table written again as DOCX, as PDF
(LibreOffice), in the Shanghai coded form and the Gansu form, must give the same cells (issue 9)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import DOCUMENTS, load_gold
from make_docx import make_docx

from gongkai.extractors import read_document
from gongkai.extractors.extract import extract_report

DEV = ("pingtan-county-2011.html", "pingtan-2017.html")


def statistics_rows(name: str) -> list[list[str]]:
    """The 统计表 of a dev report as printed: header row, then 指标名称 | 计量单位 | year | cumulative."""
    doc = read_document((DOCUMENTS / name).read_bytes(), name)
    [table] = doc.tables
    return [[cell.text for cell in row] for row in table.rows]


def report_docx(name: str, rows: list[list[str]], year: int | None = None) -> bytes:
    gold = load_gold(name)
    title = f"{gold['agency']}{year or gold['year']}年政府信息公开工作年度报告"
    spans = [[(text, 1, 1) for text in row] for row in rows]
    return make_docx([title, "附件：政府信息公开情况统计表", spans, "本报告的电子版可在门户网站下载。"])


def year_cells(gold: dict) -> dict:
    return {a: v for a, v in gold["cells"].items() if a.endswith(".year")}


@pytest.mark.parametrize("name", DEV)
def test_statistics_table_as_docx_gives_the_gold_cells(name: str) -> None:
    gold = load_gold(name)
    out = extract_report(report_docx(name, statistics_rows(name)), f"{name}.docx")
    assert (out["status"], out["template"], out["year"]) == ("extracted", "pre2019", gold["year"])
    assert out["cells"] == gold["cells"]
    assert not [c for c in out["checks"] if c["status"] != "pass"]


@pytest.mark.parametrize("name", DEV)
def test_statistics_table_rendered_to_pdf_by_libreoffice(tmp_path: Path, name: str) -> None:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        if os.environ.get("GONGKAI_REQUIRE_LIBREOFFICE") == "1":
            pytest.fail("LibreOffice is required here (GONGKAI_REQUIRE_LIBREOFFICE=1) but not installed")
        pytest.skip("LibreOffice not installed")
    source = tmp_path / "stats.docx"
    source.write_bytes(report_docx(name, statistics_rows(name)))
    subprocess.run(
        [soffice, f"-env:UserInstallation=file://{tmp_path}/profile", "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(source)],
        check=True, capture_output=True, timeout=180,
    )
    out = extract_report((tmp_path / "stats.pdf").read_bytes(), f"{name}.pdf")
    assert (out["template"], out["year"]) == ("pre2019", load_gold(name)["year"])
    assert out["cells"] == load_gold(name)["cells"]


@pytest.mark.parametrize("name", DEV)
def test_shanghai_coded_form_takes_the_annual_column_never_the_month(name: str) -> None:
    """指标名称 | 代码 | 计量单位 | 本月累计 | 年度累计: the code is not a label, 本月累计 is never read."""
    printed = statistics_rows(name)
    rows = [["指标名称", "代码", "计量单位", "本月累计", "年度累计"]]
    for code, (label, unit, year, _cumulative) in enumerate(printed[1:], 1):
        rows.append([label, f"{code:02d}", unit, str(int(year) + 900 + code), year])  # a month's figure differs
    out = extract_report(report_docx(name, rows), f"{name}-coded.docx")
    assert (out["status"], out["template"]) == ("extracted", "pre2019")
    assert out["cells"] == year_cells(load_gold(name))


def test_gansu_form_and_the_sole_column() -> None:
    """本期实际 / 本年累计: 本年累计 is the year; 本期实际 alone (the only value column) is the year too."""
    printed = statistics_rows("pingtan-county-2011.html")
    gansu = [["指标名称", "计量单位", "本期实际", "本年累计"]] + [[r[0], r[1], "1", r[2]] for r in printed[1:]]
    want = year_cells(load_gold("pingtan-county-2011.html"))
    assert extract_report(report_docx("pingtan-county-2011.html", gansu), "gansu.docx")["cells"] == want
    sole = [["指标名称", "计量单位", "本期实际"]] + [[r[0], r[1], r[2]] for r in printed[1:]]
    assert extract_report(report_docx("pingtan-county-2011.html", sole), "sole.docx")["cells"] == want


def test_national_2014_form_with_a_single_column_and_numbering() -> None:
    """数据统计数 alone, rows numbered （一） / 1. / 其中：1、."""
    printed = statistics_rows("pingtan-2017.html")
    rows = [["指标名称", "计量单位", "数据统计数"]]
    for number, (label, unit, year, _c) in enumerate(printed[1:], 1):
        rows.append([f"（{'一二三四五六七八九十'[number % 10]}）{label}" if "其中" not in label else label, unit, year])
    out = extract_report(report_docx("pingtan-2017.html", rows), "national-2014.docx")
    assert out["cells"] == year_cells(load_gold("pingtan-2017.html"))


def test_a_row_the_schema_lacks_is_named_in_a_warning() -> None:
    rows = statistics_rows("pingtan-2017.html")
    rows.insert(5, ["门户网站页面浏览量", "人次", "12345", "67890"])
    out = extract_report(report_docx("pingtan-2017.html", rows), "extra-row.docx")
    assert out["cells"] == load_gold("pingtan-2017.html")["cells"]
    assert [w for w in out["warnings"] if "门户网站页面浏览量" in w and "stats" in w]


def test_channels_that_do_not_add_up_fail_channel_sum() -> None:
    rows = statistics_rows("pingtan-county-2011.html")
    [online] = [r for r in rows if "网上申请数" in r[0]]
    online[2] = "3"  # 3 online requests, while 受理依申请公开信息总数 stays 0
    out = extract_report(report_docx("pingtan-county-2011.html", rows), "channels.docx")
    failing = [(c["rule"], c["target"], c["expected"], c["actual"]) for c in out["checks"] if c["status"] == "fail"]
    assert failing == [("stats.channel_sum", "stats.requests_total.year", 3, 0)]


def test_a_report_after_2018_printing_the_old_table_is_read_with_a_warning() -> None:
    out = extract_report(report_docx("pingtan-2017.html", statistics_rows("pingtan-2017.html"), year=2019), "late.docx")
    assert (out["year"], out["template"]) == (2019, "pre2019")
    assert out["cells"] == load_gold("pingtan-2017.html")["cells"]
    assert [w for w in out["warnings"] if "2019" in w and "pre2019" in w]


def test_missing_required_rows_make_the_report_partial() -> None:
    rows = [r for r in statistics_rows("pingtan-2017.html") if "行政复议数" not in r[0]]
    out = extract_report(report_docx("pingtan-2017.html", rows), "partial.docx")
    assert out["status"] == "partial"
    assert "stats.reviews: row not found" in out["warnings"]
    assert not [w for w in out["warnings"] if "requests_email" in w]  # an optional channel row is not expected


def report_text(name: str, rows: list[list[str]]) -> bytes:
    """The report flattened to text as the text reader takes it: one cell per tab-indented line, rows split by blanks."""
    gold = load_gold(name)
    lines = [f"{gold['agency']}{gold['year']}年政府信息公开工作年度报告", "附件：政府信息公开情况统计表"]
    for row in rows:
        lines += [f"\t{text}" for text in row] + [""]
    lines.append("本报告的电子版可在门户网站下载。")
    return "\n".join(lines).encode("utf-8")


@pytest.mark.parametrize("name", DEV)
def test_statistics_table_flattened_to_text(name: str) -> None:
    out = extract_report(report_text(name, statistics_rows(name)), f"{name}.txt")
    assert (out["status"], out["template"]) == ("extracted", "pre2019")
    assert out["cells"] == load_gold(name)["cells"]


def test_coded_table_flattened_to_text_takes_the_annual_figure() -> None:
    """Without cell positions the annual figure is the last value; the month's and the code sit with the label."""
    name = "pingtan-2017.html"
    rows = [["指标名称", "代码", "计量单位", "本月累计", "年度累计"]]
    rows += [[label, f"{code:02d}", unit, "7", year] for code, (label, unit, year, _c) in enumerate(statistics_rows(name)[1:], 1)]
    out = extract_report(report_text(name, rows), "coded.txt")
    assert out["cells"] == year_cells(load_gold(name))
