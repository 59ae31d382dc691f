"""parse_detail reads only as much of a page's text as its answers need: the same answers as reading every element's
whole text (the reference walks below, as the code read before), on the real pages and on built ones; and the text it
reads grows with the page, not with the page times its nesting."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lxml import etree

from gongkai.crawler import detail
from gongkai.crawler.detail import (
    ATTACHMENT_TEXT,
    DOCUMENT_LINK,
    META_LABELS,
    PAGE_LINK,
    PageText,
    _attachment,
    _first,
    _parse,
    _text_reaches,
    content_container,
    largest_text_block,
    metadata_table,
    parse_detail,
    text_sizes,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GONGKAI_SHARED") or ROOT.parent / "shared")  # ../shared beside the clone, when there


def real_pages() -> list[str]:
    """Every HTML page of the corpus and the portal pages (the test copies, and the shared originals when present)."""
    paths = sorted((ROOT / "tests" / "corpus" / "documents").glob("*.htm*"))
    paths += sorted(p for p in (ROOT / "tests" / "portals").iterdir() if p.is_file() and "htm" in p.suffix)
    for folder in (SHARED / "corpus" / "documents", SHARED / "portals"):
        paths += sorted(folder.glob("*.htm*")) if folder.is_dir() else []
    return [p.read_text("utf-8", "replace") for p in paths]


def nested_tables(depth: int, label: str = "发布<span>机构</span>：") -> str:
    """Tables within table cells, `depth` deep, each level a row of text and numbers, a metadata label halfway down."""
    rows = []
    for level in range(depth):
        cell = f"<td>{label}</td><td>第{level}层的机构</td>" if level == depth // 2 else f"<td>第{level}层</td><td>{level}</td>"
        rows.append(f"<table><tr>{cell}</tr><tr><td> 说明 ")
    return ("<html><body>" + "".join(rows) + "末层" + "</td></tr></table>" * depth
            + "<p><a href='/f/x.html'>附件下载</a><a href='/f/'>下载</a><a href='/f/r.pdf'>报告</a></p></body></html>")


BUILT = [
    nested_tables(40),
    nested_tables(12, "名 称 ：：" + "：" * 300),  # whitespace inside the label, a long run of colons after it
    "<html><body><table><tr><td>分:类</td><td>a</td></tr><tr><td>:分类</td><td>b</td></tr><tr><td>\u3000分\n类\xa0</td>"
    "<td> 年报 </td></tr><tr><td><b></b><span>标</span><i>题</i>:</td><td>真的</td></tr><tr><td>发文机关" + "x" * 200
    + "</td><td>不是</td></tr><tr><td>名称</td><td>名称：</td></tr></table></body></html>",
    "<html><head><script>document.write('<td>发布机构</td><td>脚本</td>')</script></head><body><table><tr>"
    "<td><script>var a;</script>发布机构<!-- 注 --></td><td>某局<style>p{}</style></td></tr>"
    "<tr><td><span>成文</span><template>日期</template>日期</td><td>2024-01-01</td></tr></table>"
    "<div>" + "字" * 299 + "<script>" + "s" * 50 + "</script></div></body></html>",
    "<html><body><table>" + "".join(f"<tr><td>{i}</td><td>第{i}项</td><td><p>{i * 7}</p></td></tr>" for i in range(2000))
    + "</table><dl><dt>公开日期</dt><dd>2025-03-10</dd></dl></body></html>",  # a big table, the label after it
    "<html><body><div class=''><article id='content' class='content'><p class=' article\u3000x'>a</p></article>"
    "<div id='Zoom' class='TRS_Editorx'></div><div class='x trs_editor_view'></div></div></body></html>",
]


# cells without text, cells whose first descendant is empty but text follows it, labels after empty descendants
EMPTY_CELLS = [
    "<html><body><table><tr><td><p>\xa0</p></td><td>\xa0</td><td><p><span> </span></p>\u3000</td></tr>"
    "<tr><td><p> </p>名称</td><td>一</td><td><p></p><span>发布机构</span></td><td>二</td></tr>"
    "<tr><td><p>\xa0<!-- 注 --></p>分类</td><td>三</td><td><b><i></i></b>公开日期：</td><td>四</td></tr>"
    "<tr><td><p><span><i><b></b></i></span></p>成文日期</td><td>五</td><td><p></p></td><td>六</td></tr></table></body></html>",
]


def hostile_pages() -> list[str]:
    """Deep nesting, many tables, a huge text, scripts, comments and processing instructions among blocks."""
    return [
        "<html><body>" + "<div>" * 300 + "字" * 500 + "</div>" * 300 + "</body></html>",
        "<html><body>" + "".join(f"<div><table><tr><td>{i}<div>x{i}<!--c{i}--></div>y</td></tr></table><p>{'z' * i}</p>"
                                 "</div>" for i in range(300)) + "</body></html>",
        "<html><body><div><script>" + "s" * 5000 + "</script>t<!--" + "c" * 900 + "-->u</div><td><style>a</style>b"
        "<template><div>xx</div></template></td><div><?pi " + "p" * 700 + "?></div></body></html>",
        "<html><body><div>" + "大" * 200_000 + "</div><div>" + " \u3000" * 1000 + "</div></body></html>",
        "<html><body><template><td>名称</td><td>t</td><div>" + "x" * 999 + "</div></template><rt>abc<div>dd</div></rt>"
        "<div>e</div></body></html>",
        "<html><body>" + "".join(f"<table><tr><td>发布机构</td><td>{i}</td></tr></table>" for i in range(500)) + "</body></html>",
    ]


def reference_largest_text_block(root: Any, page: PageText) -> Any:
    """largest_text_block as it read before: text_sizes, then each block's children read again."""
    sizes = text_sizes(root, page)
    best, best_size = None, 0
    for block in root.iter(*detail.BLOCKS):
        own = len((block.text or "").strip())
        for child in block:
            if not isinstance(child.tag, str):
                own += len((child.text or "").strip())
            elif child.tag not in detail.BLOCKS:
                own += sizes[child] if child in sizes else len(page.get(child))
            own += len((child.tail or "").strip())
        if own > best_size:
            best, best_size = block, own
    return best


