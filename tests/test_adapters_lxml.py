"""The listing adapters read lxml's tree directly (crawler/adapters/tree.py) and return what they returned through
BeautifulSoup (tests/adapters_reference.py, the code as it was): on every saved page and on built hostile ones, for
every family and the parameters that change the reading; and the tree gives BeautifulSoup's elements and text."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import adapters_reference as ref
import pytest
from bs4 import BeautifulSoup
from listing_pages import hostile_encoded, hostile_pages, saved_pages

from gongkai.crawler.adapters import PageRequest, detect, generic, hanweb, links, tree, trs, ucap
from gongkai.crawler.fetcher import decode_html
from gongkai.crawler.registry import Portal

URLS = ("http://www.example.gov.cn/col/zfxxgknb/index.html", "http://www.example.gov.cn/col/list_3.html",
        "http://www.example.gov.cn/list.jsp?id=4&page=2", "http://www.example.gov.cn/jyj/zfxxgknb/1.html")


def portal(cms: str, **params: Any) -> Portal:
    return Portal("p", "某局", "000000", "county", cms, (URLS[0],), frozenset({"www.example.gov.cn"}), params)


# (family, parser now, parser before, portal): the families that read HTML, with the parameters that change the reading
READERS: list[tuple[str, Callable[..., Any], Callable[..., Any], Portal]] = [
    ("trs", trs.parse_listing, ref.trs_parse_listing, portal("trs")),
    ("trs search", trs.parse_listing, ref.trs_parse_listing, portal("trs", search_api="/search", page_size=10)),
    ("ucap", ucap.parse_listing, ref.ucap_parse_listing, portal("ucap")),
    ("generic", generic.parse_listing, ref.generic_parse_listing, portal("generic")),
    ("generic item_pattern", generic.parse_listing, ref.generic_parse_listing, portal("generic", item_pattern=r"\.s?html?$")),
    ("generic next_text", generic.parse_listing, ref.generic_parse_listing, portal("generic", next_text="2")),
    ("hanweb", hanweb.parse_listing, ref.hanweb_parse_listing, portal("hanweb")),
]


def outcome(call: Callable[..., Any], *args: Any) -> Any:
    """What a call returns, or the type of what it raises (a page the old code failed on must fail the same way)."""
    try:
        return call(*args)
    except Exception as exc:  # noqa: BLE001 — compared, not swallowed
        return type(exc)


pytestmark = pytest.mark.filterwarnings("ignore::bs4.XMLParsedAsHTMLWarning", "ignore::bs4.MarkupResemblesLocatorWarning")


def texts() -> list[tuple[str, str]]:
    pages = [(name, decode_html(body, ctype)) for name, body, ctype in saved_pages()]
    pages += [(name, decode_html(body, ctype)) for name, body, ctype in hostile_encoded()]
    return pages + list(hostile_pages())


def assert_same_listing(name: str, text: str, seed: int = 0) -> int:
    """Every family's reading of `text` as before, from each URL and page number (from two of them on a big page or
    with a `seed`: the seed picks them); the number of items compared."""
    items = 0
    combos = [(url, number) for number in (1, 2) for url in URLS]
    if seed or len(text) > 50_000:
        combos = [combos[seed % len(combos)], combos[(seed + 5) % len(combos)]]
    for url, number in combos:
        request = PageRequest(url, number=number)
        for family, now, before, entry in READERS:
            expected = outcome(before, entry, request, text, url)
            assert outcome(now, entry, request, text, url) == expected, (name, family, url, number)
            items += len(expected.candidates) if not isinstance(expected, type) else 0
    assert outcome(detect._links, text) == outcome(ref.detect_links, text), name
    return items


def test_every_family_reads_the_saved_pages_as_before() -> None:
    """Every saved page (the adapter tests', ../shared/portals, corpus and ../shared/corpus HTML, the demo portal's,
    the benchmark's) read by every HTML family from several URLs and page numbers: the same candidates, titles, dates
    and next pages as the BeautifulSoup reading."""
    pages = [(name, decode_html(body, ctype)) for name, body, ctype in saved_pages()]
    assert len(pages) >= 40 and sum("shared" in name or "portals" in name for name, _ in pages) >= 8
    items = sum(assert_same_listing(name, text) for name, text in pages)
    assert items > 500  # the pages do list things: the comparison is not of empty lists


@pytest.mark.parametrize("name, text", hostile_pages()[:40], ids=[n for n, _ in hostile_pages()[:40]])
def test_every_family_reads_built_hostile_pages_as_before(name: str, text: str) -> None:
    """Broken markup, markup cut anywhere, nested tables, huge attributes and text, BOMs and charsets inside the text,
    control characters, dates in comments, scripts, templates and ruby, nested and navigation links."""
    assert_same_listing(name, text)


def test_every_family_reads_random_tag_soup_and_odd_encodings_as_before() -> None:
    """Random tag soup (seeded) and pages in the encodings and declarations sites send, decoded as the crawler does."""
    pages = list(hostile_pages()[40:]) + [(name, decode_html(body, ctype)) for name, body, ctype in hostile_encoded()]
    assert len(pages) >= 400
    items = sum(assert_same_listing(name, text, seed) for seed, (name, text) in enumerate(pages, 1))
    assert items > 300


def test_the_tree_is_beautifulsoups_tree_with_its_text() -> None:
    """The proof under the adapters' equality: on every page, lxml's elements are BeautifulSoup's (same names, same
    order), each link's href, title, date and text are BeautifulSoup's, and so is every element's get_text (on pages
    small enough for BeautifulSoup's get_text of every element)."""
    compared = 0
    for name, text in texts():
        soup, root = BeautifulSoup(text, "lxml"), tree.parse_html(text)
        elements = [] if root is None else [el for el in root.iter() if tree.is_element(el)]
        assert [el.tag for el in elements] == [t.name for t in soup.find_all(True)], name
        anchors, old_anchors = tree.links(root), soup.find_all("a", href=True)
        assert [(a.get("href"), links.anchor_title(a), links.date_near(a), tree.get_text(a, " ")) for a in anchors] == [
            (a["href"], ref.anchor_title(a), ref.date_near(a), a.get_text(" ", strip=True)) for a in old_anchors], name
        if len(text) < 20_000:
            assert [tree.get_text(el, " ") for el in elements] == [t.get_text(" ", strip=True) for t in soup.find_all(True)], name
        compared += len(elements)
    assert compared > 20_000


