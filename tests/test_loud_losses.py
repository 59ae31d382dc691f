"""Every loss is said aloud: a report whose tables cannot be read, a missing row, a renamed row label.

The hostile variants are built here from real reports of both templates (平潭 2024 on the 2021 template,
上海市人民政府办公厅 2019 on the 2019 template): labels renamed, tables rewritten as <div>s, replaced by
pictures, flattened to plain text, removed, or buried under deep nesting. None may come out as a clean
`extracted`, and each names what was lost.
"""

from __future__ import annotations

import io
import time

import docx
import pytest
from conftest import DOCUMENTS, load_gold
from lxml import etree
from PIL import Image

from gongkai.extractors import read_document
from gongkai.extractors.extract import (
    EXTRACTED,
    NO_STANDARD_TABLES,
    PARTIAL,
    UNREADABLE_TABLES,
    extract_report,
)

REPORTS = ["pingtan-2024.html", "shanghai-szfbgt-2019.html"]


def parse(name: str) -> etree._Element:
    return etree.fromstring((DOCUMENTS / name).read_bytes(), etree.HTMLParser(encoding="utf-8"))


def serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, method="html", encoding="utf-8")


def data_tables(root: etree._Element) -> list[etree._Element]:
    """The report's standard tables (those with numbers in their cells), outermost first."""
    return [t for t in root.iter("table") if t.find(".//table") is None and len(t.findall(".//td")) > 10]


def replace_label(root: etree._Element, old: str, new: str) -> int:
    """Rename a row label inside the tables only (the prose keeps its words)."""
    count = 0
    for table in data_tables(root):
        for node in table.iter():
            for attr in ("text", "tail"):
                value = getattr(node, attr)
                if value and old in value:
                    setattr(node, attr, value.replace(old, new))
                    count += 1
    return count


def warnings_of(result: dict) -> str:
    return "\n".join(result["warnings"])


# (report, label printed, renamed to, the row lost)
RENAMED = [
    ("pingtan-2024.html", "予以公开", "同意予以发布", "requests.granted"),
    ("pingtan-2024.html", "行政许可", "审批事项", "proactive.licensing"),
    ("pingtan-2024.html", "本机关不掌握相关政府信息", "查无此信息", "requests.unavailable_not_held"),
    ("shanghai-szfbgt-2019.html", "予以公开", "同意予以发布", "requests.granted"),
    ("shanghai-szfbgt-2019.html", "政府集中采购", "统一购买服务", "proactive.procurement"),
]


@pytest.mark.parametrize(("name", "old", "new", "row"), RENAMED)
def test_a_renamed_row_is_named_twice_and_the_report_is_partial(name: str, old: str, new: str, row: str) -> None:
    root = parse(name)
    assert replace_label(root, old, new) >= 1
    result = extract_report(serialise(root), name)
    assert result["status"] == PARTIAL
    assert f"{row}: row not found" in result["warnings"]
    assert new in warnings_of(result)  # the label that matched no key, by its text
    assert not any(a.startswith(f"{row}.") for a in result["cells"])
    # every other gold cell still comes out
    gold = load_gold(name)["cells"]
    assert {a: v for a, v in result["cells"].items()} == {a: v for a, v in gold.items() if not a.startswith(f"{row}.")}


@pytest.mark.parametrize("name", REPORTS)
def test_a_missing_table_names_each_of_its_rows(name: str) -> None:
    root = parse(name)
    appeals = next(t for t in data_tables(root) if "结果维持" in "".join(t.itertext()))
    appeals.getparent().remove(appeals)
    result = extract_report(serialise(root), name)
    assert result["status"] == PARTIAL
    for row in ("review", "litigation_direct", "litigation_after_review"):
        assert f"appeals.{row}: row not found" in result["warnings"]


@pytest.mark.parametrize("name", REPORTS)
def test_tables_built_of_divs_are_unreadable_tables_not_a_report_without_tables(name: str) -> None:
    root = parse(name)
    for table in data_tables(root):
        for element in [table, *table.iter()]:
            if element.tag in ("table", "tbody", "thead", "tr", "td", "th"):
                element.tag = "div"
    result = extract_report(serialise(root), name)
    assert result["status"] == UNREADABLE_TABLES
    assert result["cells"] == {}
    assert "<div>" in warnings_of(result)
    assert result["year"] == load_gold(name)["year"] and result["template"] == load_gold(name)["template"]


@pytest.mark.parametrize("name", REPORTS)
def test_tables_pasted_as_pictures_in_html_say_so(name: str) -> None:
    root = parse(name)
    for k, table in enumerate(data_tables(root), start=1):
        picture = etree.Element("img", src=f"/picture/table{k}.png")
        table.getparent().replace(table, picture)
    result = extract_report(serialise(root), name)
    assert result["status"] == UNREADABLE_TABLES
    assert "3 picture(s)" in warnings_of(result)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (400, 200), "white").save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("name", REPORTS)
def test_tables_pasted_as_pictures_in_docx_say_so(name: str) -> None:
    """The report's own text with each standard table replaced by a picture, as many agencies publish it."""
    source = read_document((DOCUMENTS / name).read_bytes(), name)
    document = docx.Document()
    for block in source.blocks:
        document.add_paragraph(block.text)
    for _ in source.tables:
        document.add_picture(io.BytesIO(png()))
    out = io.BytesIO()
    document.save(out)
    result = extract_report(out.getvalue(), name.replace(".html", ".docx"))
    assert result["status"] == UNREADABLE_TABLES
    assert f"{len(source.tables)} picture(s)" in warnings_of(result)