def reference_metadata_table(root: Any, page: PageText) -> dict[str, str]:
    """metadata_table as it read before: every label cell's whole text."""
    found: dict[str, str] = {}
    for cell in root.iter(*detail.LABEL_CELLS):
        key = META_LABELS.get(re.sub(r"\s+", "", page.get(cell)).rstrip("：:"))
        if key is None or key in found:
            continue
        value = _first(cell, "following-sibling::*[self::td or self::dd or self::span][1]")
        if value is None:
            value = _first(cell, "(descendant::td|descendant::dd|following::td|following::dd)[1]")
        text = page.get(value, " ") if value is not None else ""
        if text and text.rstrip("：:") not in META_LABELS:
            found[key] = text
    return found


def reference_content_container(root: Any) -> Any:
    """content_container as it read before: every element's tag, id and classes looked at."""
    classes = {sel[1:]: i for i, sel in enumerate(detail.CONTENT_SELECTORS) if sel.startswith(".")}
    ids = {sel[1:]: i for i, sel in enumerate(detail.CONTENT_SELECTORS) if sel.startswith("#")}
    tags = {sel: i for i, sel in enumerate(detail.CONTENT_SELECTORS) if sel[0] not in ".#"}
    first: dict[int, Any] = {}
    for el in root.iter(etree.Element):
        hits = [tags[el.tag]] if el.tag in tags else []
        if (id_ := el.get("id")) in ids:
            hits.append(ids[id_])
        hits.extend(classes[token] for token in (el.get("class") or "").split() if token in classes)
        for i in hits:
            first.setdefault(i, el)
    return first[min(first)] if first else None