def test_navigation_links_taken_out_as_extract_did() -> None:
    """generic drops 首页/尾页/下一页 links from the items as BeautifulSoup's extract() did: the link and what it holds
    are gone, the text after it stays (a date after a 下一页 is the next item's), a block's link count drops."""
    page = ('<div><a href="./202401/t1.html">2024年年度报告</a><a href="index_1.html">下一页</a> 2024-01-02</div>'
            '<li><a href="./202402/t2.html">2023年年度报告</a><span><a href="index_9.html">尾页</a>2023-02-02</span></li>'
            '<p><a href="首页.html">首页<a href="./202403/t3.html">2022年年度报告里</a></a> 2022-03-03</p>')
    for url in URLS[:2]:
        request = PageRequest(url)
        now = generic.parse_listing(portal("generic"), request, page, url)
        assert now == ref.generic_parse_listing(portal("generic"), request, page, url)
    # (libxml2 closes the 首页 link where the next one opens: that one is an item)
    assert [(c.title, c.published) for c in now.candidates] == [("2024年年度报告", "2024-01-02"), ("2023年年度报告", "2023-02-02"),
                                                                ("2022年年度报告里", "2022-03-03")]


TITLES = ("2024年<em>年度</em>报告", "a &amp; b", "  平潭2024年报告 ", " ", "\r\n\t", "x\x00y", "\x0c2024\x0b", "\u3000年报\u3000",
          "<", ">", "a<b", "&", "&#", "&#x4e00;", "&nbsp;", "<!--c-->d", "<script>s</script>t", "plain", "", "\ufeff年报",
          "年\r报", "<p>段</p>", "</a>")


def test_search_titles_read_as_html_parser_read_them() -> None:
    """A TRS search record's title as BeautifulSoup's html.parser read it, markup or not (the plain ones not parsed)."""
    for title in TITLES:
        assert trs.markup_text(title) == BeautifulSoup(title, "html.parser").get_text().strip(), repr(title)