@pytest.mark.parametrize("name", [*REPORTS, "zibo-stats-2023.txt"])
def test_a_page_of_plain_text_with_the_labels_but_no_grid(name: str) -> None:
    """Every cell on a line of its own, without the tab that marks a table cell: labels and numbers, no grid."""
    source = read_document((DOCUMENTS / name).read_bytes(), name)
    lines = [b.text for b in source.blocks] + [c.text for t in source.tables for r in t.rows for c in r if c.is_anchor]
    result = extract_report("\n".join(lines).encode("utf-8"), name + ".txt")
    assert result["status"] == UNREADABLE_TABLES
    assert "申请人情况" in warnings_of(result) and "no table holds them" in warnings_of(result)


def test_the_same_text_without_a_year_is_still_read_as_unreadable_tables() -> None:
    """No title, no year: the labels of the standard tables alone show the tables are there."""
    source = read_document((DOCUMENTS / "template-blank-2021.docx").read_bytes(), "template-blank-2021.docx")
    lines = [c.text for t in source.tables for r in t.rows for c in r if c.is_anchor and c.text]
    result = extract_report("\n".join(lines).encode("utf-8"), "labels.txt")
    assert result["status"] == UNREADABLE_TABLES
    assert "本年制发件数" in warnings_of(result)


@pytest.mark.parametrize("name", REPORTS)
def test_a_report_after_2018_without_any_table_is_never_a_pre_2019_report(name: str) -> None:
    root = parse(name)
    for table in data_tables(root):
        table.getparent().remove(table)
    result = extract_report(serialise(root), name)
    assert result["status"] == UNREADABLE_TABLES != NO_STANDARD_TABLES
    assert result["template"] == load_gold(name)["template"]
    assert f"a report on {load_gold(name)['year']} must carry the standard tables" in warnings_of(result)


def test_a_report_before_2019_without_tables_stays_no_standard_tables() -> None:
    result = extract_report((DOCUMENTS / "pingtan-dishuiju-2013.txt").read_bytes(), "pingtan-dishuiju-2013.txt")
    assert (result["status"], result["template"]) == (NO_STANDARD_TABLES, "pre2019")


@pytest.mark.parametrize("name", REPORTS)
def test_a_hundred_thousand_nested_divs_before_the_tables_are_loud_and_bounded(name: str) -> None:
    root = parse(name)
    body = root.find("body")
    assert body is not None
    page = serialise(root)
    at = page.index(b">", page.index(b"<body")) + 1
    depth = 100_000
    hostile = page[:at] + b"<div>" * depth + b"x" + b"</div>" * depth + page[at:]
    began = time.perf_counter()
    result = extract_report(hostile, name)
    assert time.perf_counter() - began < 5
    assert result["status"] != EXTRACTED
    assert "could not be parsed past line" in warnings_of(result)


def test_the_blank_template_stays_extracted() -> None:
    result = extract_report((DOCUMENTS / "template-blank-2021.docx").read_bytes(), "template-blank-2021.docx")
    assert result["status"] == EXTRACTED
    assert len(result["cells"]) == len(load_gold("template-blank-2021.docx")["cells"])
    assert not [w for w in result["warnings"] if "not found" in w]


@pytest.mark.parametrize("name", REPORTS)
def test_a_page_whose_report_is_an_attachment_names_the_attachment(name: str) -> None:
    """A detail page carrying the title and a link to the report file: not a pre-2019 report, and says where."""
    root = parse(name)
    for table in data_tables(root):
        link = etree.Element("a", href="/upload/2024/report-annex.pdf")
        link.text = "附件：年度报告.pdf"
        table.getparent().replace(table, link)
    result = extract_report(serialise(root), name)
    assert result["status"] == UNREADABLE_TABLES
    assert "/upload/2024/report-annex.pdf" in warnings_of(result)


def test_a_page_of_unknown_year_with_numbered_boxes_but_no_table_labels_is_not_taken_for_a_report() -> None:
    """Numbers in <span>s (a pagination bar) without any label of the standard tables: no tables to have lost."""
    spans = "".join(f"<span>{n}</span>" for n in range(1, 30))
    page = f"<html><body><div class='article-content'><p>通知公告</p><div>{spans}</div></div></body></html>"
    result = extract_report(page.encode("utf-8"), "list.html")
    assert result["status"] not in (UNREADABLE_TABLES, EXTRACTED)


@pytest.mark.parametrize("name", ["pingtan-2024-libreoffice.docx", "shanghai-szfbgt-2019-libreoffice.docx"])
def test_one_table_pasted_as_a_picture_among_real_ones_is_partial_and_says_picture(name: str) -> None:
    document = docx.Document(io.BytesIO((DOCUMENTS / name).read_bytes()))
    appeals = next(t for t in document.tables if "结果维持" in "".join(c.text for c in t._cells))
    paragraph = document.add_paragraph()
    paragraph.add_run().add_picture(io.BytesIO(png()))
    appeals._tbl.addprevious(paragraph._p)
    appeals._tbl.getparent().remove(appeals._tbl)
    out = io.BytesIO()
    document.save(out)
    result = extract_report(out.getvalue(), name)
    assert result["status"] == PARTIAL
    assert "appeals.review: row not found" in result["warnings"]
    assert "1 picture(s) in the body" in warnings_of(result)