def reference_attachment(href: str, text: str) -> bool:
    if href.startswith(("javascript:", "#", "mailto:")):
        return False
    if DOCUMENT_LINK.search(href):
        return True
    return bool(ATTACHMENT_TEXT.search(text)) and not PAGE_LINK.search(href.split("?")[0] or "/")


def test_lazy_reading_answers_as_reading_everything() -> None:
    """The metadata table, whether a body reaches a report's length and which links are attachments: the same as from
    every element's whole text, on every real page and on built pages (nested tables with labels, labels split over
    tags or inside scripts, colons and whitespace around labels, a big table)."""
    pages = real_pages() + EMPTY_CELLS + hostile_pages() + BUILT
    assert len(pages) >= 12 + len(BUILT)
    tables, compared = [], 0
    for text in pages:
        root = _parse(text)
        assert root is not None
        page = PageText(root)
        table = metadata_table(root, page)
        assert table == reference_metadata_table(root, page)
        assert content_container(root) is reference_content_container(root)
        assert largest_text_block(root, page) is reference_largest_text_block(root, page)
        tables.append(table)
        sizes = text_sizes(root, page)
        for el in root.iter(etree.Element):
            whole = len(page.get(el))
            assert sizes.get(el, whole) == whole  # (string containers and what is inside them are not measured)
            for size in (1, whole, whole + 1, detail.MIN_REPORT_TEXT):
                assert _text_reaches(page.raw(el), size) is (whole >= size)
                compared += 1
        for a in root.iter("a"):
            href, link_text = (a.get("href") or "").strip(), page.get(a, " ")
            assert _attachment(href, lambda t=link_text: t) is reference_attachment(href, link_text)
    assert compared > 10_000
    # the built pages' labels are found (so the comparison above is not of empty tables only)
    assert tables[-6]["agency"] == "第20层的机构" and tables[-5]["title"] == "第6层的机构"
    assert tables[-4] == {"category": "年报", "title": "真的"}
    assert tables[-3] == {"agency": "某局", "written": "2024-01-01"} and tables[-2] == {"published": "2025-03-10"}
    assert tables[len(pages) - len(BUILT) - len(hostile_pages()) - 1] == {
        "title": "一", "agency": "二", "category": "三", "published": "四", "written": "五"}
    notice = parse_detail(BUILT[0], "http://h/a/t1.html")
    assert notice.agency == "第20层的机构" and notice.body_is_report
    assert [url for url, _ in notice.attachments] == ["http://h/f/r.pdf"]


class CountingElement(etree.ElementBase):
    """An element whose itertext counts the characters it hands out (as they are read: a lazy reader stops early)."""

    read = [0]

    def itertext(self, *tags: Any, **kw: Any) -> Iterator[str]:
        for text in super().itertext(*tags, **kw):
            CountingElement.read[0] += len(text)
            yield text


def counted_tree(text: str) -> Any:
    parser = etree.HTMLParser(recover=True)
    parser.set_element_class_lookup(etree.ElementDefaultClassLookup(element=CountingElement))
    return etree.fromstring(text, parser)


def test_the_metadata_table_reads_text_in_proportion_to_the_page_not_to_its_nesting() -> None:
    """Every label cell's whole text was read to compare it with a label of two to four characters: on tables nested
    in cells each cell's text holds all the cells inside it, so the text read grew with the square of the nesting
    (about depth / 2 times the page's text). Now a cell is read only while it can still be a label."""
    for depth in (30, 120):
        root = counted_tree(nested_tables(depth))
        page_text = sum(len(t) for t in etree.ElementBase.itertext(root))
        CountingElement.read[0] = 0
        table = metadata_table(root, PageText(root))
        assert table["agency"] == f"第{depth // 2}层的机构"
        assert CountingElement.read[0] <= 2 * page_text, (depth, CountingElement.read[0], page_text)