def test_a_search_answer_reads_as_before() -> None:
    answer = ('{"pager": {"pageCount": 3}, "list": [' + ",".join(
        f'{{"doctitle": {t!r}, "chnldocurl": "./202401/t2024010{i}_{i}.html", "docreltime": "2024-01-0{i}"}}'.replace("'", '"')
        for i, t in enumerate(["2024年<em>年度</em>报告", "a &amp; b 2023年", "平潭2022年报告"])) + "]}")
    request = PageRequest("http://www.example.gov.cn/search", "POST", {"page": "1"}, 1)
    entry = portal("trs", search_api="/search")
    assert re.search("年度", answer)
    now = trs.parse_listing(entry, request, answer, request.url)
    assert now == ref.trs_parse_listing(entry, request, answer, request.url) and len(now.candidates) == 3


def test_listing_pages_are_read_without_a_beautifulsoup_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """No BeautifulSoup tree is built for a listing page of TRS, UCAP or generic, a search title without markup or a
    detection (it was most of the crawler's CPU for a listing page)."""
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("BeautifulSoup built")

    monkeypatch.setattr(BeautifulSoup, "__init__", refuse)
    page = dict(hostile_pages())["all rows"]
    for family, now, _before, entry in READERS:
        if family != "hanweb":  # (its records are html.parser fragments, read as they were)
            assert now(entry, PageRequest(URLS[0]), page, URLS[0]).candidates
    assert trs.markup_text(" 平潭2024年报告 ") == "平潭2024年报告"
    assert detect.detect(URLS[0], page).family == "trs"


RECORDS = ('<li><a href="/art/2024/1/2/art_1_1.html">没有title的2023年年度报告</a><span>2024-01-02</span></li>',
           '<li><a href="/art/2024/1/3/art_1_2.html" title=" ">空title 2023年</a>2024年1月3日</li>',
           '<a href="/art/2024/1/4/art_1_3.html" title="有title">x<b>粗</b>&amp;<!-- 2020-01-01 --></a>',
           '<li><a>无href</a><a href="">空href 2024-01-05</a></li>', "<li>没有链接 2024-01-06</li>", "<a href=x>未闭合<li>2024-01-07",
           '<li><a href="/art/2024/1/8/art_1_4.html"><script>2019-01-01</script>脚本</a><style>2018-01-01</style></li>')


def test_hanweb_records_read_as_before() -> None:
    """Hanweb's records (html.parser fragments of a <datastore>): a link without a title attribute read by its text (the
    lxml helpers are not for html.parser's tags), markup, entities, comments and scripts in them, links missing."""
    body = "".join(f"<record><![CDATA[{r}]]></record>" for r in RECORDS)
    for total in (3, 45, 200):
        text = f"<datastore><totalrecord>{total}</totalrecord><recordset>{body}</recordset></datastore>"
        for request in (PageRequest("http://h/col/col55/index.html"),
                        PageRequest("http://h/module/web/jpage/dataproxy.jsp?startrecord=1", "POST", {"columnid": "55"}, 2, 1)):
            entry = portal("hanweb", unit_id=1)
            now = hanweb.parse_listing(entry, request, text, request.url)
            assert now == ref.hanweb_parse_listing(entry, request, text, request.url)
    assert [c.title for c in now.candidates][:3] == ["没有title的2023年年度报告", "空title 2023年", "有title"]


def limit_pages() -> list[tuple[str, str]]:
    item = '<li><a href="./202403/t20240301_{n}.html">2024年年度报告{n}</a> 2024-03-0{n}</li>'
    nested = [(f"{depth} unclosed <{tag}>", item.format(n=1) + f"<{tag}>" * depth + item.format(n=2) + item.format(n=3))
              for depth in (300, 1500) for tag in ("div", "font")]
    closed = '<div>' * 600 + item.format(n=4) + '</div>' * 600 + item.format(n=5)
    long_text = item.format(n=6) + "<li>" + "字" * 10_500_000 + "</li>" + item.format(n=7)
    return [*nested, ("600 nested, closed", closed), ("a text node over 10 MB", long_text)]


def test_pages_past_libxml2s_tree_limits_read_as_before() -> None:
    """Nesting past libxml2's 256 levels (a page of unclosed tags) and a text node over 10 MB: BeautifulSoup read the
    rest of such a page (it builds from the parse events), and so does the lxml tree (huge_tree); without it the
    items after the limit were lost."""
    for name, text in limit_pages():
        for url in URLS[:1]:
            request = PageRequest(url)
            for family, now, before, entry in READERS[:4]:
                expected = before(entry, request, text, url)
                assert now(entry, request, text, url) == expected, (name, family)
        assert len(expected.next) == 0 and len({c.url for c in expected.candidates}) >= 2