def test_a_page_without_a_content_container_is_read_in_proportion_to_its_text(monkeypatch: Any) -> None:
    """The largest-block fallback read the whole text of each block's tables: on tables nested in cells, each cell's
    tables again (growing with the square of the nesting). Now each piece of text is measured once (text_sizes)."""
    for depth in (30, 120):
        text = nested_tables(depth)
        page_text = sum(len(t) for t in etree.ElementBase.itertext(counted_tree(text)))
        monkeypatch.setattr(detail, "_parse", lambda text, utf8=None: counted_tree(text))
        CountingElement.read[0] = 0
        page = parse_detail(text, "http://h/a/t1.html")
        assert page.agency == f"第{depth // 2}层的机构" and page.body_is_report
        assert CountingElement.read[0] <= 2 * page_text, (depth, CountingElement.read[0], page_text)


def test_a_cell_without_text_is_not_read() -> None:
    """A report's table has many empty cells (<td><p>&nbsp;</p></td>): each was read as a possible label. Now a cell
    whose descendants are each their parent's only child, with no text, is passed over without reading it."""
    root = counted_tree("<html><body><table><tr>" + "<td><p>\xa0</p></td><td>\u3000</td><td><p><span> </span></p></td>" * 100
                        + "</tr><tr><td>\xa0名称</td><td>某报告</td></tr></table></body></html>")
    CountingElement.read[0] = 0
    assert metadata_table(root, PageText(root)) == {"title": "某报告"}
    assert CountingElement.read[0] <= len("\xa0名称") + len("某报告"), CountingElement.read[0]


class TailCountingElement(etree.ElementBase):
    """An element that counts how often its tail is read."""

    reads = [0]

    @property
    def tail(self) -> str | None:
        TailCountingElement.reads[0] += 1
        value: str | None = etree.ElementBase.tail.__get__(self)
        return value


def test_the_largest_block_reads_each_text_once() -> None:
    """The largest block measured every element's text (text_sizes), then read each block's children again for its own
    text: twice the tails of a page of blocks. Now a block's own text is worked out in the same walk."""
    parser = etree.HTMLParser(recover=True)
    parser.set_element_class_lookup(etree.ElementDefaultClassLookup(element=TailCountingElement))
    root = etree.fromstring("<html><body>" + "".join(f"<div><p>{i}</p> 后 <p>{'字' * i}</p>{i}</div>" for i in range(100))
                            + "</body></html>", parser)
    elements = sum(1 for _ in root.iter())
    TailCountingElement.reads[0] = 0
    block = largest_text_block(root, PageText(root))
    assert block is not None and block.findtext("p[2]") == "字" * 99
    assert TailCountingElement.reads[0] <= elements, (TailCountingElement.reads[0], elements)


def test_link_verdicts_are_remembered_within_a_bound() -> None:
    """A site's pages repeat its navigation's links: what a URL alone says of a link is remembered, for short hrefs
    only and at most LINK_MEMORY of them, and is what judging it afresh says."""
    detail._judge_remembered.cache_clear()
    hrefs = [f"/a/{i}.{ext}" for i in range(3000) for ext in ("html", "pdf", "jsp")] + ["#", "javascript:;", "/f/下载"]
    hrefs.append("/x/" + "y" * 10_000 + ".pdf")
    for href in hrefs + hrefs[-10:]:  # (the last ones again: remembered)
        assert detail._link_verdict(href) is detail._judge_link(href)
    info = detail._judge_remembered.cache_info()
    assert info.currsize == detail.LINK_MEMORY and info.hits == 9  # (not the long href)
    assert detail._judge_link("/a/1.pdf") is True and detail._judge_link("/a/1.html") is False
    assert detail._judge_link("/f/下载") is None and detail._judge_link("/x/" + "y" * 10_000 + ".pdf") is True
